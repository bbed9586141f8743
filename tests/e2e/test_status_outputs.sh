#!/bin/bash
# test_status_outputs.sh - `ferry status` per output (issue 16), on
# loopback: four addresses to one `ferry serve`:
#   lan   through a proxy at 2 MB/s (configured far too slow, 2 Mbit/s),
#   slow  through a proxy at 0.5 MB/s (configured far too fast, 40 Mbit/s),
#   line  an isdn address whose dial command takes 4 s, through a proxy
#         at 0.5 MB/s,
#   shut  closed to the send's (medium) priority today, open later in
#         the week: its lane waits for its window.
# While a striped send of ~24 MB runs, `status --json` shows: line
# dialling, then sending; shut closed; lan and slow sending, with current
# rates that follow what their links carry (the fast one above the slow
# one, against their configured rates) and segments acknowledged. The
# text table has a line per output. Once the send ends: every output
# done, their segments adding up to the package's. A single-output send
# (--via) shows its one output. A sender killed with SIGKILL leaves no
# output "sending": each under way is interrupted, even while the killed
# process is a zombie its parent has not reaped.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init test_status_outputs

PKG=$WORK/src/pkg
mkdir -p "$PKG"
binary_data "$PKG/a.bin" $((24 * 1024 * 1024))

start_link "$WORK/fast.log" 2000000
FAST=$LINK_PORT
start_link "$WORK/slow.log" 500000
SLOW=$LINK_PORT
start_link "$WORK/line.log" 500000
LINE=$LINK_PORT

cat >"$WORK/dial" <<EOF
#!/bin/sh
echo "dial \$FERRY_ADDRESS" >>"$WORK/dials"
sleep 4
EOF
chmod +x "$WORK/dial"
# a day two days from now: shut is closed to medium all of today
OPEN_DAY=$(LC_ALL=C date -d '+2 days' +%a | tr 'A-Z' 'a-z')

CEN_HOST=127.0.0.1:$FAST ADDR_EXTRA="bandwidth = 2M" \
SENDER_EXTRA="segment-size = 1M" write_configs
cat >>"$CEN_CONF" <<EOF

[address LAB slow]
type = lan
host = 127.0.0.1:$SLOW
password-file = $CEN_PW_FILE
bandwidth = 40M

[address LAB line]
type = isdn
host = 127.0.0.1:$LINE
password-file = $CEN_PW_FILE
bandwidth = 4M
dial = $WORK/dial
hang-up = /bin/true
idle-timeout = 1s

[address LAB shut]
type = lan
host = 127.0.0.1:9
password-file = $CEN_PW_FILE
schedule = $OPEN_DAY all; high
EOF
start_serve

# outs FILE NAME: a line per output of the transfer of package NAME in
# the status document FILE: name state why rate segments carrying eta
cat >"$WORK/outs.py" <<'EOF'
import json, sys
for t in json.load(open(sys.argv[1])):
    if t.get("direction") == "out" and t["name"] == sys.argv[2]:
        for o in t["outputs"]:
            print(o["name"], o["state"], o["why"] or "-", o["rate"] or 0,
                  o["segments"], o["carrying"],
                  "-" if o["eta"] is None else o["eta"])
EOF
outs() { python3 "$WORK/outs.py" "$1" "$2"; }
# field FILE OUTPUT COLUMN: one column (1-based) of one output's line
field() { awk -v n="$2" -v c="$3" '$1 == n { print $c }' "$1"; }
# status_now NAME: the outputs of NAME's transfer now, in $WORK/now
status_now() {
	"$FERRY" status --json --config "$CEN_CONF" >"$WORK/st.json" 2>>"$WORK/st.err" &&
		outs "$WORK/st.json" "$1" >"$WORK/now"
}

"$FERRY" send "$PKG" --to LAB --level 0 --json --config "$CEN_CONF" \
	>"$WORK/s.json" 2>"$WORK/s.err" &
SEND=$!
E2E_PIDS+=("$SEND")

