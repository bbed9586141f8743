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
GiB=1073741824

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
	local p
	for p in "${PIDS[@]}"; do
		kill -0 "$p" 2>/dev/null && killtree "$p"
	done
	wait 2>/dev/null
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

# T FILE CMD...: run CMD under /usr/bin/time, "wall user sys maxrss_kb" in FILE
TFMT='%e %U %S %M'
T() {
	local f=$1
	shift
	/usr/bin/time -o "$f" -f "$TFMT" "$@"
}
tfield() { tail -n1 "$1" | awk -v i="$2" '{print $i}'; } # 1 wall 2 user 3 sys 4 rss
cpu_sum() { local f; for f in "$@"; do tail -n1 "$f"; done | awk '{s+=$2+$3} END{printf "%.2f", s}'; }
rss_max() { local f; for f in "$@"; do tail -n1 "$f"; done | awk '$4>m{m=$4} END{printf "%.1f", m/1024}'; }
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

# ---- machine -------------------------------------------------------------------

{
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
	echo "tools:       $(tar --version | head -1); $(zstd --version | sed 's/^\*\*\* //; s/ \*\*\*$//; s/, by.*//'); $(rsync --version | head -1 | sed 's/  */ /g'); $(iperf3 --version | head -1); netcat-openbsd $(dpkg-query -W -f='${Version}' netcat-openbsd 2>/dev/null)"
	echo "package:     $PKG: $PKG_FILES files, $PKG_DIRS directories, $PKG_BYTES bytes ($(div "$PKG_BYTES" $GiB 2) GiB)"
} >"$OUT/machine.txt"
size_table "$PKG" >"$OUT/sizes.md"
cat "$OUT/machine.txt" >&2

# ---- the transfers -------------------------------------------------------------

declare -A WALL CPU RSS RSS_S RSS_R
FSEC="" FLEVEL="" FPHASES=""
RAW=$OUT/raw.tsv
printf 'tool\trun\twall_s\tMB_s\tcpu_s\trss_max_MiB\trss_sender_MiB\trss_receiver_MiB\tcheck\n' >"$RAW"

check_tree() { # DEST [FILES BYTES]: same file count and bytes as the package?
	local f=${2:-$PKG_FILES} b=${3:-$PKG_BYTES}
	set -- $(tree_stats "$1")
	if [ "$1" = "$f" ] && [ "$2" = "$b" ]; then echo ok; else echo "MISMATCH($1 files $2 bytes)"; fi
}
record() { # tool run wall cpu rss rss_s rss_r check
	WALL[$1]+="$3 " CPU[$1]+="$4 " RSS[$1]+="$5 " RSS_S[$1]+="$6 " RSS_R[$1]+="$7 "
	printf '%s\t%s\t%.3f\t%.1f\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" \
		"$(div "$PKG_BYTES" "$(awk -v w="$3" 'BEGIN{print w*1e6}')" 1)" \
		"$4" "$5" "$6" "$7" "$8" >>"$RAW"
	log "  $1 run $2: $(fmt "$3" 2) s, $(div "$PKG_BYTES" "$(awk -v w="$3" 'BEGIN{print w*1e6}')" 0) MB/s, cpu $4 s, rss $5 MiB, $8"
}

run_tar() { # run-number; plain tar through nc
	local d=$OUT/runs/tar-$1 dst=$DEST/tar port rpid t0 t1
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
		"$(rss_max "$d"/{tar-c,nc-send})" "$(rss_max "$d"/{nc-recv,tar-x})" "$(check_tree "$dst")"
	rm -rf "$dst"
}

run_zstd() { # tar | zstd -1 -T0 | nc
	local d=$OUT/runs/zstd-$1 dst=$DEST/zstd port rpid t0 t1
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
		"$(rss_max "$d"/{tar-c,zstd-c,nc-send})" "$(rss_max "$d"/{nc-recv,zstd-d,tar-x})" "$(check_tree "$dst")"
	rm -rf "$dst"
}

run_rsync() { # rsync -a to an rsync daemon on loopback
	local d=$OUT/runs/rsync-$1 dst=$DEST/rsync port dpid t0 t1 i
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
		"$(rss_max "$d"/rsync)" "$(rss_max "$d"/rsyncd)" "$(check_tree "$dst")"
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

run_ferry() { # run-number [package] [label]
	local pkg=${2:-$PKG} tool=${3:-ferry}
	local d=$OUT/runs/$tool-$1 w=$DEST/ferry t0 t1 rc
	mkdir -p "$d"
	ferry_setup "$w"
	ferry_serve "$w" "$d/serve"
	drop_caches
	t0=$(now)
	T "$d/send" "$FERRY" send "$pkg" --to LAB --config "$w/cen.conf" --name pkg --json --no-progress \
		>"$d/send.json" 2>"$d/send.log"
	rc=$?
	t1=$(now)
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
	if [ "$chk" = ok ]; then chk=$(check_tree "$w/lab/packages/pkg" $(tree_stats "$pkg")); fi
	echo "$SERVE_HWM" >"$d/serve.vmhwm"
	local wall
	wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')
	local fsec
	fsec=$(jq -r '.seconds // empty' "$d/send.json" 2>/dev/null)
	if [ "$tool" = ferry0 ]; then
		record ferry0 "$1" "$wall" "$(cpu_sum "$d"/{send,serve})" "$(rss_max "$d"/{send,serve})" \
			"$(rss_max "$d"/send)" "$(rss_max "$d"/serve)" "$chk"
	elif [ "$tool" = ferry ]; then
		FSEC+="${fsec:-0} "
		FPHASES+="$(cat "$d/phases"); "
		FLEVEL+="$(jq -r '.level // empty' "$d/send.json" 2>/dev/null) "
		record ferry "$1" "$wall" "$(cpu_sum "$d"/{send,serve})" "$(rss_max "$d"/{send,serve})" \
			"$(rss_max "$d"/send)" "$(rss_max "$d"/serve)" "$chk"
	else
		LAST_PHASES=$(cat "$d/phases") LAST_FSEC=${fsec:-0} LAST_WALL=$wall LAST_CPU=$(cpu_sum "$d"/{send,serve}) LAST_CHK=$chk
		LAST_RSS_S=$(rss_max "$d"/send) LAST_RSS_R=$(rss_max "$d"/serve)
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
