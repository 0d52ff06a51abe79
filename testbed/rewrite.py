#!/usr/bin/env python3
"""Rewrites testbed captures (and labels) from private to scenario addresses.

    testbed/rewrite.py [--map testbed/address-map.json] --out OUTDIR IN.pcap... [--labels labels.json]

For every packet: IPv4 source and destination (and the addresses in ARP bodies and in the
inner header quoted by ICMP errors) are mapped per address-map.json (private /24 ->
scenario /24, host octet kept). Checksums are then made right again:
  * the IPv4 header checksum is recomputed;
  * a TCP/UDP/ICMP checksum is recomputed from scratch when the whole segment was captured,
    and otherwise (the snaplen cut the payload) adjusted incrementally for the changed
    address words (RFC 1624), which keeps it correct if it was correct before;
  * a UDP checksum of 0 (none) stays 0.
Timestamps, lengths, MACs and payload bytes are left alone. Output files have the same
names in OUTDIR. With --labels, every string in the JSON that is a mapped address is
replaced too, and "address_space" becomes "scenario"; written to OUTDIR/labels.json.
Exits non-zero if any address in 10.200.0.0/16 is not covered by the map, or any
10.200.x.x address remains in an output header. Python 3 standard library only.
"""

import argparse
import ipaddress
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the tree
sys.path.insert(0, HERE)
import pcaplib  # noqa: E402

TESTBED = ipaddress.ip_network("10.200.0.0/16")


class Mapper:
    def __init__(self, path):
        m = json.load(open(path))
        self.nets = []
        for n in m["networks"]:
            priv, scen = ipaddress.ip_network(n["private"]), ipaddress.ip_network(n["scenario"])
            if priv.prefixlen != scen.prefixlen:
                raise SystemExit(f"address map: {priv} and {scen} differ in length")
            if not priv.subnet_of(TESTBED):
                raise SystemExit(f"address map: {priv} is not inside {TESTBED}")
            self.nets.append((priv, scen))
        self.cache = {}
        self.unmapped = set()

    def map4(self, b):
        """4 address bytes -> 4 bytes (unchanged if outside the testbed range)."""
        r = self.cache.get(b)
        if r is not None:
            return r
        a = ipaddress.IPv4Address(b)
        r = b
        if a in TESTBED:
            for priv, scen in self.nets:
                if a in priv:
                    r = (scen.network_address + (int(a) - int(priv.network_address))).packed
                    break
            else:
                self.unmapped.add(str(a))
        self.cache[b] = r
        return r

    def map_str(self, s):
        try:
            a = ipaddress.IPv4Address(s)
        except ValueError:
            return s
        return str(ipaddress.IPv4Address(self.map4(a.packed)))


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def csum_adjust(old_ck, old_bytes, new_bytes):
    """RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m') over each changed 16-bit word."""
    s = ~old_ck & 0xFFFF
    for i in range(0, len(old_bytes), 2):
        m = int.from_bytes(old_bytes[i:i + 2], "big")
        m2 = int.from_bytes(new_bytes[i:i + 2], "big")
        s += (~m & 0xFFFF) + m2
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def rewrite_ipv4(buf, off, mapper, stats, inner=False):
    """Rewrites the IPv4 packet starting at buf[off] in place (bytearray)."""
    if len(buf) < off + 20 or buf[off] >> 4 != 4:
        return
    ihl = (buf[off] & 15) * 4
    if len(buf) < off + ihl:
        return
    old = bytes(buf[off + 12:off + 20])
    new = mapper.map4(old[:4]) + mapper.map4(old[4:])
    if new == old:
        return
    old_hdr_ck = bytes(buf[off + 10:off + 12])
    buf[off + 12:off + 20] = new
    buf[off + 10:off + 12] = b"\0\0"
    buf[off + 10:off + 12] = csum(bytes(buf[off:off + ihl])).to_bytes(2, "big")
    stats["ip"] += 1
    if inner:
        return old + old_hdr_ck, new + bytes(buf[off + 10:off + 12])
    proto = buf[off + 9]
    frag = int.from_bytes(buf[off + 6:off + 8], "big")
    if frag & 0x1FFF:
        return  # later fragments carry no L4 header
    total = int.from_bytes(buf[off + 2:off + 4], "big")
    t = off + ihl
    l4_len = total - ihl
    complete = len(buf) >= off + total and not frag & 0x2000  # whole, unfragmented segment captured
    if proto in (6, 17):
        ck_at = t + (16 if proto == 6 else 6)
        if len(buf) < ck_at + 2:
            return
        old_ck = int.from_bytes(buf[ck_at:ck_at + 2], "big")
        if proto == 17 and old_ck == 0:
            return
        if complete:
            buf[ck_at:ck_at + 2] = b"\0\0"
            pseudo = new + bytes([0, proto]) + l4_len.to_bytes(2, "big")
            ck = csum(pseudo + bytes(buf[t:t + l4_len]))
            if proto == 17 and ck == 0:
                ck = 0xFFFF
            stats["l4_full"] += 1
        else:
            ck = csum_adjust(old_ck, old, new)
            stats["l4_incremental"] += 1
        buf[ck_at:ck_at + 2] = ck.to_bytes(2, "big")
    elif proto == 1 and len(buf) >= t + 8 and buf[t] in (3, 4, 5, 11, 12):
        # ICMP error: rewrite the quoted header; the ICMP checksum covers it (no pseudo-header)
        r = rewrite_ipv4(buf, t + 8, mapper, stats, inner=True)
        if r:
            old_ck = int.from_bytes(buf[t + 2:t + 4], "big")
            if complete:
                buf[t + 2:t + 4] = b"\0\0"
                ck = csum(bytes(buf[t:t + l4_len]))
            else:
                ck = csum_adjust(old_ck, *r)  # quoted addresses + quoted header checksum: 10 bytes
            buf[t + 2:t + 4] = ck.to_bytes(2, "big")
            stats["icmp_inner"] += 1


