#!/bin/bash
# test_disk_full.sh - the receiver's store is a 40 MiB tmpfs and the
# package is 60 MiB: the sender fails (exit non-zero) with a message that
# says "No space left on device"; what was journaled stays journaled;
# after the tmpfs grows to 200 MiB, `ferry resume` completes with an
# identical result, sending only what is missing.
# labels: needs-root
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init test_disk_full

MNT=$WORK/lab
mkdir -p "$MNT"
if ! mount -t tmpfs -o size=40m tmpfs "$MNT" 2>"$WORK/mount.err"; then
	skip "cannot mount a tmpfs (needs root): $(cat "$WORK/mount.err")"
fi
E2E_MOUNTS+=("$MNT")
LAB_STORE=$MNT/store

PKG=$WORK/src/pkg
mkdir -p "$PKG/bin" "$PKG/data"
head -c $((40 * 1024 * 1024)) /dev/urandom >"$PKG/bin/random.dat"
for i in $(seq 1 20); do
	head -c $((1024 * 1024 - 17 * i)) /dev/urandom >"$PKG/data/r$i"
done
echo small >"$PKG/small.txt"
log "package: $(du -sh "$PKG" | cut -f1), receiver store: 40 MiB tmpfs"

SENDER_EXTRA="segment-size = 1M"
SENDER_RETRIES=1
SENDER_DELAY=1s
write_configs
start_serve

timeout 120 "$FERRY" send "$PKG" --to LAB --config "$CEN_CONF" \
	>"$WORK/send.out" 2>"$WORK/send.err"
RC=$?
[ "$RC" -ne 0 ] && [ "$RC" -ne 124 ] && pass "send into a full store fails (exit $RC)" ||
	fail "send into a full store: exit $RC"
[ "$RC" = 1 ] && pass "the failed send exits 1 (resumable)" ||
	fail "the failed send exits $RC, expected 1 (failed, resumable)"
expect_grep "the sender's error says No space left on device" \
	"No space left on device" "$WORK/send.err"
expect_grep "the sender says how to resume" "ferry resume" "$WORK/send.err"
expect_grep "the receiver logs No space left on device" \
	"No space left on device" "$SERVE_LOG"
kill -0 "$SERVE_PID" 2>/dev/null && pass "ferry serve still running with a full disk" ||
	fail "ferry serve died on a full disk"
[ ! -e "$LAB_STORE/packages/pkg" ] && pass "no partial package visible under packages/" ||
	fail "a package that does not fit appeared under packages/"

held=$(held_in pkg)
segs=$("$FERRY" status --json --config "$LAB_CONF" 2>/dev/null |
	python3 -c 'import json,sys; print([e["segments"] for e in json.load(sys.stdin) if e["direction"]=="in"][0])' 2>/dev/null)
log "after the failure the receiver holds $held of ${segs:-?} segments ($(df -h "$MNT" | tail -n 1 | awk '{print $3 " used of " $2}'))"
[ -n "$segs" ] && [ "$held" -gt 0 ] && [ "$held" -lt "$segs" ] &&
	pass "the partial journal still lists $held held segments" ||
	fail "after disk full: held '$held' of '$segs'"
[ -s "$(ls -d "$LAB_STORE"/partial/*/journal 2>/dev/null | head -n 1)" ] &&
	pass "the partial journal is there" || fail "no partial journal"

# more tries while still full (each one a send session and its retry)
# must not lose anything either, nor journal what did not fit
for i in 1 2 3; do
	timeout 120 "$FERRY" resume --config "$CEN_CONF" >"$WORK/r$i.out" 2>"$WORK/r$i.err"
	RC=$?
	[ "$RC" -ne 0 ] && pass "resume $i into the still-full store fails (exit $RC)" ||
		fail "resume $i into a full store exited 0"
	expect_grep "resume $i: the error says No space left on device" \
		"No space left on device" "$WORK/r$i.err"
	held_b=$(held_in pkg)
	[ "$held_b" -ge "$held" ] && pass "failed resume $i loses no held segment ($held -> $held_b)" ||
		fail "held segments went from $held to $held_b after failed resume $i"
	held=$held_b
done

if ! mount -o remount,size=200m "$MNT"; then
	fail "cannot grow the tmpfs"
	e2e_finish
fi
held=$(held_in pkg)
run_ferry "$WORK/resume.json" "$WORK/resume.err" resume --config "$CEN_CONF" --json
expect_rc 0 "$RC" "resume after the disk was grown"
r=$(json_get "$WORK/resume.json" \
	'"%s %s %s %s" % (d["ok"], d["transfers"][0]["segments"], d["transfers"][0]["segments_sent"], d["transfers"][0]["segments_skipped"])')
read -r ok rsegs rsent rskip <<<"$r"
log "resume: ok=$ok segments=$rsegs sent=$rsent skipped=$rskip (held before: $held)"
[ "$ok" = True ] && pass "resume JSON ok true" || fail "resume JSON: $r"
[ "$rsent" = $((segs - held)) ] && [ "$rskip" = "$held" ] &&
	pass "resume sent only the $rsent missing segments" ||
	fail "resume sent $rsent and skipped $rskip; $held of $segs were held"
compare_trees "$PKG" "$LAB_STORE/packages/pkg" "package after disk full and resume"
run_ferry "$WORK/verify.out" "$WORK/verify.err" verify pkg --config "$LAB_CONF"
expect_rc 0 "$RC" "ferry verify after the resume"
[ -z "$(ls -A "$LAB_STORE/partial" 2>/dev/null)" ] && pass "nothing left under partial/" ||
	fail "partial/ not empty after completion"

stop_serve
e2e_finish
