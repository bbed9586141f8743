#!/bin/bash
# test_limits.sh - the sender's concurrency limits and resume of several
# transfers at once. With max-sends-per-site = 1, two sends to LAB started
# together run one after the other (the second says it waits for a slot,
# and the receiver never holds two sessions at once); with the limit at
# 2 they overlap; with max-sends = 1 (all sites) they do not; status
# lists the send waiting for a slot; sends waiting for the slot take it
# by priority, high first. A resume of a transfer another
# process runs says so (its source out of reach), leaving it sending.
# `ferry resume` with no argument finishes every interrupted transfer.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init test_limits

for p in one two three; do
	mkdir -p "$WORK/$p"
	binary_data "$WORK/$p/data.bin" $((12 * 1024 * 1024))
	echo "$p" >"$WORK/$p/name.txt"
done

# run_pair "KEY = N" TAG: two sends at once through a 8 MiB/s link, with
# that [sender] limit
run_pair() {
	local limit=$1 tag=$2
	stop_serve
	stop_proxy
	PROXY_PORT=
	CEN_HOST=
	LAB_STORE=$WORK/$tag/lab
	CEN_STORE=$WORK/$tag/cen
	SERVE_LOG=$WORK/$tag/serve.log
	mkdir -p "$WORK/$tag"
	SENDER_EXTRA=$limit
	write_configs
	start_serve
	start_proxy "$WORK/$tag/proxy.log" --rate $((8 * 1024 * 1024))
	CEN_HOST=127.0.0.1:$PROXY_PORT
	write_configs
	"$FERRY" send "$WORK/one" --to LAB --config "$CEN_CONF" --level 0 \
		>"$WORK/$tag/one.out" 2>"$WORK/$tag/one.err" &
	local p1=$!
	"$FERRY" send "$WORK/two" --to LAB --config "$CEN_CONF" --level 0 \
		>"$WORK/$tag/two.out" 2>"$WORK/$tag/two.err" &
	local p2=$!
	E2E_PIDS+=("$p1" "$p2")
	if [ "$tag" = serial ]; then # the one waiting says so in status
		local w= i
		for ((i = 0; i < 40; i++)); do
			"$FERRY" status --json --config "$CEN_CONF" >"$WORK/$tag/st.json" 2>/dev/null
			w=$(json_get "$WORK/$tag/st.json" '[t["name"] for t in d if t.get("direction") == "out" and t["state"] == "waiting" and "free send slot" in (t["error"] or "")]' 2>/dev/null)
			[ -n "$w" ] && [ "$w" != "[]" ] && break
			sleep 0.1
		done
		check "status lists the send waiting for a slot, saying so ($w)" \
			[ -n "$w" ] && [ "$w" != "[]" ]
	fi
	local rc1=0 rc2=0
	wait "$p1" || rc1=$?
	wait "$p2" || rc2=$?
	expect_rc 0 "$rc1" "first send with $limit"
	expect_rc 0 "$rc2" "second send with $limit"
	compare_trees "$WORK/one" "$LAB_STORE/packages/one" "package one ($tag)"
	compare_trees "$WORK/two" "$LAB_STORE/packages/two" "package two ($tag)"
}

# the proxy logs "conn N: open" and "conn N: closed"; the most open at once
max_open() {
	awk '/: open/ {n++; if (n > m) m = n} /: clos/ {n--} END {print m + 0}' "$1"
}

run_pair "max-sends-per-site = 1" serial
m=$(max_open "$WORK/serial/proxy.log")
check "with max-sends-per-site = 1 the sends never overlap (max $m at once)" [ "$m" = 1 ]
cat "$WORK/serial/one.err" "$WORK/serial/two.err" >"$WORK/serial/both.err"
expect_grep "one send waited for a slot" "waiting for a free send slot" "$WORK/serial/both.err"

# the limit over all sites holds too (per site the default, 3)
run_pair "max-sends = 1" allserial
m=$(max_open "$WORK/allserial/proxy.log")
check "with max-sends = 1 the sends never overlap (max $m at once)" [ "$m" = 1 ]
cat "$WORK/allserial/one.err" "$WORK/allserial/two.err" >"$WORK/allserial/both.err"
expect_grep "with max-sends = 1 one send waited for a slot" "waiting for a free send slot" \
	"$WORK/allserial/both.err"

run_pair "max-sends-per-site = 2" parallel
m=$(max_open "$WORK/parallel/proxy.log")
check "with max-sends-per-site = 2 the sends overlap (max $m at once)" [ "$m" = 2 ]

