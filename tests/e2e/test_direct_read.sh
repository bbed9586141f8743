#!/bin/bash
# test_direct_read.sh - the sender reads the block-aligned middle of large
# extents O_DIRECT, the rest buffered, and what arrives is byte-identical:
#
#  - a tree on the work dir's file system (ext4 here) whose large files
#    start at stream offsets off a block (a small file before each), with
#    sizes off a block, spanning segments, and the last one ending the
#    last segment (its O_DIRECT read rounded up past the file's end);
#  - the same as a single file;
#  - the same tree on a ramfs, which refuses O_DIRECT: every file falls
#    back to buffered reads; and on a tmpfs (which takes O_DIRECT since
#    Linux 6.6, and refused it before);
#  - a large file that shrinks while it is sent: "source changed"; and
#    a small one among a thousand in one segment, at once;
#  - a tree in the page cache is read from there, not O_DIRECT (Linux
#    6.5 and later: cachestat);
#  - the smallest segment size (4 KiB): the shifted segment fits its
#    buffer.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init test_direct_read

SRC=$WORK/src
mkdir -p "$SRC/d"
printf 'a small file first: the next one starts off a block\n' >"$SRC/a.txt"
head -c $((5 * 1024 * 1024 + 12345)) /dev/urandom >"$SRC/b.bin"
head -c 777 /dev/urandom >"$SRC/c.small"
binary_data "$SRC/d/e.dat" $((3 * 1024 * 1024 + 4097))
for i in $(seq 1 30); do head -c $((i * 311)) /dev/urandom >"$SRC/d/f$i"; done
# sorted last: it ends the last segment, at a size off a block
head -c $((2 * 1024 * 1024 + 1001)) /dev/urandom >"$SRC/z.bin"
SENDER_EXTRA="segment-size = 2M"
write_configs
start_serve

# evict DIR: DIR's files leave the page cache (a file mostly there is
# read buffered, from it)
evict() {
	sync
	find "$1" -type f -exec dd if={} iflag=nocache count=0 status=none \;
}

fs=$(stat -f -c %T "$SRC")
direct_ok=1
case $fs in tmpfs | ramfs | overlayfs) direct_ok=0 ;; esac

# send_check NAME SRC: send SRC as NAME (-v), compare, set DIO (MiB read
# O_DIRECT)
send_check() {
	local name=$1 src=$2
	run_ferry "$WORK/$name.out" "$WORK/$name.err" send "$src" --to LAB \
		--name "$name" --config "$CEN_CONF" -v
	expect_rc 0 "$RC" "send of $name"
	if [ -d "$src" ]; then
		compare_trees "$src" "$LAB_STORE/packages/$name" "$name"
	elif cmp "$src" "$LAB_STORE/packages/$name/${src##*/}" >/dev/null 2>&1; then
		pass "$name: the file arrived byte-identical"
	else
		fail "$name: the file differs from the source"
	fi
	DIO=$(sed -n 's/.*source read: \([0-9.]*\) MiB with O_DIRECT.*/\1/p' \
		"$WORK/$name.err" | tail -n 1)
	[ -n "$DIO" ] || fail "$name: the sender did not say how it read (-v)"
}

evict "$SRC"
send_check ext-tree "$SRC"
if [ "$direct_ok" = 1 ]; then
	# b.bin and z.bin whole but for their ends, e.dat lines up in its
	# segments or not: at least 7 of the 10.2 MiB
	check "$fs: the large files' middles were read O_DIRECT (${DIO:-?} MiB)" \
		awk -v d="${DIO:-0}" 'BEGIN { exit !(d >= 7) }'
else
	log "NOTE: $SRC is on $fs, which refuses O_DIRECT: only the fallback is tested here"
fi

# a single file, its size off a block: its last read goes to its end
evict "$SRC"
send_check ext-file "$SRC/b.bin"
[ "$direct_ok" = 1 ] &&
	check "$fs: the single file was read O_DIRECT (${DIO:-?} MiB)" \
		awk -v d="${DIO:-0}" 'BEGIN { exit !(d >= 5) }'

# a ramfs source: O_DIRECT refused at the open, every file buffered
RAM=$WORK/ram
mkdir -p "$RAM"
if mount -t ramfs ramfs "$RAM" 2>"$WORK/mount.err"; then
	E2E_MOUNTS+=("$RAM")
	cp -a "$SRC" "$RAM/src"
	send_check ramfs-tree "$RAM/src"
	check "ramfs: nothing was read O_DIRECT (${DIO:-?} MiB)" [ "${DIO:-x}" = 0.0 ]
	send_check ramfs-file "$RAM/src/z.bin"
	check "ramfs: nothing of the file was read O_DIRECT (${DIO:-?} MiB)" \
		[ "${DIO:-x}" = 0.0 ]
	umount "$RAM"