# ---- while it runs -------------------------------------------------------------
saw_dialling= saw_closed= saw_both= saw_order= saw_line= rates= text_done=
t_end=$((SECONDS + 60))
while kill -0 "$SEND" 2>/dev/null && [ $SECONDS -lt $t_end ]; do
	status_now pkg || { sleep 0.3; continue; }
	[ "$(field "$WORK/now" line 2)" = dialling ] &&
		[ "$(field "$WORK/now" line 3)" = dialling ] && saw_dialling=1
	[ -n "$saw_dialling" ] && [ "$(field "$WORK/now" line 2)" = sending ] &&
		saw_line=1
	{ echo "-- $SECONDS"; cat "$WORK/now"; } >>"$WORK/samples"
	[ "$(field "$WORK/now" shut 2)" = closed ] &&
		[ "$(field "$WORK/now" shut 3)" = closed ] && saw_closed=1
	if [ "$(field "$WORK/now" lan 2)" = sending ] &&
		[ "$(field "$WORK/now" slow 2)" = sending ] &&
		[ "$(field "$WORK/now" lan 5)" -gt 0 ] &&
		[ "$(field "$WORK/now" slow 5)" -gt 0 ]; then
		rl=$(field "$WORK/now" lan 4) rs=$(field "$WORK/now" slow 4)
		rates="lan $rl, slow $rs"
		[ "$rl" -gt 0 ] && [ "$rs" -gt 0 ] && saw_both=1
		# after the links' buffers filled: the fast link measured faster
		[ "$(field "$WORK/now" lan 5)" -ge 6 ] && [ "$rl" -gt "$rs" ] &&
			saw_order=1
		if [ -n "$saw_both" ] && [ -z "$text_done" ]; then
			"$FERRY" status pkg --config "$CEN_CONF" >"$WORK/st.txt" 2>&1
			cp "$WORK/now" "$WORK/both"
			text_done=1
		fi
	fi
	sleep 0.3
done
[ -n "$saw_dialling" ] && pass "the isdn output showed dialling while its dial ran" ||
	fail "the isdn output never showed dialling: $(cat "$WORK/now")"
[ -n "$saw_closed" ] && pass "the address closed to medium showed closed" ||
	fail "shut never showed closed: $(cat "$WORK/now")"
[ -n "$saw_both" ] && pass "lan and slow showed sending, with rates > 0 ($rates)" ||
	fail "lan and slow never both sending with rates and segments: $(cat "$WORK/now")"
[ -n "$saw_order" ] && pass "the current rates follow the links, not the configured rates ($rates)" ||
	fail "the fast link never measured faster than the slow one ($rates)"
[ -n "$saw_line" ] && pass "... then sending once its line was up" ||
	fail "the isdn output never went from dialling to sending"
expect_grep "the text table has lan's line" "^    lan  +sending +[0-9]+ segs" "$WORK/st.txt"
expect_grep "... slow's" "^    slow \(lan\) +sending" "$WORK/st.txt"
expect_grep "... and says why shut is idle" \
	"^    shut \(lan\) +closed .*idle: its window is closed to medium priority" "$WORK/st.txt"
expect_grep "... with the isdn line's type" "^    line \(isdn\) " "$WORK/st.txt"

rc=0
wait "$SEND" || rc=$?
expect_rc 0 "$rc" "the striped send"
compare_trees "$PKG" "$LAB_STORE/packages/pkg" "the package"
# the line is left as any transfer leaves it: its keeper hangs it up once
# idle (1 s), not the send at once because another link ended it
check "the send did not hang the line up itself" \
	test -z "$(grep "hanging up LAB line" "$WORK/s.err")"
wait_for_log "$CEN_STORE/outgoing/.lines/LAB-line.log" "hung up after [0-9]+ s idle" 15 ||
	fail "the line was not hung up once idle: $(tail -n 3 "$CEN_STORE/outgoing/.lines/LAB-line.log" 2>&1)"

