#!/usr/bin/env bash
# testbed/ingest.sh OUTDIR [CASEDIR]
# Ingests a testbed run's rewritten captures (OUTDIR/scenario/<vantage>.pcap) into a
# relaytrace case, one vantage per capture, lists the connections (conns --format jsonl
# -> OUTDIR/conns.jsonl) and compares them with OUTDIR/scenario/labels.json: TCP
# connections per vantage, every chain hop present at both its endpoints' vantages with the
# labelled 5-tuple and start time, and packet counts against the testbed's own parser.
# Uses $RELAYTRACE, else target/release/relaytrace, else target/debug/relaytrace (it does
# not build: run `cargo build -p relaytrace` first). Needs no root.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
out=${1:?usage: ingest.sh OUTDIR [CASEDIR]}
case_dir=${2:-$out/case}
bin=${RELAYTRACE:-}
if [ -z "$bin" ]; then
  for b in "$root/target/release/relaytrace" "$root/target/debug/relaytrace"; do
    [ -x "$b" ] && { bin=$b; break; }
  done
fi
[ -n "$bin" ] || { echo "ingest.sh: no relaytrace binary; cargo build -p relaytrace" >&2; exit 1; }
rm -rf "$case_dir"
"$bin" case init "$case_dir" >/dev/null
for p in "$out"/scenario/*.pcap; do
  rc=0
  "$bin" ingest --case "$case_dir" --vantage "$(basename "$p" .pcap)" "$p" || rc=$?
  # Status 1 is "nothing read": a host of the testbed that saw no traffic in this run
  # (relay3 of a one-relay chain, say) leaves an empty capture. The label check below
  # still finds any connection missing; any other status stops here.
  [ "$rc" -le 1 ] || exit "$rc"
done
"$bin" conns --case "$case_dir" --format jsonl >"$out/conns.jsonl"
"$bin" case verify "$case_dir" >/dev/null && echo "ingest: case verify OK"
python3 - "$out/scenario/labels.json" "$out/conns.jsonl" <<'PY'
import json, sys
lab = json.load(open(sys.argv[1]))
rows = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
key = lambda d: (d["orig_h"], d["orig_p"], d["resp_h"], d["resp_p"])
got = {}
for r in rows:
    if r.get("proto") == "tcp":
        got.setdefault(r["vantage"], {})[key(r)] = r
problems = []
print(f"ingest: {'vantage':10s} {'labels':>6s} {'relaytrace':>10s}")
for v in lab["vantages"]:
    want = [c for c in lab["connections"] if v in c["seen_at"]]
    have = got.get(v, {})
    print(f"ingest: {v:10s} {len(want):6d} {len(have):10d}")
    for c in want:
        r = have.get(key(c))
        if r is None:
            problems.append(f"{v}: {c['id']} {key(c)} not listed")
            continue
        s = c["seen_at"][v]
        if abs(r["start_ns"] - s["start_ns"]) > 1_000_000:
            problems.append(f"{v}: {c['id']} start {r['start_ns']} vs labels {s['start_ns']}")
        if (r["orig_pkts"], r["resp_pkts"]) != (s["orig_pkts"], s["resp_pkts"]):
            problems.append(f"{v}: {c['id']} pkts {r['orig_pkts']}/{r['resp_pkts']} vs labels {s['orig_pkts']}/{s['resp_pkts']}")
        if (r["orig_bytes"], r["resp_bytes"]) != (s["orig_bytes"], s["resp_bytes"]):
            problems.append(f"{v}: {c['id']} bytes {r['orig_bytes']}/{r['resp_bytes']} vs payload sums {s['orig_bytes']}/{s['resp_bytes']} (info)")
    extra = set(have) - {key(c) for c in want}
    for k in extra:
        problems.append(f"{v}: relaytrace lists {k}, not in labels")
conns = {c["id"]: c for c in lab["connections"]}
for ch in lab["chains"]:
    for cid in ch["hops"]:
        c = conns[cid]
        at = [v for v in c["vantages"] if key(c) in got.get(v, {})]
        r = got[at[0]][key(c)] if at else {}
        print(f"ingest: {ch['id']} hop {c['hop']}: {c['orig_h']}:{c['orig_p']} -> {c['resp_h']}:{c['resp_p']} "
              f"listed at {','.join(at) or 'NOWHERE'}; state {r.get('conn_state')} history {r.get('history')} "
              f"duration {r.get('duration')} service {r.get('service')}")
for p in problems:
    print("ingest: note:", p)
sys.exit(1 if any("not listed" in p or "NOWHERE" in p for p in problems) else 0)
PY
