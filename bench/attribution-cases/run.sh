#!/usr/bin/env bash
# bench/attribution-cases/run.sh: held-out attribution cases beyond ATT&CK (issue 5),
# reported separately from bench/attribution. Each CASE.toml is an evidence file built
# from cited public reporting, with two header lines: `# truth: <hypothesis id>` (who the
# public record now holds responsible) and `# as-of: <date> ...` (the dates to assess it
# at, so that early, wrong leads show). For each date the case is assessed with
# `relaytrace assess --as-of` on an empty case (no network telemetry) and one line is
# printed: the leading hypothesis, its probability and ICD 203 words, the confidence, the
# verdict, and whether a claim was made and was right.
#
#   bash bench/attribution-cases/run.sh [CASE.toml ...]
#   (default: every case here, and the demo's Sony evidence, demo/evidence.toml)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin=${RELAYTRACE:-$root/target/debug/relaytrace}
[ -x "$bin" ] || (cd "$root" && cargo build --quiet -p relaytrace)
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=("$here"/*.toml "$root/demo/evidence.toml")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '%-20s %-11s %-6s %-6s %-26s %-10s %-22s %s\n' case as-of truth leader probability confidence verdict claim
for f in "${cases[@]}"; do
  name=$(basename "$f" .toml)
  [ "$name" = evidence ] && name="sony-2014 (demo)"
  truth=$(sed -n 's/^# truth: *//p' "$f")
  dates=$(sed -n 's/^# as-of: *//p' "$f")
  [ -n "$truth" ] && [ -n "$dates" ] || { echo "$f: needs '# truth:' and '# as-of:' lines" >&2; exit 1; }
  for d in $dates; do
    case_dir="$work/$name-$d"
    "$bin" case init "$case_dir" >/dev/null
    cp "$f" "$case_dir/evidence.toml"
    out="$work/$name-$d.json"
    "$bin" assess --case "$case_dir" --as-of "$d" --format json >"$out" 2>"$out.err" \
      || { echo "$f (as of $d): relaytrace assess failed:" >&2; cat "$out.err" >&2; exit 1; }
    python3 -c '
import json, sys
name, d, truth = sys.argv[1:4]
a = json.load(sys.stdin)
lead = a["leading"]
h = next(x for x in a["hypotheses"] if x["id"] == lead)
claimed = a["verdict"] == "assessed"
claim = ("right" if lead == truth else "WRONG") if claimed else "none (abstained)"
prob = "%d %% %s" % (round(100 * h["probability"]), h["words"])
print("%-20s %-11s %-6s %-6s %-26s %-10s %-22s %s" % (name, d, truth, lead, prob, a["confidence"], a["verdict"], claim))
' "$name" "$d" "$truth" <"$out"
  done
done