else
	log "NOTE: no ramfs ($(cat "$WORK/mount.err")): the refusal of O_DIRECT is not tested"
fi
# a tmpfs source (/dev/shm)
SHM=$(mktemp -d /dev/shm/ferry-test_direct_read.XXXXXX) || die "no /dev/shm"
trap 'rm -rf "$SHM"; e2e_cleanup' EXIT
cp -a "$SRC" "$SHM/src"
send_check tmpfs-tree "$SHM/src"
rm -rf "$SHM"

# a large file that shrinks, off a block, while it is sent (the line
# slowed so that its later segments are read after the cut): the
# O_DIRECT read ends early, and the send fails with "source changed"
stop_serve
SENDER_EXTRA="segment-size = 1M"
SENDER_RETRIES=0
write_configs
start_serve
SH=$WORK/shrink
mkdir -p "$SH"
printf 'before it: the big file starts off a block\n' >"$SH/a.txt"
head -c $((24 * 1024 * 1024 + 777)) /dev/urandom >"$SH/big.bin"
evict "$SH"
via_proxy "$WORK/proxy.log" --rate $((1024 * 1024))
"$FERRY" send "$SH" --name shrink --to LAB --config "$CEN_CONF" -v \
	>"$WORK/shrink.out" 2>"$WORK/shrink.err" &
SPID=$!
E2E_PIDS+=("$SPID")
wait_held shrink 2 60 "$SPID" || fail "the receiver never held 2 segments while the sender ran ($HELD)"
truncate -s $((14 * 1024 * 1024 + 1001)) "$SH/big.bin"
rc=0
wait "$SPID" || rc=$?
check "the send of a file that shrank fails (rc $rc)" [ "$rc" != 0 ]
expect_grep "the sender says the source changed, and which file" \
	"big\.bin.*(changed|shr)|(changed|shr).*big\.bin" "$WORK/shrink.err"
stop_proxy

# a small file that shrinks in a segment of a thousand files: more reads
# than may be in flight at once, the rest of them still waiting when the
# short read comes back. The send fails at once naming the file (it used
# to wait for reads that were never to be submitted, until the stall
# check called the link dead)
SM=$WORK/shrink_small
mkdir -p "$SM/s"
head -c $((16 * 1024 * 1024)) /dev/urandom >"$SM/a.bin"
for i in $(seq -w 1000 1999); do head -c 1000 /dev/urandom >"$SM/s/$i"; done
evict "$SM"
via_proxy "$WORK/proxy2.log" --rate $((2 * 1024 * 1024))
t0=$(date +%s)
"$FERRY" send "$SM" --name shrink_small --to LAB --config "$CEN_CONF" -v \
	>"$WORK/shrink_small.out" 2>"$WORK/shrink_small.err" &
SPID=$!
E2E_PIDS+=("$SPID")
wait_held shrink_small 2 60 "$SPID" || fail "the receiver never held 2 segments while the sender ran ($HELD)"
truncate -s 500 "$SM/s/1005"
rc=0
wait "$SPID" || rc=$?
took=$(($(date +%s) - t0))
check "the send of a small file that shrank fails (rc $rc)" [ "$rc" != 0 ]
expect_grep "the sender names the small file that changed" \
	"s/1005.*(changed|shr)|(changed|shr).*s/1005" "$WORK/shrink_small.err"
check "and says so without waiting for a stall ($took s)" [ "$took" -lt 30 ]
stop_proxy
CEN_HOST=
SENDER_RETRIES=2
write_configs

# a tree in the page cache: read from there (cachestat, Linux 6.5)
cat $(find "$SRC" -type f) >/dev/null
send_check cached-tree "$SRC"
kv=$(uname -r | awk -F. '{ print $1 * 1000 + $2 }')
if [ "$kv" -ge 6005 ]; then
	check "a tree in the page cache is read from there (${DIO:-?} MiB O_DIRECT)" \
		[ "${DIO:-x}" = 0.0 ]
fi

# the smallest segments: every one shifted, none O_DIRECT (all under
# 64 KiB), all of them fit
stop_serve
SENDER_EXTRA="segment-size = 4K"
write_configs
start_serve
mkdir -p "$WORK/s4k"
cp "$SRC/a.txt" "$SRC/c.small" "$SRC/d/f2"* "$WORK/s4k/"
head -c $((96 * 1024 + 5)) /dev/urandom >"$WORK/s4k/m.bin"
send_check seg4k "$WORK/s4k"

e2e_finish
