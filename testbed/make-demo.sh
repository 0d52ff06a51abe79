#!/usr/bin/env bash
# testbed/make-demo.sh
#
# Makes the bundled demo case's captures (demo/testbed-*.pcap.gz, demo/testbed-labels.json)
# from one testbed run: attacker (KP prefix, AS131279) -> relay1 (CN ISP, AS4837) -> relay2
# (BO, AS6568) -> victim (US, AS7018), two attack sessions typed with human-like timing, with
# every hard negative running at the same time (testbed/README.md). The captures are the
# testbed's own (snaplen 128, tcpdump on each host), rewritten to scenario addresses by
# testbed/address-map.json. Only three vantages are kept — the victim's network, the host
# relay2 and relay1's network — since that is what the demo's story has: the victim's side
# and relay2 first, relay1's operator's answer later — each also as softflowd's NetFlow v9
# export of the same capture (testbed-<vantage>.netflow-v9.pcap). Needs root; about 80 s.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
out=${1:-/tmp/relaytrace-testbed/demo}
bash "$here/run-small.sh" "$out" --duration 56 --sessions 2 --seed 2014 --no-web
for v in victim relay2 relay1; do
  gzip -9n <"$out/scenario/$v.pcap" >"$root/demo/testbed-$v.pcap.gz"
  # The same traffic as softflowd's NetFlow v9 export (one record per direction).
  cp "$out/flows/$v.netflow-v9.pcap" "$root/demo/testbed-$v.netflow-v9.pcap"
done
cp "$out/scenario/labels.json" "$root/demo/testbed-labels.json"
ls -la "$root"/demo/testbed-*
