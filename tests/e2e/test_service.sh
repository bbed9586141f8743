#!/bin/bash
# test_service.sh - the receiver as a service, and the sender's views:
#   - `ferry serve` stopped by SIGTERM in the middle of a transfer exits 0
#     within a few seconds, with nothing it journaled lost; the sender says
#     the transfer is resumable; once the receiver is back, `ferry resume`
#     sends only what it lacks and the package verifies;
#   - FERRY_CONFIG names the config when --config is not given;
#   - the human `status` table: its header, the transfer and the package.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init test_service

SEGS=24
SENDER_EXTRA="segment-size = 256K"
ADDR_EXTRA="rate-limit = pulse 512K 1s" # about 2 segments a second
SENDER_RETRIES=0
write_configs
SRC=$WORK/src
mkdir -p "$SRC/d"
head -c $((SEGS * 256 * 1024 - 1000)) /dev/urandom >"$SRC/d/blob"
echo hello >"$SRC/hello.txt"

# ---- SIGTERM to the receiver mid-transfer --------------------------------------------
start_serve
"$FERRY" send "$SRC" --to LAB --name svc --config "$CEN_CONF" --level 0 \
	>"$WORK/s1.out" 2>"$WORK/s1.err" &
spid=$!
E2E_PIDS+=("$spid")
wait_held() { # wait_held N SECONDS: N segments journaled at LAB
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		[ "$(held_in "$LAB_STORE" 2>/dev/null || echo 0)" -ge "$1" ] && return 0
		sleep 0.1
	done
	return 1
}
held_in() { # segments journaled in the (one) partial package
	local j n=0
	for j in "$1"/partial/*/journal; do
		[ -f "$j" ] || continue
		n=$(($(stat -c %s "$j") / 32 - 1))
	done
	echo "$n"
}
wait_held 4 60 || fail "LAB did not journal 4 segments within 60 s"
pid=$SERVE_PID
t0=$(date +%s.%N)
kill -TERM "$pid"
src=0
for ((i = 0; i < 100; i++)); do
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
if kill -0 "$pid" 2>/dev/null; then
	fail "ferry serve still runs 10 s after SIGTERM mid-transfer"
	kill -9 "$pid"
fi
wait "$pid" 2>/dev/null || src=$?
SERVE_PID=
t1=$(date +%s.%N)
expect_rc 0 "$src" "serve stopped by SIGTERM mid-transfer ($(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}') s)"
held=$(held_in "$LAB_STORE")
check "LAB kept the segments it had journaled ($held of $SEGS)" [ "$held" -ge 4 -a "$held" -lt "$SEGS" ]
rc=0
wait "$spid" || rc=$?
expect_rc 1 "$rc" "the send whose receiver stopped"
expect_grep "the sender says how to resume" "ferry resume .*--config" "$WORK/s1.err"
check "no package appeared at LAB" test ! -e "$LAB_STORE/packages/svc"

# ---- the human status table while interrupted -----------------------------------------
run_ferry "$WORK/st.out" "$WORK/st.err" status --config "$CEN_CONF"
expect_rc 0 "$RC" "status at the sender"
expect_grep "status has its table header" "^ *TRANSFER +NAME +TO +STATE" "$WORK/st.out"
expect_grep "status lists the interrupted transfer" "svc +LAB +(interrupted|failed)" "$WORK/st.out"
run_ferry "$WORK/sl.out" "$WORK/sl.err" status --config "$LAB_CONF"
expect_grep "status at LAB lists the partial package" "svc +CEN +partial +$held/$SEGS" "$WORK/sl.out"

# ---- back up: resume, with the config from FERRY_CONFIG ---------------------------------
ADDR_EXTRA= write_configs
start_serve
FERRY_CONFIG=$CEN_CONF run_ferry "$WORK/r.json" "$WORK/r.err" resume svc --json
expect_rc 0 "$RC" "resume (config from FERRY_CONFIG) after the receiver came back"
sent=$(json_get "$WORK/r.json" 'd["transfers"][0]["segments_sent"]')
skipped=$(json_get "$WORK/r.json" 'd["transfers"][0]["segments_skipped"]')
check "the resume sent only what LAB lacked (sent $sent, skipped $skipped, held $held)" \
	[ "$skipped" -ge "$held" -a $((sent + skipped)) = "$SEGS" ]
run_ferry "$WORK/v.out" "$WORK/v.err" verify svc --config "$LAB_CONF"
expect_rc 0 "$RC" "verify of the package after the receiver's stop"
compare_trees "$SRC" "$LAB_STORE/packages/svc" "the package"
run_ferry "$WORK/st2.out" "$WORK/st2.err" status --config "$CEN_CONF"
expect_grep "status shows the transfer done" "svc +LAB +done +100" "$WORK/st2.out"
run_ferry "$WORK/sl2.out" "$WORK/sl2.err" status --config "$LAB_CONF"
expect_grep "status at LAB lists the package complete" "svc +complete +24/24" "$WORK/sl2.out"

e2e_finish