# ---- after it ended ------------------------------------------------------------
status_now pkg
log "after: $(tr '\n' ';' <"$WORK/now")"
check "four outputs listed" [ "$(wc -l <"$WORK/now")" = 4 ]
check "every output done" [ "$(awk '$2 != "done"' "$WORK/now" | wc -l)" = 0 ]
check "none says why it is idle" [ "$(awk '$3 != "-"' "$WORK/now" | wc -l)" = 0 ]
sum=$(awk '{ s += $5 } END { print s }' "$WORK/now")
all=$(python3 -c 'import json,sys; print([t for t in json.load(open(sys.argv[1])) if t.get("name") == "pkg"][0]["segments"])' "$WORK/st.json")
check "their segments add up to the package's ($sum of $all)" [ "$sum" = "$all" ]
check "shut carried nothing" [ "$(field "$WORK/now" shut 5)" = 0 ]
wb=$(python3 -c 'import json,sys; t=[t for t in json.load(open(sys.argv[1])) if t.get("name") == "pkg"][0]; print(t["wire_bytes"], t["bytes"])' "$WORK/st.json")
check "its wire bytes are every output's, at least the package at level 0 ($wb)" \
	test "${wb% *}" -ge "${wb#* }"

# ---- one output (--via) ------------------------------------------------------------
mkdir -p "$WORK/src/one"
binary_data "$WORK/src/one/o.bin" $((2 * 1024 * 1024))
run_ferry "$WORK/one.json" "$WORK/one.err" send "$WORK/src/one" --to LAB \
	--via lan --level 0 --config "$CEN_CONF"
expect_rc 0 "$RC" "a send pinned to lan"
status_now one
check "one output: lan, done, every segment ($(cat "$WORK/now"))" \
	[ "$(cat "$WORK/now")" = "lan done - 0 2 0 -" ]

# ---- a killed sender -------------------------------------------------------------
mkdir -p "$WORK/src/killed"
binary_data "$WORK/src/killed/k.bin" $((16 * 1024 * 1024))
# its parent does not reap it (as a supervisor that polls later): killed,
# it stays a zombie while status looks
python3 -c '
import subprocess, sys, time
p = subprocess.Popen(sys.argv[2:], stdout=open(sys.argv[1] + ".out", "w"),
                     stderr=open(sys.argv[1] + ".err", "w"))
print(p.pid, flush=True)
time.sleep(600)
' "$WORK/k" "$FERRY" send "$WORK/src/killed" --to LAB --level 0 \
	--config "$CEN_CONF" >"$WORK/k.pid" &
PARENT=$!
E2E_PIDS+=("$PARENT")
wait_for_log "$WORK/k.pid" "^[0-9]+$" 10 || fail "the sender to kill did not start"
KILLED=$(cat "$WORK/k.pid")
E2E_PIDS+=("$KILLED")
sending=
for ((i = 0; i < 100; i++)); do
	status_now killed && [ "$(field "$WORK/now" lan 2)" = sending ] &&
		{ sending=1; break; }
	sleep 0.2
done
[ -n "$sending" ] || fail "the send to kill never showed lan sending: $(cat "$WORK/now")"
kill -9 "$KILLED"
for ((i = 0; i < 50; i++)); do
	grep -q "^State:.*Z" "/proc/$KILLED/status" 2>/dev/null && break
	sleep 0.1
done
check "the killed sender is a zombie, its parent has not reaped it" \
	grep -q "^State:.*Z" "/proc/$KILLED/status"
status_now killed
log "killed: $(tr '\n' ';' <"$WORK/now")"
state=$(python3 -c 'import json,sys; print([t for t in json.load(open(sys.argv[1])) if t.get("name") == "killed"][0]["state"])' "$WORK/st.json")
check "the killed transfer is interrupted ($state)" [ "$state" = interrupted ]
check "no output of it shows sending" [ "$(awk '$2 == "sending"' "$WORK/now" | wc -l)" = 0 ]
check "lan shows interrupted, with why" \
	[ "$(field "$WORK/now" lan 2) $(field "$WORK/now" lan 3)" = "interrupted interrupted" ]
check "shut, which was waiting for its window, too" \
	[ "$(field "$WORK/now" shut 2)" = interrupted ]
"$FERRY" status killed --config "$CEN_CONF" >"$WORK/k.txt" 2>&1
expect_grep "the text says the sender is gone" \
	"^    lan .*interrupted .*its sender is gone" "$WORK/k.txt"
kill -9 "$PARENT"
wait "$PARENT" 2>/dev/null

e2e_finish
