#!/bin/bash
# test_kill_receiver.sh - kill -9 the receiver (`ferry serve`) twice, once
# during a send and once during a resume. Each interrupted sender gives
# up after its retries with exit 1 and says how to resume; the journal
# survives each kill; after a restart `ferry resume` completes with an
# identical result and sends only what the receiver lacks.
#
# The link runs through a throttling proxy so the kills land mid-way; the
# proxy goes down with the receiver (the whole site is down), so retries
# meet a refused connection. A transfer that finishes before its kill is
# retried with a slower link instead of passing vacuously.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init test_kill_receiver

PKG=$WORK/src/pkg
mkdir -p "$PKG/lib" "$PKG/data/deep"
binary_data "$PKG/lib/binaries.dat" $((60 * 1024 * 1024))
for i in $(seq 1 20); do
	head -c $((1000 * 1000 + i * 777)) /dev/urandom >"$PKG/data/deep/r$i"
done
chmod 0751 "$PKG/data"
log "package: $(du -sh "$PKG" | cut -f1)"

SENDER_EXTRA="segment-size = 1M"
SENDER_RETRIES=1
SENDER_DELAY=1s
KEEP_PORT=1 # the receiver comes back where it was
write_proxy

site_up() { # PROXY_RATE
	start_serve
	start_proxy "$PLOG" --rate "$1"
}
site_down() {
	kill9_serve
	stop_proxy
}

# kill_during NAME CMD_OUT CMD_ERR RATE args...: start ferry args in the
# background, kill -9 the receiver once it holds a quarter more segments
# than now, wait for the sender to give up. Returns 3 when the sender
# finished first; sets SRC_RC, HELD_SEEN.
kill_during() {
	local out=$1 err=$2 start
	shift 2
	start=$(held_in pkg)
	"$FERRY" "$@" >"$out" 2>"$err" &
	local spid=$!
	E2E_PIDS+=("$spid")
	wait_held pkg $((start + SEGS / 4)) 60 "$spid"
	case $? in
	2)
		wait "$spid"
		SRC_RC=$?
		return 3
		;;
	1)
		fail "no progress to $((start + SEGS / 4)) segments within 60 s (held $HELD)"
		return 1
		;;
	esac
	HELD_SEEN=$HELD
	site_down
	local t_end=$((SECONDS + 60))
	while kill -0 "$spid" 2>/dev/null && [ $SECONDS -lt $t_end ]; do
		sleep 0.1
	done
	if kill -0 "$spid" 2>/dev/null; then
		fail "the sender did not give up within 60 s of the receiver's death"
		kill -9 "$spid"
	fi
	wait "$spid"
	SRC_RC=$?
	# done before the kill took effect: not an interruption
	[ "$SRC_RC" = 0 ] && return 3
	return 0
}

