#!/usr/bin/env bash
# bench/trace/make-runs.sh [RUNS_DIR]
#
# The testbed runs bench/trace measures on (root; about 80 s per run): relays 1, 2 and 3,
# each with the last relay plain or evasive (per-segment delay up to 300 or 1000 ms, chaff
# 0 or 50 % of real segments), three attack sessions per run with every hard negative.
# Each run is ingested into RUNS_DIR/<name>/case with the release binary. Runs already
# there (labels and case present) are kept: delete a directory to redo it.
# DURATION (default 60 s of traffic) and SESSIONS (default 3 attack sessions, one after
# another) set the length of each run and of its sessions; EVASIVE_RELAY=K makes relay K
# the evasive one in runs with more than K relays (default: the last relay); KEEP_IN_SLOTS=1
# ends every session inside its slot (testbed/README.md, "several sessions").
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
runs=${1:-/tmp/relaytrace-bench/trace-runs}
mkdir -p "$runs"
(cd "$root" && cargo build --release --quiet -p relaytrace)
export RELAYTRACE="$root/target/release/relaytrace"
seed=${SEED_BASE:-100}
for relays in 1 2 3; do
  for cond in "0 0" "300 0" "300 0.5" "1000 0.5"; do
    set -- $cond
    seed=$((seed + 1))
    name="r${relays}-d${1}-c${2}"
    dir="$runs/$name"
    if [ -f "$dir/scenario/labels.json" ] && [ -d "$dir/case" ]; then
      echo "make-runs: $name present"; continue
    fi
    echo "make-runs: $name (relays $relays, delay <= $1 ms, chaff $2)"
    extra=()
    [ -n "${KEEP_IN_SLOTS:-}" ] && extra+=(--keep-in-slots)
    [ "$1" != 0 ] && extra+=(--evasive-delay-ms "$1")
    [ "$2" != 0 ] && extra+=(--evasive-chaff "$2")
    if [ "$1" != 0 ] && [ -n "${EVASIVE_RELAY:-}" ] && [ "$relays" -gt "$EVASIVE_RELAY" ]; then
      extra+=(--evasive-relay "$EVASIVE_RELAY")
    fi
    bash "$root/testbed/run-small.sh" "$dir" --relays "$relays" --duration "${DURATION:-60}" --sessions "${SESSIONS:-3}" \
      --seed "$seed" "${extra[@]}" >"$runs/$name.log" 2>&1 || { echo "make-runs: $name failed (see $runs/$name.log)"; continue; }
    bash "$root/testbed/ingest.sh" "$dir" "$dir/case" >"$runs/$name.ingest.log" 2>&1 \
      || echo "make-runs: $name ingest check reported problems (see $runs/$name.ingest.log)"
  done
done
