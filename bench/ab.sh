#!/bin/bash
# bench/ab.sh — one ferry binary against another on the same package:
# a durable send on loopback (serve and send of the same binary), page
# cache dropped before each run, alternating A and B, RUNS pairs. Prints
# the wall time of each run and the medians. Needs root (drop_caches).
#
#   sudo bash bench/ab.sh BIN_A BIN_B PACKAGE [RUNS=3] [extra send args...]
#
# e.g. the sealed build against the last unsealed one on 1 GiB of random
# bytes at --level 0 (a transfer that the CPU bounds: PERFORMANCE.md,
# "What sealing costs").
set -uo pipefail
[ $# -ge 3 ] || { sed -n 2,11p "$0"; exit 2; }
A=$1 B=$2 PKG=$3 RUNS=${4:-3}
shift $(($# < 4 ? 3 : 4))
[ "$(id -u)" = 0 ] || { echo "ab.sh: run as root (drop_caches)" >&2; exit 2; }

one() { # BIN [send args]: one send, its wall seconds
	local bin=$1 w port sp t0 t1
	shift
	w=$(mktemp -d /var/tmp/ferry-ab.XXXXXX)
	port=$((20000 + RANDOM % 12000))
	printf 'ab password\n' >"$w/pw"
	chmod 600 "$w/pw"
	printf '[site]\ncode = LAB\nstore = %s/lab\nlisten = 127.0.0.1:%s\n[account CEN]\npassword-file = %s/pw\n' \
		"$w" "$port" "$w" >"$w/lab.conf"
	printf '[site]\ncode = CEN\nstore = %s/cen\n[address LAB lan]\ntype = lan\nhost = 127.0.0.1:%s\npassword-file = %s/pw\n' \
		"$w" "$port" "$w" >"$w/cen.conf"
	"$bin" serve --config "$w/lab.conf" 2>"$w/serve.log" &
	sp=$!
	for _ in $(seq 50); do grep -q 'receiving on' "$w/serve.log" && break; sleep 0.1; done
	sync
	echo 3 >/proc/sys/vm/drop_caches
	t0=$(date +%s.%N)
	"$bin" send "$PKG" --to LAB --config "$w/cen.conf" --name ab --no-progress "$@" \
		>/dev/null 2>"$w/send.log" || { echo "ab.sh: send failed: $(tail -3 "$w/send.log")" >&2; }
	t1=$(date +%s.%N)
	kill "$sp"
	wait "$sp" 2>/dev/null
	rm -rf "$w"
	python3 -c "print('%.2f' % ($t1 - $t0))"
}

ra=() rb=()
for r in $(seq "$RUNS"); do
	ra+=("$(one "$A" "$@")")
	rb+=("$(one "$B" "$@")")
	echo "run $r: A ${ra[-1]} s, B ${rb[-1]} s"
done
python3 - "${ra[*]}" "${rb[*]}" <<'PY'
import statistics, sys
a = [float(x) for x in sys.argv[1].split()]
b = [float(x) for x in sys.argv[2].split()]
ma, mb = statistics.median(a), statistics.median(b)
print("median: A %.2f s, B %.2f s; A takes %+.1f%% of B's time" % (ma, mb, 100 * (ma - mb) / mb))
PY
