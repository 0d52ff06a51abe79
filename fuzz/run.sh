#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 30) each, seeded from ../shared/corpus.
# Needs cargo-fuzz; on the stable toolchain RUSTC_BOOTSTRAP=1 enables the sanitizer flags.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-30}
# A fixed seed makes a CI run reproducible (the same input sequence from the same seed
# corpus); FUZZ_SEED=0 lets libFuzzer pick one, for long exploratory runs.
fuzz_seed=${FUZZ_SEED:-1}
export RUSTC_BOOTSTRAP=1
corpus=../../shared/corpus
seed() { # target, files...
  local dir="corpus/$1"; shift
  mkdir -p "$dir"
  for f in "$@"; do [ -f "$f" ] && cp "$f" "$dir/$(sha256sum "$f" | cut -c1-16)"; done
  true
}
seed zeek_tsv $corpus/zeek-json/*/*.tsv.log $corpus/zeek-pcap-pairs/core.ppp/conn.log
seed zeek_json $corpus/zeek-json/*/ssh.json $corpus/zeek-json/*/rfb.json
seed eve $corpus/suricata-eve/surevego/eve_broken.json
seed netflow $corpus/netflow/logstash-codec-netflow/*.dat
seed pcap $corpus/zeek-pcap-pairs/*/*.pcap
seed pcapng $corpus/zeek-pcap-pairs/*/*.pcapng
seed netflow_pcap ../crates/ingest/tests/fixtures/export-v*.pcap
seed mrt $corpus/mrt/mrtparse-samples/*.mrt
# A real (small) snapshot built from the enrich fixtures seeds the snapshot loader.
snapdir=$(mktemp -d)
(cd .. && cargo run --quiet -p relaytrace -- data update --data-dir "$snapdir" --no-defaults \
  --asn-csv crates/enrich/tests/fixtures/asn.csv \
  --country-csv crates/enrich/tests/fixtures/country.csv >/dev/null)
seed snapshot "$snapdir"/snapshots/*.rtsnap
rm -rf "$snapdir"
seed detect $corpus/netflow/logstash-codec-netflow/ipfix.dat $corpus/zeek-pcap-pairs/core.ppp/*
cargo fuzz build
failed=0
for t in zeek_tsv zeek_json eve netflow netflow_pcap pcap pcapng detect mrt snapshot; do
  log=$(mktemp)
  max_len=65536
  [ "$t" = snapshot ] && max_len=1048576 # snapshots start at about 0.5 MiB
  if cargo fuzz run "$t" "corpus/$t" -- -seed="$fuzz_seed" -max_total_time="$secs" -max_len="$max_len" -rss_limit_mb=2048 >"$log" 2>&1; then
    echo "fuzz $t: ${secs}s, $(grep -Eo 'Done [0-9]+ runs' "$log" | tail -n 1), no crash"
  else
    echo "fuzz $t: FAILED (input saved under fuzz/artifacts/$t)"
    grep -v -E '^ +(#?[0-9]+[: ]|at )' "$log" | tail -n 40
    failed=1
  fi
  rm -f "$log"
done
exit "$failed"
