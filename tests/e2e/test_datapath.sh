#!/bin/bash
# test_datapath.sh - the same package through every variant of the data
# path, each compared with the source: registered buffers and the plain
# fallback (FERRY_NO_REGISTER=1) on both sides, SEND_ZC forced on
# loopback (FERRY_FORCE_ZC=1), the receiver without O_DIRECT
# (FERRY_NO_DIRECT=1), fixed compression levels 0, 3 and 19, and the
# automatic level, which must choose raw on loopback for random data.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init test_datapath
need_test_hooks

SRC=$WORK/src
mkdir -p "$SRC/small" "$SRC/bin"
for i in $(seq 1 300); do printf 'file %d\n%s\n' "$i" "$(seq 1 $((i % 50)))" >"$SRC/small/f$i"; done
binary_data "$SRC/bin/real.dat" $((24 * 1024 * 1024))
# 700 files of 70-200 KiB: each has an O_DIRECT middle and buffered ends,
# so the receiver keeps more files open than its fd cache holds
mkdir -p "$SRC/mixed"
python3 - "$SRC/mixed" <<'PY'
import os, random, sys
random.seed(7)
for i in range(700):
    with open(os.path.join(sys.argv[1], "m%03d" % i), "wb") as f:
        f.write(os.urandom(random.randint(70 * 1024, 200 * 1024)))
PY
head -c $((9 * 1024 * 1024 + 4097)) /dev/urandom >"$SRC/bin/random.dat"
SENDER_EXTRA="segment-size = 2M"
write_configs

for v in "plain|FERRY_NO_REGISTER=1" "zc|FERRY_FORCE_ZC=1" \
	"nodirect|FERRY_NO_DIRECT=1" "zcplain|FERRY_FORCE_ZC=1 FERRY_NO_REGISTER=1"; do
	name=${v%%|*}
	envs=${v#*|}
	stop_serve
	# the receiver runs under the same environment as the sender
	env $envs "$FERRY" serve --config "$LAB_CONF" 2>>"$SERVE_LOG" &
	SERVE_PID=$!
	E2E_PIDS+=("$SERVE_PID")
	wait_for_log "$SERVE_LOG" 'receiving on' 10 "$(($(count_log "$SERVE_LOG" 'receiving on') + 1))" ||
		die "serve did not start for $name"
	RC=0
	env $envs "$FERRY" send "$SRC" --to LAB --config "$CEN_CONF" --name "$name" \
		--json >"$WORK/$name.json" 2>"$WORK/$name.err" || RC=$?
	expect_rc 0 "$RC" "send with $envs"
	compare_trees "$SRC" "$LAB_STORE/packages/$name" "tree sent with $envs"
done

# The receiver caches 512 open files. 511 small files and one large one
# fill it exactly at the moment the large file's first O_DIRECT write
# needs one more fd, with the small files' writes still queued: closing
# the cache then must not pull their fds from under them.
stop_serve
start_serve
FD=$WORK/fdcache
mkdir -p "$FD"
for i in $(seq -w 1 511); do printf '%0100d' "$i" >"$FD/a$i"; done
head -c $((5 * 1024 * 1024)) /dev/urandom >"$FD/zz.bin"
run_ferry "$WORK/fd.json" "$WORK/fd.err" send "$FD" --to LAB \
	--config "$CEN_CONF" --json
expect_rc 0 "$RC" "send of 511 small files and a large one"
expect_one_attempt "$WORK/fd.err" "$WORK/fd.json"
compare_trees "$FD" "$LAB_STORE/packages/fdcache" "fd cache edge"

for lvl in 0 3 19; do
	run_ferry "$WORK/l$lvl.json" "$WORK/l$lvl.err" send "$SRC" --to LAB \
		--config "$CEN_CONF" --name "level$lvl" --level "$lvl" --json
	expect_rc 0 "$RC" "send at --level $lvl"
	compare_trees "$SRC" "$LAB_STORE/packages/level$lvl" "tree sent at level $lvl"
done
w0=$(json_get "$WORK/l0.json" 'd["wire_bytes"]')
w19=$(json_get "$WORK/l19.json" 'd["wire_bytes"]')
b=$(json_get "$WORK/l0.json" 'd["bytes"]')
check "level 0 puts every byte on the wire ($w0 >= $b)" [ "$w0" -ge "$b" ]
check "level 19 puts fewer bytes on the wire than level 0 ($w19 < $w0)" [ "$w19" -lt "$w0" ]

# automatic: on loopback the link outruns any compressor
rm -rf "$SRC/small" "$SRC/bin/real.dat"
head -c $((40 * 1024 * 1024)) /dev/urandom >"$SRC/bin/more.dat"
run_ferry "$WORK/auto.json" "$WORK/auto.err" send "$SRC" --to LAB \
	--config "$CEN_CONF" --name auto --json
expect_rc 0 "$RC" "send at the automatic level"
expect_one_attempt "$WORK/auto.err" "$WORK/auto.json"
compare_trees "$SRC" "$LAB_STORE/packages/auto" "tree sent at the automatic level"
lv=$(json_get "$WORK/auto.json" 'd["level"]')
check "automatic level on loopback with random data ends raw (level $lv)" [ "$lv" = 0 ]
run_ferry "$WORK/st.json" "$WORK/st.err" status --config "$CEN_CONF" --json
check "status shows the automatic level" \
	[ "$(json_get "$WORK/st.json" '[(e["level"], e["level_auto"]) for e in d if e.get("name") == "auto" and e["direction"] == "out"][0]')" = "(0, True)" ]

e2e_finish
