#!/usr/bin/env bash
# testbed/make-trace-fixture.sh OUTDIR [FIXDIR]
# Turns one testbed run (testbed/run-small.sh OUTDIR ...) into the small committed fixture
# of crates/trace/tests/testbed_fixture.rs (default FIXDIR crates/trace/tests/fixtures/testbed-small):
#   conns.jsonl          relaytrace's connections of every vantage, from the rewritten pcaps
#                        (testbed/ingest.sh), only the fields trace reads, one JSON object a line
#   labels.json          the ground truth trace is judged on: chains (host path, addresses,
#                        connection ids per hop), true links, and every TCP connection's label
#                        and 5-tuple (scenario addresses)
# Never the pcaps themselves. Needs a built relaytrace (cargo build -p relaytrace); no root.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
out=${1:?usage: make-trace-fixture.sh OUTDIR [FIXDIR]}
fix=${2:-$root/crates/trace/tests/fixtures/testbed-small}
mkdir -p "$fix"
"$here/ingest.sh" "$out" "$out/case" >/dev/null
# Not yet: the NetFlow flows of OUTDIR/flows. softflowd exports one flow per direction and
# trace does not pair them into connections yet.
python3 - "$out" "$fix" <<'PY'
import json, sys
out, fix = sys.argv[1], sys.argv[2]
keep = ["id", "vantage", "proto", "orig_h", "orig_p", "resp_h", "resp_p", "start_ns", "end_ns",
        "orig_bytes", "resp_bytes", "orig_ip_bytes", "resp_ip_bytes", "orig_pkts", "resp_pkts"]
def compact(src, dst):
    rows = [json.loads(l) for l in open(src) if l.strip()]
    rows.sort(key=lambda r: (r["vantage"], r["start_ns"], r["id"]))
    with open(dst, "w") as f:
        for r in rows:
            f.write(json.dumps({k: r.get(k) for k in keep}, sort_keys=True, separators=(",", ":")) + "\n")
    return len(rows)
n = compact(f"{out}/conns.jsonl", f"{fix}/conns.jsonl")
lab = json.load(open(f"{out}/scenario/labels.json"))
small = {
    "format": "relaytrace-trace-fixture-labels/1",
    "from": lab["format"],
    "scenario": lab["scenario"],
    "hosts": lab["hosts"],
    "chains": [{k: c[k] for k in ("id", "path", "path_ips", "hops")} for c in lab["chains"]],
    "links": lab["links"],
    "connections": [{k: c.get(k) for k in ("id", "label", "group", "hop", "orig_h", "orig_p", "resp_h", "resp_p", "start_ns", "end_ns")}
                    for c in lab["connections"]],
}
json.dump(small, open(f"{fix}/labels.json", "w"), indent=1, sort_keys=True)
open(f"{fix}/labels.json", "a").write("\n")
print(f"fixture: {n} conns, {len(small['connections'])} labelled connections -> {fix}")
PY
