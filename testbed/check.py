#!/usr/bin/env python3
"""Checks a testbed run's captures against its labels with tcpdump itself (not our parser).

    testbed/check.py DIR        # DIR holds labels.json and <vantage>.pcap (private/ or scenario/)

For every vantage: packets and TCP connections (SYNs without ACK) that `tcpdump -r` reads.
For every labelled chain hop: the hop's SYN must be in the captures of both its endpoints
(the vantages at each end of the TCP connection), with the labelled 5-tuple. Exit 1 if not.
"""

import json
import os
import subprocess
import sys


def tcpdump(pcap, flt=""):
    r = subprocess.run(["tcpdump", "-nn", "-r", pcap] + ([flt] if flt else []), capture_output=True, text=True,
                       timeout=60)
    if r.returncode != 0:
        raise SystemExit(f"tcpdump -r {pcap}: {r.stderr.strip()}")
    return [line for line in r.stdout.splitlines() if line.strip()]


def main():
    d = sys.argv[1]
    lab = json.load(open(os.path.join(d, "labels.json")))
    conns = {c["id"]: c for c in lab["connections"]}
    print(f"check ({lab['address_space']} addresses, {d}):")
    print(f"  {'vantage':10s} {'ip':16s} {'bytes':>8s} {'packets':>8s} {'tcp SYNs':>9s}")
    for v, info in lab["vantages"].items():
        pcap = os.path.join(d, info["pcap"])
        pk = tcpdump(pcap)
        syn = tcpdump(pcap, "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn")
        print(f"  {v:10s} {info['ip']:16s} {os.path.getsize(pcap):8d} {len(pk):8d} {len(syn):9d}")
    ok = True
    by_ip = {h["ip"]: n for n, h in lab["hosts"].items()}
    for ch in lab["chains"]:
        print(f"  {ch['id']}: {' -> '.join(ch['path'])} ({' -> '.join(ch['path_ips'])})")
        for cid in ch["hops"]:
            c = conns[cid]
            flt = (f"tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn and src host {c['orig_h']} and src port "
                   f"{c['orig_p']} and dst host {c['resp_h']} and dst port {c['resp_p']}")
            seen = []
            for v in (by_ip[c["orig_h"]], by_ip[c["resp_h"]]):
                n = len(tcpdump(os.path.join(d, lab["vantages"][v]["pcap"]), flt))
                seen.append(f"{v}:{'SYN' if n else 'MISSING'}")
                ok &= n > 0
            print(f"    hop {c['hop']} {c['orig_h']}:{c['orig_p']} > {c['resp_h']}:{c['resp_p']} "
                  f"at {c['start']}: {' '.join(seen)}")
    neg = {}
    for c in lab["connections"]:
        neg[c["label"]] = neg.get(c["label"], 0) + 1
    print(f"  connections by label: {json.dumps(neg, sort_keys=True)}")
    print("  chain hops at both endpoints' vantages:", "OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
