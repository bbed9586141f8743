#!/bin/bash
# test_resend.sh - what an interruption costs, measured on loopback with
# the default 8 MiB segments.
#
# Sender killed: every byte the sender handed to the kernel still arrives;
#   the receiver logs how many segments it received whole in the session
#   and how many it holds. They must be equal: only the segment cut off
#   mid-way is sent again (less than 1 segment's worth).
# Receiver killed: the killed send's JSON says how many bytes it put on
#   the wire; the restarted receiver says how many segments it holds (its
#   journal, plus segments found whole on disk). The difference is what is
#   sent again, and the issue bounds it: less than 2 segments' worth. What
#   the receiver can lose is the segment it was receiving (a raw payload
#   is opened and written part by part as it arrives, so a finished one
#   is on disk but for its last writes), what it received and has not
#   opened yet (at most 2 MiB), its socket buffer (capped at 2 MiB) and
#   the sender's unsent queue (512 KiB, TCP_NOTSENT_LOWAT): at most about
#   1.5 segments.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init test_resend

SEG=$((8 * 1024 * 1024))
SRC=$WORK/src
mkdir -p "$SRC"
binary_data "$SRC/data.bin" $((800 * 1024 * 1024))
SENDER_RETRIES=0
write_configs
start_serve
SEGS=100

# journal_records: segments journaled for the package being received
journal_records() {
	local j s
	j=$(ls "$LAB_STORE"/partial/*/journal 2>/dev/null | head -n 1)
	[ -n "$j" ] || { echo 0; return; }
	s=$(stat -c %s "$j" 2>/dev/null || echo 32)
	echo $(((s > 32 ? s - 32 : 0) / 32))
}

# wait_records N PID: until the journal has N records (0), or PID ended (1)
wait_records() {
	local i
	for ((i = 0; i < 12000; i++)); do
		[ "$(journal_records)" -ge "$1" ] && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.005
	done
	return 1
}

# ---- 1. the receiver is killed, early and half-way
# receiver_kill NAME RECORDS: kill the receiver once RECORDS segments are
# journaled, restart it, resume, and measure what was sent twice.
receiver_kill() {
	local name=$1 at=$2 spid rc wire held lost sent
	"$FERRY" send "$SRC" --to LAB --config "$CEN_CONF" --name "$name" \
		--level 0 --json >"$WORK/$name.s.json" 2>"$WORK/$name.s.err" &
	spid=$!
	E2E_PIDS+=("$spid")
	wait_records "$at" "$spid" ||
		die "the send ended before the receiver could be killed"
	kill9_serve
	rc=0
	wait "$spid" || rc=$?
	expect_rc 1 "$rc" "the send whose receiver was killed"
	wire=$(json_get "$WORK/$name.s.json" 'd["wire_bytes"]')
	start_serve
	run_ferry "$WORK/$name.r.json" "$WORK/$name.r.err" resume "$name" \
		--config "$CEN_CONF" --json
	expect_rc 0 "$RC" "resume after the receiver's kill"
	held=$(held_at_start "$name")
	lost=$(python3 -c "print('%.2f' % ($wire / ($SEG + 2152) - $held))")
	log "receiver killed after $at records: $wire bytes on the wire" \
		"($(python3 -c "print('%.2f' % ($wire / ($SEG + 2152)))") segments)," \
		"$held held after the restart"
	check "receiver kill at $at: sent again $lost segments' worth, less than 2" \
		python3 -c "import sys; sys.exit(0 if $lost < 2 else 1)"
	sent=$(json_get "$WORK/$name.r.json" 'd["transfers"][0]["segments_sent"]')
	check "the resume sent only the $((SEGS - held)) missing segments ($sent)" \
		[ "$sent" = $((SEGS - held)) ]
	compare_trees "$SRC" "$LAB_STORE/packages/$name" \
		"package after the receiver's kill at $at"
}
receiver_kill pkg1 8
receiver_kill pkg3 50

# ---- 2. the sender is killed
ends=$(count_log "$SERVE_LOG" "$SESSION_END")
"$FERRY" send "$SRC" --to LAB --config "$CEN_CONF" --name pkg2 --level 0 \
	>"$WORK/s2.out" 2>"$WORK/s2.err" &
spid=$!
E2E_PIDS+=("$spid")
wait_records 8 "$spid" || die "the send ended before it could be killed"
kill -9 "$spid"
wait "$spid" 2>/dev/null
wait_for_log "$SERVE_LOG" "$SESSION_END" 30 $((ends + 1)) ||
	die "the receiver did not end the session of the killed sender"
line=$(grep -E "segments received in this session; [0-9]+ of [0-9]+ segments of 'pkg2'" \
	"$SERVE_LOG" | tail -n 1)
got=$(sed -E 's/.* ([0-9]+) segments received in this session.*/\1/' <<<"$line")
kept=$(sed -E "s/.*session; ([0-9]+) of [0-9]+ segments of 'pkg2'.*/\1/" <<<"$line")
log "sender killed: the receiver got $got whole segments and holds $kept"
check "sender kill: every segment received whole is held (received $got, held $kept)" \
	test -n "$got" -a "$got" = "$kept"
run_ferry "$WORK/r2.json" "$WORK/r2.err" resume pkg2 --config "$CEN_CONF" --json
expect_rc 0 "$RC" "resume after the sender's kill"
sent=$(json_get "$WORK/r2.json" 'd["transfers"][0]["segments_sent"]')
check "the resume sent only the $((SEGS - kept)) missing segments ($sent)" [ "$sent" = $((SEGS - kept)) ]
compare_trees "$SRC" "$LAB_STORE/packages/pkg2" "package after the sender's kill"

e2e_finish
