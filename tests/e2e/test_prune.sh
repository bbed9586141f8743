#!/bin/bash
# test_prune.sh - partial packages and transfer records nobody will
# finish, with the real binary:
#
#  1. a send killed with -9 leaves a partial package; `status` at the
#     receiver shows its age and last activity (text and JSON).
#  2. the source changes and the package is sent again (a new package
#     id): when the new version completes, the older version's partial
#     goes; a partial of another name stays.
#  3. `prune --older-than` at the sender removes done and abandoned
#     transfer records idle that long (--dry-run only lists them); a
#     recent one stays.
#  4. `prune --older-than` at the receiver removes an abandoned partial
#     and keeps a fresh one (--dry-run only lists); a partial a session
#     is receiving stays even when idle that long; `forget` refuses the
#     running transfer.
#  5. `forget` drops one transfer record; an unknown one is an error.
#  6. `parcel create` that gives up after registering (the source changed
#     under it) withdraws the registration: no partial package and no
#     parcel record stays at the receiver.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init test_prune
need_test_hooks

SENDER_EXTRA="segment-size = 1M"
write_configs
start_serve
MEDIA=$WORK/media
mkdir -p "$MEDIA" "$WORK/src"
# three ways to LAB: lan (fast), slow (512 KiB/s, the sender's own pulse
# limit), crawl (16 KiB/s: a segment takes a minute); and a courier
ADDR_EXTRA="priority = 1

[address LAB slow]
type = lan
host = 127.0.0.1:$PORT
password-file = $PW_FILE
priority = 2
rate-limit = pulse 128K 250ms

[address LAB crawl]
type = lan
host = 127.0.0.1:$PORT
password-file = $PW_FILE
priority = 3
rate-limit = pulse 16K 1s

[address LAB usb]
type = courier
password-file = $PW_FILE
media = $MEDIA"
write_configs

# partial_json NAME FIELD: FIELD of the receiver's partial entry for NAME
partial_json() {
	"$FERRY" status --json --config "$LAB_CONF" >"$WORK/st.json" 2>/dev/null
	json_get "$WORK/st.json" "[e['$2'] for e in d if e.get('direction') == 'in' and e.get('state') == 'partial' and e.get('name') == '$1'][0]" 2>/dev/null
}

# n_partials NAME: partial entries for NAME at the receiver
n_partials() {
	"$FERRY" status --json --config "$LAB_CONF" >"$WORK/st.json" 2>/dev/null
	json_get "$WORK/st.json" "len([e for e in d if e.get('direction') == 'in' and e.get('state') == 'partial' and e.get('name') == '$1'])"
}

# n_out NAME: transfer records for NAME at the sender
n_out() {
	"$FERRY" status --json --config "$CEN_CONF" >"$WORK/so.json" 2>/dev/null
	json_get "$WORK/so.json" "len([e for e in d if e.get('direction') == 'out' and e.get('name') == '$1'])"
}

no_grep() { ! grep -q -- "$1" "$2"; }

# kill_send NAME SRC: send over the slow address, kill -9 the sender once
# the receiver holds a segment, wait for the receiving session to end
kill_send() {
	local name=$1 src=$2 pid before
	before=$(count_log "$SERVE_LOG" "$SESSION_END")
	"$FERRY" send "$src" --to LAB --config "$CEN_CONF" --name "$name" \
		--via slow --level 0 >"$WORK/$name.k.out" 2>"$WORK/$name.k.err" &
	pid=$!
	E2E_PIDS+=("$pid")
	wait_held "$name" 1 30 "$pid" || die "'$name': no segment held within 30 s"
	kill -9 "$pid"
	wait "$pid" 2>/dev/null
	wait_session_end "$before" 20 || die "'$name': the receiving session did not end"
	log "$name: sender killed with $(held_in "$name") segment(s) held"
}