def rewrite_pcap(src, dst, mapper, stats):
    r = pcaplib.Reader(src)
    w = pcaplib.Writer(dst, r)
    for ts, caplen, origlen, data in r:
        buf = bytearray(data)
        off, et = pcaplib.l3_offset(r.linktype, buf)
        if off is not None:
            if et == 0x0800:
                rewrite_ipv4(buf, off, mapper, stats)
            elif et == 0x0806 and len(buf) >= off + 28 and buf[off + 4] == 6 and buf[off + 5] == 4:
                buf[off + 14:off + 18] = mapper.map4(bytes(buf[off + 14:off + 18]))
                buf[off + 24:off + 28] = mapper.map4(bytes(buf[off + 24:off + 28]))
                stats["arp"] += 1
        w.write(ts, origlen, bytes(buf))
        stats["packets"] += 1
    w.close()
    # check: no testbed address left in any IPv4 header
    left = 0
    r2 = pcaplib.Reader(dst)
    for ts, caplen, origlen, data in r2:
        off, et = pcaplib.l3_offset(r2.linktype, data)
        if et == 0x0800 and len(data) >= off + 20:
            for a in (data[off + 12:off + 16], data[off + 16:off + 20]):
                if ipaddress.IPv4Address(a) in TESTBED:
                    left += 1
    return left


def map_json(obj, mapper):
    if isinstance(obj, dict):
        return {k: map_json(v, mapper) for k, v in obj.items()}
    if isinstance(obj, list):
        return [map_json(v, mapper) for v in obj]
    if isinstance(obj, str):
        if " " in obj:  # e.g. SSH_CONNECTION "ip port ip port"
            return " ".join(mapper.map_str(p) for p in obj.split(" "))
        return mapper.map_str(obj)
    return obj


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--map", default=os.path.join(HERE, "address-map.json"))
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--labels", help="labels.json to rewrite as well")
    ap.add_argument("pcaps", nargs="*")
    a = ap.parse_args()
    mapper = Mapper(a.map)
    os.makedirs(a.out, exist_ok=True)
    bad = 0
    for src in a.pcaps:
        dst = os.path.join(a.out, os.path.basename(src))
        if os.path.abspath(dst) == os.path.abspath(src):
            sys.exit(f"rewrite: {dst} would overwrite its input")
        stats = {"packets": 0, "ip": 0, "arp": 0, "l4_full": 0, "l4_incremental": 0, "icmp_inner": 0}
        left = rewrite_pcap(src, dst, mapper, stats)
        bad += left
        print(f"rewrite: {os.path.basename(src)}: {stats['packets']} packets, {stats['ip']} IPv4 rewritten "
              f"(L4 checksum recomputed {stats['l4_full']}, adjusted {stats['l4_incremental']}), "
              f"{stats['arp']} ARP" + (f", {left} testbed addresses LEFT" if left else ""))
    if a.labels:
        lab = json.load(open(a.labels))
        lab = map_json(lab, mapper)
        lab["address_space"] = "scenario"
        lab["address_map"] = os.path.basename(a.map)
        with open(os.path.join(a.out, "labels.json"), "w") as f:
            json.dump(lab, f, indent=1)
            f.write("\n")
        print(f"rewrite: labels -> {os.path.join(a.out, 'labels.json')}")
    if mapper.unmapped:
        print(f"rewrite: ERROR: testbed addresses not in the map: {sorted(mapper.unmapped)}", file=sys.stderr)
        return 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
