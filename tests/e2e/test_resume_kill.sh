#!/bin/bash
# test_resume_kill.sh - `ferry resume` right after a kill -9 of the sender
# goes on at once. The killed sender's kernel closes its connection, but
# the receiving session may not be reading (its disk is the slow stage) or
# may still be draining when the resume's offer comes: the receiver must
# not answer "being received by another session", which would make the
# resume sleep retry-delay (60 s here) before it tries again.
#
# A few hundred MiB go straight over loopback (no proxy: the receiver is
# then bound by its disk, the case where it is not watching its socket),
# and the sender is killed at a random moment, ROUNDS times (env
# FERRY_KILL_ROUNDS, default 8; bench/resume_kill.sh runs 50). After each
# kill a resume starts at once and its session must be accepted within
# FERRY_KILL_WITHIN seconds (default 2). When a package completes before
# its kill, it is verified and the next one (same data, new name) starts.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init test_resume_kill
need_test_hooks

ROUNDS=${FERRY_KILL_ROUNDS:-8}
WITHIN=${FERRY_KILL_WITHIN:-2}
MIB=${FERRY_KILL_MIB:-320}
SRC=$WORK/src/data
mkdir -p "$SRC"
head -c $((MIB * 1024 * 1024)) /dev/urandom >"$SRC/random.bin"
echo "small file" >"$SRC/small.txt"
SENDER_DELAY=60s
SENDER_RETRIES=2
write_configs
start_serve

# Other writes on the receiver's file system, as on a site whose disk is
# busy (or slower than this machine's): each syncfs of the receiver then
# has more to flush, its sync window fills, and it stops reading its
# socket for a while, so a receive does not see the sender's end. The
# file is rewritten in place, so its dirty pages are written, not dropped.
if [ "${FERRY_KILL_NOISE:-1}" = 1 ]; then
	(while :; do
		dd if="$SRC/random.bin" of="$WORK/noise.bin" bs=4M count=32 \
			conv=notrunc status=none
		sleep 0.1
	done) &
	E2E_PIDS+=("$!")
fi

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# accepted_count NAME: how many sessions LAB opened for NAME so far
accepted_count() { count_log "$SERVE_LOG" "package '$1' \("; }

# wait_accepted NAME BEFORE MS: 0 once LAB has opened a session for NAME
# after BEFORE of them, within MS milliseconds
wait_accepted() {
	local end=$(($(now_ms) + $3))
	while [ "$(now_ms)" -le "$end" ]; do
		[ "$(accepted_count "$1")" -gt "$2" ] && return 0
		sleep 0.02
	done
	return 1
}

N=0
NAME=
PID=
DONE_PKGS=()
# start_send: the next package, in the background (PID)
start_send() {
	N=$((N + 1))
	NAME=p$N
	local before
	before=$(accepted_count "$NAME")
	"$FERRY" send "$SRC" --to LAB --name "$NAME" --level 0 --config "$CEN_CONF" \
		>"$WORK/send-$NAME.out" 2>"$WORK/send-$NAME.err" &
	PID=$!
	E2E_PIDS+=("$PID")
	wait_accepted "$NAME" "$before" 60000 || die "the send of $NAME never started"
}

# finished NAME RC: a package's last sender exited with RC
finished() {
	expect_rc 0 "$2" "the transfer of $1 ran to the end"
	DONE_PKGS+=("$1")
}

