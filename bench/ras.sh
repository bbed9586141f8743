#!/bin/bash
# bench/ras.sh — ferry over a slow shaped line against `rsync -z` to an
# rsync daemon and `tar | zstd -19 --long | nc`, in the same run, on the
# same package of real files.
#
#   sudo bash bench/ras.sh
#
# The receiving site lives in a network namespace joined to this one by a
# veth pair shaped with `tc tbf` to the line rate. For each rate, each tool
# sends the package once from a cold page cache; the clock stops when the
# package is complete at the destination. Reported per tool: wall time,
# payload rate (package bytes / wall time), bytes that crossed the line
# towards the receiver (the veth's tx counter, TCP/IP headers included)
# and line utilisation: those bytes over what the line could carry in
# the time.
#
# Options (environment):
#   RATES="128kbit 2mbit"     line rates (tc syntax)
#   KIB_128kbit=3072          package size per rate, KiB of real files
#   KIB_2mbit=24576
#   WORK=/var/tmp/ferry-bench-ras   packages, destinations, results
#   FERRY=build/ferry
#   FERRY_SENDER="segment-size = 1M"   extra [sender] lines for ferry
#   FERRY_BASE=PATH           a second ferry binary (e.g. the last unsealed
#                             one) sent over the same line after ferry, with
#                             its own receiver: what sealing adds on the line
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/var/tmp/ferry-bench-ras}
FERRY=${FERRY:-$repo/build/ferry}
RATES=${RATES:-128kbit 2mbit}

