#!/usr/bin/env bash
# Installs what the testbed needs (Debian/Ubuntu, as root), idempotently:
# iproute2 (ip netns, veth, bridge), openssh-server + openssh-client (sshd in the
# namespaces, ssh -J from the attacker), tcpdump (the vantages), softflowd (flow
# summaries, optional), ethtool (checksum/segmentation offload off on the veths so
# captures look like a real wire), python3 (scenario driver, pcap rewriter; stdlib only).
set -euo pipefail
pkgs=(iproute2 openssh-server openssh-client tcpdump ethtool softflowd python3)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# python3 may come from elsewhere (pyenv); do not insist on the Debian one then.
if command -v python3 >/dev/null 2>&1; then
  missing=("${missing[@]/python3}")
fi
want=()
for p in "${missing[@]}"; do [ -n "$p" ] && want+=("$p"); done
if [ ${#want[@]} -eq 0 ]; then
  echo "install-deps: all present (${pkgs[*]})"
  exit 0
fi
echo "install-deps: installing ${want[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y --no-install-recommends "${want[@]}"; then
  apt-get update
  apt-get install -y --no-install-recommends "${want[@]}"
fi
# The package may try to start sshd on the host; the testbed does not want that one.
# We only stop it if it was not running before (it was not installed before).
if printf '%s\n' "${want[@]}" | grep -qx openssh-server; then
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet ssh 2>/dev/null; then
    echo "install-deps: note: the host's ssh service is running (package default); the testbed does not use it"
  fi
fi
# sshd refuses to start without its privilege-separation directory.
mkdir -p /run/sshd
echo "install-deps: done"
