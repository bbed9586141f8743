#!/bin/bash
# test_stale.sh - a sender that vanished without a reset (a dropped line,
# here a frozen proxy and a kill -9) leaves the receiving session waiting
# for bytes that will not come, holding the package. When the same site
# offers the same package again and that session has received nothing for
# 5 s, the receiver ends it and the new session takes the package: the
# send completes at once, instead of being refused ("being received by
# another session") until TCP gives the old connection up minutes later.
# And the other end: a sender whose receiver freezes gives it up after
# the stall time, and its retry completes once the receiver runs again.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init test_stale
need_test_hooks

PKG=$WORK/src/pkg
mkdir -p "$PKG"
head -c $((6 * 1024 * 1024)) /dev/urandom >"$PKG/data.bin"
echo hello >"$PKG/small.txt"
SENDER_EXTRA="segment-size = 1M"
write_configs
start_serve
start_proxy "$WORK/proxy.log" --rate 400000
CEN_HOST=127.0.0.1:$PROXY_PORT write_configs

# send_bg NAME SRC OUT: `ferry send SRC --name NAME` in the background
# (pid in BG_PID), returning once LAB has logged the package's session
send_bg() {
	"$FERRY" send "$2" --to LAB --name "$1" --level 0 --config "$CEN_CONF" \
		>"$WORK/$3.out" 2>"$WORK/$3.err" &
	BG_PID=$!
	E2E_PIDS+=("$BG_PID")
	wait_for_log "$SERVE_LOG" "package '$1' \(" 30 || fail "the send of $1 did not start"
}

send_bg pkg "$PKG" a
pa=$BG_PID
sleep 1.5
# the link freezes (the proxy stops forwarding, and closes nothing), and
# the sender goes away
kill -STOP "$PROXY_PID"
kill -9 "$pa"
wait "$pa" 2>/dev/null
log "proxy frozen, first sender killed"
sleep 6 # the session has now been silent for more than 5 s

# the same site sends the same package again, directly (a refusal and a
# retry after retry-delay could not finish in time)
CEN_HOST= SENDER_DELAY=300s write_configs
t0=$SECONDS
run_ferry "$WORK/b.out" "$WORK/b.err" send "$PKG" --to LAB --name pkg --level 0 \
	--config "$CEN_CONF"
expect_rc 0 "$RC" "the second send, while the first session is still open"
check "it finished within 90 s, not after retry-delay (300 s): $((SECONDS - t0)) s" \
	[ $((SECONDS - t0)) -lt 90 ]
compare_trees "$PKG" "$LAB_STORE/packages/pkg" "the package"
expect_grep "LAB ended the silent session" \
	"package 'pkg' offered again; ending its session from 127\.0\.0\.1:[0-9]+, silent for [0-9]+ s" \
	"$SERVE_LOG"
kill -CONT "$PROXY_PID" 2>/dev/null
stop_proxy

# a session that is receiving is not ended: the same package from a
# second installation of the same site (its own store, so its own
# transfer lock) joins it (one package, many arrivals: each segment is
# written once, a copy is dropped and still acknowledged), and both
# sends end well
start_proxy "$WORK/proxy2.log" --rate 400000
CEN_HOST=127.0.0.1:$PROXY_PORT write_configs
send_bg pkg2 "$PKG" c
pc=$BG_PID
sleep 1
sed -e "s|^store = .*|store = $WORK/cen2|" -e "s|^host = .*|host = 127.0.0.1:$PORT|" \
	-e "s|^retries = .*|retries = 0|" "$CEN_CONF" >"$WORK/cen2.conf"
run_ferry "$WORK/d.out" "$WORK/d.err" send "$PKG" --to LAB --name pkg2 --level 0 \
	--config "$WORK/cen2.conf"
expect_rc 0 "$RC" "a second send of a package being received joins it"
expect_grep "... as a second arrival of the package" "shared with other sessions of this sender" "$SERVE_LOG"
rc=0
wait "$pc" || rc=$?
expect_rc 0 "$rc" "the session that was receiving went on to the end"
expect_grep "... one of them completed it, the other saw it completed" \
	"package 'pkg2' completed by another session" "$SERVE_LOG"
compare_trees "$PKG" "$LAB_STORE/packages/pkg2" "the package received by the first session"
check "that session was not ended" \
	[ "$(count_log "$SERVE_LOG" "package 'pkg2' offered again")" = 0 ]
stop_proxy

# a receiver that freezes (SIGSTOP) after the last bytes went out: its
# kernel has taken them all, so the connection goes idle and TCP
# keepalive probes are still answered. The sender waits for ACKs that do
# not come; it gives up after the stall time (6 s here, a test knob; 60 s
# on a LAN address), counted in bytes acknowledged (the probes'
# answers once kept it waiting forever), and its retry completes once
# the receiver runs again
PKG4=$WORK/src/pkg4
mkdir -p "$PKG4"
head -c $((2 * 1024 * 1024)) /dev/urandom >"$PKG4/data.bin"
start_proxy "$WORK/proxy3.log" --rate 400000
SENDER_RETRIES=4 CEN_HOST=127.0.0.1:$PROXY_PORT write_configs
FERRY_STALL_MS=6000 send_bg pkg4 "$PKG4" e
pe=$BG_PID
sleep 1
kill -STOP "$SERVE_PID"
t0=$SECONDS
if wait_for_log "$WORK/e.err" "nothing moved for 6 s" 60; then
	pass "the sender gave the frozen receiver up after $((SECONDS - t0)) s"
else
	fail "the sender did not give the frozen receiver up within 60 s: $(tail -n 3 "$WORK/e.err")"
fi
kill -CONT "$SERVE_PID"
rc=0
wait "$pe" || rc=$?
expect_rc 0 "$rc" "the send whose receiver froze, once it ran again"
compare_trees "$PKG4" "$LAB_STORE/packages/pkg4" "the package sent to a receiver that froze"
stop_proxy

e2e_finish
