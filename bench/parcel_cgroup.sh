#!/bin/bash
# bench/parcel_cgroup.sh - `ferry parcel create` of a package larger than
# the memory it may use: each binary runs in a memory cgroup (v1) of
# LIMIT_MB, cold, alternating, and reports its wall time and how much
# the whole machine read from the disk meanwhile (pgpgin): a package read
# once reads about its own size.
#
#   sudo FERRYS="old/ferry build/ferry" bash bench/parcel_cgroup.sh
#
# Options (environment): SRC (default bench/lan.sh's tree), LIMIT_MB=256,
# RUNS=2, WORK=/var/tmp/ferry-bench-pcg (media, store, config).
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
SRC=${SRC:-/var/tmp/ferry-bench/data/pkg-1g}
LIMIT_MB=${LIMIT_MB:-256}
RUNS=${RUNS:-2}
WORK=${WORK:-/var/tmp/ferry-bench-pcg}
FERRYS=${FERRYS:-$repo/build/ferry}
CG=/sys/fs/cgroup/memory/ferry-bench-pcg

die() { echo "parcel_cgroup.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (drop_caches, cgroups)"
[ -d "$SRC" ] || die "no package at $SRC (bench/lan.sh makes it)"
[ -d /sys/fs/cgroup/memory ] || die "needs the cgroup v1 memory controller"
mkdir -p "$CG" "$WORK/media" || die "cannot make $CG"
trap 'rmdir "$CG" 2>/dev/null' EXIT
echo $((LIMIT_MB << 20)) >"$CG/memory.limit_in_bytes" || die "cannot limit $CG"
printf 'bench parcel password\n' >"$WORK/pw"
chmod 600 "$WORK/pw"
cat >"$WORK/cen.conf" <<CONF
[site]
code = CEN
store = $WORK/cen
[address LAB lan]
type = lan
host = 127.0.0.1:9
password-file = $WORK/pw
[address LAB usb]
type = courier
password-file = $WORK/pw
media = $WORK/media
CONF

printf 'ferry\trun\twall_s\tdisk_read_MiB\tpackage_MiB\n'
pkg=$(($(du -sb --apparent-size "$SRC" | cut -f1) >> 20))
for run in $(seq 1 "$RUNS"); do
	for f in $FERRYS; do
		rm -rf "$WORK/media"/* "$WORK/cen"
		sync
		echo 3 >/proc/sys/vm/drop_caches
		r0=$(awk '/^pgpgin /{print $2}' /proc/vmstat)
		t0=$(date +%s.%N)
		bash -c "echo \$\$ >$CG/cgroup.procs; exec '$f' parcel create '$SRC' --to LAB --name pkg --config '$WORK/cen.conf' -q >/dev/null" ||
			die "$f: parcel create failed"
		t1=$(date +%s.%N)
		r1=$(awk '/^pgpgin /{print $2}' /proc/vmstat)
		printf '%s\t%s\t%.2f\t%s\t%s\n' "$f" "$run" "$(echo "$t1 - $t0" | bc)" \
			$(((r1 - r0) >> 10)) "$pkg"
	done
done
