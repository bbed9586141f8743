#!/bin/bash
# test_one_read.sh - the sender reads its source once: segments go while
# the rest is still being read and hashed, the package id is settled at
# the end (TABLE), and everything around it still holds:
#
#  - a kill -9 of the sender before the last segment is hashed; a new
#    `ferry send` of the same source reads only what the receiver does not
#    hold (the hashes it kept travel ahead in the offer) and ends
#    byte-identical;
#  - a kill -9 of the receiver before the last segment is hashed; the
#    sender's retries end byte-identical;
#  - a source file changed after its segment was sent: "source changed",
#    nothing incomplete becomes visible at the receiver, the next send
#    carries the new version;
#  - a second send of a source the receiver holds reads no file data and
#    sends no segment;
#  - a sender that lost what it kept (its transfer forgotten) still ends
#    byte-identical at a receiver holding part of the package.
#
# The link runs through a throttling proxy so that the kills land while
# the sender is still reading.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init test_one_read

SRC=$WORK/src
mkdir -p "$SRC"
# sorted first: a.bin holds segment 0
head -c $((12 * 1024 * 1024)) /dev/urandom >"$SRC/a.bin"
mkdir -p "$SRC/lib" "$SRC/etc"
binary_data "$SRC/lib/b.dat" $((10 * 1024 * 1024))
for i in $(seq 1 40); do
	head -c $((1000 + i * 377)) /dev/urandom >"$SRC/etc/f$i"
