#!/bin/bash
# bench/parcel.sh — courier parcels: `ferry parcel create` and `ferry parcel
# import` of the LAN benchmark's package, against `tar -c | zstd -T0 -3`
# onto the medium and `zstd -d | tar -x` from it, in the same run, with
# the medium's own write and read speed measured alongside.
#
#   sudo bash bench/parcel.sh
#
# Options (environment):
#   WORK=/var/tmp/ferry-bench  package cache (made by bench/lan.sh if
#                              missing), media and destinations, results
#   MEDIA=$WORK/media          the "medium": a directory (mount a USB disk
#                              or a tmpfs here to measure that instead)
#   RUNS=3                     runs per tool (median reported)
#   SRC=DIR                    the package (default: bench/lan.sh's tree)
#   FERRY=build/ferry
#   MEDIUM_MBPS=N              a slow medium instead: a 4 GiB ext4 image on
#                              a loop device, its writes throttled to N
#                              MiB/s and reads to 2N (cgroup v1 blkio or
#                              v2 io.max), mounted as MEDIA; every tool,
#                              dd included, runs under the same limit
#
# Imports go into a fresh ext4 filesystem made for the run (an image on
# a loop device under WORK, thrown away at the end), each into a
# directory of its own.
#
# Every run starts with the page cache dropped; creation ends with the
# volumes (or the .tar.zst) fdatasync'ed on the medium, import with the
# tree durable at the destination. CPU is user+sys, memory the peak RSS.
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/var/tmp/ferry-bench}
MEDIA=${MEDIA:-$WORK/media}
RUNS=${RUNS:-3}
FERRY=${FERRY:-$repo/build/ferry}
SRC=${SRC:-$WORK/data/pkg-1g}

