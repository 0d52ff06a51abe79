#!/usr/bin/env bash
# testbed/ci.sh [OUTDIR]
#
# What CI asserts on real traffic (issue "Trace"): runs the testbed at a small size — a
# plain 2-relay chain; the same chain with an evasive last relay (each segment delayed by
# up to 300 ms, chaff at 50 % of real segments); a 3-relay chain whose *middle* relay is
# evasive (up to 1000 ms, 50 % chaff), so the relay after it receives a delayed, chaffed
# inbound and forwards it plainly — ingests every run's captures into a case, traces from the victim with packet mode (the default) and with the Zhang–Paxson
# baseline, and checks against the labels (testbed/evaluate.py): packet mode must find every
# labelled attack link at false-match probability <= 0.01 and report no false link on the
# hard negatives, in every run. A third run has five attack sessions one after another;
# there flow mode (records only, from the repeated sessions) is held to the same standard.
# Flow mode's figures on the single-session runs and the baseline's are printed for
# comparison, not asserted. Needs root (network namespaces) and testbed/install-deps.sh's
# packages; uses $RELAYTRACE, else target/debug/relaytrace (build it first). About 8 minutes.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
out=${1:-/tmp/relaytrace-testbed/ci}
bin=${RELAYTRACE:-$root/target/debug/relaytrace}
[ -x "$bin" ] || { echo "testbed/ci.sh: no relaytrace binary at $bin; cargo build -p relaytrace" >&2; exit 1; }
export RELAYTRACE=$bin
status=0
run() {
  local name=$1; shift
  local dir="$out/$name"
  echo "== testbed $name: run-small.sh $*"
  bash "$here/run-small.sh" "$dir" "$@" >"$out/$name.log" 2>&1 || {
    echo "testbed/ci.sh: run-small.sh failed; last lines of $out/$name.log:" >&2
    tail -30 "$out/$name.log" >&2
    return 1
  }
  grep -E "problem\(s\)|chain hops at both" "$out/$name.log" || true
  bash "$here/ingest.sh" "$dir" "$dir/case" | tail -2
  local victim
  victim=$(python3 -c 'import json,sys; l=json.load(open(sys.argv[1])); print(l["chains"][0]["path_ips"][-1])' \
    "$dir/scenario/labels.json")
  for method in packet flow zp; do
    "$bin" trace --case "$dir/case" --victim "$victim" --method "$method" \
      --candidates "$dir/candidates-$method.jsonl" >"$dir/trace-$method.txt"
    echo "-- $name, method $method"
    if [[ " $require " == *" $method "* ]]; then
      python3 "$here/evaluate.py" "$dir/scenario/labels.json" "$dir/candidates-$method.jsonl" --require-all || status=1
      grep -E "^chain|^  (victim|relay|origin) " "$dir/trace-$method.txt" || true
    else
      python3 "$here/evaluate.py" "$dir/scenario/labels.json" "$dir/candidates-$method.jsonl" || true
    fi
  done
}
mkdir -p "$out"
require="packet"
run plain --duration 50 --sessions 1 --seed 11 || status=1
run evasive --duration 50 --sessions 1 --seed 12 --evasive-delay-ms 300 --evasive-chaff 0.5 || status=1
run evasive-middle --relays 3 --evasive-relay 2 --duration 50 --sessions 1 --seed 15 \
  --evasive-delay-ms 1000 --evasive-chaff 0.5 || status=1
# An operator who comes back: five sessions through the chain. Flow mode (records only)
# must find every attack link from the repeated sessions alone, packet mode as always.
require="packet flow"
run sessions --duration 100 --sessions 5 --seed 13 || status=1
if [ "$status" = 0 ]; then echo "testbed/ci.sh: OK"; else echo "testbed/ci.sh: FAILED" >&2; fi
exit "$status"
