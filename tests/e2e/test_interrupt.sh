#!/bin/bash
# test_interrupt.sh - Ctrl-C on a terminal and SIGTERM stop a send or a
# resume with a message naming the transfer and the resume command, exit
# 130 or 143, leave the transfer recorded as interrupted (no sender
# left running), and the resume then completes it. A partial package
# whose file was cut short at the receiver between two sessions has the
# lost segments sent again.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init test_interrupt
command -v script >/dev/null || skip "script(1) (util-linux) is required"
ADDR_EXTRA="rate-limit = pulse 256K 100ms" # about 2.5 MB/s
write_configs
start_serve
for p in a b; do
	mkdir -p "$WORK/$p"
	head -c $((16 * 1024 * 1024)) /dev/urandom >"$WORK/$p/data"
done

# out_state NAME: the state status --json gives the outgoing transfer NAME
out_state() {
	"$FERRY" status "$1" --json --config "$CEN_CONF" >"$WORK/st.json" 2>/dev/null
	json_get "$WORK/st.json" '[e["state"] for e in d if e["direction"] == "out"][0]'
}

# ---- Ctrl-C on a terminal --------------------------------------------------------------
# once the receiver has the offer (the transfer is recorded by then)
(wait_for_log "$SERVE_LOG" "package 'a' \\(" 30; sleep 0.3; printf '\003'; sleep 2) | (unset COLUMNS; timeout 60 script -qfec \
	"$FERRY send $WORK/a --to LAB --config $CEN_CONF --level 0" \
	"$WORK/a.tty" >/dev/null 2>&1)
expect_rc 130 "$?" "send stopped by Ctrl-C"
tr '\r' '\n' <"$WORK/a.tty" | sed 's/\x1b\[K//g' >"$WORK/a.txt"
expect_grep "Ctrl-C says the transfer is resumable and how" \
	"^ferry: interrupted by SIGINT; transfer [0-9a-f]+-LAB is resumable: ferry resume [0-9a-f]+-LAB --config $CEN_CONF\$" \
	"$WORK/a.txt"