done
ln -s ../lib/b.dat "$SRC/etc/link"
SIZE=$(find "$SRC" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
log "package: $SIZE bytes"

SENDER_EXTRA="segment-size = 1M"
SENDER_RETRIES=8
write_proxy

# run_case N: fresh stores, a receiver and a proxy at RATE bytes/s
run_case() {
	local n=$1 rate=$2
	LAB_STORE=$WORK/c$n/lab
	CEN_STORE=$WORK/c$n/cen
	SERVE_LOG=$WORK/c$n/serve.log
	PLOG=$WORK/c$n/proxy.log
	mkdir -p "$WORK/c$n"
	stop_serve
	stop_proxy
	PROXY_PORT=
	CEN_HOST=
	write_configs
	start_serve
	start_proxy "$PLOG" --rate "$rate"
	CEN_HOST=127.0.0.1:$PROXY_PORT
	write_configs
}

# the sender's transfer of NAME: its manifest still open (flags bit 0)
# and its kept hashes there: it had not hashed every segment
sender_open() {
	python3 - "$CEN_STORE/outgoing" "$1" <<'EOF'
import os, struct, sys
base, name = sys.argv[1], sys.argv[2]
for d in os.listdir(base):
    p = os.path.join(base, d)
    try:
        t = open(os.path.join(p, "transfer")).read()
    except OSError:
        continue
    if "name=%s\n" % name not in t:
        continue
    m = open(os.path.join(p, "manifest"), "rb").read(8)
    flags = struct.unpack("<H", m[6:8])[0]
    kept = os.path.getsize(os.path.join(p, "hashes")) // 24 \
        if os.path.exists(os.path.join(p, "hashes")) else -1
    print("open" if flags & 1 else "complete", kept)
    sys.exit(0)
print("none -1")
EOF
}

# send_straight NAME TAG: ferry send of $SRC as NAME, straight to the
# receiver (no proxy), JSON in $WORK/TAG.json; sets RC
send_straight() {
	CEN_HOST=
	write_configs
	run_ferry "$WORK/$2.json" "$WORK/$2.err" send "$SRC" --name "$1" --to LAB \
		--config "$CEN_CONF" --json --level 0
}

start_send() { # NAME LOG...: ferry send in the background, pid in SPID
	local name=$1 tag=$2
	"$FERRY" send "$SRC" --name "$name" --to LAB --config "$CEN_CONF" \
		--json --level 0 >"$WORK/$tag.json" 2>"$WORK/$tag.err" &
	SPID=$!
	E2E_PIDS+=("$SPID")
}

# ---- 1: kill -9 the sender before the last segment is hashed ----------------
run_case 1 $((3 * 1024 * 1024))
start_send pkg send1
if ! wait_held pkg 4 60 "$SPID"; then
	fail "the receiver never held 4 segments while the sender ran ($HELD)"
fi
state=$(sender_open pkg)
kill -9 "$SPID" 2>/dev/null
wait "$SPID" 2>/dev/null
check "the sender was killed before it had hashed every segment ($state)" \
	test "${state%% *}" = open
ends=$(count_log "$SERVE_LOG" "$SESSION_END")
wait_session_end "$((ends - 1))" 30 || fail "the receiver did not end the killed session"
held1=$(held_in pkg)
log "killed the sender: receiver holds $held1 segments, sender had: $state"
check "segments were durable at the receiver before the sender finished reading" \
	test "$held1" -ge 4

# a new send of the same source, straight (no proxy)
send_straight pkg send1b
expect_rc 0 "$RC" "the second send completes"
compare_trees "$SRC" "$LAB_STORE/packages/pkg" "after a kill -9 of the sender"
skipped=$(json_get "$WORK/send1b.json" 'd["segments_skipped"]')
read_b=$(json_get "$WORK/send1b.json" 'd["read_bytes"]')
skipped_b=$(json_get "$WORK/send1b.json" 'd["skipped_bytes"]')
resent=$(json_get "$WORK/send1b.json" 'd["segments_resent"]')
log "second send: $skipped segments already there, read $read_b bytes, skipped $skipped_b"
check "the receiver's segments were not sent again ($skipped >= $held1)" \
	test "$skipped" -ge "$held1"
check "the receiver said so at the offer (held $held1)" \
	grep -qE "package 'pkg' \(.*segments\): $skipped held" "$SERVE_LOG"
check "the source was read only where the receiver lacked it ($read_b = $SIZE - $skipped_b)" \
	test "$resent" != 0 -o "$read_b" = "$((SIZE - skipped_b))"
check "the sender settled its manifest (complete, kept hashes gone)" \
	test "$(sender_open pkg)" = "complete -1"

# ---- 2: a second send of what the receiver holds reads nothing -------------
send_straight pkg send2
expect_rc 0 "$RC" "a send of a package the receiver holds succeeds"
check "it reads no file data" test "$(json_get "$WORK/send2.json" 'd["read_bytes"]')" = 0
check "it sends no segment" test "$(json_get "$WORK/send2.json" 'd["segments_sent"]')" = 0

# ---- 3: kill -9 the receiver before the last segment is hashed --------------
run_case 3 $((3 * 1024 * 1024))
start_send pkg send3
if ! wait_held pkg 4 60 "$SPID"; then
	fail "the receiver never held 4 segments while the sender ran ($HELD)"
fi
state=$(sender_open pkg)
kill -9 "$SERVE_PID"
wait "$SERVE_PID" 2>/dev/null
SERVE_PID=
check "the receiver was killed before the sender had hashed every segment ($state)" \
	test "${state%% *}" = open
sleep 0.5
KEEP_PORT=1 start_serve
wait "$SPID"
rc=$?
check "the sender's retries complete the package after the receiver's kill (rc $rc)" test "$rc" = 0
compare_trees "$SRC" "$LAB_STORE/packages/pkg" "after a kill -9 of the receiver"
check "the restarted receiver kept what it held" \
	test "$(held_at_start pkg)" -ge 1

# ---- 4: a source file changed after its segment was sent --------------------
cp -a "$SRC" "$WORK/src4"
SRC=$WORK/src4
run_case 4 $((2 * 1024 * 1024))
start_send pkg4 send4
if ! wait_held pkg4 2 60 "$SPID"; then
	fail "the receiver never held 2 segments while the sender ran ($HELD)"
fi
# segment 0's bytes change (the same size; a new time)
printf 'changed' | dd of="$SRC/a.bin" bs=1 seek=100 conv=notrunc status=none
touch -d '+2 seconds' "$SRC/a.bin"
wait "$SPID"
rc=$?
check "the send of a changed source fails (rc $rc)" test "$rc" != 0
expect_grep "the sender says the source changed, and which file" \
	"source changed.*a\.bin" "$WORK/send4.err"
check "nothing incomplete is visible at the receiver" \
	test ! -e "$LAB_STORE/packages/pkg4"
check "and no manifest was recorded for it" test ! -e "$LAB_STORE/manifests/pkg4"
send_straight pkg4 send4b
expect_rc 0 "$RC" "the next send carries the new version"
compare_trees "$SRC" "$LAB_STORE/packages/pkg4" "the changed source, sent again"

# ---- 5: the sender forgot what it kept; the receiver holds part -------------
SRC=$WORK/src
run_case 5 $((3 * 1024 * 1024))
start_send pkg5 send5
if ! wait_held pkg5 3 60 "$SPID"; then
	fail "the receiver never held 3 segments while the sender ran ($HELD)"
fi
kill -9 "$SPID" 2>/dev/null
wait "$SPID" 2>/dev/null
rm -rf "$CEN_STORE/outgoing"
send_straight pkg5 send5b
expect_rc 0 "$RC" "a sender with nothing kept completes the package"
compare_trees "$SRC" "$LAB_STORE/packages/pkg5" "after the sender lost its kept hashes"

e2e_finish
