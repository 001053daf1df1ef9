#!/usr/bin/env bash
# Pod-to-pod TCP throughput (iperf3) per backend over one namespace topology:
#   underlay ns (bridge br0) ── node0 ns (eth0 192.0.2.11, cni0 10.244.1.1/24) ── pod0 ns
#                            └─ node1 ns (eth0 192.0.2.12, cni0 10.244.2.1/24) ── pod1 ns
# Pods are dual-stack (cni0 also fd00:10:244:<n>::1/64) and eth0 also has 2001:db8::1<n>;
# weft is told of the IPv6 underlay address only in the cases that use it (`-v6ul`,
# host-gw, wireguard's Mode separate). For each case the topology is built fresh, the
# dataplane programmed, and pod0 → pod1 measured; weft's cases over both pod families
# (results `<case>` and `<case>/v6`). Cases: vxlan and host-gw programmed by weft (test/backend/node-agent.ts, the
# real libnl Netlink and backends) beside the same dataplane set up by hand with ip/bridge;
# udp by weft (TUN + Worker) beside socat TUN<->UDP; wireguard by weft beside the same
# WireGuard set up by hand with `wireguard-go` + `wg` + `ip` (on a kernel without the
# WireGuard module both run wireguard-go; each node then gets its own mount namespace with
# a private /run/wireguard for the UAPI socket). Cases are interleaved over
# BENCH_ROUNDS rounds (the machine is shared and noisy) and the medians compared.
# Root only. Knobs: BENCH_SECONDS (iperf3 -t, default 5), BENCH_ROUNDS (default 3),
# BENCH_CASES (space separated).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench/dataplane.sh: needs root (network namespaces)" >&2; exit 2; }
for t in ip bridge iperf3 socat; do command -v "$t" >/dev/null || { echo "bench/dataplane.sh: $t not installed" >&2; exit 2; }; done
BUN=${BUN:-$PWD/node_modules/.bin/bun}
SECS=${BENCH_SECONDS:-5}
ROUNDS=${BENCH_ROUNDS:-3}
CASES=${BENCH_CASES:-"vxlan-hand vxlan-weft vxlan-weft-v6ul host-gw-hand host-gw-weft udp-socat udp-weft udp-weft-plain wireguard-hand wireguard-weft"}
case " $CASES " in *" wireguard-"*) for t in wg wireguard-go nsenter; do command -v "$t" >/dev/null || { echo "bench/dataplane.sh: $t not installed (apt install wireguard-tools wireguard-go)" >&2; exit 2; }; done ;; esac
ID="wbk-bench-$(head -c3 /dev/urandom | od -An -tx1 | tr -d ' \n')"
TMP=$(mktemp -d /tmp/wbk-bench.XXXXXX)
MAC0=0a:58:0a:f4:01:00
MAC1=0a:58:0a:f4:02:00
declare -A RESULT
PIDS=()
HOLDER=() # per node: pid of the process holding its mount namespace (wireguard cases)
PRIV=() PUB=()

cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  PIDS=() HOLDER=()
  for ns in $(ip netns list | awk '{print $1}' | grep "^$ID" || true); do ip netns pids "$ns" | xargs -r kill 2>/dev/null || true; ip netns del "$ns"; done
}
trap 'cleanup; rm -rf "$TMP"' EXIT

node() { echo "$ID-n$1"; }
pod() { echo "$ID-p$1"; }
# Runs a command in node $1's network namespace (and its mount namespace, if it has one).
in_node() {
  local i=$1; shift
  if [ -n "${HOLDER[$i]:-}" ]; then nsenter -t "${HOLDER[$i]}" -m ip netns exec "$(node "$i")" "$@"; else ip netns exec "$(node "$i")" "$@"; fi
}

# wireguard-go's socket directory is per machine: give each node a private /run/wireguard.
wg_mount_namespaces() {
  mkdir -p /run/wireguard
  for i in 0 1; do
    unshare --mount --propagation private sh -c 'mount -t tmpfs -o mode=0700 tmpfs /run/wireguard && exec sleep 86400' &
    HOLDER[$i]=$!
    PIDS+=($!)
    for _ in $(seq 50); do [ "$(readlink "/proc/${HOLDER[$i]}/ns/mnt")" != "$(readlink /proc/self/ns/mnt)" ] && grep -q ' /run/wireguard tmpfs' "/proc/${HOLDER[$i]}/mounts" && break; sleep 0.1; done
    PRIV[$i]=$(wg genkey)
    PUB[$i]=$(echo "${PRIV[$i]}" | wg pubkey)
  done
}