# ---- 1. a killed send's partial: its age and last activity --------------------
mkdir -p "$WORK/src/p18"
head -c $((8 * 1024 * 1024)) /dev/urandom >"$WORK/src/p18/data.bin"
kill_send p18 "$WORK/src/p18"
sleep 2
age=$(partial_json p18 age_s)
idle=$(partial_json p18 idle_s)
created=$(partial_json p18 created)
last=$(partial_json p18 last_activity)
iso='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$'
[[ "$created" =~ $iso ]] && pass "status --json: the partial's \"created\" is ISO-8601 UTC ($created)" ||
	fail "status --json: created '$created'"
[[ "$last" =~ $iso ]] && pass "status --json: its \"last_activity\" is ISO-8601 UTC ($last)" ||
	fail "status --json: last_activity '$last'"
[ "${age:-0}" -ge 2 ] && [ "${age:-0}" -lt 60 ] && pass "status --json: age_s $age" ||
	fail "status --json: age_s '$age', expected 2..59"
[ "${idle:-0}" -ge 2 ] && [ "${idle:-0}" -le "${age:-0}" ] &&
	pass "status --json: idle_s $idle, since the last segment journaled" ||
	fail "status --json: idle_s '$idle' (age $age)"
run_ferry "$WORK/st.txt" "$WORK/st.err" status --config "$LAB_CONF"
expect_grep "status (text) shows the partial's age and last activity" \
	'p18 +CEN +partial .* age [0-9]+s, last activity [0-9]+s ago' "$WORK/st.txt"

# ---- 2. the older version's partial goes when the new one completes -------------
mkdir -p "$WORK/src/p17"
head -c $((8 * 1024 * 1024)) /dev/urandom >"$WORK/src/p17/data.bin"
kill_send p17 "$WORK/src/p17"
check "the killed send left a partial p17" [ "$(n_partials p17)" = 1 ]
# (its size changes: a partial of the same files and sizes would be taken
# over by the new version instead, test_in_place)
printf 'version 2' >>"$WORK/src/p17/data.bin"
run_ferry "$WORK/p17.out" "$WORK/p17.err" send "$WORK/src/p17" --to LAB \
	--config "$CEN_CONF" --via lan --level 0
expect_rc 0 "$RC" "the changed p17 sent to the end"
compare_trees "$WORK/src/p17" "$LAB_STORE/packages/p17" "p17 version 2"
n=$(n_partials p17)
[ "$n" = 0 ] && pass "no partial p17 is left beside the complete one" ||
	fail "$n partial p17 left: $(grep -o '"name":"p17"[^}]*partial[^}]*' "$WORK/st.json")"
check "the store holds no partial directory for p17's old version" \
	[ "$(ls "$LAB_STORE/partial" | wc -l)" = 1 ]
expect_grep "the receiver says it removed the older version's partial" \
	"package 'p17': removed the partial package of an older version" "$SERVE_LOG"
check "the partial of another package (p18) stays" [ "$(n_partials p18)" = 1 ]

# ---- 3. prune at the sender: done and abandoned records ------------------------
# the records so far are made an hour old (prune reads their files'
# times), so that no check depends on how long the steps take
find "$CEN_STORE/outgoing" -type f -exec touch -d '-1 hour' {} +
mkdir -p "$WORK/src/recent"
head -c 100000 /dev/urandom >"$WORK/src/recent/r.bin"
run_ferry "$WORK/recent.out" "$WORK/recent.err" send "$WORK/src/recent" --to LAB \
	--config "$CEN_CONF" --via lan
expect_rc 0 "$RC" "a small send (a recent done record)"
run_ferry "$WORK/pd.out" "$WORK/pd.err" prune --older-than 30m --dry-run --config "$CEN_CONF"
expect_rc 0 "$RC" "prune --dry-run at the sender"
expect_grep "--dry-run lists the done record of p17" \
	"^would remove transfer [0-9a-f]{12}-LAB \('p17' to LAB, done\)" "$WORK/pd.out"
expect_grep "--dry-run lists the interrupted record of p18" \
	"^would remove transfer [0-9a-f]{12}-LAB \('p18' to LAB, interrupted\)" "$WORK/pd.out"
