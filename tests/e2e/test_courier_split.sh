#!/bin/bash
# test_courier_split.sh - the courier as an output (issue 16): `ferry send
# --courier` splits the package between the network (the front) and a
# parcel written at once to the courier address's media (the tail), so
# that both would finish together.
#   - a slow network (a proxy at 1 MB/s) and a courier of 5 s transit:
#     the send says where it splits and writes the parcel of the tail at
#     once; the parcel, imported at LAB while the network still sends the
#     front, brings the tail, and the network stops before sending it; the
#     package completes, byte-identical, each segment once, and the send's
#     JSON credits the courier with what its parcel brought;
#   - the send killed (-9) once its parcel is written: `ferry resume`
#     keeps --courier, writes no second parcel and waits for the first,
#     which, imported while the resume sends, completes the package;
#   - the send killed, its parcel imported while nothing runs, then
#     resumed: the network sends the front only, the courier credited;
#   - a parcel that comes late: the network goes on into its segments;
#     imported then, it brings the rest, credited to the courier;
#   - a courier whose transit is longer than the network needs: no parcel
#     (the send says the network alone is sooner) and the send completes
#     by network; the network's rate limit counts (a split then);
#   - a medium that fills before the parcel is whole: no parcel is kept,
#     the network carries everything, status says why the courier failed;
#   - a parcel that carries the whole package: the network sends it
#     meanwhile (it had waited for the parcel for ever);
#   - the network closed now (its window opens at the next minute): the
#     parcel, written at once, takes the whole package; imported, it
#     completes it while the send waits, and the send, once the window
#     opens, credits the courier;
#   - LAB holding the front already (a plain send killed): the split is
#     made over what it lacks, as plan makes it; LAB holding the package
#     complete: no parcel;
#   - --courier for a site without a courier address: exit 3, named;
#     --via auto there: the network alone; --via naming the courier, or
#     no address of the site: exit 3, said.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init test_courier_split

PKG=$WORK/src/pkg
mkdir -p "$PKG"
binary_data "$PKG/a.bin" $((24 * 1024 * 1024))
MEDIA=$WORK/media
mkdir -p "$MEDIA"

start_proxy "$WORK/proxy.log" --rate 1000000
# LAB listens on every address (listen = :PORT): `parcel import` still
# finds the running receiver, on loopback
CEN_HOST=127.0.0.1:$PROXY_PORT ADDR_EXTRA="bandwidth = 8M" LAB_LISTEN_HOST= \
SENDER_EXTRA="segment-size = 1M" write_configs
cp "$CEN_CONF" "$WORK/nocourier.conf"
printf '\n[address LAB usb]\ntype = courier\npassword-file = %s\nmedia = %s\ntransit = 5s\n' \
	"$CEN_PW_FILE" "$MEDIA" >>"$CEN_CONF"
start_serve

"$FERRY" send "$PKG" --to LAB --courier --level 0 --json --config "$CEN_CONF" \
	>"$WORK/s.json" 2>"$WORK/s.err" &
ps=$!
E2E_PIDS+=("$ps")
wait_for_log "$WORK/s.err" "a parcel by usb carries segments" 30 ||
	fail "the send did not say where it splits: $(tail -n 3 "$WORK/s.err")"
wait_for_log "$WORK/s.err" "parcel [0-9a-f]+ for LAB: segments" 30 ||
	fail "the parcel was not written: $(tail -n 3 "$WORK/s.err")"
first=$(sed -n 's/.*carries segments \([0-9]*\) to.*/\1/p' "$WORK/s.err" | head -n 1)
check "the network keeps a front ($first segments)" [ "${first:-0}" -ge 1 ]
check "the network send is still running when the parcel is there" kill -0 "$ps"
# the transfer's ETA counts the courier's part: the later of the front by
# network and the parcel (about 5 s), not 24 MiB at 1 MB/s
run_ferry "$WORK/se.json" "$WORK/se.err" status pkg --json --config "$CEN_CONF"
ce=$(json_get "$WORK/se.json" '[(o["why"], o["eta"]) for o in d[0]["outputs"] if o["name"] == "usb"][0]')
te=$(json_get "$WORK/se.json" 'd[0]["eta"]')
case $ce in
*late*) pass "status while the parcel is late: the courier says so ($ce)" ;;
*) check "status while the parcel ships: its ETA, and the transfer's counts it ($ce; transfer $te s)" \
	python3 -c "import sys; c=float(sys.argv[1]); t=float(sys.argv[2]); sys.exit(not (0 < c <= 6 and c - 1 <= t < 15))" \
	"$(json_get "$WORK/se.json" '[o["eta"] for o in d[0]["outputs"] if o["name"] == "usb"][0]')" "$te" ;;
