#!/usr/bin/env bash
# The arm64 binary against Debian's arm64 libraries (root; run by .ci/run):
#   scripts/check-arm64.sh [dist/weft-linux-arm64]
# On an amd64 machine it runs under qemu-aarch64-static with a private sysroot: apt, with
# lists, cache and status file of its own (this machine's dpkg is not touched), fetches
# the arm64 libc6, libnl-3-200 and libnl-route-3-200. In a namespace of its own, `weft
# agent` (vxlan, no peers) must load libnl, create weft.1 with the VXLAN parameters, put
# its lease address on it, write subnet.env and stop on SIGTERM with exit 0. qemu-user
# translates only link, address and route netlink messages, so the agent's neighbour
# (ARP/FDB) dumps fail there and its reconcile retries: that part is not checked.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "check-arm64: FAIL: $*" >&2; exit 1; }
say() { echo "check-arm64: $*"; }

bin=$(realpath "${1:-dist/weft-linux-arm64}")
[ -f "$bin" ] || fail "$bin not found (bun run build.ts --target linux-arm64)"
[ "$(id -u)" = 0 ] || fail "needs root (a network namespace)"
[ "$(od -An -tu2 -j18 -N2 "$bin" | tr -d ' ')" = 183 ] || fail "$bin is not an aarch64 ELF executable"

work=$(mktemp -d)
ns=wpk-arm64-$$
pid=
cleanup() {
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

run=()
if [ "$(dpkg --print-architecture)" != arm64 ]; then
  if ! command -v qemu-aarch64-static >/dev/null; then
    say "SKIP: qemu-aarch64-static is not installed (scripts/setup.sh ci installs it)"
    exit 0
  fi
  apt_opts=(-o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o "Dir::State::status=$work/status"
    -o APT::Architecture=arm64 -o APT::Architectures::=arm64 -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs" "$work/sysroot"
  touch "$work/status"
  apt-get "${apt_opts[@]}" -qq update >"$work/apt.log" 2>&1 || { cat "$work/apt.log" >&2; fail "apt-get update (arm64 lists)"; }
  (cd "$work/debs" && apt-get "${apt_opts[@]}" -qq download libc6 libnl-3-200 libnl-route-3-200) >"$work/apt.log" 2>&1 ||
    { cat "$work/apt.log" >&2; fail "apt-get download of the arm64 libraries"; }
  for deb in "$work"/debs/*.deb; do dpkg-deb -x "$deb" "$work/sysroot"; done
  run=(qemu-aarch64-static -L "$work/sysroot")
  say "sysroot: $(cd "$work/debs" && ls | tr '\n' ' ')"
fi

out=$("${run[@]}" "$bin" version) || fail "weft version exited $?"
say "weft version: $(echo "$out" | tr '\n' ' ')"

ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link add eth0 type veth peer name peer0
ip -n "$ns" addr add 192.0.2.11/24 dev eth0
ip -n "$ns" link set eth0 up
ip -n "$ns" link set peer0 up
ip -n "$ns" route add default via 192.0.2.1 dev eth0
echo '{ "Network": "10.244.0.0/16", "Backend": { "Type": "vxlan" } }' >"$work/net-conf.json"
"${run[@]}" "$bin" keygen --out "$work/key"   # mode 0600: the agent refuses a key file others can read
ip netns exec "$ns" "${run[@]}" "$bin" agent --net-conf "$work/net-conf.json" --key-file "$work/key" \
  --state-dir "$work/state" --subnet-file "$work/subnet.env" --node-name arm64 >"$work/agent.log" 2>&1 &
pid=$!
for _ in $(seq 600); do
  [ -f "$work/subnet.env" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/agent.log" >&2; fail "the agent exited before writing subnet.env"; }
  sleep 0.1
done
[ -f "$work/subnet.env" ] || { cat "$work/agent.log" >&2; fail "no subnet.env within 60 s"; }
subnet=$(sed -n 's/^FLANNEL_SUBNET=//p' "$work/subnet.env")
[[ "$subnet" =~ ^10\.244\.[0-9]+\.1/24$ ]] || fail "subnet.env: FLANNEL_SUBNET=$subnet"

link=$(ip -n "$ns" -d link show weft.1) || fail "no weft.1 in the namespace"
for want in "vxlan id 1 " "local 192.0.2.11 " "dstport 8472 " "nolearning" "mtu 1450 "; do
  [[ "$link" == *"$want"* ]] || fail "weft.1 lacks '$want': $link"
done
addr=${subnet%.1/24}.0/32
ip -n "$ns" -br addr show weft.1 | grep -qF " $addr " || fail "weft.1 lacks its lease address $addr: $(ip -n "$ns" -br addr show weft.1)"
say "agent: subnet.env $subnet, weft.1 vxlan id 1 local 192.0.2.11 dstport 8472 nolearning mtu 1450, address $addr"

kill -TERM "$pid"
code=0
wait "$pid" || code=$?
pid=
[ "$code" = 0 ] || { cat "$work/agent.log" >&2; fail "the agent exited $code on SIGTERM"; }
say "agent stopped on SIGTERM with exit 0; all passed"