check "--dry-run removed nothing" [ "$(n_out p17)" = 1 -a "$(n_out p18)" = 1 ]
check "--dry-run does not list the recent record" no_grep "'recent'" "$WORK/pd.out"
run_ferry "$WORK/ps.json" "$WORK/ps.err" prune --older-than 30m --json --config "$CEN_CONF"
expect_rc 0 "$RC" "prune --json at the sender"
check "prune --json prints one JSON document" json_ok "$WORK/ps.json"
got=$(json_get "$WORK/ps.json" "sorted(e['name'] for e in d['entries'] if e['kind'] == 'transfer' and e['action'] == 'removed')")
[ "$got" = "['p17', 'p18']" ] && pass "prune removed the records of p17 (done) and p18 (abandoned)" ||
	fail "prune removed: $got"
check "status at the sender no longer lists p17 and p18" [ "$(n_out p17)" = 0 -a "$(n_out p18)" = 0 ]
check "the recent record stays" [ "$(n_out recent)" = 1 ]

# ---- 4. prune at the receiver ------------------------------------------------------
# p18's partial, the only one so far, an hour old
find "$LAB_STORE/partial" -type f -exec touch -d '-1 hour' {} +
mkdir -p "$WORK/src/fresh"
head -c $((8 * 1024 * 1024)) /dev/urandom >"$WORK/src/fresh/data.bin"
kill_send fresh "$WORK/src/fresh"
run_ferry "$WORK/rd.out" "$WORK/rd.err" prune --older-than 30m --dry-run --config "$LAB_CONF"
expect_rc 0 "$RC" "prune --dry-run at the receiver"
expect_grep "--dry-run lists the abandoned partial p18" \
	"^would remove partial package 'p18' \(id [0-9a-f]{12}, from CEN, [0-9]+/8 segments" "$WORK/rd.out"
check "--dry-run does not list the fresh partial" no_grep "'fresh'" "$WORK/rd.out"
check "--dry-run removed nothing" [ "$(n_partials p18)" = 1 ]
# the space it would free is what p18's partial holds on disk (its files
# are as long as the package's, and mostly holes), not the package's size
run_ferry "$WORK/rd.json" "$WORK/rd.err" prune --older-than 30m --dry-run --json --config "$LAB_CONF"
pid18=$(json_get "$WORK/rd.json" '[e["id"] for e in d["entries"] if e["name"] == "p18"][0]')
held=$(du -sB1 "$LAB_STORE/partial/$pid18" 2>/dev/null | awk '{print $1 + 0}')
said=$(json_get "$WORK/rd.json" 'd["bytes"]')
check "prune counts the disk space the partial holds ($said bytes said, $held by du)" \
	[ "${held:-0}" -gt 0 -a $((said > held ? said - held : held - said)) -le 65536 ]
run_ferry "$WORK/rp.out" "$WORK/rp.err" prune --older-than 30m --config "$LAB_CONF"
expect_rc 0 "$RC" "prune --older-than 30m at the receiver"
expect_grep "prune says it removed p18" "^removed partial package 'p18'" "$WORK/rp.out"
check "the abandoned partial p18 is gone" [ "$(n_partials p18)" = 0 ]
check "the fresh partial stays" [ "$(n_partials fresh)" = 1 ]

# a partial that a session is receiving, idle for longer than the duration
mkdir -p "$WORK/src/live"
head -c $((2 * 1024 * 1024)) /dev/urandom >"$WORK/src/live/data.bin"
"$FERRY" send "$WORK/src/live" --to LAB --config "$CEN_CONF" --name live \
	--via crawl --level 0 >"$WORK/live.out" 2>"$WORK/live.err" &
live=$!
E2E_PIDS+=("$live")
wait_for_log "$SERVE_LOG" "package 'live' .* to receive" 20 ||
	fail "the live session did not start"