by_hand_wireguard() { # what wg-quick would do, with the same names, port, MTU and route as weft
  wg_mount_namespaces
  for i in 0 1; do
    local j=$((1 - i))
    in_node "$i" env WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 wireguard-go weft-wg 2>"$TMP/wireguard-go$i.err" || { cat "$TMP/wireguard-go$i.err" >&2; exit 1; }
    echo "${PRIV[$i]}" >"$TMP/key$i"
    in_node "$i" wg set weft-wg private-key "$TMP/key$i" listen-port 51820 peer "${PUB[$j]}" endpoint "192.0.2.$((11 + j)):51820" allowed-ips "10.244.$((j + 1)).0/24"
    in_node "$i" ip addr add "10.244.$((i + 1)).0/32" dev weft-wg
    in_node "$i" ip link set weft-wg mtu 1420 up
    in_node "$i" ip route add 10.244.0.0/16 dev weft-wg
  done
}

topology() { # $1 = pod MTU
  ip netns add "$ID-ul"
  ip -n "$ID-ul" link add br0 type bridge && ip -n "$ID-ul" link set br0 up
  for i in 0 1; do
    local n p sub=$((i + 1))
    n=$(node $i) p=$(pod $i)
    ip netns add "$n"; ip netns add "$p"
    for ns in "$n" "$p"; do # IPv6 on, no duplicate address detection delays (these namespaces only)
      ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0 net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
    done
    ip -n "$n" link set lo up; ip -n "$p" link set lo up
    ip -n "$ID-ul" link add "n$i" type veth peer name eth0 netns "$n"
    ip -n "$ID-ul" link set "n$i" master br0 up
    ip -n "$n" addr add "192.0.2.$((11 + i))/24" dev eth0 && ip -n "$n" link set eth0 up
    ip -n "$n" addr add "2001:db8::$((11 + i))/64" dev eth0 nodad
    ip netns exec "$n" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
    ip -n "$n" link add cni0 type bridge && ip -n "$n" addr add "10.244.$sub.1/24" dev cni0 && ip -n "$n" link set cni0 up
    ip -n "$n" addr add "fd00:10:244:$sub::1/64" dev cni0 nodad
    ip -n "$n" link add "veth$i" mtu "$1" type veth peer name eth0 netns "$p" mtu "$1"
    ip -n "$n" link set "veth$i" master cni0 up
    ip -n "$p" addr add "10.244.$sub.2/24" dev eth0 && ip -n "$p" link set eth0 up
    ip -n "$p" addr add "fd00:10:244:$sub::2/64" dev eth0 nodad
    ip -n "$p" route add default via "10.244.$sub.1"
    ip -n "$p" -6 route add default via "fd00:10:244:$sub::1"
  done
}

by_hand_vxlan() {
  local macs=("$MAC0" "$MAC1")
  for i in 0 1; do
    local j=$((1 - i)) n; n=$(node $i)
    ip -n "$n" link add weft.1 type vxlan id 1 local "192.0.2.$((11 + i))" dstport 8472 nolearning dev eth0
    ip -n "$n" link set weft.1 address "${macs[$i]}" mtu 1450 up
    ip -n "$n" addr add "10.244.$((i + 1)).0/32" dev weft.1
    ip -n "$n" neigh replace "10.244.$((j + 1)).0" lladdr "${macs[$j]}" dev weft.1 nud permanent
    bridge -n "$n" fdb append "${macs[$j]}" dev weft.1 dst "192.0.2.$((11 + j))" self permanent
    ip -n "$n" route replace "10.244.$((j + 1)).0/24" via "10.244.$((j + 1)).0" dev weft.1 onlink
  done
}

by_hand_host_gw() {
  for i in 0 1; do
    local j=$((1 - i))
    ip -n "$(node $i)" route replace "10.244.$((j + 1)).0/24" via "192.0.2.$((11 + j))" dev eth0
  done
}

