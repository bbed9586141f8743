#!/bin/bash
# test_finalize_cut.sh - a new version of a package whose completion is cut
# between putting it in place and recording its manifest (the receiver
# killed there, or no room for the manifest):
#   - no room: the older version goes back in place with its record, the
#     send fails resumable, verify passes, and a resume completes the new
#     version;
#   - killed there: verify says the completion was cut and neither checks
#     nor repairs (a repair against the older record cut the new files to
#     the older sizes); a resume completes the new version.
# Needs a test build (FERRY_NO_SPACE_FOR_MANIFEST, FERRY_CRASH_AFTER_EXCHANGE).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init test_finalize_cut
need_test_hooks

V1=$WORK/v1/pkg
V2=$WORK/v2/pkg
mkdir -p "$V1/d" "$V2/d"
binary_data "$V1/d/a.bin" $((300 * 1024))
printf 'one\n' >"$V1/d/b.txt"
binary_data "$V2/d/a.bin" $((500 * 1024 + 7))
printf 'two, longer\n' >"$V2/d/b.txt"
SENDER_RETRIES=1
SENDER_DELAY=1s
write_configs
start_serve
run_ferry "$WORK/s1.out" "$WORK/s1.err" send "$V1" --to LAB --config "$CEN_CONF"
expect_rc 0 "$RC" "version 1 sent"
restart_lab() { # [ENV=VALUE]: LAB's receiver again, with a test switch
	kill "$SERVE_PID" 2>/dev/null
	wait "$SERVE_PID" 2>/dev/null
	if [ -n "${1:-}" ]; then
		env "$1" "$FERRY" serve --config "$LAB_CONF" 2>>"$SERVE_LOG" &
		SERVE_PID=$!
		E2E_PIDS+=("$SERVE_PID")
		wait_for_log "$SERVE_LOG" "receiving on" 10 "$(($(count_log "$SERVE_LOG" "receiving on") + 1))" ||
			die "LAB did not start again"
	else
		start_serve
	fi
}
tid() { sed -n 's/^id=//p' "$(grep -l "^name=pkg$" "$CEN_STORE"/outgoing/*/transfer | head -n 1)"; }

# ---- no room for the manifest -------------------------------------------------
restart_lab FERRY_NO_SPACE_FOR_MANIFEST=1
run_ferry "$WORK/s2.out" "$WORK/s2.err" send "$V2" --to LAB --config "$CEN_CONF"
expect_rc 1 "$RC" "version 2 whose manifest finds no room"
expect_grep "... says why" "cannot record manifest .*No space left on device" "$WORK/s2.err" "$SERVE_LOG"
compare_trees "$V1" "$LAB_STORE/packages/pkg" "version 1 back in place"
run_ferry "$WORK/v2.out" "$WORK/v2.err" verify pkg --config "$LAB_CONF"
expect_rc 0 "$RC" "verify of version 1 with its record"
restart_lab
run_ferry "$WORK/r2.out" "$WORK/r2.err" resume "$(tid)" --config "$CEN_CONF"
expect_rc 0 "$RC" "the resume once there is room"
compare_trees "$V2" "$LAB_STORE/packages/pkg" "version 2 after the resume"
run_ferry "$WORK/v3.out" "$WORK/v3.err" verify pkg --config "$LAB_CONF"
expect_rc 0 "$RC" "verify of version 2"

# ---- the receiver killed between the two ------------------------------------------
# (version 1 again, then version 2 cut)
run_ferry "$WORK/s3.out" "$WORK/s3.err" send "$V1" --to LAB --config "$CEN_CONF"
expect_rc 0 "$RC" "version 1 again"
restart_lab FERRY_CRASH_AFTER_EXCHANGE=1
run_ferry "$WORK/s4.out" "$WORK/s4.err" send "$V2" --to LAB --config "$CEN_CONF"
check "version 2's send did not complete (exit $RC)" [ "$RC" != 0 ]
check "LAB's receiver died where it was told to" bash -c "! kill -0 $SERVE_PID 2>/dev/null"
run_ferry "$WORK/v4.out" "$WORK/v4.err" verify pkg --repair --config "$LAB_CONF"
expect_rc 1 "$RC" "verify --repair of the package whose completion was cut"
expect_grep "... says so and does nothing" "the completion of a new version of 'pkg' was cut short .*nothing verified or repaired" "$WORK/v4.err"
compare_trees "$V2" "$LAB_STORE/packages/pkg" "version 2 in place, untouched by verify"
restart_lab
run_ferry "$WORK/r4.out" "$WORK/r4.err" resume "$(tid)" --config "$CEN_CONF"
expect_rc 0 "$RC" "the resume after the cut"
compare_trees "$V2" "$LAB_STORE/packages/pkg" "version 2 after the resume"
run_ferry "$WORK/v5.out" "$WORK/v5.err" verify pkg --config "$LAB_CONF"
expect_rc 0 "$RC" "verify of version 2 with its record"
e2e_finish