start_send
kills=0 fast=0 slow=0 worst=0 tries=0 TIMES=()
while [ "$kills" -lt "$ROUNDS" ] && [ "$tries" -lt $((ROUNDS * 4)) ]; do
	tries=$((tries + 1))
	# a random moment: 0.05 to 0.65 s into this sender's session
	sleep "0.$(printf '%02d' $((5 + RANDOM % 60)))"
	kill -9 "$PID" 2>/dev/null
	wait "$PID" 2>/dev/null
	rc=$?
	if [ "$rc" != 137 ]; then
		log "$NAME completed before the kill"
		finished "$NAME" "$rc"
		start_send
		continue
	fi
	kills=$((kills + 1))
	before=$(accepted_count "$NAME")
	t0=$(now_ms)
	"$FERRY" resume --config "$CEN_CONF" >"$WORK/resume-$kills.out" \
		2>"$WORK/resume-$kills.err" &
	PID=$!
	E2E_PIDS+=("$PID")
	if wait_accepted "$NAME" "$before" $((WITHIN * 1000 + 3000)); then
		dt=$(($(now_ms) - t0))
	else
		dt=$((WITHIN * 1000 + 3000))
	fi
	# the kill came after the sender had recorded the transfer done:
	# the resume has nothing to do, and this was no kill mid-transfer
	if [ "$dt" -gt $((WITHIN * 1000)) ] && ! kill -0 "$PID" 2>/dev/null &&
		grep -q "nothing to resume" "$WORK/resume-$kills.err"; then
		log "$NAME was done before the kill (the resume found nothing to do)"
		kills=$((kills - 1))
		wait "$PID" 2>/dev/null
		finished "$NAME" 0
		start_send
		continue
	fi
	[ "$dt" -gt "$worst" ] && worst=$dt
	TIMES+=("$dt")
	if [ "$dt" -le $((WITHIN * 1000)) ]; then
		fast=$((fast + 1))
	else
		slow=$((slow + 1))
		log "kill $kills ($NAME): the resume's session was accepted after $dt ms"
		grep -h "refused\|retry" "$WORK/resume-$kills.err" | head -n 3
	fi
done
# the last resume runs to the end
wait "$PID" 2>/dev/null
finished "$NAME" $?

# A session that takes a second to let go (its disk slow to finish,
# FERRY_DRAIN_DELAY_MS): the resume's offer comes while it drains, and
# waits for it instead of being refused.
stop_serve
FERRY_DRAIN_DELAY_MS=1000 start_serve
start_send
sleep 0.2
kill -9 "$PID" 2>/dev/null
wait "$PID" 2>/dev/null
[ $? = 137 ] || die "$NAME completed within 0.2 s"
before=$(accepted_count "$NAME")
t0=$(now_ms)
"$FERRY" resume --config "$CEN_CONF" >"$WORK/slow.out" 2>"$WORK/slow.err" &
PID=$!
E2E_PIDS+=("$PID")
wait_accepted "$NAME" "$before" 5000
dt=$(($(now_ms) - t0))
check "the resume, while the killed sender's session drains for 1 s, was accepted within 2.5 s ($dt ms)" \
	[ "$dt" -le 2500 ]
rc=0
wait "$PID" || rc=$?
expect_rc 0 "$rc" "... and completed"
check "... without being refused or retried" [ -z "$(grep -E 'refused|retry' "$WORK/slow.err")" ]
DONE_PKGS+=("$NAME")

RESULT="$fast of $kills resumes right after a kill -9 went on within $WITHIN s (worst $worst ms)"
log "$RESULT"
[ "$kills" -gt 0 ] && log "accepted after (ms): median $(printf '%s\n' "${TIMES[@]}" |
	sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'), all: ${TIMES[*]}"
[ "$kills" -eq "$ROUNDS" ] ||
	fail "only $kills of $ROUNDS kills landed mid-transfer in $tries tries"
[ "$slow" -eq 0 ] && pass "$RESULT" || fail "$RESULT"
if grep -l "being received by another session" "$WORK"/resume-*.err >/dev/null 2>&1; then
	fail "a resume was refused: $(grep -h "being received" "$WORK"/resume-*.err | head -n 1)"
else
	pass "no resume was refused as 'being received by another session'"
fi
for p in "${DONE_PKGS[@]}"; do
	run_ferry "$WORK/verify-$p.out" "$WORK/verify-$p.err" verify "$p" --config "$LAB_CONF"
	expect_rc 0 "$RC" "ferry verify $p"
done
compare_trees "$SRC" "$LAB_STORE/packages/$NAME" "the last package"
[ -z "$(ls -A "$LAB_STORE/partial" 2>/dev/null)" ] && pass "nothing left under partial/" ||
	fail "partial/ not empty: $(ls "$LAB_STORE/partial")"
e2e_finish
