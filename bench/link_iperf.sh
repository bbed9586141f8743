#!/bin/bash
# bench/link_iperf.sh — `ferry bench link` against iperf3 on the same
# link, in the same run, alternating the two: on loopback, and over a veth
# pair into a network namespace shaped by tc tbf to 100 Mbit/s and to
# 2 Mbit/s (both directions). iperf3 runs as `iperf3 -c HOST -O 1 -t 10
# -J` and its figure is the receiver's (end.sum_received.bits_per_second);
# ferry's is `ferry bench link LAB --seconds 11 --omit 1 --json`
# (received_bps: the receiver's count after the same one second of
# warm-up, over the same ten seconds). Prints each pair, the ratio
# ferry / iperf3, and per link the median ratio. Needs root (namespaces,
# tc) for the shaped links; without it only loopback runs.
#
#   sudo bash bench/link_iperf.sh [FERRY=build/ferry] [RUNS=3]
#
# Environment: LINKS="lo 100 2" (which links), SECONDS_ (iperf3's -t, 10).
set -uo pipefail
FERRY=${1:-build/ferry}
RUNS=${2:-3}
T=${SECONDS_:-10}
LINKS=${LINKS:-lo 100 2}
command -v iperf3 >/dev/null || { echo "link_iperf.sh: iperf3 is needed" >&2; exit 2; }
[ -x "$FERRY" ] || { echo "link_iperf.sh: no ferry at '$FERRY'" >&2; exit 2; }
FERRY=$(cd "$(dirname "$FERRY")" && pwd)/$(basename "$FERRY")
W=$(mktemp -d /tmp/ferry-link-iperf.XXXXXX)
NS=ferry-lip-$$
VC=flc$$
VL=fll$$
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	ip netns pids "$NS" 2>/dev/null | xargs -r kill 2>/dev/null
	ip link del "$VC" 2>/dev/null
	ip netns del "$NS" 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT
printf 'link iperf password\n' >"$W/pw"
chmod 600 "$W/pw"

# start HOST NETNS-PREFIX: ferry serve and iperf3 -s at HOST (7070, 5201)
start() {
	local host=$1
	shift
	printf '[site]\ncode = LAB\nstore = %s/lab\nlisten = %s:7070\n[account CEN]\npassword-file = %s/pw\n' \
		"$W" "$host" "$W" >"$W/lab.conf"
	printf '[site]\ncode = CEN\nstore = %s/cen\n[address LAB lan]\ntype = lan\nhost = %s:7070\npassword-file = %s/pw\n' \
		"$W" "$host" "$W" >"$W/cen.conf"
	: >"$W/serve.log"
	"$@" "$FERRY" serve --config "$W/lab.conf" 2>>"$W/serve.log" &
	PIDS+=($!)
	"$@" iperf3 -s -B "$host" -p 5201 >/dev/null 2>&1 &
	PIDS+=($!)
	for _ in $(seq 50); do grep -q 'receiving on' "$W/serve.log" && break; sleep 0.1; done
	sleep 0.5
}
stop() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	PIDS=()
}

# pairs NAME HOST: RUNS alternating runs of iperf3 and ferry; the ratios
pairs() {
	local name=$1 host=$2 i ip fe ratios=()
	for i in $(seq "$RUNS"); do
		iperf3 -c "$host" -p 5201 -O 1 -t "$T" -J >"$W/ip.json" 2>/dev/null
		ip=$(python3 -c "import json; print(json.load(open('$W/ip.json'))['end']['sum_received']['bits_per_second'])")
		"$FERRY" bench link LAB --seconds $((T + 1)) --omit 1 --json --no-store \
			--config "$W/cen.conf" >"$W/fe.json" 2>"$W/fe.err" ||
			{ echo "ferry failed: $(tail -2 "$W/fe.err")"; continue; }
		fe=$(python3 -c "import json; print(json.load(open('$W/fe.json'))['received_bps'])")
		r=$(python3 -c "print('%.3f' % ($fe / $ip))")
		ratios+=("$r")
		printf '%-8s run %d: iperf3 %10.2f Mbit/s  ferry %10.2f Mbit/s  ferry/iperf3 %s\n' \
			"$name" "$i" "$(python3 -c "print($ip / 1e6)")" "$(python3 -c "print($fe / 1e6)")" "$r"
	done
	printf '%-8s median ferry/iperf3: %s\n' "$name" \
		"$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')"
}

echo "machine: $(nproc) cores, $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "iperf3 $(iperf3 --version | head -1 | awk '{ print $2 }'); ferry $("$FERRY" version | head -1)"
for link in $LINKS; do
	case $link in
	lo)
		start 127.0.0.1
		pairs loopback 127.0.0.1
		stop
		;;
	*)
		[ "$(id -u)" = 0 ] || { echo "shaped links need root: skipped"; continue; }
		ip netns add "$NS" 2>/dev/null
		ip link del "$VC" 2>/dev/null
		ip link add "$VC" type veth peer name "$VL"
		ip link set "$VL" netns "$NS"
		ip addr add 10.223.7.1/30 dev "$VC"
		ip link set "$VC" up
		ip netns exec "$NS" ip addr add 10.223.7.2/30 dev "$VL"
		ip netns exec "$NS" ip link set "$VL" up
		ip netns exec "$NS" ip link set lo up
		rate=$((link * 1000000))
		burst=$([ "$link" -ge 10 ] && echo 256kb || echo 8kb)
		tc qdisc replace dev "$VC" root tbf rate "${rate}bit" burst $burst latency 100ms
		ip netns exec "$NS" tc qdisc replace dev "$VL" root tbf rate "${rate}bit" burst $burst latency 100ms
		start 10.223.7.2 ip netns exec "$NS"
		pairs "${link}Mbit" 10.223.7.2
		stop
		ip link del "$VC" 2>/dev/null
		ip netns del "$NS" 2>/dev/null
		;;
	esac
done
