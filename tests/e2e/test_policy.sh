#!/bin/bash
# test_policy.sh - schedules and rate limits on a LAN address, with the
# real binary on loopback. On a test build the sender's schedule clock is
# shifted (FERRY_CLOCK_SHIFT_S) so that the next minute, where a window
# opens or closes, comes 12-15 s after the send starts instead of up to a
# minute later; elsewhere it is the real clock:
#   - an address open to high priority only: a low send is refused at once
#     when no address ever opens to it, and goes by the next address in
#     priority order when one is open;
#   - a window that opens at the next minute: a low send waits (saying
#     until when; `ferry status` shows why) while a high send passes, and
#     the low one goes once the window opens;
#   - a window that closes while a low send is under way: it stops at
#     once, waits for the window to open again (status says why), and
#     then sends only what the receiver does not hold;
#   - pulse mode and a percentage of the line hold the measured payload
#     rate within 10% of the limit; two sends at once over the address
#     share the percentage.
# FERRY_E2E_SHORT=1 (tools/test.sh, under ASan) runs a subset in well under
# a minute: the refusal and the next open address, a window that opens
# later (the low send waits, says until when, status shows it, a high send
# passes; then the low send is stopped by SIGTERM instead of waited for),
# and both rate limits.
# labels: slow alongside
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init test_policy
SHORT=${FERRY_E2E_SHORT:-0}
[ "$SHORT" = 1 ] && log "short variant (FERRY_E2E_SHORT=1)"