# ---- sends waiting for a slot go by priority -----------------------------------
# max-sends-per-site = 1: while a low-priority send holds the slot, a low
# one and then a high one wait for it; the high one goes next
stop_serve
stop_proxy
PROXY_PORT=
CEN_HOST=
LAB_STORE=$WORK/prio/lab
CEN_STORE=$WORK/prio/cen
SERVE_LOG=$WORK/prio/serve.log
mkdir -p "$WORK/prio"
SENDER_EXTRA="max-sends-per-site = 1"
write_configs
start_serve
# (2 MiB/s: the first send holds the slot 6 s, the others queue meanwhile)
start_proxy "$WORK/prio/proxy.log" --rate $((2 * 1024 * 1024))
CEN_HOST=127.0.0.1:$PROXY_PORT
write_configs
# prio_send NAME PRIORITY: in the background, its pid appended to PRIO_PIDS
prio_send() {
	"$FERRY" send "$WORK/$1" --to LAB --priority "$2" --config "$CEN_CONF" --level 0 \
		>"$WORK/prio/$1.out" 2>"$WORK/prio/$1.err" &
	PRIO_PIDS+=($!)
	E2E_PIDS+=($!)
}
PRIO_PIDS=()
prio_send one low
for ((i = 0; i < 100; i++)); do # until it holds the slot and sends
	"$FERRY" status one --json --config "$CEN_CONF" >"$WORK/prio/s1.json" 2>/dev/null
	[ "$(json_get "$WORK/prio/s1.json" 'd[0]["state"] == "sending"' 2>/dev/null)" = true ] && break
	sleep 0.1
done
prio_send two low
wait_for_log "$WORK/prio/two.err" "waiting for a free send slot" 10 ||
	fail "the second low-priority send did not wait for the slot"
prio_send three high
wait_for_log "$WORK/prio/three.err" "waiting for a free send slot" 10 ||
	fail "the high-priority send did not wait for the slot"
for p in "${PRIO_PIDS[@]}"; do
	rc=0
	wait "$p" || rc=$?
	expect_rc 0 "$rc" "a send waiting by priority"
done
order=$(grep -oE "package '(one|two|three)' complete" "$SERVE_LOG" | sed -E "s/package '(.*)' complete/\1/" | tr '\n' ' ')
check "the high-priority send took the slot before the low one that waited longer ($order)" \
	[ "$order" = "one three two " ]
check "... both had waited while the first held it (the first completed after both said so)" \
	[ "$(grep -c "waiting for a free send slot" "$WORK/prio/two.err" "$WORK/prio/three.err" | awk -F: '{ n += ($2 > 0) } END { print n }')" = 2 ]

# ---- a resume of a transfer another process runs ---------------------------
# says so before it reads the source: with the source out of reach it
# does not mark the running transfer failed
mkdir -p "$WORK/four"
binary_data "$WORK/four/data.bin" $((40 * 1024 * 1024))
"$FERRY" send "$WORK/four" --to LAB --config "$CEN_CONF" --level 0 \
	>"$WORK/four.out" 2>"$WORK/four.err" &
p4=$!
E2E_PIDS+=("$p4")
for ((i = 0; i < 100; i++)); do # until it sends
	"$FERRY" status four --json --config "$CEN_CONF" >"$WORK/s4a.json" 2>/dev/null
	[ "$(json_get "$WORK/s4a.json" 'd[0]["state"] == "sending" and d[0]["bytes_done"] > 0' 2>/dev/null)" = true ] && break
	sleep 0.1
done
mv "$WORK/four" "$WORK/four.away"
run_ferry "$WORK/r4.out" "$WORK/r4.err" resume four --config "$CEN_CONF"
mv "$WORK/four.away" "$WORK/four"
expect_rc 1 "$RC" "resume of a transfer another process runs, its source out of reach"
expect_grep "... says it is running" "already running in another ferry process" "$WORK/r4.err"
check "... and not that the source is missing" bash -c "! grep -q 'cannot send' '$WORK/r4.err'"
run_ferry "$WORK/s4.json" "$WORK/s4.err" status four --json --config "$CEN_CONF"
check "status still says sending ($(json_get "$WORK/s4.json" 'd[0]["state"]'))" \
	[ "$(json_get "$WORK/s4.json" 'd[0]["state"]')" = sending ]
rc=0
wait "$p4" || rc=$?
expect_rc 0 "$rc" "the running send goes on"
compare_trees "$WORK/four" "$LAB_STORE/packages/four" "package four"

# ---- resume of several interrupted transfers at once
stop_proxy
SENDER_RETRIES=0
SENDER_EXTRA=
CEN_HOST=
write_configs
stop_serve
for p in one two three; do
	run_ferry "$WORK/i-$p.out" "$WORK/i-$p.err" send "$WORK/$p" --to LAB --config "$CEN_CONF"
	check "send of $p with the receiver down fails (exit $RC)" [ "$RC" = 1 ]
done
run_ferry "$WORK/st.json" "$WORK/st.err" status --config "$CEN_CONF" --json
n=$(python3 -c 'import json,sys; print(sum(1 for t in json.load(open(sys.argv[1])) if t.get("direction") == "out" and t["state"] == "failed"))' "$WORK/st.json")
check "status lists the 3 failed transfers ($n)" [ "$n" = 3 ]
start_serve
run_ferry "$WORK/resume.out" "$WORK/resume.err" resume --config "$CEN_CONF" --json
expect_rc 0 "$RC" "resume of all interrupted transfers"
for p in one two three; do
	compare_trees "$WORK/$p" "$LAB_STORE/packages/$p" "resumed package $p"
done
n=$(json_get "$WORK/resume.out" 'sum(1 for t in d["transfers"] if t["ok"])')
check "resume printed one JSON document with a result per transfer ($n)" [ "$n" = 3 ]
run_ferry "$WORK/resume2.out" "$WORK/resume2.err" resume --config "$CEN_CONF"
expect_rc 0 "$RC" "a second resume with nothing left"
expect_grep "nothing left to resume" "nothing to resume" "$WORK/resume2.err"

e2e_finish