scenario() {
	local rate=$1 n=$2
	LAB_STORE=$WORK/a$n/lab
	CEN_STORE=$WORK/a$n/cen
	SERVE_LOG=$WORK/a$n/serve.log
	PLOG=$WORK/a$n/proxy.log
	mkdir -p "$WORK/a$n"
	site_down
	PROXY_PORT=$(pick_port)
	CEN_HOST=127.0.0.1:$PROXY_PORT
	write_configs
	site_up "$rate"
	log "attempt $n: link limited to $((rate / 1024 / 1024)) MiB/s"
	# the number of segments, from a plan-free source: the manifest as
	# the receiver reports it once the send has started
	SEGS=80

	# ---- kill 1: during the send (no --json: the human message)
	kill_during "$WORK/a$n/send.out" "$WORK/a$n/send.err" \
		send "$PKG" --to LAB --config "$CEN_CONF" --level 0
	case $? in
	3) log "attempt $n: the send finished before the receiver was killed"; return 3 ;;
	1) return 1 ;;
	esac
	SEGS=$("$FERRY" status --json --config "$LAB_CONF" 2>/dev/null |
		python3 -c 'import json,sys; print([e["segments"] for e in json.load(sys.stdin) if e["direction"]=="in"][0])' 2>/dev/null)
	[ -n "$SEGS" ] || { fail "no partial package left after killing the receiver"; return 1; }
	expect_rc 1 "$SRC_RC" "the send interrupted by the receiver's death"
	expect_grep "the interrupted send says how to resume" "ferry resume" "$WORK/a$n/send.err"
	expect_grep "the interrupted send retried before giving up" "retry 1 of 1" "$WORK/a$n/send.err"
	local held1
	held1=$(held_in pkg)
	log "kill 1 (during send): $HELD_SEEN held seen before the kill, $held1 in the journal after it, of $SEGS"
	[ "$held1" -gt 0 ] && [ "$held1" -ge "$HELD_SEEN" ] &&
		pass "the journal survived kill -9 of the receiver ($held1 segments held)" ||
		fail "journal after kill 1: $held1 held, $HELD_SEEN were held before the kill"
	if [ "$held1" -ge "$SEGS" ]; then
		log "attempt $n: every segment had arrived before the first kill"
		return 3
	fi
	pass "kill 1 landed mid-transfer ($held1 of $SEGS)"

	# ---- restart; kill 2: during the resume
	site_up "$rate"
	kill_during "$WORK/a$n/resume1.json" "$WORK/a$n/resume1.err" \
		resume --config "$CEN_CONF" --json
	case $? in
	3) log "attempt $n: the resume finished before the receiver was killed"; return 3 ;;
	1) return 1 ;;
	esac
	expect_rc 1 "$SRC_RC" "the resume interrupted by the receiver's death"
	local at_start held2
	# the restarted receiver offers at least what its journal lists (it
	# may also rescue segments written but not journaled before the kill)
	at_start=$(held_at_start pkg)
	[ -n "$at_start" ] && [ "$at_start" -ge "$held1" ] &&
		pass "the restarted receiver offered $at_start held segments (journal: $held1)" ||
		fail "restarted receiver's log says '$at_start' held, the journal had $held1"
	if json_ok "$WORK/a$n/resume1.json"; then
		local r
		r=$(json_get "$WORK/a$n/resume1.json" '"%s %s" % (d["ok"], d["transfers"][0]["segments_skipped"])')
		[ "$r" = "False $at_start" ] &&
			pass "the interrupted resume reports ok false and skipped the $at_start held segments" ||
			fail "interrupted resume JSON (ok, segments_skipped): $r, expected False $at_start"
	else
		fail "the interrupted resume printed no JSON: $(head -c 300 "$WORK/a$n/resume1.json")"
	fi
	held2=$(held_in pkg)
	log "kill 2 (during resume): $held2 of $SEGS held"
	if [ "$held2" -ge "$SEGS" ]; then
		log "attempt $n: every segment had arrived before the second kill"
		return 3
	fi
	[ "$held2" -gt "$held1" ] &&
		pass "kill 2 landed mid-transfer, later than kill 1 ($held1 < $held2 < $SEGS)" ||
		{ fail "kill 2: held $held2 (after kill 1: $held1, of $SEGS)"; return 1; }
	[ "$held2" -ge "$HELD_SEEN" ] &&
		pass "the journal survived kill 2 ($held2 held, $HELD_SEEN seen before the kill)" ||
		fail "journal after kill 2: $held2 held, $HELD_SEEN were held before the kill"

	# ---- restart; the final resume
	site_up "$rate"
	run_ferry "$WORK/a$n/resume2.json" "$WORK/a$n/resume2.err" \
		resume --config "$CEN_CONF" --json
	expect_rc 0 "$RC" "final resume after the receiver's restart"
	local r ok rsegs rsent rskip
	r=$(json_get "$WORK/a$n/resume2.json" \
		'"%s %s %s %s" % (d["ok"], d["transfers"][0]["segments"], d["transfers"][0]["segments_sent"], d["transfers"][0]["segments_skipped"])')
	read -r ok rsegs rsent rskip <<<"$r"
	log "final resume: ok=$ok segments=$rsegs sent=$rsent skipped=$rskip (held before: $held2)"
	[ "$ok" = True ] && pass "final resume JSON ok true" || fail "final resume JSON: $r"
	local held3
	held3=$(held_at_start pkg)
	[ -n "$held3" ] && [ "$held3" -ge "$held2" ] &&
		pass "the final session started from $held3 held segments (journal: $held2)" ||
		fail "the final session started from '$held3' held segments, the journal had $held2"
	held3=${held3:-$held2}
	[ "$rsent" = $((SEGS - held3)) ] &&
		pass "final resume sent only the $rsent missing segments" ||
		fail "final resume sent $rsent segments; $held3 of $SEGS were held, $((SEGS - held3)) missing"
	[ "$rskip" = "$held3" ] && pass "final resume skipped the $held3 held segments" ||
		fail "final resume skipped $rskip, the receiver held $held3"
	compare_trees "$PKG" "$LAB_STORE/packages/pkg" "package after two receiver kills"
	run_ferry "$WORK/a$n/verify.out" "$WORK/a$n/verify.err" verify pkg --config "$LAB_CONF"
	expect_rc 0 "$RC" "ferry verify after the resume"
	return 0
}

with_slower_links scenario "the receiver could be killed"
e2e_finish
