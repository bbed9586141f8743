#!/bin/bash
# bench/lan.sh — ferry on loopback against tar|nc, tar|zstd|nc and rsync,
# all in one run, on the same package of real files, each run ending with
# the data durable at the destination. See PERFORMANCE.md for a report.
#
#   sudo bash bench/lan.sh
#
# Options (environment):
#   WORK=/var/tmp/ferry-bench  work dir: cached package trees, destinations,
#                              results (WORK/results/<date>/)
#   RUNS=3                     runs per tool (the median is reported)
#   SIZE_GB=1                  the package is at least this many GiB
#   SKIP_4G=0                  1: skip ferry on the 4 GiB package (memory)
#   BIG_GB=4                   size of that larger package, GiB
#   SKIP_STAGES=0              1: skip the physical stages
#   SKIP_RESUME=0              1: skip the kill -9 / resume measurement
#   TOOLS="tar zstd rsync ferry"   which transfers to run
#   SRC=DIR                    use DIR as the package instead of building one
#   FERRY=build/ferry          the ferry binary
#   FERRY_BASE=PATH            a second ferry binary to compare with, as tool
#                              "ferry0" (add it to TOOLS): e.g. the last
#                              unsealed one, protocol 1 (PERFORMANCE.md)
#
#   ISSUE15=1                  instead of the above, measure the targets of
#                              issue 15 ("Large packages at the disk's
#                              speed") on two trees of their own; see below
#
# ISSUE15=1: two trees, built once in WORK/data and cached: (a) "large
# files", ~1.07 GiB in 3,273 files: one 512 MiB random blob, 4 random files
# of 32 MiB and 16 of 8 MiB, and 3,252 real files (~328 MiB) picked from
# /usr; (b) "small files", 60,000 random files of 1-8 KiB (~264 MiB). On
# each, per round: cp -a + sync (local, the baseline), ferry, rsync to an
# rsync daemon, tar | nc, tar | zstd | nc. Then, per tree, the bytes the
# sender reads from disk (/usr/bin/time %I) with the sender in a memory
# cgroup (v1) limited to a third of the tree's size, tar -c in the same
# cgroup as a reference; ferry's peak RSS on a package of 8 GiB (tree (a)
# hard-linked plus pseudo-random 1 GiB files) next to tree (a); and the
# sender's "first segment on the wire after X s" log line, when it prints
# one. The report is WORK/results/<date>/issue15.md. Options:
#   I15_SCALE=1                scale every size (the trees' bytes, the
#                              number of real and of small files, the big
#                              package): e.g. 0.05 for a quick check; the
#                              trees are cached per scale
#   I15_TOOLS="cp ferry rsync tar zstd"   which transfers to run
#   I15_TREES="a b"            which trees
#   I15_CG_MB=                 the sender's memory limit in MiB (default: a
#                              third of the tree's size)
#   I15_CG_TIMEOUT=            seconds before the sender in the cgroup is
#                              killed (default: 10 times ferry's median on
#                              that tree, at least 60; 600 without one)
#   I15_BIG_GB=8               the big package (before I15_SCALE), GiB
#   SKIP_CGREAD=0              1: skip the bytes-read-in-a-cgroup stage
#   SKIP_BIG=0                 1: skip the big package (skipped anyway,
#                              with a message, if WORK's disk lacks room)
#   RUNS, WORK, FERRY          as above
#
# Before each timed run: the destination is removed, `sync`, and the page
# cache is dropped (echo 3 > /proc/sys/vm/drop_caches, needs root) so every
# tool reads the source cold. CPU time is user+sys of every process of the
# tool on both sides (/usr/bin/time around each); memory is each process's
# max RSS. Only 127.0.0.1 and free ports are used.
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/var/tmp/ferry-bench}
RUNS=${RUNS:-3}
SIZE_GB=${SIZE_GB:-1}
SKIP_4G=${SKIP_4G:-0}
BIG_GB=${BIG_GB:-4}
SKIP_STAGES=${SKIP_STAGES:-0}
SKIP_RESUME=${SKIP_RESUME:-0}
TOOLS=${TOOLS:-"tar zstd rsync ferry"}
FERRY=${FERRY:-$repo/build/ferry}
ISSUE15=${ISSUE15:-0}
I15_SCALE=${I15_SCALE:-1}
I15_TOOLS=${I15_TOOLS:-"cp ferry rsync tar zstd"}
I15_TREES=${I15_TREES:-"a b"}
I15_CG_MB=${I15_CG_MB:-}
I15_CG_TIMEOUT=${I15_CG_TIMEOUT:-}
I15_BIG_GB=${I15_BIG_GB:-8}
SKIP_CGREAD=${SKIP_CGREAD:-0}
SKIP_BIG=${SKIP_BIG:-0}
GiB=1073741824
MiB=1048576

