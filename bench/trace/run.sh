#!/usr/bin/env bash
# bench/trace/run.sh [RUNS_DIR]
#
# Trace's benchmark (issue "Trace", "Measured, not claimed"): makes the testbed runs if
# they are not there yet (bench/trace/make-runs.sh: relays 1-3 x plain / evasive last
# relay with delay <= 300 or 1000 ms and chaff 0 or 50 %; root, about 80 s per run), then
# measures packet mode, flow mode and the Zhang–Paxson baseline on all of them in one
# process (bench/src/bin/trace-bench.rs): detection at false-positive rates 1e-3 and 1e-4
# per candidate pair (hard negatives of the runs plus cross-run pairs aligned in time),
# calibration of the pair probabilities, and throughput at 1x, 4x, 16x input.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
runs=${1:-/tmp/relaytrace-bench/trace-runs}
bash "$here/make-runs.sh" "$runs"
(cd "$root" && cargo build --release --quiet -p relaytrace-bench --bin trace-bench)
dirs=()
for d in "$runs"/r*; do
  [ -f "$d/scenario/labels.json" ] && [ -d "$d/case" ] && dirs+=("$d")
done
"$root/target/release/trace-bench" "${dirs[@]}"