check "the transfer is recorded as interrupted ($(out_state a))" [ "$(out_state a)" = interrupted ]
check "its record on disk says interrupted" \
	grep -q '^state=interrupted$' "$CEN_STORE"/outgoing/*/transfer

# ---- SIGTERM, with --json ------------------------------------------------------------------------
"$FERRY" send "$WORK/b" --to LAB --config "$CEN_CONF" --level 0 --json \
	>"$WORK/b.json" 2>"$WORK/b.err" &
pid=$!
E2E_PIDS+=("$pid")
wait_for_log "$SERVE_LOG" "package 'b' \\(" 30
sleep 0.3
kill -TERM "$pid"
wait "$pid"
expect_rc 143 "$?" "send stopped by SIGTERM"
expect_grep "SIGTERM says the transfer is resumable" \
	"interrupted by SIGTERM; transfer [0-9a-f]+-LAB is resumable: ferry resume" "$WORK/b.err"
check "send --json stopped by SIGTERM prints one JSON document" json_ok "$WORK/b.json"
r=$(json_get "$WORK/b.json" '"%s|%s" % (d["ok"], d["error"])')
check "it says ok false and why ($r)" [ "$r" = "False|interrupted by SIGTERM" ]
r=$(json_get "$WORK/b.json" '"%s|%s" % (d["seconds"] > 0.2, [o["name"] for o in d["outputs"]])')
check "... with the time it ran and its output, not zeros ($r)" [ "$r" = "True|['lan']" ]
r=$(json_get "$WORK/b.json" '"%s|%s" % (d["read_bytes"] >= sum(o["bytes"] for o in d["outputs"]), all(o["rate"] > 0 for o in d["outputs"] if o["bytes"]))')
check "... its bytes read at least those acknowledged, a rate for an output that carried ($r)" [ "$r" = "True|True" ]
r=$(json_get "$WORK/b.json" '"%s|%s" % (d["attempts"] >= 1 or not sum(o["segments"] for o in d["outputs"]), all(o["rate"] == 0 for o in d["outputs"] if not o["segments"]))')
check "... an attempt counted if anything went, rate 0 for an output that brought nothing ($r)" \
	[ "$r" = "True|True" ]


# ---- a resume of several, stopped by SIGTERM to it alone --------------------------------------
offers=$(count_log "$SERVE_LOG" "package '[ab]' \\(")
"$FERRY" resume --config "$CEN_CONF" --json >"$WORK/r1.json" 2>"$WORK/r1.err" &
pid=$!
E2E_PIDS+=("$pid")
wait_for_log "$SERVE_LOG" "package '[ab]' \\(" 30 $((offers + 2))
sleep 0.3
kill -TERM "$pid"
wait "$pid"
expect_rc 143 "$?" "resume of two stopped by SIGTERM"
sleep 0.3
pgrep -af -- "$CEN_CONF" >"$WORK/left" || true
check "no sender is left running ($(cat "$WORK/left"))" test ! -s "$WORK/left"
check "resume --json stopped prints one JSON document" json_ok "$WORK/r1.json"
r=$(json_get "$WORK/r1.json" '"%s %s" % (d["ok"], sorted(t["error"] for t in d["transfers"]))')
check "both transfers say they were interrupted ($r)" \
	[ "$r" = "False ['interrupted by SIGTERM', 'interrupted by SIGTERM']" ]
n=$(grep -c "is resumable: ferry resume" "$WORK/r1.err")
check "each transfer says how to resume it ($n)" [ "$n" = 2 ]
for p in a b; do
	check "transfer $p is recorded as interrupted" [ "$(out_state "$p")" = interrupted ]
done

# ---- and the resume completes them -----------------------------------------------------------
run_ferry "$WORK/r2.out" "$WORK/r2.err" resume --config "$CEN_CONF"
expect_rc 0 "$RC" "resume after the interruptions"
for p in a b; do
	compare_trees "$WORK/$p" "$LAB_STORE/packages/$p" "package $p after its interruption"
	check "transfer $p is done" [ "$(out_state "$p")" = done ]
done

# ---- a partial package's file cut short between two sessions ------------------------------
# what the journal says was received and is no longer in the files is
# asked for again, not trusted into the package
mkdir -p "$WORK/c"
head -c $((20 * 1024 * 1024)) /dev/urandom >"$WORK/c/data"
"$FERRY" send "$WORK/c" --to LAB --config "$CEN_CONF" --level 0 >"$WORK/c.out" 2>"$WORK/c.err" &
pid=$!
E2E_PIDS+=("$pid")
stop_when_held c 1 "$pid"
held=$(held_in c)
check "... a segment of 'c' was held when its send stopped ($held)" [ "$held" -ge 1 ]
cfile=$(ls -d "$LAB_STORE"/partial/*/tree/data | head -n 1)
truncate -s 1000 "$cfile"
run_ferry "$WORK/c2.out" "$WORK/c2.err" send "$WORK/c" --to LAB --config "$CEN_CONF" --level 0
expect_rc 0 "$RC" "the send of 'c' again, its partial file cut short at LAB"
expect_grep "the receiver says what was lost and asks for it again" \
	"package 'c': [0-9]+ segment\(s\) received earlier are no longer in its files \(the first: [0-9]+, in 'data', cut short or removed\)" \
	"$SERVE_LOG"
compare_trees "$WORK/c" "$LAB_STORE/packages/c" "package c, whole again"

# ---- SIGINT while the send waits for its window: the wait is counted --------------------------
mkdir -p "$WORK/w"
echo waits >"$WORK/w/f.txt"
sed "s|^password-file = $CEN_PW_FILE\$|&\nschedule = 00:00-00:01 all; high|" "$CEN_CONF" >"$WORK/closed.conf"
if [ "$(date +%H%M)" -ge 0002 ]; then
	"$FERRY" send "$WORK/w" --to LAB --config "$WORK/closed.conf" --json \
		>"$WORK/w.json" 2>"$WORK/w.err" &
	pid=$!
	E2E_PIDS+=("$pid")
	wait_for_log "$WORK/w.err" "waits: no address is open to medium-priority sends now" 10
	sleep 2.5
	kill -INT "$pid"
	wait "$pid"
	expect_rc 130 "$?" "a send waiting for its window, stopped by Ctrl-C"
	r=$(json_get "$WORK/w.json" 'd["waited_seconds"] >= 2 and d["waited_seconds"] <= d["seconds"]')
	check "... its JSON counts the wait ($(json_get "$WORK/w.json" '(d["waited_seconds"], d["seconds"])'))" [ "$r" = true ]
fi

e2e_finish
