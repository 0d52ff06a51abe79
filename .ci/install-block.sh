#!/bin/sh
# Tools the block tests enforce their renderings with (crates/block/tests):
# nftables, iptables + ipset, GoBGP, BIRD 2, ExaBGP, ping and iproute2 for the
# network-namespace tests. Idempotent: apt-get skips what is installed.
set -eu
export DEBIAN_FRONTEND=noninteractive
pkgs="nftables iptables ipset gobgpd bird2 exabgp iputils-ping iproute2"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
# bird2's package starts a bird daemon on some systems; the tests only run `bird -p`.
for t in nft iptables-restore ip6tables-restore ipset gobgpd gobgp bird exabgp ping ip; do
    command -v "$t" >/dev/null || { echo "install-block: $t missing after install" >&2; exit 1; }
done