# expect_waiting NAME WHAT: `ferry status` shows send NAME waiting for its
# schedule
expect_waiting() {
	local why
	run_ferry "$WORK/st-$1.json" "$WORK/st-$1.err" status --config "$CEN_CONF" --json
	why=$(python3 -c 'import json,sys
for t in json.load(open(sys.argv[1])):
    if t.get("direction") == "out" and t.get("name") == sys.argv[2]:
        print(t["state"], "|", t.get("error"))' "$WORK/st-$1.json" "$1")
	[ -n "$why" ] || cat "$WORK/st-$1.json" "$WORK/st-$1.err"
	check "$2 ($why)" bash -c "[[ '$why' == waiting*schedule:* ]]"
}

# expect_done_after PID SRC NAME EPOCH WHAT: the send PID succeeds, not
# before EPOCH, with the package NAME identical to SRC
expect_done_after() {
	local rc=0 done_at
	wait "$1" || rc=$?
	done_at=$(date +%s)
	expect_rc 0 "$rc" "$5"
	compare_trees "$2" "$LAB_STORE/packages/$3" "the package $3"
	check "it finished after its window opened ($done_at >= $4)" \
		[ "$done_at" -ge "$4" ]
}

# shift_to S: the sender's schedule clock set to read S seconds past a
# minute now (a test build; else the real clock). SNOW: that clock's now,
# SHIFT: what it adds to the real one.
HOOKS=0
"$FERRY" version | grep -q 'test build' && HOOKS=1
shift_to() {
	local now
	now=$(date +%s)
	SHIFT=0
	[ "$HOOKS" = 1 ] && SHIFT=$((($1 - now % 60 + 60) % 60))
	SNOW=$((now + SHIFT))
	export FERRY_CLOCK_SHIFT_S=$SHIFT
}

mkdir -p "$WORK/pkg" "$WORK/hi"
binary_data "$WORK/pkg/data.bin" $((1024 * 1024))
binary_data "$WORK/hi/data.bin" $((256 * 1024))
start_serve

# ---- closed to low, for good: refused at once, naming why -------------------
ADDR_EXTRA="schedule = high"
write_configs
run_ferry "$WORK/never.out" "$WORK/never.err" send "$WORK/pkg" --to LAB \
	--config "$CEN_CONF" --priority low
expect_rc 3 "$RC" "a low send where no address ever opens to low"
expect_grep "the error says no address is ever open to low" \
	"ever open to low-priority" "$WORK/never.err"
check "nothing arrived" [ ! -e "$LAB_STORE/packages/pkg" ]

# ---- the next address in priority order that is open ------------------------
# 'lan' (priority 1) is closed to low; it points at a dead port, so using
# it would show. 'lan2' (priority 2) is open.
ADDR_EXTRA="schedule = high
priority = 1
[address LAB lan2]
type = lan
host = 127.0.0.1:$PORT
password-file = $CEN_PW_FILE
priority = 2"
CEN_HOST=127.0.0.1:9
write_configs
run_ferry "$WORK/next.out" "$WORK/next.err" send "$WORK/pkg" --to LAB \
	--config "$CEN_CONF" --priority low --name next
expect_rc 0 "$RC" "a low send takes the open address lan2"
compare_trees "$WORK/pkg" "$LAB_STORE/packages/next" "package sent by lan2"
if grep -q "cannot connect" "$WORK/next.err"; then
	fail "the closed address lan was tried: $(grep 'cannot connect' "$WORK/next.err" | head -1)"
else
	pass "the closed address lan was not tried"
fi
CEN_HOST=

# ---- a window that opens later: the low send waits, a high one passes --------
# (rules: the first that covers a minute decides; then high only). The
# short variant opens it in 2 min and stops the waiting send; the full one
# opens it at the next minute and waits for the send to finish there.
lead=1
[ "$SHORT" = 1 ] && lead=2
shift_to 48
start=$(date -d "@$(((SNOW / 60 + lead) * 60))" +%H:%M)
end=$(date -d "@$((SNOW + 4 * 60))" +%H:%M)
opens=$(((SNOW / 60 + lead) * 60 - SHIFT)) # on the real clock
ADDR_EXTRA="schedule = $start-$end all; high"
write_configs
"$FERRY" send "$WORK/pkg" --to LAB --config "$CEN_CONF" --priority low \
	--name low --json >"$WORK/low.json" 2>"$WORK/low.err" &
low_pid=$!
E2E_PIDS+=("$low_pid")
if wait_for_log "$WORK/low.err" "waits: no address is open" 20; then
	pass "the low send says it waits"
else
	fail "the low send did not say it waits: $(cat "$WORK/low.err")"
fi
expect_grep "it says until when" "lan opens at .* $start" "$WORK/low.err"
expect_waiting low "status shows the low send waiting for the schedule"
run_ferry "$WORK/high.out" "$WORK/high.err" send "$WORK/hi" --to LAB \
	--config "$CEN_CONF" --priority high --name high
expect_rc 0 "$RC" "a high send passes while the low one waits"
compare_trees "$WORK/hi" "$LAB_STORE/packages/high" "the high package"
if [ "$SHORT" = 1 ]; then
kill -TERM "$low_pid"
rc=0
wait "$low_pid" || rc=$?
expect_rc 143 "$rc" "the waiting low send, stopped by SIGTERM"
check "the low package did not arrive" [ ! -e "$LAB_STORE/packages/low" ]
else
check "the low package is not there yet" [ ! -e "$LAB_STORE/packages/low" ]
expect_done_after "$low_pid" "$WORK/pkg" low "$opens" \
	"the low send, once its window opened"
w=$(json_get "$WORK/low.json" '(d["waited_seconds"], d["seconds"])')
check "its JSON says how long it waited for the window, apart from its time ($w)" \
	python3 -c "import sys; w, s = $w; sys.exit(not (w >= 5 and w <= s))"

# ---- a window that closes mid-transfer ---------------------------------------
# Low may use the address until the minute that starts at $close, not in
# that minute, and again from the next. The send is paced (pulse 32K 1s)
# and sized to last about 12 s past the close.
shift_to 50
now=$SNOW # the sender's clock from here to the reopening
close=$(((now / 60 + 1) * 60))
[ $((close - now)) -lt 10 ] && close=$((close + 60))
reopen=$((close + 60))
size=$(((close - now + 12) * 32 * 1024))
mkdir -p "$WORK/mid"
binary_data "$WORK/mid/data.bin" "$size"
ADDR_EXTRA="schedule = $(date -d "@$close" +%H:%M)-$(date -d "@$reopen" +%H:%M) high; all
rate-limit = pulse 32K 1s"
write_configs
"$FERRY" send "$WORK/mid" --to LAB --config "$CEN_CONF" --priority low \
	--name mid --level 0 --json >"$WORK/mid.json" 2>"$WORK/mid.err" &
mid_pid=$!
E2E_PIDS+=("$mid_pid")
if wait_for_log "$WORK/mid.err" "stops: the schedule of address LAB lan closed" \
	$((close - now + 20)); then
	pass "the send stops when its window closes"
else
	fail "the send did not stop at the close: $(tail -5 "$WORK/mid.err")"
fi
stopped=$(($(date +%s) + SHIFT))
check "it stopped within 10 s of the close ($((stopped - close)) s)" \
	[ $((stopped - close)) -le 10 ]
expect_grep "it says until when it waits" \
	"waits: .* lan opens at .* $(date -d "@$reopen" +%H:%M)" "$WORK/mid.err"
sleep 5
expect_waiting mid "status shows it waiting for the schedule"
partial=$(du -sb "$LAB_STORE" | cut -f1)
sleep 20
check "nothing moves while the window is closed" \
	[ "$(du -sb "$LAB_STORE" | cut -f1)" = "$partial" ]
expect_done_after "$mid_pid" "$WORK/mid" mid "$((reopen - SHIFT))" \
	"the send, once its window opened again"
wire=$(json_get "$WORK/mid.json" 'd["wire_bytes"]')
check "what went before the close was not sent again ($wire bytes for $size)" \
	[ "$wire" -lt $((size + size / 10 + 65536)) ]
skipped=$(json_get "$WORK/mid.json" 'd["segments_skipped"]')
check "what it sent itself is not counted as held before it began ($skipped)" \
	[ "$skipped" = 0 ]

fi # not SHORT
unset FERRY_CLOCK_SHIFT_S

# ---- rate limits: the measured payload rate within 10% of the limit ---------
# rate_of NAME: bytes on the wire per second of the send's own time
rate_of() {
	json_get "$WORK/$1.json" 'round(d["wire_bytes"] / d["seconds"])'
}
# the limit is a ceiling: never more than 10% above it; below it by as much
# as a loaded machine may fall behind (35%), not more
within10() { # MEASURED LIMIT
	python3 -c 'import sys; m, l = map(float, sys.argv[1:]); sys.exit(not (0.65 * l <= m <= 1.1 * l))' "$1" "$2"
}

ADDR_EXTRA="rate-limit = pulse 64K 1s"
write_configs
run_ferry "$WORK/pulse.json" "$WORK/pulse.err" send "$WORK/pkg" --to LAB \
	--config "$CEN_CONF" --name pulse --level 0 --json
expect_rc 0 "$RC" "a send in pulse mode"
r=$(rate_of pulse)
check "pulse 64K 1s: $r bytes/s, at most 10% above 65536 (and not 35% below)" within10 "$r" 65536

ADDR_EXTRA="bandwidth = 8M
rate-limit = 10%"
write_configs
run_ferry "$WORK/share.json" "$WORK/share.err" send "$WORK/pkg" --to LAB \
	--config "$CEN_CONF" --name share --level 0 --json
expect_rc 0 "$RC" "a send held to 10% of an 8 Mbit/s line"
r=$(rate_of share)
check "10% of 8 Mbit/s: $r bytes/s, at most 10% above 100000 (and not 35% below)" within10 "$r" 100000
compare_trees "$WORK/pkg" "$LAB_STORE/packages/share" "the rate-limited package"

# two sends at once over that address share its limit (20% of 16 Mbit/s,
# 400 kB/s): 2 MiB each take about 10 s together, not 5 s each side by
# side (a ceiling: a slow machine only takes longer)
if [ "$SHORT" != 1 ]; then
	mkdir -p "$WORK/two-a" "$WORK/two-b"
	binary_data "$WORK/two-a/a.bin" $((2 * 1024 * 1024))
	binary_data "$WORK/two-b/b.bin" $((2 * 1024 * 1024))
	sed -e 's/^bandwidth = .*/bandwidth = 16M/' -e 's/^rate-limit = .*/rate-limit = 20%/' \
		"$CEN_CONF" >"$WORK/two.conf"
	t0=$(date +%s.%N)
	"$FERRY" send "$WORK/two-a" --to LAB --config "$WORK/two.conf" --level 0 \
		>"$WORK/two-a.out" 2>"$WORK/two-a.err" &
	pa=$!
	"$FERRY" send "$WORK/two-b" --to LAB --config "$WORK/two.conf" --level 0 \
		>"$WORK/two-b.out" 2>"$WORK/two-b.err" &
	pb=$!
	E2E_PIDS+=("$pa" "$pb")
	ra=0 rb=0
	wait "$pa" || ra=$?
	wait "$pb" || rb=$?
	t1=$(date +%s.%N)
	expect_rc 0 "$ra" "the first of two sends sharing a rate limit"
	expect_rc 0 "$rb" "the second"
	el=$(python3 -c 'import sys; print("%.1f" % (float(sys.argv[2]) - float(sys.argv[1])))' "$t0" "$t1")
	check "... together held to the limit: 4 MiB in $el s (at least 7.5 s at 400 kB/s)" \
		python3 -c 'import sys; sys.exit(not float(sys.argv[1]) >= 7.5)' "$el"
	compare_trees "$WORK/two-a" "$LAB_STORE/packages/two-a" "the first shared package"
	compare_trees "$WORK/two-b" "$LAB_STORE/packages/two-b" "the second shared package"
fi

e2e_finish
