#!/bin/bash
# test_in_place.sh - a send of a package the receiver already holds
# complete, by a sender with no record of having sent it (its transfer
# forgotten, or another sender's store): the receiver offers the package
# in place as copies (HELD), the sender reads and compares them, and
#   - unchanged: nothing goes on the wire, every segment counts as
#     already there, the receiver keeps its package and no partial one;
#   - from a second sender store: the same;
#   - one segment changed with the file's size and time kept (the same
#     listing): that segment alone is sent, the others are taken from the
#     package in place, and the package is the new version, verified;
#   - a new version with the same files and sizes (a MiB changed, a file
#     touched: another listing): only the changed segment is sent, the
#     rest taken from the version in place, the new times applied;
#   - a send stopped, then its source changed in place: the next send
#     keeps the earlier partial package and sends what it did not hold
#     and the changed segment;
#   - a new version in place, its send interrupted, then resumed: the
#     resume (its hashes known) sends only what changed and had not
#     arrived; the rest is taken from the version in place.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init test_in_place

PKG=$WORK/src/pkg
mkdir -p "$PKG/sub"
binary_data "$PKG/a.bin" $((5 * 1024 * 1024 + 77))
binary_data "$PKG/sub/b.bin" $((2 * 1024 * 1024))
echo "a small file" >"$PKG/sub/c.txt"
SENDER_EXTRA="segment-size = 1M" write_configs
start_serve

# sent_json FILE: "wire segments sent skipped" of a send --json
sent_json() {
	json_get "$1" '"%d %d %d %d" % (d["wire_bytes"], d["segments"], d["segments_sent"], d["segments_skipped"])'
}

run_ferry "$WORK/s1.json" "$WORK/s1.err" send "$PKG" --to LAB --level 0 --json --config "$CEN_CONF"
expect_rc 0 "$RC" "the first send"
compare_trees "$PKG" "$LAB_STORE/packages/pkg" "the package"
n=$(json_get "$WORK/s1.json" 'd["segments"]')
log "the package has $n segments"

# ---- forgotten by the sender ------------------------------------------------------
run_ferry "$WORK/f.out" "$WORK/f.err" forget pkg --config "$CEN_CONF"
expect_rc 0 "$RC" "forget the transfer"
run_ferry "$WORK/p.json" "$WORK/p.err" plan "$PKG" --to LAB --json --config "$CEN_CONF"
check "plan: the site holds every segment, to compare ($(json_get "$WORK/p.json" '(d["held_segments"], d["held_unconfirmed"], d["send_segments"])'))" \
	[ "$(json_get "$WORK/p.json" '(d["held_segments"], d["held_unconfirmed"], d["send_segments"])')" = "($n, $n, 0)" ]
mark=$(wc -l <"$SERVE_LOG")
run_ferry "$WORK/s2.json" "$WORK/s2.err" send "$PKG" --to LAB --level 0 --json --config "$CEN_CONF"
expect_rc 0 "$RC" "the same package sent again, its transfer forgotten"
read -r wire segs sent skipped <<<"$(sent_json "$WORK/s2.json")"
check "nothing sent ($sent segments, $wire bytes on the wire)" [ "$sent" = 0 -a "$wire" = 0 ]
check "every segment already there ($skipped of $segs)" [ "$skipped" = "$segs" ]
tail -n +"$mark" "$SERVE_LOG" >"$WORK/serve2.log"
expect_grep "LAB says the package in place is the one offered" \
	"package 'pkg' is already here, complete: the sender's hashes are those of" "$WORK/serve2.log"
compare_trees "$PKG" "$LAB_STORE/packages/pkg" "the package in place, untouched"
check "no partial package left at LAB" [ -z "$(ls -A "$LAB_STORE/partial" 2>/dev/null)" ]
run_ferry "$WORK/st2.json" "$WORK/st2.err" status pkg --json --config "$CEN_CONF"
check "status of that send names its output ($(json_get "$WORK/st2.json" '(d[0]["output"], [o["name"] for o in d[0]["outputs"]])'))" \
	[ "$(json_get "$WORK/st2.json" '(d[0]["output"], [o["name"] for o in d[0]["outputs"]])')" = "('lan', ['lan'])" ]

