#!/usr/bin/env bash
# testbed/netns.sh up|down|status
#
# up:   one network namespace per host in hosts.tsv (rt-<name>) plus a router namespace
#       rt-core holding one bridge per /24 (br<net>, gateway 10.200.<net>.1) with IPv4
#       forwarding on. Each host is joined to its subnet's bridge by a veth pair created
#       directly between the two namespaces (nothing is created in the root namespace).
#       Addresses are only in 10.200.0.0/16; hosts get a route to 10.200.0.0/16 via their
#       gateway and no default route; rt-core has only its connected /24s; no NAT, no DNS,
#       IPv6 disabled in every namespace. Nothing can leave the namespaces.
# down: kills every process still running inside those namespaces, then deletes exactly
#       the namespaces named in hosts.tsv plus rt-core (and nothing else).
# status: lists the testbed namespaces and their addresses.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
hosts="$here/hosts.tsv"
prefix=rt-
core=${prefix}core

# name ip role net  (comment lines dropped)
host_lines() { grep -v '^[[:space:]]*#' "$hosts" | awk 'NF >= 4 { print $1, $2, $3, $4 }'; }
all_ns() { echo "$core"; host_lines | while read -r n _; do echo "$prefix$n"; done; }
ns_exists() { ip netns list | awk '{print $1}' | grep -qx "$1"; }

nosix() { # disable IPv6 in namespace $1 (all, default, and any listed devices)
  local ns=$1; shift
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  for d in "$@"; do ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$d.disable_ipv6=1"; done
}

offload_off() { # software checksums and MTU-sized segments, as on a real wire
  local ns=$1 dev=$2
  if command -v ethtool >/dev/null 2>&1; then
    ip netns exec "$ns" ethtool -K "$dev" tx off rx off tso off gso off gro off >/dev/null 2>&1 ||
      echo "netns: warning: ethtool -K $dev failed in $ns (captures keep offload artefacts)" >&2
  else
    warned_offload=1
  fi
}

down() {
  local ns pids
  for ns in $(all_ns); do
    ns_exists "$ns" || continue
    pids=$(ip netns pids "$ns" || true)
    if [ -n "$pids" ]; then
      kill -TERM $pids 2>/dev/null || true
      for _ in 1 2 3 4 5 6 7 8 9 10; do
        pids=$(ip netns pids "$ns" || true); [ -z "$pids" ] && break; sleep 0.2
      done
      [ -n "$pids" ] && kill -KILL $pids 2>/dev/null || true
    fi
    ip netns del "$ns"
    echo "netns: deleted $ns"
  done
}

up() {
  down >/dev/null
  ip netns add "$core"
  nosix "$core"
  ip netns exec "$core" sysctl -qw net.ipv4.ip_forward=1
  ip -n "$core" link set lo up
  local nets n ip role net id
  # One bridge per subnet number (third octet).
  for id in $(host_lines | awk '{ split($2, o, "."); print o[3] }' | sort -un); do
    ip -n "$core" link add "br$id" type bridge
    nosix "$core" "br$id"
    ip -n "$core" addr add "10.200.$id.1/24" dev "br$id"
    ip -n "$core" link set "br$id" up
  done
  while read -r n ip role net; do
    case "$ip" in 10.200.*) ;; *) echo "netns: $n has $ip outside 10.200.0.0/16" >&2; exit 1;; esac
    id=$(echo "$ip" | cut -d. -f3)
    ip netns add "$prefix$n"
    nosix "$prefix$n"
    ip -n "$prefix$n" link set lo up
    ip -n "$core" link add "v-$n" type veth peer name eth0 netns "$prefix$n"
    nosix "$core" "v-$n"; nosix "$prefix$n" eth0
    offload_off "$core" "v-$n"; offload_off "$prefix$n" eth0
    ip -n "$core" link set "v-$n" master "br$id" up
    ip -n "$prefix$n" addr add "$ip/24" dev eth0
    ip -n "$prefix$n" link set eth0 up
    ip -n "$prefix$n" route add 10.200.0.0/16 via "10.200.$id.1"
    echo "netns: $prefix$n $ip ($role, $net)"
  done < <(host_lines)
  [ -n "${warned_offload:-}" ] && echo "netns: warning: no ethtool; veth checksum/TSO offload stays on (bad checksums, >MTU segments in captures)" >&2
  echo "netns: up ($core routes 10.200.0.0/16; no default route anywhere)"
}

status() {
  local ns
  for ns in $(all_ns); do
    if ns_exists "$ns"; then
      printf '%-14s %s\n' "$ns" "$(ip -n "$ns" -4 -br addr | awk '$1 != "lo" {printf "%s=%s ", $1, $3}')"
    else
      printf '%-14s (absent)\n' "$ns"
    fi
  done
}

[ "$(id -u)" = 0 ] || { echo "netns.sh: needs root" >&2; exit 1; }
case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