esac
run_ferry "$WORK/i.out" "$WORK/i.err" parcel import "$MEDIA" --config "$LAB_CONF"
expect_rc 0 "$RC" "the parcel of the tail imported while the network sends the front"
expect_grep "... by the running receiver (LAB listens on :PORT)" \
	"importing 1 path\(s\) for a client on this machine" "$SERVE_LOG"
# the tail is in: the courier is done, no link waits for it (the front
# may still be on its way)
for _ in $(seq 40); do # (the outputs' record follows within a second)
	run_ferry "$WORK/sm.json" "$WORK/sm.err" status pkg --json --config "$CEN_CONF"
	[ "$(json_get "$WORK/sm.json" '[o["state"] for o in d[0]["outputs"] if o["name"] == "usb"][0]')" = done ] && break
	sleep 0.25
done
check "status once the parcel is imported: the courier done, no link waiting for it ($(json_get "$WORK/sm.json" '[(o["name"], o["state"], o["why"]) for o in d[0]["outputs"]]'))" \
	[ "$(json_get "$WORK/sm.json" '[o["state"] for o in d[0]["outputs"] if o["name"] == "usb"][0] == "done" and all(o["why"] != "courier" for o in d[0]["outputs"])')" = true ]
rc=0
wait "$ps" || rc=$?
expect_rc 0 "$rc" "the send split between the network and the courier"
compare_trees "$PKG" "$LAB_STORE/packages/pkg" "the package, front by network and tail by parcel"
n=$(json_get "$WORK/s.json" 'd["segments"]')
cs=$(json_get "$WORK/s.json" '[o["segments"] for o in d["outputs"] if o["name"] == "usb"][0]')
ns=$(json_get "$WORK/s.json" '[o["segments"] for o in d["outputs"] if o["name"] == "lan"][0]')
check "the courier brought the tail ($cs segments)" [ "${cs:-0}" -ge 1 ]
check "network + courier = every segment once ($ns + $cs = $n)" [ $((ns + cs)) = "$n" ]
run_ferry "$WORK/st.json" "$WORK/st.err" status pkg --json --config "$CEN_CONF"
us=$(json_get "$WORK/st.json" '[(o["type"], o["state"], o["segments"]) for o in d[0]["outputs"] if o["name"] == "usb"][0]')
check "status lists the courier among the outputs, done with its segments ($us)" \
	[ "$us" = "('courier', 'done', $cs)" ]
run_ferry "$WORK/pl.json" "$WORK/pl.err" parcel list --json --config "$CEN_CONF"
pst=$(json_get "$WORK/pl.json" '[p["state"] for p in d if p["name"] == "pkg"][0]')
check "the parcel's receipt says received, not not-needed ($pst)" [ "$pst" = received ]
check "the send took the parcel's hashes: it did not read the tail again" \
	test -z "$(grep "another arrival brought were read and hashed" "$WORK/s.err")"
imp=$(grep -oE "([0-9]+) segment\(s\) imported" "$WORK/i.out" | grep -oE "^[0-9]+")
net=$(grep -oE "\(([0-9]+) segments received" "$SERVE_LOG" | grep -oE "[0-9]+" | paste -sd+ | bc)
check "LAB wrote each segment once ($net by network + $imp by parcel = $n)" \
	[ $((${net:-0} + ${imp:-0})) = "$n" ]
check "the courier is credited with what its parcel brought ($cs = $imp)" \
	[ "$cs" = "${imp:-x}" ]