# ---- another sender store ----------------------------------------------------------
sed "s#^store = .*#store = $WORK/cen2#" "$CEN_CONF" >"$WORK/cen2.conf"
run_ferry "$WORK/s3.json" "$WORK/s3.err" send "$PKG" --to LAB --level 0 --json --config "$WORK/cen2.conf"
expect_rc 0 "$RC" "the same package from another sender store"
read -r wire segs sent skipped <<<"$(sent_json "$WORK/s3.json")"
check "nothing sent from the other store ($sent segments, $wire bytes)" [ "$sent" = 0 -a "$wire" = 0 ]
check "every segment already there ($skipped of $segs)" [ "$skipped" = "$segs" ]

# ---- one segment changed, the listing the same -------------------------------------
t=$(stat -c %y "$PKG/a.bin")
printf 'a changed segment' | dd of="$PKG/a.bin" bs=1 seek=$((3 * 1024 * 1024 + 5)) conv=notrunc 2>/dev/null
touch -d "$t" "$PKG/a.bin"
run_ferry "$WORK/f2.out" "$WORK/f2.err" forget pkg --config "$CEN_CONF"
mark=$(wc -l <"$SERVE_LOG")
run_ferry "$WORK/s4.json" "$WORK/s4.err" send "$PKG" --to LAB --level 0 --json --config "$CEN_CONF"
expect_rc 0 "$RC" "a new version of the same listing"
read -r wire segs sent skipped <<<"$(sent_json "$WORK/s4.json")"
check "the changed segment alone is sent ($sent sent, $skipped already there, of $segs)" \
	[ "$sent" = 1 -a "$skipped" = $((segs - 1)) ]
check "about one segment on the wire ($wire bytes)" [ "$wire" -lt $((3 * 512 * 1024)) ]
run_ferry "$WORK/st4.json" "$WORK/st4.err" status pkg --json --config "$CEN_CONF"
r=$(json_get "$WORK/st4.json" '(d[0]["segments_done"], d[0]["segments"], [o["segments"] for o in d[0]["outputs"]])')
check "status: every segment done once, the output carried the one sent ($r)" \
	[ "$r" = "($segs, $segs, [1])" ]
compare_trees "$PKG" "$LAB_STORE/packages/pkg" "the new version, its other segments from the old"
run_ferry "$WORK/v.out" "$WORK/v.err" verify pkg --config "$LAB_CONF"
expect_rc 0 "$RC" "LAB verifies the new version"
tail -n +"$mark" "$SERVE_LOG" >"$WORK/serve4.log"
expect_grep "LAB completed it with the one segment received" \
	"package 'pkg' complete and verified .*\(1 segments received" "$WORK/serve4.log"

# ---- a store whose record is of the old version: its hashes are stale -------------
# cen2 sent the first version; the source and LAB are at the second now,
# with the same listing. Its hashes no longer hold: dropped, read again,
# and nothing but what differs from LAB is sent (here nothing)
run_ferry "$WORK/s6.json" "$WORK/s6.err" send "$PKG" --to LAB --level 0 --json --config "$WORK/cen2.conf"
expect_rc 0 "$RC" "a send whose record is of an older version of the same listing"
expect_grep "... says its hashes no longer hold and reads again" \
	"the hashes an earlier send made of it no longer hold" "$WORK/s6.err"
compare_trees "$PKG" "$LAB_STORE/packages/pkg" "the package after the stale record's send"
run_ferry "$WORK/v6.out" "$WORK/v6.err" verify pkg --config "$LAB_CONF"
expect_rc 0 "$RC" "LAB verifies it"
run_ferry "$WORK/s7.json" "$WORK/s7.err" send "$PKG" --to LAB --level 0 --json --config "$WORK/cen2.conf"
expect_rc 0 "$RC" "the same store sends it again, its record now right"

# ---- sent again, with the sender's record: the site says complete at once ----------
run_ferry "$WORK/s5.out" "$WORK/s5.err" send "$PKG" --to LAB --level 0 --config "$CEN_CONF"
expect_rc 0 "$RC" "the package sent again, its record kept"
expect_grep "... says it is there already" "^'pkg' is at LAB already: nothing sent \($segs segments" "$WORK/s5.out"
run_ferry "$WORK/st5.json" "$WORK/st5.err" status pkg --json --config "$CEN_CONF"
check "status of a send that sent nothing still names its output ($(json_get "$WORK/st5.json" '(d[0]["output"], [o["name"] for o in d[0]["outputs"]])'))" \
	[ "$(json_get "$WORK/st5.json" '(d[0]["output"], [o["name"] for o in d[0]["outputs"]])')" = "('lan', ['lan'])" ]