die() { echo "lan.sh: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
now() { date +%s.%N; }

for t in tar nc zstd rsync iperf3 dd jq ss pgrep /usr/bin/time; do
	command -v "$t" >/dev/null || die "needs $t (apt-get install tar netcat-openbsd zstd rsync iperf3 jq iproute2 procps time)"
done
if [ ! -x "$FERRY" ]; then
	log "building ferry"
	(cd "$repo" && cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null &&
		cmake --build build -j"$(nproc)" >/dev/null) || die "build failed"
fi

mkdir -p "$WORK" || die "cannot create $WORK"
WORK=$(cd "$WORK" && pwd)
stamp=$(date -u +%Y%m%dT%H%M%SZ)
OUT=${OUT:-$WORK/results/$stamp}
mkdir -p "$OUT/runs" || die "cannot create $OUT"
DEST=$WORK/dest # every destination lives here, on WORK's file system
# a private copy of the binary: a rebuild of build/ shall not change it mid-run
FERRY_SRC=$FERRY
cp "$FERRY_SRC" "$OUT/ferry" || die "cannot copy $FERRY_SRC"
FERRY=$OUT/ferry
if [[ " $TOOLS " == *" ferry0 "* ]]; then
	[ -x "${FERRY_BASE:-}" ] || die "tool ferry0 needs FERRY_BASE=<a ferry binary>"
	# named ferry too: the receiver is found by its process name
	mkdir -p "$OUT/base" && cp "$FERRY_BASE" "$OUT/base/ferry" || die "cannot copy $FERRY_BASE"
fi
FERRY_REV="$(cd "$repo" && git describe --always --dirty 2>/dev/null), built $(date -u -r "$FERRY_SRC" '+%Y-%m-%d %H:%M UTC'), sha256 $(sha256sum "$FERRY" | cut -c1-16)"

# ---- process bookkeeping ---------------------------------------------------

PIDS=()
CGROUPS=() # memory/blkio cgroup directories this run made
descendants() {
	local c
	for c in $(pgrep -P "$1" 2>/dev/null); do
		descendants "$c"
		echo "$c"
	done
}
killtree() { # kill a process we started and everything under it, by pid
	local p sig=${2:-TERM}
	for p in $(descendants "$1") "$1"; do kill -"$sig" "$p" 2>/dev/null; done
}
cleanup() {
	local p c
	for p in "${PIDS[@]}"; do
		kill -0 "$p" 2>/dev/null && killtree "$p"
	done
	# a sender left in one of our cgroups (it is ours: we put it there)
	for c in "${CGROUPS[@]}"; do
		for p in $(cat "$c/cgroup.procs" 2>/dev/null); do killtree "$p" KILL; done
	done
	wait 2>/dev/null
	for c in "${CGROUPS[@]}"; do
		for p in $(seq 50); do rmdir "$c" 2>/dev/null && break; sleep 0.1; done
		[ -d "$c" ] && echo "lan.sh: could not remove cgroup $c" >&2
	done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null && return
	local p
	while :; do
		p=$((20000 + RANDOM % 30000))
		[ -z "$(ss -Hltn "sport = :$p")" ] && { echo "$p"; return; }
	done
}
wait_listen() { # port [seconds]
	local i
	for i in $(seq $((${2:-10} * 20))); do
		[ -n "$(ss -Hltn "sport = :$1")" ] && return 0
		sleep 0.05
	done
	return 1
}

CACHE_NOTE="page cache dropped before every run (cold reads)"
drop_caches() {
	sync
	if ! { echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then
		CACHE_NOTE="could NOT drop the page cache (not root?): reads may be warm"
	fi
}

# T FILE CMD...: run CMD under /usr/bin/time, "wall user sys maxrss_kb
# inblock" in FILE (inblock: 512-byte blocks read from disk, the process
# and its waited-for children, all their threads)
TFMT='%e %U %S %M %I'
T() {
	local f=$1
	shift
	/usr/bin/time -o "$f" -f "$TFMT" "$@"
}
tfield() { tail -n1 "$1" | awk -v i="$2" '{print $i}'; } # 1 wall 2 user 3 sys 4 rss
cpu_sum() { local f; for f in "$@"; do tail -n1 "$f"; done | awk '{s+=$2+$3} END{printf "%.2f", s}'; }
rss_max() { local f; for f in "$@"; do tail -n1 "$f"; done | awk '$4>m{m=$4} END{printf "%.1f", m/1024}'; }
rd_sum() { local f; for f in "$@"; do tail -n1 "$f"; done | awk '{s+=$5} END{printf "%.0f", s*512}'; } # bytes read
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END{if(NR%2)print a[(NR+1)/2]; else printf "%.3f\n",(a[NR/2]+a[NR/2+1])/2}'; }
fmt() { awk -v x="$1" -v p="${2:-2}" 'BEGIN{printf "%.*f", p, x}'; }
div() { awk -v a="$1" -v b="$2" -v p="${3:-2}" 'BEGIN{if(b>0)printf "%.*f", p, a/b; else printf "-"}'; }

tree_stats() { # DIR -> "files bytes"
	find "$1" -type f -printf '%s\n' | awk '{n++; s+=$1} END{printf "%.0f %.0f\n", n, s}'
}

# ---- the package -------------------------------------------------------------

# A tree of real files from this machine: all of /usr/share and
# /usr/include (many small files), the shared libraries at the top of
# /usr/lib/x86_64-linux-gnu and the programs in /usr/bin (large files).
# Regular files only (no symlinks, devices, fifos, sockets); hard links are
# copied as separate files; set-id bits are cleared. If that is less than
# MIN bytes, it is topped up with files made by concatenating real
# binaries.
blob_sources() { # real binaries of 4 MiB and more, in a fixed order
	find /usr -xdev -type f -size +4M \( -name '*.so*' -o -perm -u+x \) -printf '%p\n' 2>/dev/null | sort
}
make_blobs() { # DIR BYTES: write blob files of up to 1 GiB, BYTES in all
	local dir=$1 left=$2 i=0 n list
	mkdir -p "$dir"
	list=$(mktemp)
	blob_sources >"$list"
	n=$(wc -l <"$list")
	[ "$n" -gt 0 ] || die "no real binaries under /usr to build blobs from"
	while [ "$left" -gt 0 ]; do
		i=$((i + 1))
		local sz=$((left > GiB ? GiB : left))
		# each blob starts at a different place in the list of binaries
		local start=$(((i - 1) * n / 5 % n + 1))
		{ while :; do tail -n +"$start" "$list" || break; head -n $((start - 1)) "$list" || break; done |
			tr '\n' '\0' | xargs -0 cat 2>/dev/null; } |
			head -c "$sz" >"$dir/blob-$(printf %02d $i).bin"
		left=$((left - sz))
	done
	rm -f "$list"
}
build_tree() { # DIR MIN_BYTES
	local dir=$1 min=$2 tmp=$1.tmp list
	rm -rf "$tmp"
	mkdir -p "$tmp"
	list=$(mktemp)
	{
		find /usr/share /usr/include -xdev -type f -print0
		find /usr/lib/x86_64-linux-gnu -maxdepth 1 -type f -name '*.so*' -print0
		find /usr/bin -maxdepth 1 -type f -print0
	} | sed -z 's|^/||' >"$list"
	rsync -a --from0 --files-from="$list" --chmod=ug-s / "$tmp/" ||
		log "rsync reported errors while copying /usr (files vanished?); continuing"
	rm -f "$list"
	set -- $(tree_stats "$tmp")
	local bytes=$2
	if [ "$bytes" -lt "$min" ]; then
		log "topping up with $(((min - bytes) / 1048576)) MiB of concatenated binaries"
		make_blobs "$tmp/big" $((min - bytes))
	fi
	mv "$tmp" "$dir"
}

size_table() { # DIR: file size distribution
	find "$1" -type f -printf '%s\n' | awk '
	BEGIN { split("4096 65536 1048576 16777216 134217728", lim);
		split("< 4 KiB|4-64 KiB|64 KiB-1 MiB|1-16 MiB|16-128 MiB|>= 128 MiB", name, "|") }
	{ for (i = 1; i <= 5 && $1 >= lim[i]; i++); n[i]++; s[i] += $1; N++; S += $1 }
	END { printf "| file size | files | bytes | share of bytes |\n| --- | ---: | ---: | ---: |\n";
	      for (i = 1; i <= 6; i++) printf "| %s | %d | %.1f MiB | %.1f%% |\n", name[i], n[i], s[i]/1048576, 100*s[i]/S;
	      printf "| all | %d | %.1f MiB | 100%% |\n", N, S/1048576 }'
}

# ---- machine -------------------------------------------------------------------

machine_info() { # the lines of machine.txt that do not depend on the package
	local dev disk
	echo "date:        $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "cpus:        $(nproc) x $(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)"
	echo "memory:      $(awk '/^MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
	echo "kernel:      $(uname -sr)"
	echo "work dir:    $WORK"
	df -T "$WORK" | awk 'NR==2{printf "file system: %s %s, %s size, mounted on %s\n", $1, $2, $3"K", $7}'
	dev=$(df --output=source "$WORK" | tail -1)
	disk=$(lsblk -no PKNAME "$dev" 2>/dev/null | head -1)
	[ -n "$disk" ] || disk=$(basename "$dev")
	echo "disk:        $(lsblk -dno NAME,SIZE,ROTA,MODEL "/dev/$disk" 2>/dev/null | awk '{r=($3=="1")?"rotational flag set":"non-rotational"; $3=""; print $0 " (" r ")"}') scheduler $(cat /sys/block/"$disk"/queue/scheduler 2>/dev/null)"
	echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "memlock:     $(ulimit -l)"
	echo "user:        $(id -un)"
	echo "ferry:       $FERRY_REV (copy of $FERRY_SRC)"
	echo "tools:       $(tar --version | head -1); $(zstd --version | sed 's/^\*\*\* //; s/ \*\*\*$//; s/, by.*//'); $(rsync --version | head -1 | sed 's/  */ /g'); $(iperf3 --version | head -1); netcat-openbsd $(dpkg-query -W -f='${Version}' netcat-openbsd 2>/dev/null); $(cp --version | head -1)"
}

# ---- the transfers -------------------------------------------------------------

declare -A WALL CPU RSS RSS_S RSS_R READ FIRST BAD
FSEC="" FLEVEL="" FPHASES=""
RTAG="" # ISSUE15: the tree ("a-", "b-"), before every tool's name in keys and run dirs
RAW=$OUT/raw.tsv
printf 'tool\trun\twall_s\tMB_s\tcpu_s\trss_max_MiB\trss_sender_MiB\trss_receiver_MiB\tcheck\tsender_read_MiB\n' >"$RAW"

check_tree() { # DEST [FILES BYTES]: same file count and bytes as the package?
	local f=${2:-$PKG_FILES} b=${3:-$PKG_BYTES}
	set -- $(tree_stats "$1")
	if [ "$1" = "$f" ] && [ "$2" = "$b" ]; then echo ok; else echo "MISMATCH($1 files $2 bytes)"; fi
}
record() { # tool run wall cpu rss rss_s rss_r check sender-bytes-read
	local k=$RTAG$1
	WALL[$k]+="$3 " CPU[$k]+="$4 " RSS[$k]+="$5 " RSS_S[$k]+="$6 " RSS_R[$k]+="$7 " READ[$k]+="$9 "
	[ "$8" = ok ] || BAD[$k]=$((${BAD[$k]:-0} + 1))
	printf '%s\t%s\t%.3f\t%.1f\t%s\t%s\t%s\t%s\t%s\t%.1f\n' "$k" "$2" "$3" \
		"$(div "$PKG_BYTES" "$(awk -v w="$3" 'BEGIN{print w*1e6}')" 1)" \
		"$4" "$5" "$6" "$7" "$8" "$(div "$9" $MiB 1)" >>"$RAW"
	log "  $k run $2: $(fmt "$3" 2) s, $(div "$PKG_BYTES" "$(awk -v w="$3" 'BEGIN{print w*1e6}')" 0) MB/s, cpu $4 s, rss $5 MiB, sender read $(div "$9" "$PKG_BYTES" 2)x, $8"
}

run_tar() { # run-number; plain tar through nc
	local d=$OUT/runs/${RTAG}tar-$1 dst=$DEST/tar port rpid t0 t1
	mkdir -p "$d"
	rm -rf "$dst" && mkdir -p "$dst"
	port=$(free_port)
	drop_caches
	(T "$d/nc-recv" nc -d -l 127.0.0.1 "$port" | T "$d/tar-x" tar -C "$dst" -xf -) 2>"$d/recv.err" &
	rpid=$!
	PIDS+=("$rpid")
	wait_listen "$port" || die "nc -l did not listen"
	t0=$(now)
	T "$d/tar-c" tar -C "$PKG" -cf - . 2>"$d/send.err" | T "$d/nc-send" nc -q0 127.0.0.1 "$port"
	wait "$rpid"
	T "$d/sync" sync -f "$dst"
	t1=$(now)
	record tar "$1" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')" \
		"$(cpu_sum "$d"/{tar-c,nc-send,nc-recv,tar-x,sync})" \
		"$(rss_max "$d"/{tar-c,nc-send,nc-recv,tar-x})" \
		"$(rss_max "$d"/{tar-c,nc-send})" "$(rss_max "$d"/{nc-recv,tar-x})" "$(check_tree "$dst")" \
		"$(rd_sum "$d"/tar-c)"
	rm -rf "$dst"
}

run_zstd() { # tar | zstd -1 -T0 | nc
	local d=$OUT/runs/${RTAG}zstd-$1 dst=$DEST/zstd port rpid t0 t1
	mkdir -p "$d"
	rm -rf "$dst" && mkdir -p "$dst"
	port=$(free_port)
	drop_caches
	(T "$d/nc-recv" nc -d -l 127.0.0.1 "$port" | T "$d/zstd-d" zstd -d -q |
		T "$d/tar-x" tar -C "$dst" -xf -) 2>"$d/recv.err" &
	rpid=$!
	PIDS+=("$rpid")
	wait_listen "$port" || die "nc -l did not listen"
	t0=$(now)
	T "$d/tar-c" tar -C "$PKG" -cf - . 2>"$d/send.err" | T "$d/zstd-c" zstd -1 -T0 -q |
		T "$d/nc-send" nc -q0 127.0.0.1 "$port"
	wait "$rpid"
	T "$d/sync" sync -f "$dst"
	t1=$(now)
	record zstd "$1" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')" \
		"$(cpu_sum "$d"/{tar-c,zstd-c,nc-send,nc-recv,zstd-d,tar-x,sync})" \
		"$(rss_max "$d"/{tar-c,zstd-c,nc-send,nc-recv,zstd-d,tar-x})" \
		"$(rss_max "$d"/{tar-c,zstd-c,nc-send})" "$(rss_max "$d"/{nc-recv,zstd-d,tar-x})" "$(check_tree "$dst")" \
		"$(rd_sum "$d"/tar-c)"
	rm -rf "$dst"
}

run_rsync() { # rsync -a to an rsync daemon on loopback
	local d=$OUT/runs/${RTAG}rsync-$1 dst=$DEST/rsync port dpid t0 t1 i
	mkdir -p "$d"
	rm -rf "$dst" && mkdir -p "$dst"
	port=$(free_port)
	local ids=""
	[ "$(id -u)" = 0 ] && ids=$'uid = root\ngid = root' # else the daemon runs as nobody
	cat >"$d/rsyncd.conf" <<-CONF
		use chroot = no
		$ids
		log file = $d/rsyncd.log
		[mod]
		path = $dst
		read only = no
	CONF
	# /usr/bin/time itself in the background (not the T function, which
	# would put a subshell between): its child is the daemon
	/usr/bin/time -o "$d/rsyncd" -f "$TFMT" rsync --daemon --no-detach --config="$d/rsyncd.conf" --address=127.0.0.1 --port="$port" 2>"$d/rsyncd.err" &
	dpid=$!
	PIDS+=("$dpid")
	wait_listen "$port" || die "rsync daemon did not listen"
	drop_caches
	t0=$(now)
	T "$d/rsync" rsync -a "$PKG/" "rsync://127.0.0.1:$port/mod/" 2>"$d/rsync.err" || log "rsync failed: $(tail -3 "$d/rsync.err")"
	T "$d/sync" sync -f "$dst"
	t1=$(now)
	# the daemon's per-connection children have exited and been reaped,
	# so its rusage (as /usr/bin/time sees it) covers them
	local daemon
	daemon=$(pgrep -P "$dpid")
	[ "$(cat "/proc/$daemon/comm" 2>/dev/null)" = rsync ] || die "cannot find the rsync daemon under pid $dpid"
	for i in $(seq 100); do [ -z "$(pgrep -P "$daemon")" ] && break; sleep 0.05; done
	kill -TERM "$daemon" 2>/dev/null
	wait "$dpid"
	record rsync "$1" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')" \
		"$(cpu_sum "$d"/{rsync,rsyncd,sync})" \
		"$(rss_max "$d"/{rsync,rsyncd})" \
		"$(rss_max "$d"/rsync)" "$(rss_max "$d"/rsyncd)" "$(check_tree "$dst")" "$(rd_sum "$d"/rsync)"
	rm -rf "$dst"
}

run_cp() { # cp -a then sync: a local copy, no network (the baseline)
	local d=$OUT/runs/${RTAG}cp-$1 dst=$DEST/cp t0 t1
	mkdir -p "$d"
	rm -rf "$dst" && mkdir -p "$dst"
	drop_caches
	t0=$(now)
	T "$d/cp" cp -a "$PKG/." "$dst/" 2>"$d/cp.err" || log "cp failed: $(tail -3 "$d/cp.err")"
	T "$d/sync" sync -f "$dst"
	t1=$(now)
	# one process reads and writes: its RSS is both sides'
	record cp "$1" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')" \
		"$(cpu_sum "$d"/{cp,sync})" "$(rss_max "$d"/cp)" \
		"$(rss_max "$d"/cp)" "$(rss_max "$d"/cp)" "$(check_tree "$dst")" "$(rd_sum "$d"/cp)"
	rm -rf "$dst"
}

ferry_setup() { # DIR: two sites on loopback, fresh stores
	local w=$1
	rm -rf "$w"
	mkdir -p "$w"
	FPORT=$(free_port)
	(umask 077 && printf 'bench-%s%s\n' "$RANDOM" "$RANDOM" >"$w/CEN-at-LAB.pw")
	cat >"$w/lab.conf" <<-CONF
		[site]
		code   = LAB
		store  = $w/lab
		listen = 127.0.0.1:$FPORT

		[account CEN]
		password-file = $w/CEN-at-LAB.pw
	CONF
	cat >"$w/cen.conf" <<-CONF
		[site]
		code  = CEN
		store = $w/cen

		[address LAB lan]
		type          = lan
		host          = 127.0.0.1:$FPORT
		account       = CEN
		password-file = $w/CEN-at-LAB.pw
		priority      = 1
	CONF
}
ferry_serve() { # DIR TIMEFILE: start the receiver; sets SERVE_WRAP, SERVE_PID
	local w=$1 i
	/usr/bin/time -o "$2" -f "$TFMT" "$FERRY" serve --config "$w/lab.conf" 2>"$w/serve.log" &
	SERVE_WRAP=$!
	PIDS+=("$SERVE_WRAP")
	for i in $(seq 200); do grep -q "receiving on" "$w/serve.log" 2>/dev/null && break; sleep 0.05; done
	wait_listen "$FPORT" || die "ferry serve did not listen: $(cat "$w/serve.log")"
	SERVE_PID=$(pgrep -P "$SERVE_WRAP")
	[ "$(cat "/proc/$SERVE_PID/comm" 2>/dev/null)" = ferry ] || die "cannot find ferry serve under pid $SERVE_WRAP"
}
ferry_stop() { # DIR: stop the receiver (SIGTERM) so /usr/bin/time reports it
	SERVE_HWM=$(awk '/^VmHWM/{printf "%.1f", $2/1024}' "/proc/$SERVE_PID/status" 2>/dev/null)
	kill -TERM "$SERVE_PID" 2>/dev/null
	wait "$SERVE_WRAP"
}

# SEND_CG="DIR..." (cgroup directories): run the sender, and its
# /usr/bin/time, in those cgroups; SEND_TIMEOUT=SECONDS: kill it (KILL) then
cg_run() { # "DIR..." CMD...
	local dirs=$1
	shift
	sh -c 'for c in $0; do echo $$ >"$c/cgroup.procs" || exit 125; done; exec "$@"' "$dirs" "$@"
}

run_ferry() { # run-number [package] [label]
	local pkg=${2:-$PKG} tool=${3:-ferry}
	local d=$OUT/runs/$RTAG$tool-$1 w=$DEST/ferry t0 t1 rc pre=() to=()
	mkdir -p "$d"
	ferry_setup "$w"
	ferry_serve "$w" "$d/serve"
	[ -n "${SEND_CG:-}" ] && pre=(cg_run "$SEND_CG")
	[ -n "${SEND_TIMEOUT:-}" ] && to=(timeout --foreground -s KILL "$SEND_TIMEOUT") # --foreground: it waits for the sender, so time counts it
	drop_caches
	t0=$(now)
	"${pre[@]}" /usr/bin/time -o "$d/send" -f "$TFMT" "${to[@]}" \
		"$FERRY" send "$pkg" --to LAB --config "$w/cen.conf" --name pkg --json --no-progress -v \
		>"$d/send.json" 2>"$d/send.log"
	rc=$?
	t1=$(now)
	# the sender's own clock, when it logs it (issue 15): seconds from its start
	local first
	first=$(grep -o 'first segment on the wire after [0-9.]* s' "$d/send.log" | head -n 1 | awk '{print $(NF-1)}')
	FIRST[$RTAG$tool]+="${first:-n/a} "
	LAST_FIRST=${first:-n/a}
	ferry_stop "$w"
	cp "$w/serve.log" "$d/serve.log"
	# phases from the receiver's log (1-second resolution): until the sender
	# connects (its scan), until the receiver has the package's tree ready
	# (handshake, offer, files created), until the package is in place (data)
	local ts tc to tf
	ts=$(awk -v t="$t0" 'BEGIN{printf "%d", t}')
	tc=$(grep -m1 'connected from' "$d/serve.log" | cut -c1-19)
	to=$(grep -m1 'to receive' "$d/serve.log" | cut -c1-19)
	tf=$(grep -m1 'complete and verified' "$d/serve.log" | cut -c1-19)
	if [ -n "$tc" ] && [ -n "$to" ] && [ -n "$tf" ]; then
		tc=$(date -d "$tc" +%s) to=$(date -d "$to" +%s) tf=$(date -d "$tf" +%s)
		echo "scan~$((tc - ts))s prepare~$((to - tc))s data~$((tf - to))s" >"$d/phases"
	else
		echo "?" >"$d/phases"
	fi
	local chk=ok
	[ "$rc" = 0 ] && [ "$(jq -r .ok "$d/send.json" 2>/dev/null)" = true ] ||
		{ chk="FAILED(exit $rc)"; log "ferry send failed: $(tail -5 "$d/send.log")"; }
	[ "$rc" = 137 ] && [ -n "${SEND_TIMEOUT:-}" ] &&
		awk -v a="$t0" -v b="$t1" -v m="$SEND_TIMEOUT" 'BEGIN{exit !(b-a >= m)}' && chk="TIMED-OUT(killed after $SEND_TIMEOUT s)"
	if [ "$chk" = ok ]; then chk=$(check_tree "$w/lab/packages/pkg" $(tree_stats "$pkg")); fi
	echo "$SERVE_HWM" >"$d/serve.vmhwm"
	local wall
	wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')
	local fsec
	fsec=$(jq -r '.seconds // empty' "$d/send.json" 2>/dev/null)
	if [ "$tool" = ferry0 ]; then
		record ferry0 "$1" "$wall" "$(cpu_sum "$d"/{send,serve})" "$(rss_max "$d"/{send,serve})" \
			"$(rss_max "$d"/send)" "$(rss_max "$d"/serve)" "$chk" "$(rd_sum "$d"/send)"
	elif [ "$tool" = ferry ]; then
		FSEC+="${fsec:-0} "
		FPHASES+="$(cat "$d/phases"); "
		FLEVEL+="$(jq -r '.level // empty' "$d/send.json" 2>/dev/null) "
		record ferry "$1" "$wall" "$(cpu_sum "$d"/{send,serve})" "$(rss_max "$d"/{send,serve})" \
			"$(rss_max "$d"/send)" "$(rss_max "$d"/serve)" "$chk" "$(rd_sum "$d"/send)"
	else
		LAST_PHASES=$(cat "$d/phases") LAST_FSEC=${fsec:-0} LAST_WALL=$wall LAST_CPU=$(cpu_sum "$d"/{send,serve}) LAST_CHK=$chk
		LAST_RSS_S=$(rss_max "$d"/send) LAST_RSS_R=$(rss_max "$d"/serve) LAST_READ=$(rd_sum "$d"/send) LAST_DIR=$d
		LAST_ATTEMPTS=$(jq -r '.attempts // empty' "$d/send.json" 2>/dev/null)
	fi
	rm -rf "$w"
}

# ---- physical stages -----------------------------------------------------------

declare -A STAGE
stage_read() {
	local t0 t1
	drop_caches
	t0=$(now)
	tar -C "$PKG" -cf - . | cat >/dev/null # through cat: tar skips reading when writing to /dev/null
	t1=$(now)
	STAGE[read]+="$(awk -v a="$t0" -v b="$t1" -v n="$PKG_BYTES" 'BEGIN{printf "%.1f", n/(b-a)/1e6}') "
}
stage_read_par() { # the same files, 16 readers at once (ferry keeps many reads in flight)
	local t0 t1
	drop_caches
	t0=$(now)
	(cd "$PKG" && find . -type f -print0 | xargs -0 -n 64 -P 16 cat) | cat >/dev/null
	t1=$(now)
	STAGE[readpar]+="$(awk -v a="$t0" -v b="$t1" -v n="$PKG_BYTES" 'BEGIN{printf "%.1f", n/(b-a)/1e6}') "
}
stage_tcp() {
	local port spid
	port=$(free_port)
	iperf3 -s -1 -B 127.0.0.1 -p "$port" >/dev/null 2>&1 &
	spid=$!
	PIDS+=("$spid")
	wait_listen "$port" || die "iperf3 -s did not listen"
	iperf3 -c 127.0.0.1 -p "$port" -t 5 -J >"$OUT/iperf3-$1.json" 2>&1
	wait "$spid"
	STAGE[tcp]+="$(jq '.end.sum_received.bits_per_second/8/1e6*10|floor/10' "$OUT/iperf3-$1.json") "
}
stage_dd() { # direct | fdatasync
	local f=$DEST/ddtest flag t0 t1
	mkdir -p "$DEST"
	rm -f "$f"
	sync
	if [ "$1" = direct ]; then flag="oflag=direct conv=fsync"; else flag="conv=fdatasync"; fi
	t0=$(now)
	dd if=/dev/zero of="$f" bs=8M count=256 $flag 2>"$OUT/dd-$1.log" || log "dd $1 failed: $(cat "$OUT/dd-$1.log")"
	t1=$(now)
	rm -f "$f"
	STAGE[$1]+="$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", 2147483648/(b-a)/1e6}') "
}

# ---- resume --------------------------------------------------------------------

run_resume() {
	local d=$OUT/runs/resume w=$DEST/ferry spid t0 tk t1 nseg j rec=0 i st
	mkdir -p "$d"
	ferry_setup "$w"
	ferry_serve "$w" "$d/serve"
	drop_caches
	t0=$(now)
	"$FERRY" send "$PKG" --to LAB --config "$w/cen.conf" --name pkg --json --no-progress \
		>"$d/send.json" 2>"$d/send.log" &
	spid=$!
	PIDS+=("$spid")
	# segments in the package: from the sender's status once it is known
	nseg=0
	while kill -0 "$spid" 2>/dev/null; do
		nseg=$("$FERRY" status --json --config "$w/cen.conf" 2>/dev/null | jq '[.[]|select(.direction=="out")][0].segments // 0' 2>/dev/null)
		[ "${nseg:-0}" -gt 0 ] 2>/dev/null && break
		sleep 0.1
	done
	# the receiver's journal: a 32-byte header, then 32 bytes per durable segment
	while kill -0 "$spid" 2>/dev/null; do
		j=$(ls "$w"/lab/partial/*/journal 2>/dev/null | head -1)
		if [ -n "$j" ]; then
			rec=$((($(stat -c %s "$j") - 32) / 32))
			[ "$rec" -ge $((nseg / 2)) ] && break
		fi
		sleep 0.02
	done
	kill -9 "$spid" 2>/dev/null
	tk=$(now)
	wait "$spid" 2>/dev/null
	st=$("$FERRY" status --json --config "$w/cen.conf" 2>/dev/null)
	echo "$st" >"$d/status-after-kill.json"
	RES_KILLED_AT=$(awk -v a="$t0" -v b="$tk" 'BEGIN{printf "%.2f", b-a}')
	RES_JOURNAL=$rec RES_NSEG=$nseg
	RES_SENDER_DONE=$(echo "$st" | jq -r '[.[]|select(.direction=="out")][0] | "\(.bytes_done) \(.bytes)"' 2>/dev/null)
	sleep 1 # let the receiver notice the dead connection and drain
	drop_caches
	t0=$(now)
	T "$d/resume" "$FERRY" resume --config "$w/cen.conf" --json --no-progress >"$d/resume.json" 2>"$d/resume.log"
	RES_RC=$?
	t1=$(now)
	RES_WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')
	"$FERRY" verify pkg --config "$w/lab.conf" --json >"$d/verify.json" 2>&1
	RES_VERIFY=$?
	RES_CHECK=$(check_tree "$w/lab/packages/pkg" 2>/dev/null)
	ferry_stop "$w"
	cp "$w/serve.log" "$d/serve.log"
	rm -rf "$w"
	log "  resume: killed at $RES_KILLED_AT s with $RES_JOURNAL/$RES_NSEG segments journaled; resume exit $RES_RC in $(fmt "$RES_WALL" 2) s; verify exit $RES_VERIFY; $RES_CHECK"
}

# ---- issue 15: large packages at the disk's speed ------------------------------

declare -A I15 # per tree ("a-...", "b-...") and per big-package figure
A_TOTAL=1148903751 # tree (a): 1.07 GiB in all (before I15_SCALE)
A_RANDOM=$((512 * MiB + 4 * 32 * MiB + 16 * 8 * MiB))

i15_bytes() { awk -v b="$1" -v s="$I15_SCALE" 'BEGIN{printf "%.0f", b*s}'; } # BYTES * scale
i15_count() { awk -v n="$1" -v s="$I15_SCALE" 'BEGIN{n=int(n*s+0.5); print n<1?1:n}'; }

rand_file() { # FILE BYTES SEED: pseudo-random bytes (AES-CTR of zeros; the same for a seed)
	if command -v openssl >/dev/null; then
		openssl enc -aes-128-ctr -K 00112233445566778899aabbccddeeff -iv "$(printf %032x "$3")" \
			-in /dev/zero 2>/dev/null | head -c "$2" >"$1"
	else
		head -c "$2" /dev/urandom >"$1"
	fi
	[ "$(stat -c %s "$1")" = "$2" ] || die "could not write $2 bytes to $1"
}

usr_pick() { # COUNT BYTES: COUNT real files of /usr, about BYTES in all (paths from /)
	# a fixed shuffle of /usr's files; a file is taken while its size is
	# within 8x of the bytes still wanted per file still wanted
	find /usr -xdev -type f -printf '%s\t%p\n' 2>/dev/null | LC_ALL=C sort -t $'\t' -k2 |
		awk -F '\t' -v cnt="$1" -v bytes="$2" '
		{ sz[NR] = $1; p[NR] = $2 }
		END {
			srand(15)
			for (i = NR; i > 1; i--) {
				j = int(rand() * i) + 1
				t = sz[i]; sz[i] = sz[j]; sz[j] = t; t = p[i]; p[i] = p[j]; p[j] = t
			}
			left = cnt; rem = bytes
			for (i = 1; i <= NR && left > 0; i++) {
				r = rem / left; if (r < 64) r = 64
				if (sz[i] < r / 8 || sz[i] > r * 8) continue
				if (left == 1 && (sz[i] < r / 2 || sz[i] > r * 2)) continue
				print substr(p[i], 2); left--; rem -= sz[i]
			}
		}'
}

i15_build_large() { # DIR: tree (a), large files
	local dir=$1 tmp=$1.tmp i list
	rm -rf "$tmp"
	mkdir -p "$tmp/random" "$tmp/real"
	rand_file "$tmp/random/blob-512m.bin" "$(i15_bytes $((512 * MiB)))" 1
	for i in 1 2 3 4; do
		rand_file "$tmp/random/r32m-$i.bin" "$(i15_bytes $((32 * MiB)))" $((100 + i))
	done
	for i in $(seq -w 1 16); do
		rand_file "$tmp/random/r8m-$i.bin" "$(i15_bytes $((8 * MiB)))" $((200 + 10#$i))
	done
	list=$(mktemp)
	usr_pick "$(i15_count 3252)" "$(i15_bytes $((A_TOTAL - A_RANDOM)))" >"$list"
	rsync -a --files-from="$list" --chmod=ug-s / "$tmp/real/" ||
		log "rsync reported errors while copying /usr (files vanished?); continuing"
	rm -f "$list"
	mv "$tmp" "$dir"
}

i15_build_small() { # DIR: tree (b), small files of 1-8 KiB, 100 per directory
	local dir=$1 tmp=$1.tmp
	command -v python3 >/dev/null || die "the small-file tree needs python3"
	rm -rf "$tmp"
	mkdir -p "$tmp"
	python3 - "$tmp" "$(i15_count 60000)" <<-'PY' || die "could not build $dir"
		import os, random, sys
		root, n = sys.argv[1], int(sys.argv[2])
		rnd = random.Random(15)
		for i in range(n):
		    d = os.path.join(root, "d%02d" % (i // 1000), "d%d" % (i // 100 % 10))
		    if i % 100 == 0:
		        os.makedirs(d, exist_ok=True)
		    with open(os.path.join(d, "f%05d.bin" % i), "wb") as f:
		        f.write(rnd.randbytes(rnd.randint(1024, 8192)))
	PY
	mv "$tmp" "$dir"
}

i15_tree() { # a | b: the tree in PKG (built once, cached), its counts, RTAG
	local t=$1 name
	case $t in
	a) name=large ;; b) name=small ;; *) die "unknown tree '$t' (I15_TREES takes a and b)" ;;
	esac
	PKG=$WORK/data/i15-$name-x$I15_SCALE
	if [ ! -d "$PKG" ]; then
		log "building tree ($t) $PKG (once; cached for later runs)"
		mkdir -p "$WORK/data"
		"i15_build_$name" "$PKG"
	fi
	set -- $(tree_stats "$PKG")
	PKG_FILES=$1 PKG_BYTES=$2 RTAG=$t-
	I15[$t-files]=$1 I15[$t-bytes]=$2 I15[$t-path]=$PKG I15[$t-dirs]=$(find "$PKG" -type d | wc -l)
}

i15_transfers() { # every tool in I15_TOOLS, RUNS rounds, on the current tree
	local r t
	for r in $(seq "$RUNS"); do
		log "tree (${RTAG%-}) transfers, round $r of $RUNS"
		for t in $I15_TOOLS; do
			case $t in
			cp) run_cp "$r" ;; tar) run_tar "$r" ;; zstd) run_zstd "$r" ;;
			rsync) run_rsync "$r" ;; ferry) run_ferry "$r" ;;
			*) die "unknown tool $t (I15_TOOLS takes cp ferry rsync tar zstd)" ;;
			esac
		done
	done
}

# ---- the sender's disk reads in a memory cgroup (v1)

CG=""
cg_new() { # NAME LIMIT_BYTES: a fresh memory cgroup, its path in CG
	local root=/sys/fs/cgroup/memory
	[ -w "$root" ] || die "no writable cgroup v1 memory controller at $root (root needed)"
	CG=$root/ferry-bench-$$-$1
	rmdir "$CG" 2>/dev/null
	mkdir "$CG" || die "cannot create $CG"
	CGROUPS+=("$CG")
	echo "$2" >"$CG/memory.limit_in_bytes" || die "cannot limit $CG to $2 bytes"
}
cg_done() { # KEY DIR: CG's peak usage, failcnt and OOM kills into I15[KEY-...],
	# its memory.stat into DIR; remove CG
	cat "$CG/memory.stat" >"$2/memory.stat" 2>/dev/null
	I15[$1-cgmax]=$(div "$(cat "$CG/memory.max_usage_in_bytes")" $MiB 1)
	I15[$1-cgfail]=$(cat "$CG/memory.failcnt")
	I15[$1-cgoom]=$(awk '/^oom_kill /{print $2}' "$CG/memory.oom_control")
	rmdir "$CG" 2>/dev/null || log "cgroup $CG not removed yet (retried on exit)"
}

i15_read() { # on the current tree: tar -c (one read of each file), then ferry send
	local k=${RTAG}cg d=$OUT/runs/${RTAG}cg-tar lim tmo
	lim=$((PKG_BYTES / 3))
	[ -n "$I15_CG_MB" ] && lim=$((I15_CG_MB * MiB))
	I15[$k-limit]=$lim
	# a sender that thrashes in the cgroup can take hours: stop it after
	# 10 times its unconstrained time (at least 60 s)
	tmo=$I15_CG_TIMEOUT
	if [ -z "$tmo" ]; then
		tmo=600
		[ -n "${WALL[${RTAG}ferry]:-}" ] && tmo=$(awk -v w="$(median ${WALL[${RTAG}ferry]})" 'BEGIN{t=int(10*w+1); print t<60?60:t}')
	fi
	I15[$k-timeout]=$tmo
	log "tree (${RTAG%-}): the sender's reads, in a memory cgroup of $(div "$lim" $MiB 1) MiB"
	mkdir -p "$d"
	cg_new "${RTAG}tar" "$lim"
	drop_caches
	cg_run "$CG" /usr/bin/time -o "$d/tar-c" -f "$TFMT" tar -C "$PKG" -cf - . 2>"$d/tar.err" | cat >/dev/null
	I15[$k-tar-read]=$(rd_sum "$d/tar-c")
	cg_done "$k-tar" "$d"
	cg_new "${RTAG}ferry" "$lim"
	SEND_CG=$CG SEND_TIMEOUT=$tmo run_ferry 1 "$PKG" ferry-cg
	I15[$k-ferry-read]=$LAST_READ I15[$k-ferry-wall]=$LAST_WALL I15[$k-ferry-chk]=$LAST_CHK
	I15[$k-ferry-rss]=$LAST_RSS_S I15[$k-ferry-attempts]=${LAST_ATTEMPTS:-?}
	cg_done "$k-ferry" "$LAST_DIR"
	log "  read / size: tar -c $(div "${I15[$k-tar-read]}" "$PKG_BYTES" 3), ferry send $(div "$LAST_READ" "$PKG_BYTES" 3) ($LAST_CHK; cgroup peak ${I15[$k-ferry-cgmax]} MiB, OOM kills ${I15[$k-ferry-cgoom]:-?})"
}

# ---- ferry's memory on a big package

i15_big() { # tree (a) hard-linked plus pseudo-random 1 GiB files: I15_BIG_GB GiB in all
	local big=$WORK/data/i15-big-${I15_BIG_GB}g-x$I15_SCALE bytes extra need avail i=0 sz
	i15_tree a
	bytes=$(i15_bytes $((I15_BIG_GB * GiB)))
	extra=$((bytes - PKG_BYTES))
	I15[big-bytes]=$bytes
	[ "$extra" -gt 0 ] || { I15[big-skip]="I15_BIG_GB is not larger than tree (a)"; return; }
	# room: the source's new files (unless cached), the receiver's copy, 1 GiB spare
	need=$((bytes + GiB))
	[ -d "$big" ] || need=$((need + extra))
	avail=$(df -B1 --output=avail "$WORK" | tail -n 1)
	if [ "$avail" -lt "$need" ]; then
		I15[big-skip]="not enough room on $WORK: $(div "$avail" $GiB 1) GiB free, $(div "$need" $GiB 1) GiB needed"
		log "skipping the big package: ${I15[big-skip]}"
		return
	fi
	if [ ! -d "$big" ]; then
		log "building the big package $big ($(div "$bytes" $GiB 2) GiB; once, cached)"
		rm -rf "$big.tmp"
		mkdir -p "$big.tmp/extra"
		cp -al "$PKG/." "$big.tmp/" || die "cannot hard-link $PKG into $big.tmp"
		while [ "$extra" -gt 0 ]; do
			i=$((i + 1))
			sz=$((extra > GiB ? GiB : extra))
			rand_file "$big.tmp/extra/big-$(printf %02d $i).bin" "$sz" $((1000 + i))
			extra=$((extra - sz))
		done
		mv "$big.tmp" "$big"
	fi
	set -- $(tree_stats "$big")
	I15[big-files]=$1 I15[big-bytes]=$2 I15[big-path]=$big
	log "ferry on the big package $big ($1 files, $2 bytes)"
	RTAG=""
	run_ferry 1 "$big" ferry-big
	I15[big-wall]=$LAST_WALL I15[big-rss-s]=$LAST_RSS_S I15[big-rss-r]=$LAST_RSS_R
	I15[big-chk]=$LAST_CHK I15[big-first]=$LAST_FIRST I15[big-cpu]=$LAST_CPU
}

# ---- report

med_na() { # median of the numbers among the arguments, or n/a
	local x nums=()
	for x in "$@"; do [[ $x =~ ^[0-9.]+$ ]] && nums+=("$x"); done
	if [ ${#nums[@]} -gt 0 ]; then median "${nums[@]}"; else echo n/a; fi
}
verdict() { # EXPR over a, b (awk) A B: met / NOT met, or "not measured"
	case "$2$3" in *n/a* | *-*) echo "not measured"; return ;; esac
	[ -n "$2" ] && [ -n "$3" ] || { echo "not measured"; return; }
	awk -v a="$2" -v b="$3" "BEGIN{exit !($1)}" && echo "**met**" || echo "**NOT met**"
}
tool_name() {
	case $1 in
	cp) echo 'cp -a + sync (local)' ;; tar) echo 'tar \| nc' ;; zstd) echo 'tar \| zstd -1 -T0 \| nc' ;;
	rsync) echo 'rsync -a to rsync daemon' ;; ferry) echo '**ferry send**' ;; *) echo "$1" ;;
	esac
}
twall() { [ -n "${WALL[$1]:-}" ] && median ${WALL[$1]}; } # KEY: median wall, or nothing

i15_report_times() {
	local t tr w cw cols k
	echo "| tool |$(for tr in $I15_TREES; do printf ' (%s) wall s | (%s) MB/s | (%s) time / cp time |' "$tr" "$tr" "$tr"; done)"
	echo "| --- |$(for tr in $I15_TREES; do printf ' ---: | ---: | ---: |'; done)"
	for t in $I15_TOOLS; do
		cols=""
		for tr in $I15_TREES; do
			w=$(twall "$tr-$t") cw=$(twall "$tr-cp")
			if [ -z "$w" ]; then cols+=" - | - | - |"; continue; fi
			cols+=" $(fmt "$w" 2) | $(div "${I15[$tr-bytes]}" "$(awk -v w="$w" 'BEGIN{print w*1e6}')" 0) |"
			cols+=" $([ -n "$cw" ] && echo "$(div "$w" "$cw" 2)x" || echo -) |"
		done
		echo "| $(tool_name "$t") |$cols"
	done
	echo
	for tr in $I15_TREES; do
		echo "Tree ($tr), details (median of $RUNS; sender read: bytes the sender's processes read from disk, /usr/bin/time %I, no memory limit):"
		echo
		echo "| tool | CPU s (all processes) | sender / receiver peak RSS MiB | sender read / tree | failed checks | every run's wall s |"
		echo "| --- | ---: | ---: | ---: | ---: | --- |"
		for t in $I15_TOOLS; do
			k=$tr-$t
			[ -n "${WALL[$k]:-}" ] || continue
			echo "| $(tool_name "$t") | $(fmt "$(median ${CPU[$k]})" 1) | $(fmt "$(median ${RSS_S[$k]})" 1) / $(fmt "$(median ${RSS_R[$k]})" 1) | $(div "$(median ${READ[$k]})" "${I15[$tr-bytes]}" 3) | ${BAD[$k]:-0} of $RUNS | $(for w in ${WALL[$k]}; do printf '%.2f ' "$w"; done)|"
		done
		echo
	done
}

i15_report_targets() {
	local fa ca fb cb t w r1="" r8
	fa=$(twall a-ferry) ca=$(twall a-cp) fb=$(twall b-ferry) cb=$(twall b-cp)
	echo "## Targets"
	echo
	echo "- (a) ferry time / cp -a+sync time = $(div "$fa" "$ca" 2) (target <= 1.10): $(verdict 'a/b <= 1.10' "$fa" "$ca")"
	for t in rsync tar zstd; do
		w=$(twall "a-$t")
		echo "- (a) ferry faster than $(tool_name $t): $(fmt "${fa:-0}" 2) s against $(fmt "${w:-0}" 2) s: $(verdict 'a < b' "$fa" "$w")"
	done
	echo "- (b) cp -a+sync time / ferry time = $(div "$cb" "$fb" 2) (target >= 1.5): $(verdict 'b/a >= 1.5' "$fb" "$cb")"
	for t in $I15_TREES; do
		[ -n "${I15[$t-cg-ferry-read]:-}" ] || continue
		w=$(verdict 'a/b <= 1.05' "${I15[$t-cg-ferry-read]}" "${I15[$t-bytes]}")
		[ "${I15[$t-cg-ferry-chk]}" = ok ] || w="**NOT met: the send failed** (${I15[$t-cg-ferry-chk]}, OOM kills ${I15[$t-cg-ferry-cgoom]:-?})"
		echo "- ($t) ferry sender's disk reads / tree size, memory limited to $(div "${I15[$t-cg-limit]}" $MiB 0) MiB = $(div "${I15[$t-cg-ferry-read]}" "${I15[$t-bytes]}" 3) (target <= 1.05; tar -c reads $(div "${I15[$t-cg-tar-read]}" "${I15[$t-bytes]}" 3)): $w"
	done
	if [ -n "${RSS_S[a-ferry]:-}" ]; then
		r1=$(printf '%s\n' "$(median ${RSS_S[a-ferry]})" "$(median ${RSS_R[a-ferry]})" | sort -g | tail -n 1)
		echo "- peak RSS, larger of sender and receiver, tree (a): $r1 MiB (target < 128): $(verdict 'a < 128' "$r1" 1)"
	fi
	if [ -n "${I15[big-wall]:-}" ]; then
		r8=$(printf '%s\n' "${I15[big-rss-s]}" "${I15[big-rss-r]}" | sort -g | tail -n 1)
		echo "- peak RSS, larger of sender and receiver, $(div "${I15[big-bytes]}" $GiB 2) GiB package: $r8 MiB (target < 128): $(verdict 'a < 128' "$r8" 1); against tree (a): $(div "$r8" "${r1:-0}" 2)x (flat: within 1.10x): $(verdict 'a <= 1.10 * b' "$r8" "${r1:-n/a}")"
	fi
	w=$(med_na ${FIRST[a-ferry]:-})
	echo "- (a) first segment on the wire after $w s (target <= 1 s): $(verdict 'a <= 1' "$w" 1)"
}

i15_report() {
	local t
	echo "# ferry, issue 15 (large packages at the disk's speed): $stamp"
	echo
	echo '```'
	cat "$OUT/machine.txt"
	echo "load after:  $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "runs:        $RUNS per tool and tree, median reported; $CACHE_NOTE"
	echo "scale:       I15_SCALE=$I15_SCALE"
	echo '```'
	echo
	for t in $I15_TREES; do
		echo "Tree ($t), ${I15[$t-path]}: ${I15[$t-files]} files, ${I15[$t-dirs]} directories, ${I15[$t-bytes]} bytes ($(div "${I15[$t-bytes]}" $GiB 3) GiB)"
		echo
		size_table "${I15[$t-path]}"
		echo
	done
	echo "## Transfers (wall: from the sender's start to the data durable at the destination)"
	echo
	i15_report_times
	if [ "$SKIP_CGREAD" != 1 ]; then
		echo "## The sender's disk reads, sender in a memory cgroup"
		echo
		echo "The sending process (and its /usr/bin/time) in a cgroup v1 memory group limited to the given size; page cache dropped first; bytes read from disk by the sender (/usr/bin/time %I, all threads; includes loading the program itself; the cgroup's memory.stat is in the run's directory). tar -c is one read of every file, for reference: with small files it reads more than the tree's size (whole 4 KiB blocks, inodes, directories), which no sender can avoid."
		echo
		echo "| tree | size MiB | limit MiB | tar -c: read / size | ferry send: read / size | ferry wall s (killed after) | ferry attempts | ferry sender peak RSS MiB | cgroup peak MiB, failcnt, OOM kills (ferry) | check |"
		echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"
		for t in $I15_TREES; do
			[ -n "${I15[$t-cg-limit]:-}" ] || continue
			echo "| ($t) | $(div "${I15[$t-bytes]}" $MiB 1) | $(div "${I15[$t-cg-limit]}" $MiB 1) | $(div "${I15[$t-cg-tar-read]}" "${I15[$t-bytes]}" 3) | **$(div "${I15[$t-cg-ferry-read]}" "${I15[$t-bytes]}" 3)** | $(fmt "${I15[$t-cg-ferry-wall]}" 2) (${I15[$t-cg-timeout]}) | ${I15[$t-cg-ferry-attempts]} | ${I15[$t-cg-ferry-rss]} | ${I15[$t-cg-ferry-cgmax]}, ${I15[$t-cg-ferry-cgfail]}, ${I15[$t-cg-ferry-cgoom]:-?} | ${I15[$t-cg-ferry-chk]} |"
		done
		echo
	fi
	echo "## ferry's peak memory against package size"
	echo
	echo "| package | bytes | files | wall s | sender peak RSS MiB | receiver peak RSS MiB | check |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: | --- |"
	[ -n "${WALL[a-ferry]:-}" ] && echo "| tree (a), median of $RUNS | ${I15[a-bytes]} | ${I15[a-files]} | $(fmt "$(median ${WALL[a-ferry]})" 2) | $(fmt "$(median ${RSS_S[a-ferry]})" 1) | $(fmt "$(median ${RSS_R[a-ferry]})" 1) | ${BAD[a-ferry]:-0} failed |"
	if [ -n "${I15[big-wall]:-}" ]; then
		echo "| tree (a) + pseudo-random files, 1 run | ${I15[big-bytes]} | ${I15[big-files]} | $(fmt "${I15[big-wall]}" 2) | ${I15[big-rss-s]} | ${I15[big-rss-r]} | ${I15[big-chk]} |"
	else
		echo "| $(div "${I15[big-bytes]:-$(i15_bytes $((I15_BIG_GB * GiB)))}" $GiB 2) GiB package | - | - | - | - | - | skipped: ${I15[big-skip]:-not run} |"
	fi
	echo
	echo "## Time to the first segment on the wire"
	echo
	echo "From the sender's log line \"first segment on the wire after X s\" (seconds from the start of its process); n/a: the binary does not print it."
	echo
	echo "| package | every run | median |"
	echo "| --- | --- | ---: |"
	for t in $I15_TREES; do
		[ -n "${FIRST[$t-ferry]:-}" ] && echo "| tree ($t), cold | ${FIRST[$t-ferry]}| $(med_na ${FIRST[$t-ferry]}) |"
	done
	[ -n "${I15[big-first]:-}" ] && echo "| big package, cold | ${I15[big-first]} | ${I15[big-first]} |"
	echo
	i15_report_targets
	echo
	echo "Every run:"
	echo
	echo '```'
	column -t -s $'\t' "$RAW"
	echo '```'
}

issue15_main() {
	local t
	[ "$SKIP_CGREAD" = 1 ] || [ -w /sys/fs/cgroup/memory ] ||
		die "ISSUE15 needs root and cgroup v1's memory controller at /sys/fs/cgroup/memory (or SKIP_CGREAD=1)"
	log "issue 15 targets: trees $I15_TREES, tools $I15_TOOLS, scale $I15_SCALE; results in $OUT"
	{
		machine_info
		for t in $I15_TREES; do
			i15_tree "$t"
			echo "tree ($t):    $PKG: $PKG_FILES files, ${I15[$t-dirs]} directories, $PKG_BYTES bytes ($(div "$PKG_BYTES" $GiB 3) GiB)"
		done
	} >"$OUT/machine.txt"
	cat "$OUT/machine.txt" >&2
	for t in $I15_TREES; do
		i15_tree "$t"
		i15_transfers
	done
	if [ "$SKIP_CGREAD" != 1 ]; then
		for t in $I15_TREES; do
			i15_tree "$t"
			i15_read
		done
	fi
	if [ "$SKIP_BIG" != 1 ]; then i15_big; else I15[big-skip]="SKIP_BIG=1"; fi
	RTAG=""
	i15_report >"$OUT/issue15.md"
	echo
	cat "$OUT/issue15.md"
	echo
	echo "(results, logs and per-process timings in $OUT)"
}

if [ "$ISSUE15" = 1 ]; then
	issue15_main
	exit 0
fi

# ---- the package, the machine ----------------------------------------------------

if [ -n "${SRC:-}" ]; then
	PKG=$(cd "$SRC" && pwd) || die "no $SRC"
else
	PKG=$WORK/data/pkg-${SIZE_GB}g
	if [ ! -d "$PKG" ]; then
		log "building the package $PKG (once; cached for later runs)"
		mkdir -p "$WORK/data"
		build_tree "$PKG" $((SIZE_GB * GiB))
	fi
fi
set -- $(tree_stats "$PKG")
PKG_FILES=$1 PKG_BYTES=$2
PKG_DIRS=$(find "$PKG" -type d | wc -l)
[ -z "$(find "$PKG" ! -type f ! -type d -print -quit)" ] ||
	log "warning: $PKG holds entries that are neither files nor directories"
log "package $PKG: $PKG_FILES files, $PKG_DIRS directories, $PKG_BYTES bytes"
{
	machine_info
	echo "package:     $PKG: $PKG_FILES files, $PKG_DIRS directories, $PKG_BYTES bytes ($(div "$PKG_BYTES" $GiB 2) GiB)"
} >"$OUT/machine.txt"
size_table "$PKG" >"$OUT/sizes.md"
cat "$OUT/machine.txt" >&2

# ---- the run -------------------------------------------------------------------

log "results in $OUT"
if [ "$SKIP_STAGES" != 1 ]; then
	for r in $(seq "$RUNS"); do
		log "physical stages, round $r"
		stage_read
		stage_read_par
		stage_tcp "$r"
		stage_dd direct
		stage_dd fdatasync
	done
fi
for r in $(seq "$RUNS"); do # rounds: every tool once per round, spreading the noise
	log "transfers, round $r of $RUNS"
	for t in $TOOLS; do
		case $t in
		tar) run_tar "$r" ;; zstd) run_zstd "$r" ;; rsync) run_rsync "$r" ;; ferry) run_ferry "$r" ;;
		ferry0) # the same run with the other binary, on both sides
			FERRY_MAIN=$FERRY FERRY=$OUT/base/ferry
			run_ferry "$r" "$PKG" ferry0
			FERRY=$FERRY_MAIN ;;
		*) die "unknown tool $t" ;;
		esac
	done
done
HAVE_4G=0
if [ "$SKIP_4G" != 1 ] && [[ " $TOOLS " == *" ferry "* ]]; then
	BIGPKG=$WORK/data/pkg-${BIG_GB}g
	if [ ! -d "$BIGPKG" ]; then
		log "building the ${BIG_GB} GiB package $BIGPKG (the package, hard-linked, plus concatenated binaries)"
		rm -rf "$BIGPKG.tmp"
		mkdir -p "$BIGPKG.tmp"
		cp -al "$PKG/." "$BIGPKG.tmp/"
		make_blobs "$BIGPKG.tmp/big-extra" $((BIG_GB * GiB - PKG_BYTES))
		mv "$BIGPKG.tmp" "$BIGPKG"
	fi
	set -- $(tree_stats "$BIGPKG")
	BIG_FILES=$1 BIG_BYTES=$2
	log "ferry on $BIGPKG ($BIG_FILES files, $BIG_BYTES bytes)"
	run_ferry 1 "$BIGPKG" ferry-big
	BIG_PHASES=$LAST_PHASES BIG_WALL=$LAST_WALL BIG_CPU=$LAST_CPU BIG_RSS_S=$LAST_RSS_S BIG_RSS_R=$LAST_RSS_R BIG_CHK=$LAST_CHK
	HAVE_4G=1
fi
HAVE_RESUME=0
if [ "$SKIP_RESUME" != 1 ] && [[ " $TOOLS " == *" ferry "* ]]; then
	log "resume: kill -9 the sender at ~50%, then ferry resume"
	run_resume
	HAVE_RESUME=1
fi

# ---- report --------------------------------------------------------------------

{
	echo "# ferry LAN benchmark, $stamp"
	echo
	echo '```'
	cat "$OUT/machine.txt"
	echo "load after:  $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "runs:        $RUNS per tool, median reported; $CACHE_NOTE"
	echo '```'
	echo
	cat "$OUT/sizes.md"
	echo
	mb() { div "$PKG_BYTES" "$(awk -v w="$1" 'BEGIN{print w*1e6}')" 0; }
	FW=""
	[ -n "${WALL[ferry]:-}" ] && FW=$(median ${WALL[ferry]})
	echo "| tool | wall s | MB/s | CPU s (user+sys, all processes) | peak RSS MiB (largest process) | sender / receiver peak RSS MiB | ferry speed-up (tool time / ferry time) |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
	for t in $TOOLS; do
		[ -n "${WALL[$t]:-}" ] || continue
		w=$(median ${WALL[$t]})
		case $t in
		tar) name='tar \| nc' ;; zstd) name='tar \| zstd -1 -T0 \| nc' ;; rsync) name='rsync -a to rsync daemon' ;; ferry) name='**ferry send**' ;;
		ferry0) name="ferry send, $("$OUT/base/ferry" version 2>/dev/null | head -n 1) (FERRY_BASE)" ;;
		esac
		ratio="-"
		[ -n "$FW" ] && [ "$t" != ferry ] && ratio="$(div "$w" "$FW" 2)x"
		echo "| $name | $(fmt "$w" 2) | $(mb "$w") | $(fmt "$(median ${CPU[$t]})" 1) | $(fmt "$(median ${RSS[$t]})" 1) | $(fmt "$(median ${RSS_S[$t]})" 1) / $(fmt "$(median ${RSS_R[$t]})" 1) | $ratio |"
	done
	echo
	echo "Every run (wall from the sender's start to the data being durable at the destination):"
	echo
	echo '```'
	column -t -s $'\t' "$RAW"
	echo '```'
	if [ -n "$FSEC" ]; then
		echo
		echo "ferry send: the scan (walk the tree, read and hash every segment to build the manifest) comes first;" \
			"its JSON 'seconds' (the transfer after the scan) was: $FSEC(median $(median $FSEC) s of $(fmt "$FW" 2) s wall); last level used per run: $FLEVEL"
		echo
		echo "ferry phases per run, from the receiver's log (1 s resolution; scan = send start to connect," \
			"prepare = connect to the receiver having created the package's files, data = until the package is in place): $FPHASES"
	fi
	if [ "$SKIP_STAGES" != 1 ]; then
		echo
		echo "| physical stage | MB/s (median of $RUNS) | all runs |"
		echo "| --- | ---: | --- |"
		echo "| source read, cold, sequential (tar -cf - . \| cat) | $(median ${STAGE[read]}) | ${STAGE[read]} |"
		echo "| source read, cold, 16 readers (find \| xargs -P16 cat) | $(median ${STAGE[readpar]}) | ${STAGE[readpar]} |"
		echo "| loopback TCP, 1 stream (iperf3 -t 5) | $(median ${STAGE[tcp]}) | ${STAGE[tcp]} |"
		echo "| durable write, O_DIRECT (dd 2 GiB oflag=direct conv=fsync) | $(median ${STAGE[direct]}) | ${STAGE[direct]} |"
		echo "| durable write, buffered (dd 2 GiB conv=fdatasync) | $(median ${STAGE[fdatasync]}) | ${STAGE[fdatasync]} |"
		if [ -n "$FW" ]; then
			fm=$(div "$PKG_BYTES" "$(awk -v w="$FW" 'BEGIN{print w*1e6}')" 1)
			pct() { # label stage...: ferry as a percentage of the slowest of these stages
				local label=$1 slow
				shift
				slow=$(for x in "$@"; do echo "$x $(median ${STAGE[$x]})"; done | sort -k2 -g | head -1)
				echo "- $label: slowest is ${slow% *} at ${slow#* } MB/s; ferry's $fm MB/s is **$(div "$(awk -v a="$fm" 'BEGIN{print a*100}')" "${slow#* }" 0)%** of it"
			}
			echo
			echo "ferry's throughput against the slowest physical stage (target >= 80%):"
			echo
			pct "stages as specified (sequential read, TCP, both durable writes)" read tcp direct fdatasync
			pct "sequential read, TCP, O_DIRECT write only" read tcp direct
			pct "parallel read, TCP, both durable writes" readpar tcp direct fdatasync
			pct "parallel read, TCP, O_DIRECT write only" readpar tcp direct
		fi
	fi
	if [ "$HAVE_4G" = 1 ]; then
		echo
		echo "| ferry package | bytes | files | wall s | MB/s | CPU s | sender peak RSS MiB | receiver peak RSS MiB |"
		echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
		[ -n "$FW" ] && echo "| $(div "$PKG_BYTES" $GiB 2) GiB (median of $RUNS) | $PKG_BYTES | $PKG_FILES | $(fmt "$FW" 2) | $(mb "$FW") | $(fmt "$(median ${CPU[ferry]})" 1) | $(fmt "$(median ${RSS_S[ferry]})" 1) | $(fmt "$(median ${RSS_R[ferry]})" 1) |"
		echo "| $(div "$BIG_BYTES" $GiB 2) GiB (1 run, $BIG_CHK; transfer after scan $LAST_FSEC s; $BIG_PHASES) | $BIG_BYTES | $BIG_FILES | $(fmt "$BIG_WALL" 2) | $(div "$BIG_BYTES" "$(awk -v w="$BIG_WALL" 'BEGIN{print w*1e6}')" 0) | $BIG_CPU | $BIG_RSS_S | $BIG_RSS_R |"
	fi
	if [ "$HAVE_RESUME" = 1 ]; then
		echo
		echo "Resume: the sender was killed (kill -9) $RES_KILLED_AT s after it started, with $RES_JOURNAL of $RES_NSEG segments in the receiver's journal (sender's status then: bytes_done/bytes = ${RES_SENDER_DONE:-?})."
		echo "\`ferry resume\` (page cache dropped first) took $(fmt "$RES_WALL" 2) s, exit $RES_RC; $(jq -r '.transfers[0] | "sent \(.segments_sent) segments, skipped \(.segments_skipped) (\(.skipped_bytes) bytes)"' "$OUT/runs/resume/resume.json" 2>/dev/null); verify exit $RES_VERIFY; tree $RES_CHECK."
		[ -n "$FW" ] && echo "Resume time / full transfer time (median) = $(fmt "$RES_WALL" 2) / $(fmt "$FW" 2) = $(div "$(awk -v a="$RES_WALL" 'BEGIN{print a*100}')" "$FW" 0)% (target < 60%)."
	fi
} >"$OUT/summary.md"

echo
cat "$OUT/summary.md"
echo
echo "(results, logs and per-process timings in $OUT)"