sleep 2
run_ferry "$WORK/rl.out" "$WORK/rl.err" prune --older-than 1s --config "$LAB_CONF"
expect_rc 0 "$RC" "prune --older-than 1s while a session receives 'live'"
expect_grep "prune keeps the partial being received, and says why" \
	"^kept partial package 'live' .*: a session is receiving it" "$WORK/rl.out"
check "the partial being received is still there" [ "$(n_partials live)" = 1 ]
expect_grep "the idle fresh partial went" "^removed partial package 'fresh'" "$WORK/rl.out"
run_ferry "$WORK/fl.out" "$WORK/fl.err" forget live --config "$CEN_CONF"
expect_rc 1 "$RC" "forget of a running transfer"
expect_grep "forget says it is running" "transfer [0-9a-f]{12}-LAB \('live' to LAB\) is running" "$WORK/fl.err"
check "the running transfer's record stays" [ "$(n_out live)" = 1 ]
kill -9 "$live"
wait "$live" 2>/dev/null

# ---- 5. forget -----------------------------------------------------------------------
id=$(json_get "$WORK/so.json" "[e['transfer'] for e in d if e.get('name') == 'recent'][0]")
run_ferry "$WORK/fg.out" "$WORK/fg.err" forget "$id" --config "$CEN_CONF"
expect_rc 0 "$RC" "forget by transfer id"
expect_grep "forget names what it dropped" "^forgot transfer $id \('recent' to LAB, done\)" "$WORK/fg.out"
check "status at the sender no longer lists it" [ "$(n_out recent)" = 0 ]
run_ferry "$WORK/fn.out" "$WORK/fn.err" forget nosuch --config "$CEN_CONF"
expect_rc 1 "$RC" "forget of an unknown transfer"
expect_grep "forget names the unknown transfer" "no transfer 'nosuch'" "$WORK/fn.err"
run_ferry "$WORK/fu.out" "$WORK/fu.err" forget --config "$CEN_CONF"
expect_rc 2 "$RC" "forget without TRANSFER"

# ---- 6. a parcel that gives up after registering withdraws it -------------------
# The hashing is held back (a test knob) so that frames go to the medium
# first and the registration follows; the source then changes under the
# frames already written, and creation gives up.
SRC6=$WORK/src/chg
mkdir -p "$SRC6"
head -c $((3 * 1024 * 1024)) /dev/urandom >"$SRC6/a.bin"
head -c $((3 * 1024 * 1024)) /dev/urandom >"$SRC6/b.bin"
FERRY_HASH_DELAY_MS=3000 "$FERRY" parcel create "$SRC6" --to LAB --config "$CEN_CONF" \
	--name chg --media "$MEDIA" --level 0 >"$WORK/c6.out" 2>"$WORK/c6.err" &
cpid=$!
E2E_PIDS+=("$cpid")
for ((i = 0; i < 1000; i++)); do
	sz=$(find "$MEDIA" -name 'vol-001.fpv' -printf '%s\n' 2>/dev/null | head -n 1)
	[ "${sz:-0}" -gt $((2 * 1024 * 1024)) ] && break
	sleep 0.01
done
printf 'changed' | dd of="$SRC6/a.bin" bs=1 seek=1000 conv=notrunc status=none
rc=0
wait "$cpid" || rc=$?
expect_rc 1 "$rc" "parcel create whose source changed after it was registered"
expect_grep "parcel create says it withdrew the registration" \
	"the parcel's registration with LAB is withdrawn" "$WORK/c6.err"
expect_grep "the receiver took the registration" "parcel [0-9a-f]{12} of 'chg' registered" "$SERVE_LOG"
expect_grep "the receiver says the parcel was withdrawn" \
	"parcel [0-9a-f]{12} of 'chg' withdrawn; its empty partial package removed" "$SERVE_LOG"
check "no partial package 'chg' is left at the receiver" [ "$(n_partials chg)" = 0 ]
check "no parcel record is left at the receiver" \
	[ "$(find "$LAB_STORE/incoming" -type f 2>/dev/null | wc -l)" = 0 ]

stop_serve
e2e_finish