die() { echo "ras.sh: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

[ "$(id -u)" = 0 ] || die "run as root (namespaces, tc, drop_caches)"
for t in ip tc rsync nc zstd tar python3; do
	command -v "$t" >/dev/null || die "needs $t"
done
[ -x "$FERRY" ] || die "build ferry first (cmake --build build)"

stamp=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$WORK/results/$stamp
mkdir -p "$OUT"
cp "$FERRY" "$OUT/ferry"
FERRY=$OUT/ferry
if [ -n "${FERRY_BASE:-}" ]; then
	[ -x "$FERRY_BASE" ] || die "FERRY_BASE=$FERRY_BASE is not a binary"
	cp "$FERRY_BASE" "$OUT/ferry0"
fi

NS=ferry-bench-$$
VC=fbc$$
VL=fbl$$
CIP=10.212.0.1
LIP=10.212.0.2
cleanup() {
	ip netns pids "$NS" 2>/dev/null | xargs -r kill 2>/dev/null
	sleep 0.2
	ip netns pids "$NS" 2>/dev/null | xargs -r kill -9 2>/dev/null
	ip link del "$VC" 2>/dev/null
	ip netns del "$NS" 2>/dev/null
}
trap cleanup EXIT
ip netns add "$NS" || die "cannot create a network namespace"
ip link add "$VC" type veth peer name "$VL" || die "cannot create a veth pair"
ip link set "$VL" netns "$NS"
ip addr add "$CIP/30" dev "$VC"
ip link set "$VC" up
ip netns exec "$NS" ip addr add "$LIP/30" dev "$VL"
ip netns exec "$NS" ip link set "$VL" up
ip netns exec "$NS" ip link set lo up
shape() {
	tc qdisc replace dev "$VC" root tbf rate "$1" burst 4kb latency 500ms
	ip netns exec "$NS" tc qdisc replace dev "$VL" root tbf rate "$1" burst 4kb latency 500ms
}
line_bytes() { # what went towards the receiver (its ACKs come back on the other direction)
	cat /sys/class/net/$VC/statistics/tx_bytes
}
bits_of() { # tc rate -> bit/s
	python3 -c 'import re,sys; m=re.fullmatch(r"([0-9.]+)([kmg]?)bit", sys.argv[1]); print(int(float(m.group(1)) * {"":1,"k":1e3,"m":1e6,"g":1e9}[m.group(2)]))' "$1"
}

# a package of real files: headers (text) and programs (binary), half
# the bytes each, taken in sorted order until the size is reached
make_pkg() { # DIR KIB
	local dir=$1 kib=$2
	[ -d "$dir" ] && return
	mkdir -p "$dir/include" "$dir/bin"
	python3 - "$dir" "$kib" <<'EOF'
import os, sys, shutil
dst, kib = sys.argv[1], int(sys.argv[2])
for sub, src in (("include", "/usr/include"), ("bin", "/usr/bin")):
    left = kib * 1024 // 2
    for root, dirs, files in sorted(os.walk(src)):
        dirs.sort()
        for f in sorted(files):
            p = os.path.join(root, f)
            if not os.path.isfile(p) or os.path.islink(p):
                continue
            n = os.path.getsize(p)
            if n == 0 or n > left:
                continue
            rel = os.path.relpath(p, src)
            os.makedirs(os.path.join(dst, sub, os.path.dirname(rel)), exist_ok=True)
            shutil.copy2(p, os.path.join(dst, sub, rel))
            left -= n
            if left < 4096:
                break
        if left < 4096:
            break
EOF
}

pw=$OUT/pw
printf 'bench ras password\n' >"$pw"
chmod 600 "$pw"
cat >"$OUT/lab.conf" <<EOF
[site]
code = LAB
store = $OUT/lab
listen = $LIP:7070
[account CEN]
password-file = $pw
EOF
cat >"$OUT/rsyncd.conf" <<EOF
pid file = $OUT/rsyncd.pid
use chroot = no
[dest]
path = $OUT/rsync-dest
read only = no
uid = root
gid = root
EOF
mkdir -p "$OUT/rsync-dest"
ip netns exec "$NS" "$FERRY" serve --config "$OUT/lab.conf" 2>"$OUT/serve.log" &
if [ -n "${FERRY_BASE:-}" ]; then
	sed -e "s#$OUT/lab\$#$OUT/lab0#" -e "s#:7070#:7071#" "$OUT/lab.conf" >"$OUT/lab0.conf"
	ip netns exec "$NS" "$OUT/ferry0" serve --config "$OUT/lab0.conf" 2>"$OUT/serve0.log" &
fi
ip netns exec "$NS" rsync --daemon --no-detach --address="$LIP" --port=873 \
	--config="$OUT/rsyncd.conf" 2>"$OUT/rsyncd.log" &
sleep 1

drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
printf 'rate\ttool\twall_s\tpackage_bytes\tline_bytes\tpayload_Bps\tutilisation\n' >"$OUT/raw.tsv"
record() { # rate tool wall bytes line
	local bps
	bps=$(bits_of "$1")
	python3 -c 'import sys
r, t, w, b, l, bps = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
print("%s\t%s\t%.2f\t%d\t%d\t%.0f\t%.3f" % (r, t, w, b, l, b / w, l * 8 / (bps * w)))' \
		"$1" "$2" "$3" "$4" "$5" "$bps" >>"$OUT/raw.tsv"
	log "  $2 at $1: $3 s, line bytes $5"
}
T0=
start_clock() { T0=$(date +%s.%N); }
stop_clock() { python3 -c "print('%.2f' % ($(date +%s.%N) - $T0))"; }

# send_ferry BINARY TAG STORE LABEL: one ferry send of $pkg over the line,
# with config cen[0]-$rate.conf (TAG ferry or ferry0), checked and recorded
send_ferry() {
	local bin=$1 tag=$2 store=$3 label=$4 conf=$OUT/cen-$rate.conf
	[ "$tag" = ferry ] || conf=$OUT/cen0-$rate.conf
	drop
	b0=$(line_bytes)
	start_clock
	"$bin" send "$pkg" --to LAB --config "$conf" --name "pkg-$rate" --json \
		>"$OUT/$tag-$rate.json" 2>"$OUT/$tag-$rate.err"
	w=$(stop_clock)
	b1=$(line_bytes)
	grep -q '"ok":true' "$OUT/$tag-$rate.json" || die "$label failed: $(cat "$OUT/$tag-$rate.err")"
	diff -r "$pkg" "$OUT/$store/packages/pkg-$rate" >/dev/null || die "$label's copy differs"
	record "$rate" "$label" "$w" "$bytes" $((b1 - b0))
}

for rate in $RATES; do
	kv=KIB_$rate
	kib=${!kv:-$([ "$rate" = 128kbit ] && echo 3072 || echo 24576)}
	pkg=$WORK/pkg-$kib
	make_pkg "$pkg" "$kib"
	bytes=$(du -sb --apparent-size "$pkg" | cut -f1)
	shape "$rate"
	log "line $rate, package $pkg ($bytes bytes)"

	# ferry: an isdn address whose line is always up (no dial command)
	cat >"$OUT/cen-$rate.conf" <<EOF
[site]
code = CEN
store = $OUT/cen-$rate
[address LAB line]
type = isdn
host = $LIP:7070
bandwidth = $(bits_of "$rate")
password-file = $pw
[sender]
${FERRY_SENDER:-}
EOF
	send_ferry "$FERRY" ferry lab ferry
	if [ -n "${FERRY_BASE:-}" ]; then # the other binary, same line
		sed -e "s#:7070#:7071#" -e "s#$OUT/cen-$rate\$#$OUT/cen0-$rate#" \
			"$OUT/cen-$rate.conf" >"$OUT/cen0-$rate.conf"
		send_ferry "$OUT/ferry0" ferry0 lab0 "ferry (FERRY_BASE)"
	fi

	# rsync -z to the daemon
	drop
	b0=$(line_bytes)
	start_clock
	rsync -az "$pkg/" "rsync://$LIP/dest/pkg-$rate/" 2>"$OUT/rsync-$rate.err"
	w=$(stop_clock)
	b1=$(line_bytes)
	diff -r "$pkg" "$OUT/rsync-dest/pkg-$rate" >/dev/null || die "rsync's copy differs"
	record "$rate" "rsync -z" "$w" "$bytes" $((b1 - b0))

	# tar | zstd -19 --long | nc
	mkdir -p "$OUT/nc-$rate"
	ip netns exec "$NS" sh -c "nc -l -p 9000 | zstd -q -d | tar -xf - -C '$OUT/nc-$rate'" &
	ncpid=$!
	sleep 0.5
	drop
	b0=$(line_bytes)
	start_clock
	tar -cf - -C "$pkg" . | zstd -q -19 --long -T0 | nc -N "$LIP" 9000
	wait "$ncpid" 2>/dev/null
	w=$(stop_clock)
	b1=$(line_bytes)
	diff -r "$pkg" "$OUT/nc-$rate" >/dev/null || die "tar|zstd|nc's copy differs"
	record "$rate" "tar|zstd -19 --long|nc" "$w" "$bytes" $((b1 - b0))
done

python3 - "$OUT" <<'EOF' | tee "$OUT/summary.md"
import sys
out = sys.argv[1]
rows = [l.rstrip("\n").split("\t") for l in open(out + "/raw.tsv")][1:]
print("| line | tool | wall s | package | on the line | payload rate | line utilisation | ferry's payload rate vs this |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
notes = []
for rate in dict.fromkeys(r[0] for r in rows):
    rr = [r for r in rows if r[0] == rate]
    f = next(float(r[5]) for r in rr if r[1] == "ferry")
    fl = next(int(r[4]) for r in rr if r[1] == "ferry")
    for r in rr:
        if r[1] == "ferry (FERRY_BASE)":
            notes.append("%s: ferry put %+.2f%% of FERRY_BASE's bytes on the line"
                         % (rate, 100.0 * (fl - int(r[4])) / int(r[4])))
        print("| %s | %s | %s | %.1f MiB | %.2f MiB | %.1f KB/s | %.0f%% | %s |" % (
            rate, r[1], r[2], int(r[3]) / 2**20, int(r[4]) / 2**20, float(r[5]) / 1e3,
            100 * float(r[6]), "-" if r[1] == "ferry" else "%.2fx" % (f / float(r[5]))))
for n in notes:
    print()
    print(n)
EOF
log "results in $OUT"