# ---- a new version with the same files and sizes: one MiB changed, a file touched ----
# (a new listing: times differ) only the changed segment goes; the rest is
# taken from the version in place, and the new times are applied
dd if=/dev/urandom of="$PKG/a.bin" bs=1M seek=2 count=1 conv=notrunc 2>/dev/null
touch -d '2021-03-04 05:06:07' "$PKG/sub/c.txt"
run_ferry "$WORK/s8.json" "$WORK/s8.err" send "$PKG" --to LAB --level 0 --json --config "$CEN_CONF"
expect_rc 0 "$RC" "the new version sent"
read -r wire segs sent skipped <<<"$(sent_json "$WORK/s8.json")"
check "... only the changed segment went ($sent of $segs, $wire bytes on the wire)" \
	[ "$sent" = 1 ] && [ "$wire" -lt $((2 * 1024 * 1024)) ]
expect_grep "the receiver offered the version in place to compare" \
	"a version with the same files and sizes is in place; its [0-9]+ segments go to the sender" "$SERVE_LOG"
compare_trees "$PKG" "$LAB_STORE/packages/pkg" "the new version (bytes and times)"
run_ferry "$WORK/v8.out" "$WORK/v8.err" verify pkg --config "$LAB_CONF"
expect_rc 0 "$RC" "LAB verifies the new version"

# ---- a partial package of an earlier version with the same files and sizes ---------
# a send stopped with some segments held, then the source changed in place
# (one held MiB rewritten, the file's size kept): the next send finds the
# earlier partial package kept for it and sends what it did not hold, and
# the changed segment
P2=$WORK/src/p2
mkdir -p "$P2"
binary_data "$P2/x.bin" $((12 * 1024 * 1024))
sed -e "/^type = lan/a rate-limit = pulse 256K 100ms" "$CEN_CONF" >"$WORK/slow.conf"
"$FERRY" send "$P2" --to LAB --level 0 --config "$WORK/slow.conf" >"$WORK/p1.out" 2>"$WORK/p1.err" &
pid=$!
E2E_PIDS+=("$pid")
stop_when_held p2 3 "$pid"
sleep 1 # what the receiver was still writing is journaled
held=$(held_in p2)
check "... the first send stopped with segments held ($held of 12)" [ "$held" -ge 3 ] && [ "$held" -lt 12 ]
dd if=/dev/urandom of="$P2/x.bin" bs=1M seek=0 count=1 conv=notrunc 2>/dev/null
run_ferry "$WORK/p2.json" "$WORK/p2.err" send "$P2" --to LAB --level 0 --json --config "$CEN_CONF"
expect_rc 0 "$RC" "the changed source sent"
read -r wire segs sent skipped <<<"$(sent_json "$WORK/p2.json")"
check "... it sent what was not held and the changed segment ($sent of $segs, $held were held)" \
	[ "$sent" -le $((segs - held + 1)) ] && [ "$sent" -lt "$segs" ]
expect_grep "the receiver kept the earlier version's partial package" \
	"the partial package of an earlier version \(id [0-9a-f]+\) has the same files and sizes" "$SERVE_LOG"
compare_trees "$P2" "$LAB_STORE/packages/p2" "the changed package"

# ---- a new version in place, its send interrupted, then resumed ------------------
# the interrupted send had compared (and so hashed) the segments that did
# not change; the resume offers those hashes, and the receiver takes those
# segments from the version in place instead of having them sent again
# (it had asked for every segment it did not hold yet)
P3=$WORK/src/p3
mkdir -p "$P3"
binary_data "$P3/y.bin" $((12 * 1024 * 1024))
run_ferry "$WORK/q1.json" "$WORK/q1.err" send "$P3" --to LAB --level 0 --json --config "$CEN_CONF"
expect_rc 0 "$RC" "the first version of p3"
dd if=/dev/urandom of="$P3/y.bin" bs=1M seek=8 count=4 conv=notrunc 2>/dev/null
"$FERRY" send "$P3" --to LAB --level 0 --config "$WORK/slow.conf" >"$WORK/q2.out" 2>"$WORK/q2.err" &
pid=$!
E2E_PIDS+=("$pid")
stop_when_held p3 1 "$pid"
run_ferry "$WORK/q3.json" "$WORK/q3.err" resume p3 --json --config "$CEN_CONF"
expect_rc 0 "$RC" "the resume of the interrupted new version"
sent=$(json_get "$WORK/q3.json" 'd["transfers"][0]["segments_sent"] if "transfers" in d else d["segments_sent"]')
check "... sends only what changed and had not arrived ($sent of 12, 4 changed)" [ "${sent:-99}" -le 4 ]
compare_trees "$P3" "$LAB_STORE/packages/p3" "the resumed new version"

e2e_finish