die() { echo "parcel.sh: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

for t in tar zstd dd /usr/bin/time python3; do
	command -v "$t" >/dev/null || die "needs $t"
done
[ -x "$FERRY" ] || die "build ferry first (cmake --build build)"
if [ ! -d "$SRC" ]; then
	log "no package at $SRC: building it with bench/lan.sh's recipe"
	TOOLS=none SKIP_STAGES=1 SKIP_RESUME=1 SKIP_4G=1 RUNS=0 \
		bash "$repo/bench/lan.sh" >/dev/null || true
	[ -d "$SRC" ] || die "no package at $SRC"
fi
[ "$(id -u)" = 0 ] || die "run as root (drop_caches)"

cleanup=()
on_exit() { for c in "${cleanup[@]}"; do eval "$c"; done; }
trap on_exit EXIT

if [ -n "${MEDIUM_MBPS:-}" ]; then
	img=$WORK/slow-medium.img
	MEDIA=$WORK/slow-media
	mkdir -p "$MEDIA"
	umount "$MEDIA" 2>/dev/null
	truncate -s 4G "$img" && mkfs.ext4 -q -F "$img" || die "cannot make $img"
	loopdev=$(losetup -f --show "$img") || die "no loop device"
	cleanup+=("umount '$MEDIA'; losetup -d '$loopdev'; rm -f '$img'")
	mount "$loopdev" "$MEDIA" || die "cannot mount $loopdev"
	mm=$(lsblk -dno MAJ:MIN "$loopdev" | tr -d ' ')
	wbps=$((MEDIUM_MBPS * 1048576))
	if [ -d /sys/fs/cgroup/blkio ]; then
		cg=/sys/fs/cgroup/blkio/ferry-bench
		mkdir -p "$cg"
		echo "$mm $wbps" >"$cg/blkio.throttle.write_bps_device"
		echo "$mm $((2 * wbps))" >"$cg/blkio.throttle.read_bps_device"
	else
		cg=/sys/fs/cgroup/ferry-bench
		echo +io >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null
		mkdir -p "$cg"
		echo "$mm wbps=$wbps rbps=$((2 * wbps))" >"$cg/io.max" ||
			die "cannot throttle $loopdev"
	fi
	echo $$ >"$cg/cgroup.procs" || die "cannot join $cg"
	log "medium: $loopdev at $MEDIA, $MEDIUM_MBPS MiB/s write, $((2 * MEDIUM_MBPS)) MiB/s read"
fi

stamp=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$WORK/results/parcel-$stamp
mkdir -p "$OUT" "$MEDIA" || die "cannot create $OUT"
cp "$FERRY" "$OUT/ferry"
FERRY=$OUT/ferry
bytes=$(du -sb --apparent-size "$SRC" | cut -f1)
# The destination: a fresh ext4 filesystem made for this run (an image
# on a loop device, with direct I/O so that its pages are not cached
# twice). Every import goes to a directory of its own and nothing is
# deleted until the filesystem is thrown away at the end. On a
# filesystem where many files were deleted not long before, ext4 makes
# each file creation search for a free inode (recently_deleted), for
# longer than any pause the benchmark could give it, which slowed
# whichever imports came first.
DESTS=$WORK/dest-parcel
dimg=$WORK/dest-parcel.img
umount "$DESTS" 2>/dev/null
rm -rf "$DESTS"
mkdir -p "$DESTS"
dgib=$((bytes * 5 * RUNS / 2 / 1073741824 + 2))
truncate -s "${dgib}G" "$dimg" &&
	mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$dimg" ||
	die "cannot make $dimg"
dloop=$(losetup -f --show --direct-io=on "$dimg") || die "no loop device"
cleanup+=("umount '$DESTS'; losetup -d '$dloop'; rm -f '$dimg'")
mount "$dloop" "$DESTS" || die "cannot mount $dloop"
log "destination: a fresh ${dgib} GiB ext4 on $dloop at $DESTS"

drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# configs: CEN makes parcels for LAB; LAB's lan address is a closed port,
# so the parcel carries every segment (as when the network is down)
pw=$OUT/pw
printf 'bench parcel password\n' >"$pw"
chmod 600 "$pw"
cat >"$OUT/cen.conf" <<EOF
[site]
code = CEN
store = $WORK/parcel-cen
[address LAB lan]
type = lan
host = 127.0.0.1:9
password-file = $pw
[address LAB usb]
type = courier
password-file = $pw
media = $MEDIA
EOF
cat >"$OUT/lab.conf" <<EOF
[site]
code = LAB
store = $DESTS/STORE
listen = 127.0.0.1:9
[account CEN]
password-file = $pw
EOF

# timed NAME CMD...: wall, cpu, rss of CMD (and its children) into $OUT/NAME.time
timed() {
	local name=$1
	shift
	/usr/bin/time -f '%e %U %S %M' -o "$OUT/$name.time" "$@"
}
read_time() { # -> wall cpu rss_mib
	awk '{ printf "%s %.2f %.1f\n", $1, $2 + $3, $4 / 1024 }' "$OUT/$1.time"
}

printf 'run\ttool\tphase\twall_s\tMB_s\tcpu_s\trss_MiB\tmedium_bytes\n' >"$OUT/raw.tsv"
record() { # run tool phase name medium_bytes
	local w c r
	read -r w c r < <(read_time "$4")
	printf '%s\t%s\t%s\t%s\t%.1f\t%s\t%s\t%s\n' "$1" "$2" "$3" "$w" \
		"$(python3 -c "print($bytes / 1e6 / $w)")" "$c" "$r" "$5" >>"$OUT/raw.tsv"
	log "  $2 $3 run $1: ${w} s, cpu ${c} s, rss ${r} MiB, medium $5 bytes"
}

for run in $(seq 1 "$RUNS"); do
	log "round $run of $RUNS"
	# the medium itself
	rm -f "$MEDIA/dd.bin"
	drop
	dd if=/dev/zero of="$MEDIA/dd.bin" bs=1M count=2048 oflag=direct conv=fdatasync 2>"$OUT/dd-w.$run" >/dev/null
	drop
	dd if="$MEDIA/dd.bin" of=/dev/null bs=1M iflag=direct 2>"$OUT/dd-r.$run" >/dev/null
	rm -f "$MEDIA/dd.bin"
	# the other end of creation, on its own: reading the package cold,
	# one pass in tar's order
	drop
	timed src-read.$run sh -c "tar -C '$SRC' -cf - . | cat >/dev/null"

	# tar | zstd -3 onto the medium, then back
	rm -rf "$MEDIA"/*
	DEST=$DESTS/tar-$run
	mkdir -p "$DEST"
	drop
	timed tar-c.$run sh -c "tar -C '$SRC' -cf - . | zstd -q -T0 -3 | dd of='$MEDIA/pkg.tar.zst' bs=1M conv=fdatasync status=none"
	record "$run" tar+zstd create tar-c.$run "$(stat -c %s "$MEDIA/pkg.tar.zst")"
	drop
	timed tar-x.$run sh -c "zstd -q -d -c '$MEDIA/pkg.tar.zst' | tar -C '$DEST' -xf - && sync -f '$DEST'"
	record "$run" tar+zstd import tar-x.$run "$(stat -c %s "$MEDIA/pkg.tar.zst")"

	# ferry
	rm -rf "$MEDIA"/* "$WORK/parcel-cen"
	sed "s#STORE#ferry-$run#" "$OUT/lab.conf" >"$OUT/lab-$run.conf"
	drop
	timed ferry-c.$run "$FERRY" parcel create "$SRC" --to LAB --name pkg \
		--config "$OUT/cen.conf" --json -q >"$OUT/ferry-c.$run.json"
	rc=$?
	[ $rc = 0 ] || die "ferry parcel create failed ($rc)"
	mb=$(du -cb "$MEDIA"/ferry-parcel-*/*.fpv | tail -n 1 | cut -f1)
	record "$run" ferry create ferry-c.$run "$mb"
	drop
	timed ferry-x.$run "$FERRY" parcel import "$MEDIA" --config "$OUT/lab-$run.conf" \
		--json -q >"$OUT/ferry-x.$run.json"
	rc=$?
	[ $rc = 0 ] || die "ferry parcel import failed ($rc)"
	record "$run" ferry import ferry-x.$run "$mb"
	if [ "$run" = 1 ]; then
		diff -r --no-dereference "$SRC" "$DESTS/ferry-$run/packages/pkg" >/dev/null ||
			die "the imported tree differs from the source"
		log "  imported tree identical to the source"
	fi