# kill -9 once the parcel is written: the resume keeps --courier and
# waits for that parcel (none written again); imported while the resume
# sends the front, it brings the tail, and the package completes
# send_until_parcel NAME K: a --courier send of a new 16 MiB package
# NAME (its stderr $WORK/K.err), running until its parcel is written
# and kept in its transfer record; sets ps (its pid) and tf (the record)
send_until_parcel() {
	mkdir -p "$WORK/src/$1"
	binary_data "$WORK/src/$1/r.bin" $((16 * 1024 * 1024))
	find "$MEDIA" -mindepth 1 -delete
	"$FERRY" send "$WORK/src/$1" --to LAB --courier --level 0 --config "$CEN_CONF" \
		>"$WORK/$2.out" 2>"$WORK/$2.err" &
	ps=$!
	E2E_PIDS+=("$ps")
	wait_for_log "$WORK/$2.err" "parcel [0-9a-f]+ for LAB: segments" 30 ||
		fail "the parcel was not written: $(tail -n 3 "$WORK/$2.err")"
	tf=
	for _ in $(seq 100); do
		tf=$(grep -l "^name=$1\$" "$CEN_STORE"/outgoing/*-LAB/transfer 2>/dev/null)
		[ -n "$tf" ] && grep -q '^parcel=[0-9a-f]\{32\}$' "$tf" && break
		sleep 0.1
	done
}
send_until_parcel res k
check "the transfer keeps the parcel it wrote" grep -q '^parcel=[0-9a-f]\{32\}$' "$tf"
kill -9 "$ps"
wait "$ps" 2>/dev/null
check "... and that it was a --courier send" grep -q '^courier=1$' "$tf"
run_ferry "$WORK/sk.json" "$WORK/sk.err" status res --json --config "$CEN_CONF"
check "status after the kill: the links interrupted, the parcel still shipping ($(json_get "$WORK/sk.json" '[(o["name"], o["state"]) for o in d[0]["outputs"]]'))" \
	[ "$(json_get "$WORK/sk.json" '[(o["name"], o["state"]) for o in d[0]["outputs"]]')" = "[('lan', 'interrupted'), ('usb', 'shipping')]" ]
pid=$(sed -n 's/^parcel=//p' "$tf")
tid=$(sed -n 's/^id=//p' "$tf")
vols=$(find "$MEDIA" -type f | sort)
"$FERRY" resume "$tid" --json --config "$CEN_CONF" >"$WORK/r.json" 2>"$WORK/r.err" &
pr=$!
E2E_PIDS+=("$pr")
wait_for_log "$WORK/r.err" "parcel ${pid:0:12} \(segments [0-9]+ to [0-9]+\) is created by usb" 30 ||
	fail "the resume did not wait for the parcel: $(tail -n 3 "$WORK/r.err")"
check "the resume is still sending when the parcel is there" kill -0 "$pr"
run_ferry "$WORK/ri.out" "$WORK/ri.err" parcel import "$MEDIA" --config "$LAB_CONF"
expect_rc 0 "$RC" "the killed send's parcel imported while the resume sends"
rc=0
wait "$pr" || rc=$?
expect_rc 0 "$rc" "the resume of a --courier send"
compare_trees "$WORK/src/res" "$LAB_STORE/packages/res" "the package, resumed by network and parcel"
check "the resume wrote no second parcel" [ "$(find "$MEDIA" -type f | sort)" = "$vols" ]
expect_grep "... and says it waits for the first" "network sends the first" "$WORK/r.err"
cs=$(json_get "$WORK/r.json" '[o["segments"] for o in d["transfers"][0]["outputs"] if o["name"] == "usb"][0]')
check "the resume credits the parcel with the tail ($cs segments)" [ "${cs:-0}" -ge 1 ]

# kill -9 once the parcel is written, the parcel imported while no send
# runs, then `ferry resume`: the network sends only the front, and the
# courier is credited with the tail it brought (not "held before")
send_until_parcel res2 k2
kill -9 "$ps"
wait "$ps" 2>/dev/null
run_ferry "$WORK/ri2.out" "$WORK/ri2.err" parcel import "$MEDIA" --config "$LAB_CONF"
expect_rc 0 "$RC" "the killed send's parcel imported while no send runs"
imp=$(grep -oE "([0-9]+) segment\(s\) imported" "$WORK/ri2.out" | grep -oE "^[0-9]+")
run_ferry "$WORK/r2.json" "$WORK/r2.err" resume "$(sed -n 's/^id=//p' "$tf")" --json \
	--config "$CEN_CONF"
expect_rc 0 "$RC" "the resume after the parcel was imported"
compare_trees "$WORK/src/res2" "$LAB_STORE/packages/res2" "the package, its parcel imported between two runs"
cs=$(json_get "$WORK/r2.json" '[o["segments"] for o in d["transfers"][0]["outputs"] if o["name"] == "usb"][0]')
sk=$(json_get "$WORK/r2.json" 'd["transfers"][0]["segments_skipped"]')
check "the resume credits the parcel with the tail it brought (${cs:-?} = ${imp:-x})" \
	[ "${imp:-0}" -ge 1 -a "$cs" = "${imp:-x}" ]
check "... and does not count the tail as held before it (${sk:-?} skipped)" \
	[ "$((sk + 0))" -lt "${imp:-0}" ]
run_ferry "$WORK/sr2.json" "$WORK/sr2.err" status res2 --json --config "$CEN_CONF"
check "status credits the courier too" \
	[ "$(json_get "$WORK/sr2.json" '[o["segments"] for o in d[0]["outputs"] if o["name"] == "usb"][0]')" = "$imp" ]

# ... and the same with `parcel list` run before the resume (it hears
# the parcel was received): the courier is credited all the same
send_until_parcel res3 k3
kill -9 "$ps"
wait "$ps" 2>/dev/null
run_ferry "$WORK/ri3.out" "$WORK/ri3.err" parcel import "$MEDIA" --config "$LAB_CONF"
imp=$(grep -oE "([0-9]+) segment\(s\) imported" "$WORK/ri3.out" | grep -oE "^[0-9]+")
run_ferry "$WORK/pl3.json" "$WORK/pl3.err" parcel list --json --config "$CEN_CONF"
check "parcel list hears the parcel was received" \
	[ "$(json_get "$WORK/pl3.json" '[p["state"] for p in d if p["name"] == "res3"][0]')" = received ]
run_ferry "$WORK/r3.json" "$WORK/r3.err" resume "$(sed -n 's/^id=//p' "$tf")" --json \
	--config "$CEN_CONF"
expect_rc 0 "$RC" "the resume after parcel list heard of the import"
compare_trees "$WORK/src/res3" "$LAB_STORE/packages/res3" "the package, its parcel received between two runs"
cs=$(json_get "$WORK/r3.json" '[o["segments"] for o in d["transfers"][0]["outputs"] if o["name"] == "usb"]')
check "... and credits the parcel with the tail it brought (${cs:-?}, ${imp:-x} imported)" \
	[ "$cs" = "[${imp:-x}]" ]

# a parcel that does not come: the network sends the front, then goes on
# into the parcel's segments; the package never waits for it
mkdir -p "$WORK/src/late"
binary_data "$WORK/src/late/c.bin" $((6 * 1024 * 1024))
sed -i 's/^transit = 5s$/transit = 3s/' "$CEN_CONF"
find "$MEDIA" -mindepth 1 -delete
run_ferry "$WORK/s4.json" "$WORK/s4.err" send "$WORK/src/late" --to LAB --courier \
	--level 0 --json --config "$CEN_CONF"
expect_rc 0 "$RC" "a --courier send whose parcel is never imported"
expect_grep "... split" "a parcel by usb carries segments" "$WORK/s4.err"
expect_grep "... the network went on into the parcel's segments" \
	"goes on into the parcel's segments" "$WORK/s4.err"
compare_trees "$WORK/src/late" "$LAB_STORE/packages/late" "the package whose parcel is late"
cs=$(json_get "$WORK/s4.json" '[o["segments"] for o in d["outputs"] if o["name"] == "usb"][0]')
check "the late parcel brought nothing ($cs segments)" [ "$cs" = 0 ]
expect_grep "... the send says the parcel is not needed" "parcel [0-9a-f]+ is not needed" "$WORK/s4.err"
run_ferry "$WORK/pl4.json" "$WORK/pl4.err" parcel list --offline --json --config "$CEN_CONF"
pid4=$(sed -n 's/.*parcel \([0-9a-f]*\) is not needed.*/\1/p' "$WORK/s4.err" | head -n 1)
r=$(json_get "$WORK/pl4.json" "[p['state'] for p in d if p['parcel'].startswith('${pid4:-x}')]")
check "... and parcel list says not-needed ($r)" [ "$r" = "['not-needed']" ]
run_ferry "$WORK/i4.out" "$WORK/i4.err" parcel import "$MEDIA" --config "$LAB_CONF"
expect_rc 0 "$RC" "the late parcel imported after all"
expect_grep "... finds the package complete" "complete" "$WORK/i4.out"

# a late parcel imported while the network carries its segments: the
# network stops before what it brought, and the courier is credited with
# it (not the network output that had been given it)
mkdir -p "$WORK/src/mid"
binary_data "$WORK/src/mid/d.bin" $((12 * 1024 * 1024))
find "$MEDIA" -mindepth 1 -delete
"$FERRY" send "$WORK/src/mid" --to LAB --courier --level 0 --json \
	--config "$CEN_CONF" >"$WORK/s5.json" 2>"$WORK/s5.err" &
ps=$!
E2E_PIDS+=("$ps")
wait_for_log "$WORK/s5.err" "goes on into the parcel's segments" 40 ||
	fail "the network did not go on into the late parcel's segments: $(tail -n 3 "$WORK/s5.err")"
run_ferry "$WORK/i5.out" "$WORK/i5.err" parcel import "$MEDIA" --config "$LAB_CONF"
expect_rc 0 "$RC" "the late parcel imported while the network carries its segments"
rc=0
wait "$ps" || rc=$?
expect_rc 0 "$rc" "the send whose late parcel came while the network carried it"
compare_trees "$WORK/src/mid" "$LAB_STORE/packages/mid" "the package, its late parcel imported mid-way"
n=$(json_get "$WORK/s5.json" 'd["segments"]')
cs=$(json_get "$WORK/s5.json" '[o["segments"] for o in d["outputs"] if o["name"] == "usb"][0]')
ns=$(json_get "$WORK/s5.json" '[o["segments"] for o in d["outputs"] if o["name"] == "lan"][0]')
imp=$(grep -oE "([0-9]+) segment\(s\) imported" "$WORK/i5.out" | grep -oE "^[0-9]+")
check "the late parcel brought some of its segments (${imp:-0})" [ "${imp:-0}" -ge 1 ]
check "the courier is credited with what its late parcel brought ($cs = $imp)" \
	[ "$cs" = "${imp:-x}" ]
check "network + courier = every segment once ($ns + $cs = $n)" [ $((ns + cs)) = "$n" ]
# a late parcel, the network into its segments, the sender killed, the
# parcel imported while no send runs, then `ferry resume`: the courier is
# credited with what the site holds past the last segment the network
# landed (it got none: the network had gone into the tail)
mkdir -p "$WORK/src/lk"
binary_data "$WORK/src/lk/e.bin" $((12 * 1024 * 1024))
find "$MEDIA" -mindepth 1 -delete
"$FERRY" send "$WORK/src/lk" --to LAB --courier --level 0 --json \
	--config "$CEN_CONF" >"$WORK/s6.json" 2>"$WORK/s6.err" &
ps=$!
E2E_PIDS+=("$ps")
wait_for_log "$WORK/s6.err" "goes on into the parcel's segments" 40 ||
	fail "the network did not go on into the late parcel's segments: $(tail -n 3 "$WORK/s6.err")"
tf6=$(grep -l "^name=lk$" "$CEN_STORE"/outgoing/*/transfer | head -n 1)
for ((i = 0; i < 100; i++)); do
	[ "$(sed -n 's/^tail_net=//p' "$tf6")" -gt 0 ] 2>/dev/null && break
	sleep 0.1
done
kill -9 "$ps"
wait "$ps" 2>/dev/null
tn=$(sed -n 's/^tail_net=//p' "$tf6")
run_ferry "$WORK/i6.out" "$WORK/i6.err" parcel import "$MEDIA" --config "$LAB_CONF"
expect_rc 0 "$RC" "the late parcel imported after its sender was killed"
imp=$(grep -oE "([0-9]+) segment\(s\) imported" "$WORK/i6.out" | grep -oE "^[0-9]+")
run_ferry "$WORK/r6.json" "$WORK/r6.err" resume "$(sed -n 's/^id=//p' "$tf6")" --json \
	--config "$CEN_CONF"
expect_rc 0 "$RC" "the resume after the late parcel was imported"
compare_trees "$WORK/src/lk" "$LAB_STORE/packages/lk" "the package, its late parcel imported between two runs"
cs=$(json_get "$WORK/r6.json" '[o["segments"] for o in d["transfers"][0]["outputs"] if o["name"] == "usb"][0]')
check "the resume credits the late parcel with what it brought past the network's last (${cs:-?} of ${imp:-x} imported; the network reached segment ${tn:-?})" \
	[ "${imp:-0}" -ge 1 -a "${cs:-0}" -ge 1 -a "${cs:-0}" -le "${imp:-0}" ]
sed -i 's/^transit = 3s$/transit = 5s/' "$CEN_CONF"

# a courier slower than the network: no parcel
mkdir -p "$WORK/src/small"
binary_data "$WORK/src/small/b.bin" $((2 * 1024 * 1024))
sed -i 's/^transit = 5s$/transit = 3d/' "$CEN_CONF"
find "$MEDIA" -mindepth 1 -delete
run_ferry "$WORK/s2.out" "$WORK/s2.err" send "$WORK/src/small" --to LAB --courier \
	--level 0 --config "$CEN_CONF"
expect_rc 0 "$RC" "a --courier send the network alone beats"
expect_grep "... says the network alone is sooner, with both times" "network alone \\([0-9:]+\\) is sooner than a parcel by usb \\(the whole package: [0-9:hm]+\\)" \
	"$WORK/s2.err"
check "... and writes no parcel" [ -z "$(ls -A "$MEDIA")" ]
compare_trees "$WORK/src/small" "$LAB_STORE/packages/small" "the package sent by network alone"

# the network's rate limit counts in the split (as plan weighs it): at
# its bandwidth (1 MB/s) the network alone beats a courier 10 s away;
# held to 25% of it, it does not, and the send splits
mkdir -p "$WORK/src/rl" "$WORK/media-rl"
binary_data "$WORK/src/rl/r.bin" $((6 * 1024 * 1024))
sed -e "s|^transit = .*|transit = 10s|" -e "s|^media = .*|media = $WORK/media-rl|" \
	-e "s|^store = .*|store = $WORK/cen-rl|" -e "s|^bandwidth = .*|&\nrate-limit = 25%|" \
	"$CEN_CONF" >"$WORK/rl.conf"
"$FERRY" send "$WORK/src/rl" --to LAB --courier --level 0 --config "$WORK/rl.conf" \
	>"$WORK/rl.out" 2>"$WORK/rl.err" &
prl=$!
E2E_PIDS+=("$prl")
wait_for_log "$WORK/rl.err" "a parcel by usb carries segments|is sooner than a parcel" 20
expect_grep "a --courier send whose link is rate-limited to 25% splits" \
	"a parcel by usb carries segments" "$WORK/rl.err"
kill -INT "$prl" 2>/dev/null
wait "$prl" 2>/dev/null

# --courier without a courier address
run_ferry "$WORK/s3.out" "$WORK/s3.err" send "$WORK/src/small" --to LAB --courier \
	--name small3 --config "$WORK/nocourier.conf"
expect_rc 3 "$RC" "--courier for a site without a courier address"
expect_grep "... named" "site LAB has no courier address" "$WORK/s3.err"
run_ferry "$WORK/s3s.json" "$WORK/s3s.err" status --json --config "$CEN_CONF"
check "... and leaves no transfer to resume" \
	[ "$(json_get "$WORK/s3s.json" '[t["name"] for t in d if t["name"] == "small3"]')" = "[]" ]

# --courier for a site whose only address is a courier: exit 3 at once,
# saying a parcel needs a network address (it had announced a parcel of
# the whole package first)
sed -e '/^\[address LAB lan\]/,/^$/d' "$CEN_CONF" >"$WORK/onlycourier.conf"
if ! grep -q '^\[address LAB lan\]' "$WORK/onlycourier.conf"; then
	run_ferry "$WORK/s9.out" "$WORK/s9.err" send "$WORK/src/small" --to LAB --courier \
		--name small9 --config "$WORK/onlycourier.conf"
	expect_rc 3 "$RC" "--courier for a site whose only address is a courier"
	expect_grep "... said" "site LAB has no network address .*a parcel needs one" "$WORK/s9.err"
	check "... and no parcel announced" bash -c "! grep -q 'carries segments' '$WORK/s9.err'"
fi

# --via auto weighs a courier only if the site has one: without, the
# network alone, no error
run_ferry "$WORK/s5.out" "$WORK/s5.err" send "$WORK/src/small" --to LAB --via auto \
	--name small5 --config "$WORK/nocourier.conf"
expect_rc 0 "$RC" "--via auto for a site without a courier address"
compare_trees "$WORK/src/small" "$LAB_STORE/packages/small5" "the package sent by --via auto"
# --via names a network address: a courier, or none of the site's, is
# refused, named
run_ferry "$WORK/s6.out" "$WORK/s6.err" send "$WORK/src/small" --to LAB --via usb \
	--name small6 --config "$CEN_CONF"
expect_rc 3 "$RC" "--via naming the courier address"
expect_grep "... says it is a courier" "address LAB usb is a courier; its parcels go by" "$WORK/s6.err"
run_ferry "$WORK/s7.out" "$WORK/s7.err" send "$WORK/src/small" --to LAB --via nope \
	--name small7 --config "$CEN_CONF"
expect_rc 3 "$RC" "--via naming no address of the site"
expect_grep "... lists the site's addresses" "no such address .*its addresses: lan, usb" "$WORK/s7.err"

# a courier whose medium fills before its parcel is whole: no parcel is
# kept (none registered, nothing left on the medium), the network
# carries every segment, and status says why the courier failed
FULL=$WORK/full
mkdir -p "$FULL"
if mount -t tmpfs -o size=2m tmpfs "$FULL" 2>/dev/null; then
	sed -i 's/^transit = 3d$/transit = 3s/' "$CEN_CONF"
	sed -i "s#^media = .*#media = $FULL#" "$CEN_CONF"
	mkdir -p "$WORK/src/fill" "$WORK/src/fits"
	head -c $((6 * 1024 * 1024)) /dev/urandom >"$WORK/src/fill/f.bin"
	head -c $((6 * 1024 * 1024)) /dev/urandom >"$WORK/src/fits/f.bin"
	# the split is made to fit what the medium can take (2 MiB here)
	run_ferry "$WORK/s9.json" "$WORK/s9.err" send "$WORK/src/fits" --to LAB --courier \
		--level 0 --json --config "$CEN_CONF"
	expect_rc 0 "$RC" "a --courier send to a 2 MiB medium"
	tail9=$(sed -n 's/.*carries segments \([0-9]*\) to \([0-9]*\).*/\1 \2/p' "$WORK/s9.err" | head -n 1)
	read -r f9 l9 <<<"$tail9"
	check "... its parcel carries what the medium holds (segments $tail9 of 1 MiB)" \
		[ -n "$f9" ] && [ $((l9 - f9 + 1)) -le 1 ]
	expect_grep "... written whole: ship it" "ship it" "$WORK/s9.err"
	compare_trees "$WORK/src/fits" "$LAB_STORE/packages/fits" "the package split to fit the medium"
	rm -rf "${FULL:?}"/*
fi
# a medium that fills while the parcel is written (the split made as if
# its room were not known: FERRY_MEDIA_ROOM_UNKNOWN, a test build's)
if mountpoint -q "$FULL" && ! "$FERRY" version | grep -q 'test build'; then
	umount "$FULL"
	log "not a test build: the medium that fills while written is left out"
elif mountpoint -q "$FULL"; then
	FERRY_MEDIA_ROOM_UNKNOWN=1 run_ferry "$WORK/s8.json" "$WORK/s8.err" send "$WORK/src/fill" \
		--to LAB --courier --level 0 --json --config "$CEN_CONF"
	expect_rc 0 "$RC" "a --courier send whose medium fills"
	expect_grep "... split" "a parcel by usb carries segments" "$WORK/s8.err"
	expect_grep "... says the parcel is not kept and the network carries its part" \
		"the parcel could not be written to $FULL \(No space left on device\): none is kept; the network carries segments [0-9]+ to [0-9]+ too" "$WORK/s8.err"
	check "... and never told to ship it" test -z "$(grep "ship it" "$WORK/s8.err")"
	compare_trees "$WORK/src/fill" "$LAB_STORE/packages/fill" "the package whose parcel did not fit"
	cs=$(json_get "$WORK/s8.json" '[o["segments"] for o in d["outputs"] if o["name"] == "usb"][0]')
	check "the courier brought nothing ($cs)" [ "$cs" = 0 ]
	check "nothing is left on the medium" [ -z "$(ls -A "$FULL")" ]
	run_ferry "$WORK/pl8.json" "$WORK/pl8.err" parcel list --json --config "$CEN_CONF"
	check "no parcel of it is listed" \
		[ "$(json_get "$WORK/pl8.json" 'len([p for p in d if p["name"] == "fill"])')" = 0 ]
	run_ferry "$WORK/st8.json" "$WORK/st8.err" status fill --json --config "$CEN_CONF"
	check "status: the courier failed, saying why" \
		[ "$(json_get "$WORK/st8.json" '[(o["state"], "No space left" in (o["error"] or "")) for o in d[0]["outputs"] if o["name"] == "usb"][0]')" = "('failed', True)" ]
	umount "$FULL"
else
	log "cannot mount a tmpfs here: the full medium is left out"
fi

# ---- a parcel that carries the whole package ------------------------------------
# the network is thought to carry 1 Mbit/s (its bandwidth), the courier 5
# s away: the parcel takes every segment, and the network sends them
# meanwhile (it had waited for the courier for good, and so had a resume)
WH=$WORK/src/whole
mkdir -p "$WH" "$WORK/media-whole"
binary_data "$WH/w.bin" $((3 * 1024 * 1024))
sed -e "s|^bandwidth = .*|bandwidth = 1M|" -e "s|^media = .*|media = $WORK/media-whole|" \
	-e "s|^store = .*|store = $WORK/cen-whole|" "$CEN_CONF" >"$WORK/whole.conf"
timeout 120 "$FERRY" send "$WH" --to LAB --courier --level 0 --config "$WORK/whole.conf" \
	>"$WORK/wh.out" 2>"$WORK/wh.err"
expect_rc 0 "$?" "a send whose parcel carries the whole package"
expect_grep "... the parcel takes the whole package" "carries segments 0 to [0-9]+, the whole package" \
	"$WORK/wh.err"
expect_grep "... and the network sends it meanwhile" \
	"the network sends the parcel's segments meanwhile" "$WORK/wh.err"
compare_trees "$WH" "$LAB_STORE/packages/whole" "the package the network brought before its parcel"

# ---- every network address closed now ------------------------------------------
# the LAN closed until the next minute (a test build shifts the schedule
# clock so that it opens about 15 s after the start): the split is made
# at once, the network counted from when its window opens, so the parcel
# (5 s away) takes the whole package and is written at once, not once
# the window opens; imported meanwhile, it completes the package, and
# the send, once its window opens, finds it there: the courier brought
# it (it had said the network did, and marked the parcel not needed)
CL=$WORK/src/closed
mkdir -p "$CL" "$WORK/media-closed"
binary_data "$CL/c.bin" $((3 * 1024 * 1024))
SHIFT=0
if "$FERRY" version | grep -q 'test build'; then
	now=$(date +%s)
	SHIFT=$(((45 - now % 60 + 60) % 60))
fi
export FERRY_CLOCK_SHIFT_S=$SHIFT
snow=$(($(date +%s) + SHIFT))
from=$(date -d "@$snow" +%H:%M)
to=$(date -d "@$((snow / 60 * 60 + 60))" +%H:%M)
sed -e "s|^media = .*|media = $WORK/media-closed|" -e "s|^store = .*|store = $WORK/cen-closed|" \
	-e "s|^bandwidth = .*|&\nschedule = $from-$to none; daily all|" "$CEN_CONF" >"$WORK/closed.conf"
"$FERRY" send "$CL" --to LAB --courier --level 0 --json --config "$WORK/closed.conf" \
	>"$WORK/cl.json" 2>"$WORK/cl.err" &
pc=$!
E2E_PIDS+=("$pc")
wait_for_log "$WORK/cl.err" "parcel [0-9a-f]+ for LAB: segments" 30 &&
	pass "with the network closed until $to, the parcel is written at once" ||
	fail "with the network closed, no parcel was written: $(tail -n 3 "$WORK/cl.err")"
expect_grep "... it takes the whole package" "carries segments 0 to [0-9]+, the whole package" \
	"$WORK/cl.err"
expect_grep "... unregistered, saying why" "no network address of site LAB is open now" "$WORK/cl.err"
expect_grep "... the closed link says when it opens" "address lan is closed to medium-priority sends now \(it opens at .* $to\)" "$WORK/cl.err"
check "... the send waits for the window meanwhile" kill -0 "$pc"
for _ in $(seq 40); do # the parcel is due 5 s after the start
	"$FERRY" status closed --config "$WORK/closed.conf" >"$WORK/cls.txt" 2>/dev/null
	grep -q "late:" "$WORK/cls.txt" && break
	sleep 0.25
done
expect_grep "... status: the parcel late, and no network link open meanwhile" \
	"late: its parcel was expected by now \(no network link is open meanwhile\)" "$WORK/cls.txt"
run_ferry "$WORK/ic.out" "$WORK/ic.err" parcel import "$WORK/media-closed" --config "$LAB_CONF"
expect_rc 0 "$RC" "the parcel imported while the network is closed"
compare_trees "$CL" "$LAB_STORE/packages/closed" "the package the parcel brought while the network was closed"
rc=0
timeout 90 tail --pid="$pc" -f /dev/null || true
wait "$pc" || rc=$?
unset FERRY_CLOCK_SHIFT_S
expect_rc 0 "$rc" "the send, once its window opened"
n=$(json_get "$WORK/cl.json" 'd["segments"]')
cs=$(json_get "$WORK/cl.json" '[o["segments"] for o in d["outputs"] if o["name"] == "usb"][0]')
check "... credits the courier with the whole package ($cs of $n)" [ -n "$n" -a "$cs" = "$n" ]
check "... and does not say the network brought it" \
	bash -c "! grep -q 'the network brought the whole package' '$WORK/cl.err'"
run_ferry "$WORK/plc.json" "$WORK/plc.err" parcel list --offline --json --config "$WORK/closed.conf"
check "... nor mark the parcel not needed ($(json_get "$WORK/plc.json" '[p["state"] for p in d]'))" \
	[ "$(json_get "$WORK/plc.json" '[p["state"] for p in d if p["name"] == "closed"]')" != "['not-needed']" ]

# what LAB holds counts: a plain send killed once the front is there,
# then --courier: the split is plan's, over what LAB lacks (it was made
# as if LAB held nothing: a parcel of the back half); then, the package
# complete there, --courier writes no parcel
mkdir -p "$WORK/src/held"
binary_data "$WORK/src/held/h.bin" $((20 * 1024 * 1024))
find "$MEDIA" -mindepth 1 -delete
sed -i 's/^transit = .*/transit = 5s/' "$CEN_CONF"
"$FERRY" send "$WORK/src/held" --to LAB --level 0 --config "$CEN_CONF" \
	>"$WORK/h0.out" 2>"$WORK/h0.err" &
ph=$!
E2E_PIDS+=("$ph")
wait_for_log "$SERVE_LOG" "package 'held' \(" 30 || fail "the plain send did not start"
sleep 8
kill -9 "$ph"
wait "$ph" 2>/dev/null
sleep 1
run_ferry "$WORK/hp.json" "$WORK/hp.err" plan "$WORK/src/held" --to LAB --json --config "$CEN_CONF"
hs=$(json_get "$WORK/hp.json" 'd["held_segments"]')
pk=$(json_get "$WORK/hp.json" 'd["courier"]["first_segment"] if d["courier"]["split"] else -1')
"$FERRY" send "$WORK/src/held" --to LAB --courier --level 0 --json --config "$CEN_CONF" \
	>"$WORK/hs.json" 2>"$WORK/hs.err" &
ph=$!
E2E_PIDS+=("$ph")
wait_for_log "$WORK/hs.err" "carries segments|no parcel" 30
sk=$(sed -n 's/.*carries segments \([0-9]*\) to.*/\1/p' "$WORK/hs.err" | head -n 1)
check "with $hs segments held, the send splits where plan does (segment ${sk:-none}, plan ${pk:-none})" \
	[ "${hs:-0}" -ge 4 -a -n "$sk" -a "$sk" = "$pk" ]
wait_for_log "$WORK/hs.err" "parcel [0-9a-f]+ for LAB: segments" 30 &&
	run_ferry "$WORK/hi.out" "$WORK/hi.err" parcel import "$MEDIA" --config "$LAB_CONF"
rc=0
wait "$ph" || rc=$?
expect_rc 0 "$rc" "the --courier send of a package whose front LAB held"
compare_trees "$WORK/src/held" "$LAB_STORE/packages/held" "the package, front held, the rest split"
find "$MEDIA" -mindepth 1 -delete
run_ferry "$WORK/hc.json" "$WORK/hc.err" send "$WORK/src/held" --to LAB --courier --json \
	--config "$CEN_CONF"
expect_rc 0 "$RC" "--courier for a package LAB holds complete"
expect_grep "... says so, and writes no parcel" "the site holds it complete: no parcel" "$WORK/hc.err"
check "... nothing on the media" [ -z "$(find "$MEDIA" -mindepth 1)" ]

e2e_finish
