#!/bin/bash
# test_kill_sender.sh - kill -9 the sender twice at different moments (a
# send, then a resume); the final `ferry resume` completes with an
# identical result and sends only what the receiver does not hold.
#
# The link runs through a throttling proxy (client->server limited), so
# the transfer lasts seconds on any machine and the kills land mid-way.
# If a transfer still finishes before its kill, the attempt is repeated
# with a slower link instead of passing vacuously.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init test_kill_sender

PKG=$WORK/src/pkg
mkdir -p "$PKG/lib" "$PKG/data"
binary_data "$PKG/lib/binaries.dat" $((64 * 1024 * 1024))
for i in $(seq 1 16); do
	head -c $((1024 * 1024 - i * 1000)) /dev/urandom >"$PKG/data/r$i"
done
mkdir -p "$PKG/empty"
ln -s ../lib/binaries.dat "$PKG/data/link"
log "package: $(du -sh "$PKG" | cut -f1)"

SENDER_EXTRA="segment-size = 1M"
write_proxy

# one attempt at the whole scenario; returns 3 if a transfer finished
# before it could be killed (the caller retries with a slower link)
scenario() {
	local rate=$1 n=$2 name=pkg
	LAB_STORE=$WORK/a$n/lab
	CEN_STORE=$WORK/a$n/cen
	SERVE_LOG=$WORK/a$n/serve.log
	local plog=$WORK/a$n/proxy.log
	mkdir -p "$WORK/a$n"
	stop_serve
	stop_proxy
	PROXY_PORT=
	CEN_HOST=
	write_configs
	start_serve
	start_proxy "$plog" --rate "$rate"
	CEN_HOST=127.0.0.1:$PROXY_PORT
	write_configs
	log "attempt $n: link limited to $((rate / 1024 / 1024)) MiB/s"

	# ---- interruption 1: the send, ~0.3 s into the transfer
	local ends offers
	ends=$(count_log "$SERVE_LOG" "$SESSION_END")
	offers=$(count_log "$SERVE_LOG" "package '$name' \\(")
	"$FERRY" send "$PKG" --to LAB --config "$CEN_CONF" --json --level 0 \
		>"$WORK/a$n/send.json" 2>"$WORK/a$n/send.err" &
	local spid=$!
	E2E_PIDS+=("$spid")
	# 0.3 s after the receiver took the offer (the partial is there)
	wait_for_log "$SERVE_LOG" "package '$name' \\(" 60 $((offers + 1)) ||
		{ fail "the receiver never had the offer"; return 1; }
	sleep 0.3
	if ! kill -0 "$spid" 2>/dev/null; then
		log "attempt $n: the send finished before the first kill"
		return 3
	fi
	if ! kill -9 "$spid" 2>/dev/null; then
		log "attempt $n: the send finished before the first kill"
		return 3
	fi
	wait "$spid" 2>/dev/null
	if [ $? = 0 ]; then
		log "attempt $n: the send finished before the first kill"
		return 3
	fi
	wait_session_end "$ends" 30 ||
		{ fail "receiver did not notice the killed sender within 30 s"; return 1; }
	local segs held1 held2
	segs=$("$FERRY" status --json --config "$LAB_CONF" 2>/dev/null |
		python3 -c 'import json,sys; print([e["segments"] for e in json.load(sys.stdin) if e["direction"]=="in"][0])' 2>/dev/null)
	held1=$(held_in "$name")
	if [ -z "$segs" ]; then
		fail "no partial package on the receiver after killing the sender"
		return 1
	fi
	log "kill 1 (send, 0.3 s in): receiver holds $held1 of $segs segments"
	if [ "$held1" -ge "$segs" ]; then
		log "attempt $n: every segment had arrived before the first kill"
		return 3
	fi
	pass "kill 1 landed mid-transfer ($held1 of $segs held)"
	run_ferry "$WORK/a$n/st.json" "$WORK/a$n/st.err" status --json --config "$CEN_CONF"
	st=$(json_get "$WORK/a$n/st.json" '[e["state"] for e in d if e["direction"]=="out"]')
	[ "$st" = "['interrupted']" ] && pass "sender status shows the killed send as interrupted" ||
		fail "sender status after kill -9: $st"

	# ---- interruption 2: a resume, once it has moved the receiver on
	ends=$(count_log "$SERVE_LOG" "$SESSION_END")
	"$FERRY" resume --config "$CEN_CONF" --json >"$WORK/a$n/resume1.json" \
		2>"$WORK/a$n/resume1.err" &
	local rpid=$!
	E2E_PIDS+=("$rpid")
	local want=$((held1 + segs / 4))
	wait_held "$name" "$want" 60 "$rpid"
	case $? in
	2)
		log "attempt $n: the resume finished before the second kill"
		return 3
		;;
	1)
		fail "resume made no progress to $want segments within 60 s (held $HELD)"
		return 1
		;;
	esac
	if ! kill -9 "$rpid" 2>/dev/null; then
		log "attempt $n: the resume finished before the second kill"
		return 3
	fi
	wait "$rpid" 2>/dev/null
	if [ $? = 0 ]; then
		log "attempt $n: the resume finished before the second kill"
		return 3
	fi
	wait_session_end "$ends" 30 ||
		{ fail "receiver did not notice the killed resume within 30 s"; return 1; }
	held2=$(held_in "$name")
	local at_start
	at_start=$(held_at_start "$name")
	[ -n "$at_start" ] && [ "$at_start" -ge "$held1" ] &&
		pass "the first resume's session started from the $at_start segments held (status after kill 1: $held1)" ||
		fail "receiver log: the first resume started with '$at_start' held, status after kill 1 said $held1"
	log "kill 2 (resume): receiver holds $held2 of $segs segments"
	if [ "$held2" -ge "$segs" ]; then
		log "attempt $n: every segment had arrived before the second kill"
		return 3
	fi
	[ "$held2" -gt "$held1" ] &&
		pass "kill 2 landed mid-transfer, later than kill 1 ($held1 < $held2 < $segs)" ||
		{ fail "kill 2: held $held2 (after kill 1: $held1, of $segs)"; return 1; }

	# ---- the final resume
	run_ferry "$WORK/a$n/resume2.json" "$WORK/a$n/resume2.err" \
		resume --config "$CEN_CONF" --json
	expect_rc 0 "$RC" "final resume"
	check "resume --json prints one JSON document" json_ok "$WORK/a$n/resume2.json"
	local r
	r=$(json_get "$WORK/a$n/resume2.json" \
		'"%s %s %s %s" % (d["ok"], d["transfers"][0]["segments"], d["transfers"][0]["segments_sent"], d["transfers"][0]["segments_skipped"])')
	read -r ok rsegs rsent rskip <<<"$r"
	log "final resume: ok=$ok segments=$rsegs sent=$rsent skipped=$rskip (held before: $held2)"
	[ "$ok" = True ] && pass "final resume JSON ok true" || fail "final resume JSON: $r"
	[ "$rsegs" = "$segs" ] || fail "resume JSON segments $rsegs, receiver says $segs"
	# the receiver's own count when the final session began (it may have
	# found more intact than the journal listed, never fewer)
	local held3 need
	held3=$(held_at_start "$name")
	[ -n "$held3" ] && [ "$held3" -ge "$held2" ] &&
		pass "the final session started from $held3 held segments (status after kill 2: $held2)" ||
		fail "the final session started from '$held3' held segments, status after kill 2 said $held2"
	held3=${held3:-$held2}
	need=$((segs - held3))
	if [ "$rsent" -ge "$need" ] && [ "$rsent" -le $((need + 1)) ] &&
		[ "$rsent" -le $((segs - held2 + 1)) ]; then
		pass "resume sent only what the receiver lacked ($rsent of $segs; $held2 held by status, $held3 at session start)"
	else
		fail "resume sent $rsent segments; the receiver held $held2 (status) / $held3 (session start) of $segs, so $need were missing"
	fi
	[ "$rskip" -ge "$held2" ] && [ "$rskip" -ge "$held3" ] &&
		pass "resume skipped the held segments (segments_skipped $rskip >= $held3)" ||
		fail "resume skipped $rskip segments, the receiver held $held2 (status) / $held3 (session start)"
	compare_trees "$PKG" "$LAB_STORE/packages/$name" "package after two kills and a resume"
	run_ferry "$WORK/a$n/verify.out" "$WORK/a$n/verify.err" verify "$name" --config "$LAB_CONF"
	expect_rc 0 "$RC" "ferry verify after the resume"
	[ -z "$(ls -A "$LAB_STORE/partial" 2>/dev/null)" ] && pass "nothing left under partial/" ||
		fail "partial/ not empty after completion"
	run_ferry "$WORK/a$n/st.json" "$WORK/a$n/st.err" status --json --config "$CEN_CONF"
	st=$(json_get "$WORK/a$n/st.json" '[e["state"] for e in d if e["direction"]=="out"]')
	[ "$st" = "['done']" ] && pass "sender status shows the transfer done" ||
		fail "sender status after the final resume: $st"
	return 0
}

with_slower_links scenario "the sender could be killed"
e2e_finish