done

python3 - "$OUT" "$bytes" <<'EOF' | tee "$OUT/summary.md"
import sys, statistics, re, glob
out, raw = sys.argv[1], int(sys.argv[2])
rows = [l.rstrip("\n").split("\t") for l in open(out + "/raw.tsv")][1:]
def med(tool, phase, col):
    v = [float(r[col]) for r in rows if r[1] == tool and r[2] == phase]
    return statistics.median(v) if v else float("nan")
def dd(kind):
    v = []
    for f in glob.glob(out + "/dd-%s.*" % kind):
        m = re.search(r"([0-9.]+) ([GM])B/s", open(f).read())
        if m:
            v.append(float(m.group(1)) * (1000 if m.group(2) == "G" else 1))
    return statistics.median(v) if v else float("nan")
w, r = dd("w"), dd("r")
print("# ferry parcel benchmark\n")
print("package: %.2f GiB; medium: write %.0f MB/s, read %.0f MB/s (dd of 2 GiB, O_DIRECT)\n" % (raw / 2**30, w, r))
print("| tool | phase | wall s | MB/s (package) | CPU s | peak RSS MiB | on the medium | ratio | ferry's speed-up |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for phase in ("create", "import"):
    ft = med("ferry", phase, 3)
    for tool in ("tar+zstd", "ferry"):
        t = med(tool, phase, 3)
        mb = med(tool, phase, 7)
        print("| %s | %s | %.2f | %.0f | %.1f | %.1f | %.0f MiB | %.2f | %s |" % (
            tool, phase, t, raw / 1e6 / t, med(tool, phase, 5), med(tool, phase, 6),
            mb / 2**20, raw / mb, "-" if tool == "ferry" else "%.2fx" % (t / ft)))
def walls(name):
    v = [float(open(f).read().split()[0]) for f in glob.glob(out + "/%s.*.time" % name)]
    return statistics.median(v) if v else float("nan")
src_read = walls("src-read")
print("\nreading the package cold, on its own (tar -c | cat): %.2f s (%.0f MB/s)" % (
    src_read, raw / 1e6 / src_read))
for phase, speed, what in (("create", w, "write"), ("import", r, "read")):
    ft = med("ferry", phase, 3)
    mb = med("ferry", phase, 7)
    print("\nferry %s moved %.0f MB/s of medium bytes: %.0f%% of the medium's own %s speed (%.0f MB/s); "
          "the medium alone would take %.2f s of ferry's %.2f s." % (
        phase, mb / 1e6 / ft, 100 * mb / 1e6 / ft / speed, what, speed, mb / 1e6 / speed, ft))
ft = med("ferry", "create", 3)
print("\nferry create read the package at %.0f%% of the speed of tar's cold read." % (100 * src_read / ft))
print("\nEvery run:\n\n```")
print(open(out + "/raw.tsv").read().rstrip())
print("```")
EOF
log "results in $OUT"