socat_udp() {
  for i in 0 1; do
    local j=$((1 - i))
    ip netns exec "$(node $i)" socat -b65536 "TUN:10.244.$((i + 1)).0/16,tun-name=weft0,iff-up,iff-no-pi,tun-type=tun" \
      "UDP-DATAGRAM:192.0.2.$((11 + j)):8285,bind=192.0.2.$((11 + i)):8285" 2>"$TMP/socat$i.err" &
    PIDS+=($!)
  done
  for i in 0 1; do
    for _ in $(seq 50); do ip -n "$(node $i)" link show weft0 >/dev/null 2>&1 && break; sleep 0.1; done
    ip -n "$(node $i)" link set weft0 mtu 1472 || { echo "socat on node$i failed: $(cat "$TMP/socat$i.err")" >&2; exit 1; }
  done
}

weft() { # $1 = backend conf JSON, $2 = extra config JSON fields; V6UL=1: weft uses the IPv6 underlay addresses; agents stay up (udp needs its packet loop) until cleanup
  local v6=("" "")
  [ "${V6UL:-}" = 1 ] && v6=(',"publicIpv6":"2001:db8::11"' ',"publicIpv6":"2001:db8::12"')
  local peers='[{"nodeName":"node0","subnet":"10.244.1.0/24","ipv6Subnet":"fd00:10:244:1::/64","publicIp":"192.0.2.11"'${v6[0]}',"vtepMac":"'$MAC0'","publicKey":"'${PUB[0]:-}'"},{"nodeName":"node1","subnet":"10.244.2.0/24","ipv6Subnet":"fd00:10:244:2::/64","publicIp":"192.0.2.12"'${v6[1]}',"vtepMac":"'$MAC1'","publicKey":"'${PUB[1]:-}'"}]'
  local macs=("$MAC0" "$MAC1")
  for i in 0 1; do
    local keys=""
    [ -n "${PRIV[$i]:-}" ] && keys=',"wireguardKeys":{"privateKey":"'${PRIV[$i]}'","publicKey":"'${PUB[$i]}'"}'
    local conf='{"backend":'$1',"publicIp":"192.0.2.'$((11 + i))'"'${v6[$i]}',"underlayIface":"eth0","underlayMtu":1500,"ownSubnet":"10.244.'$((i + 1))'.0/24","network":"10.244.0.0/16","ownIpv6Subnet":"fd00:10:244:'$((i + 1))'::/64","ipv6Network":"fd00:10:244::/56","vtepMac":"'${macs[$i]}'"'$keys',"peers":'$peers${2:+,$2}'}'
    rm -f "$TMP/in$i"; mkfifo "$TMP/in$i"
    in_node "$i" "$BUN" "$PWD/test/backend/node-agent.ts" "$conf" <"$TMP/in$i" >"$TMP/out$i" 2>"$TMP/err$i" &
    PIDS+=($!)
    sleep infinity >"$TMP/in$i" & # holds the fifo open so the agent keeps running
    PIDS+=($!)
  done
  for i in 0 1; do
    for _ in $(seq 100); do grep -q '"ready"' "$TMP/out$i" 2>/dev/null && break; sleep 0.1; done
    grep -q '"ready":true' "$TMP/out$i" || { echo "weft agent $i failed: $(cat "$TMP/out$i" "$TMP/err$i")" >&2; exit 1; }
  done
}

measure() { # $1 = pod1's address; prints Gbit/s pod0 -> pod1
  ip netns exec "$(pod 1)" iperf3 -s -1 >/dev/null 2>&1 &
  local srv=$!
  for _ in $(seq 50); do ip netns exec "$(pod 1)" ss -ltn 2>/dev/null | grep -q ':5201' && break; sleep 0.1; done
  ip netns exec "$(pod 0)" ping -c 1 -W 2 "$1" >/dev/null || { echo "no connectivity pod0 -> pod1 ($1)" >&2; kill $srv; echo 0; return; }
  ip netns exec "$(pod 0)" timeout $((SECS + 15)) iperf3 -c "$1" -t "$SECS" -J >"$TMP/iperf.json" || true
  kill $srv 2>/dev/null || true
  "$BUN" -e 'const j = await Bun.file(process.argv[1]).json(); const b = j.end?.sum_received?.bits_per_second; console.log(b ? (b / 1e9).toFixed(3) : "0")' "$TMP/iperf.json"
}

