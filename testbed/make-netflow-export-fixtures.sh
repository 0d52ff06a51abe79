#!/usr/bin/env bash
# Makes the committed fixtures crates/ingest/tests/fixtures/export-source.pcap and
# export-v{5,9,10}.pcap: a small synthetic capture (bench/gen-inputs) replayed through
# softflowd (Debian), whose NetFlow v5 / v9 / IPFIX export datagrams to 127.0.0.1:2055
# are captured on loopback with tcpdump. Only loopback traffic; needs root,
# softflowd and tcpdump. Run from the repository root.
set -euo pipefail
out=crates/ingest/tests/fixtures
mkdir -p "$out"
cargo build --release --quiet -p relaytrace-bench
target/release/gen-inputs pcap 150000 "$out/export-source.pcap" >/dev/null
for v in 5 9 10; do
  tcpdump -i lo -w "$out/export-v$v.pcap" -U 'udp and dst port 2055' >/dev/null 2>&1 &
  tcp=$!
  sleep 1
  softflowd -r "$out/export-source.pcap" -n 127.0.0.1:2055 -v "$v" -d -m 100000 -c none -p /tmp/softflowd-fixture.pid >/dev/null
  sleep 1
  kill -INT "$tcp"; wait "$tcp" || true
done
ls -l "$out"/export-*.pcap
