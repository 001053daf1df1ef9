#!/usr/bin/env bash
# Installs the Debian packages a checkout needs, for one purpose:
#   scripts/setup.sh run    what the weft binary loads (the .deb's Depends/Recommends)
#   scripts/setup.sh demo   run + what `weft demo` calls
#   scripts/setup.sh test   demo + what the test suite and the benches call
#   scripts/setup.sh ci     test + what .ci/run's packaging checks call
#   scripts/setup.sh --list GROUP   prints the group's packages, one a line, and exits
# Idempotent: packages already installed are skipped, and when nothing is missing apt is
# not touched and root is not needed. This file is the one list of the packages; the
# README's "The two commands" explains each.
set -euo pipefail

# What the binary dlopens: libnl-3 and libnl-route-3 always, libnl-genl-3 for the
# wireguard backend, libnftables for --ip-masq.
PKGS_RUN="libnl-3-200 libnl-route-3-200 libnl-genl-3-200 libnftables1"
# The demo's lab: `ip netns` namespaces and veths, `sysctl` in them, `ping` between pods.
PKGS_DEMO="iproute2 procps iputils-ping"
# Tests: nft (ip-masq rules read back, fault injection), curl (API calls inside
# namespaces), unshare (private mounts), socat (TCP transfers between pods); CNI bridge +
# host-local (pods attached the way flannel's own CNI plugin does, on weft's
# subnet.env); wireguard-go (the wireguard backend's userspace device: this kind of
# kernel has no WireGuard module), wg and tcpdump (its independent reader and the
# capture proving no pod payload crosses in clear); podman + busybox-static (weft's CNI
# plugin under a real container runtime); the dataplane bench: iperf3, and socat as the
# userspace TUN baseline.
PKGS_TEST="nftables curl util-linux socat iperf3 containernetworking-plugins wireguard-go wireguard-tools tcpdump podman busybox-static"
# Packaging checks in CI: lintian, systemd-analyze, and an arm64 libc + qemu to run the
# arm64 binary.
PKGS_CI="lintian systemd qemu-user-static libc6-arm64-cross"

usage() {
  echo "usage: scripts/setup.sh [--list] run|demo|test|ci" >&2
  exit 2
}

list=false
if [ "${1:-}" = --list ]; then
  list=true
  shift
fi
[ $# -eq 1 ] || usage
case "$1" in
  run) want="$PKGS_RUN" ;;
  demo) want="$PKGS_RUN $PKGS_DEMO" ;;
  test) want="$PKGS_RUN $PKGS_DEMO $PKGS_TEST" ;;
  ci) want="$PKGS_RUN $PKGS_DEMO $PKGS_TEST $PKGS_CI" ;;
  *) usage ;;
esac
if $list; then
  printf '%s\n' $want
  exit 0
fi

missing=""
for p in $want; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = installed ] || missing="$missing $p"
done
missing="${missing# }"

if [ -z "$missing" ]; then
  echo "setup ($1): all $(echo $want | wc -w) packages present"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup ($1): apt-get not found; this script installs Debian packages only." >&2
  echo "  Install the equivalents of: $missing" >&2
  exit 1
fi
if [ "$(id -u)" != 0 ]; then
  echo "setup ($1): missing packages: $missing" >&2
  echo "  Installing them needs root: run this as root, or: sudo apt-get install --no-install-recommends $missing" >&2
  exit 1
fi

echo "setup ($1): installing $missing"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "setup ($1): apt-get failed (output above) while installing: $missing" >&2
  exit 1
fi
echo "setup ($1): installed"