declare -A ALL
KEYS=()
for r in $(seq "$ROUNDS"); do
  for c in $CASES; do
    case $c in
      vxlan-hand) topology 1450; by_hand_vxlan ;;
      vxlan-weft) topology 1450; weft '{"type":"vxlan","vni":1,"port":8472,"directRouting":false}' ;; # IPv6 pods over weft.1 too
      vxlan-weft-v6ul) topology 1430; V6UL=1 weft '{"type":"vxlan","vni":1,"port":8472,"directRouting":false}' ;; # IPv6 pods over weft-v6.1
      host-gw-hand) topology 1500; by_hand_host_gw ;;
      host-gw-weft) topology 1500; V6UL=1 weft '{"type":"host-gw"}' ;;
      udp-socat) topology 1472; socat_udp ;;
      udp-weft) topology 1472; weft '{"type":"udp","port":8285}' ;;
      udp-weft-plain) topology 1472; weft '{"type":"udp","port":8285}' '"udpOffload":false' ;; # flannel framing, packet by packet
      wireguard-hand) topology 1420; by_hand_wireguard ;;
      wireguard-weft) topology 1420; wg_mount_namespaces; V6UL=1 weft '{"type":"wireguard","listenPort":51820,"listenPortV6":51821,"persistentKeepaliveInterval":0,"mode":"separate"}' ;;
      *) echo "unknown case $c" >&2; exit 2 ;;
    esac
    dsts=("10.244.2.2")
    case $c in *-weft*) dsts+=("fd00:10:244:2::2") ;; esac
    for dst in "${dsts[@]}"; do
      k=$c
      case $dst in *:*) k=$c/v6 ;; esac
      v=$(measure "$dst")
      ALL[$k]="${ALL[$k]:-} $v"
      KEYS+=("$k")
      printf 'round %d %-20s %8s Gbit/s\n' "$r" "$k" "$v"
      if [ "$c" = udp-weft ] && [ "$r" = "$ROUNDS" ]; then # the packet loop's own counters, to spot drops (cumulative over both families)
        for i in 0 1; do
          n0=$(grep -c '"counters"' "$TMP/out$i" || true)
          echo '{"counters":1}' >"$TMP/in$i"
          for _ in $(seq 50); do [ "$(grep -c '"counters"' "$TMP/out$i" || true)" -gt "$n0" ] && break; sleep 0.1; done
          echo "  node$i after $k: $(grep '"counters"' "$TMP/out$i" | tail -1)"
        done
      fi
    done
    cleanup
    PRIV=() PUB=()
  done
done
echo "--- medians over $ROUNDS rounds"
for c in $(printf '%s\n' "${KEYS[@]}" | awk '!seen[$0]++'); do
  RESULT[$c]=$(echo ${ALL[$c]} | tr ' ' '\n' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
  printf '%-20s %8s Gbit/s   (runs:%s)\n' "$c" "${RESULT[$c]}" "${ALL[$c]}"
done

ratio() { [ -n "${RESULT[$1]:-}" ] && [ -n "${RESULT[$2]:-}" ] && awk -v a="${RESULT[$1]}" -v b="${RESULT[$2]}" -v l="$3" -v t="$4" 'BEGIN { r = (b > 0) ? a / b : 0; printf "%-40s %6.2f  (target >= %s)\n", l, r, t }' || true; }
echo "--- ratios of medians ($(date -u +%F), $(nproc) vCPU, iperf3 -t $SECS, load $(cut -d' ' -f1-3 /proc/loadavg))"
ratio vxlan-weft vxlan-hand "vxlan weft / by hand" 0.95
ratio host-gw-weft host-gw-hand "host-gw weft / by hand" 0.95
ratio udp-weft udp-socat "udp weft / socat" 5
ratio udp-weft-plain udp-socat "udp weft (no offload) / socat" "- (informative)"
ratio wireguard-weft wireguard-hand "wireguard weft / by hand" 0.95
ratio vxlan-weft/v6 vxlan-weft "vxlan IPv6 / IPv4 pods (IPv4 underlay)" 0.95
ratio vxlan-weft-v6ul/v6 vxlan-weft-v6ul "vxlan IPv6 / IPv4 pods (dual underlay)" 0.95
ratio host-gw-weft/v6 host-gw-weft "host-gw IPv6 / IPv4 pods" 0.95
ratio udp-weft/v6 udp-weft "udp IPv6 / IPv4 pods" "- (informative)"
ratio wireguard-weft/v6 wireguard-weft "wireguard IPv6 / IPv4 pods" "- (informative)"
[ -n "${RESULT[udp-weft]:-}" ] && echo "udp weft absolute: ${RESULT[udp-weft]} Gbit/s (target >= 1)"
