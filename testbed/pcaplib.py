"""Minimal classic-pcap reading/writing and IPv4/TCP parsing (Python 3 standard library only).

Used by the testbed's scenario driver (labels from the captures), rewrite.py (address
map) and summarize.py. Handles classic pcap (both byte orders, micro- and nanosecond
timestamps) with link types Ethernet (1), raw IPv4 (228 / 101 / 12) and Linux cooked (113).
pcapng is not handled (tcpdump -w writes classic pcap).
"""

import struct

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_RAW_12 = 12  # DLT_RAW on OpenBSD-ish systems, seen in some captures
LINKTYPE_IPV4 = 228
LINKTYPE_LINUX_SLL = 113

MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1000),  # little endian, microseconds
    b"\xa1\xb2\xc3\xd4": (">", 1000),
    b"\x4d\x3c\xb2\xa1": ("<", 1),  # little endian, nanoseconds
    b"\xa1\xb2\x3c\x4d": (">", 1),
}


class PcapError(Exception):
    pass


class Reader:
    """Iterates (ts_ns, caplen, origlen, data) over a classic pcap file."""

    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            self.raw = f.read()
        if len(self.raw) < 24:
            raise PcapError(f"{path}: too short for a pcap header")
        magic = self.raw[:4]
        if magic not in MAGICS:
            raise PcapError(f"{path}: not a classic pcap (magic {magic.hex()})")
        self.endian, self.ts_mult = MAGICS[magic]
        self.header = self.raw[:24]
        (_, self.vmajor, self.vminor, _, _, self.snaplen, self.linktype) = struct.unpack(
            self.endian + "IHHiIII", self.header
        )
        self.linktype &= 0x0FFFFFFF

    def __iter__(self):
        raw, off, e = self.raw, 24, self.endian
        rec = struct.Struct(e + "IIII")
        while off + 16 <= len(raw):
            sec, frac, caplen, origlen = rec.unpack_from(raw, off)
            off += 16
            if off + caplen > len(raw):
                break  # truncated last record (capture killed mid-write)
            yield sec * 1_000_000_000 + frac * self.ts_mult, caplen, origlen, raw[off : off + caplen]
            off += caplen


class Writer:
    """Writes records in the same header format as a given Reader."""

    def __init__(self, path, like):
        self.f = open(path, "wb")
        self.endian = like.endian
        self.ts_mult = like.ts_mult
        self.f.write(like.header)
        self.rec = struct.Struct(self.endian + "IIII")

    def write(self, ts_ns, origlen, data):
        sec, rem = divmod(ts_ns, 1_000_000_000)
        self.f.write(self.rec.pack(sec, rem // self.ts_mult, len(data), origlen))
        self.f.write(data)

    def close(self):
        self.f.close()


def l3_offset(linktype, data):
    """Offset of the network-layer header and its ethertype (0x0800 IPv4, 0x0806 ARP, ...)."""
    if linktype == LINKTYPE_ETHERNET:
        off, et = 14, int.from_bytes(data[12:14], "big") if len(data) >= 14 else -1
        while et in (0x8100, 0x88A8) and len(data) >= off + 4:  # VLAN tags
            et = int.from_bytes(data[off + 2 : off + 4], "big")
            off += 4
        return off, et
    if linktype == LINKTYPE_LINUX_SLL:
        return 16, int.from_bytes(data[14:16], "big") if len(data) >= 16 else -1
    if linktype in (LINKTYPE_RAW, LINKTYPE_RAW_12, LINKTYPE_IPV4):
        if data and data[0] >> 4 == 4:
            return 0, 0x0800
        return 0, -1
    return None, -1


def ip4(b):
    return ".".join(str(x) for x in b)


def tcp_segments(path):
    """Yields dicts for every IPv4/TCP segment with a complete TCP header in the capture:
    ts_ns, src, sport, dst, dport, flags, seq, ack, payload_len (from IP total length, so
    correct even when the snaplen cut the payload)."""
    r = Reader(path)
    for ts, caplen, origlen, data in r:
        off, et = l3_offset(r.linktype, data)
        if off is None or et != 0x0800 or len(data) < off + 20:
            continue
        vihl = data[off]
        ihl = (vihl & 15) * 4
        if vihl >> 4 != 4 or data[off + 9] != 6:
            continue
        frag = int.from_bytes(data[off + 6 : off + 8], "big")
        if frag & 0x1FFF:
            continue  # non-first fragment
        t = off + ihl
        if len(data) < t + 20:
            continue
        total = int.from_bytes(data[off + 2 : off + 4], "big")
        doff = (data[t + 12] >> 4) * 4
        yield {
            "ts_ns": ts,
            "src": ip4(data[off + 12 : off + 16]),
            "dst": ip4(data[off + 16 : off + 20]),
            "sport": int.from_bytes(data[t : t + 2], "big"),
            "dport": int.from_bytes(data[t + 2 : t + 4], "big"),
            "seq": int.from_bytes(data[t + 4 : t + 8], "big"),
            "ack": int.from_bytes(data[t + 8 : t + 12], "big"),
            "flags": data[t + 13],
            "payload_len": max(0, total - ihl - doff),
        }


FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def tcp_connections(path):
    """Groups a capture's TCP segments into connections keyed by the originator's 5-tuple.
    The originator is the sender of the first SYN without ACK; connections whose start was
    not captured are keyed by the first segment's direction and flagged syn_seen=False.
    Returns a list of dicts sorted by first packet time."""
    conns = {}
    for s in tcp_segments(path):
        fwd = (s["src"], s["sport"], s["dst"], s["dport"])
        rev = (s["dst"], s["dport"], s["src"], s["sport"])
        if fwd in conns:
            c, d = conns[fwd], "orig"
        elif rev in conns:
            c, d = conns[rev], "resp"
        else:
            c = conns[fwd] = {
                "orig_h": s["src"], "orig_p": s["sport"], "resp_h": s["dst"], "resp_p": s["dport"],
                "proto": "tcp", "syn_seen": bool(s["flags"] & SYN and not s["flags"] & ACK),
                "start_ns": s["ts_ns"], "end_ns": s["ts_ns"],
                "orig_pkts": 0, "resp_pkts": 0, "orig_bytes": 0, "resp_bytes": 0,
                "fin": False, "rst": False,
            }
            d = "orig"
        c["end_ns"] = max(c["end_ns"], s["ts_ns"])
        c[d + "_pkts"] += 1
        c[d + "_bytes"] += s["payload_len"]
        if s["flags"] & FIN:
            c["fin"] = True
        if s["flags"] & RST:
            c["rst"] = True
    return sorted(conns.values(), key=lambda c: c["start_ns"])
