#!/bin/bash
# test_arrivals.sh - one package, many arrivals (issue 16): a network send
# and a parcel import of the same package at the same time, into one open
# package at LAB.
#   - a send over a slow link (a proxy at 1 MB/s) is under way when the
#     package's parcel is imported at LAB: `parcel import` asks the
#     running receiver to do it, the import joins the package, and what it
#     brings is acknowledged to the sender, which stops before sending it;
#     the package completes, byte-identical, each segment written once
#     (by the network or by the parcel, never both), and both commands
#     exit 0;
#   - a parcel registered while the network session holds the package is
#     registered (not refused as busy);
#   - a parcel of two volumes whose first alone is imported while the
#     network sends the rest: `parcel list` says received, not not-needed;
#   - the link frozen mid-segment (the proxy stopped) and the sender
#     killed: the import takes the segment the frozen session was
#     receiving (nobody else would bring it) and completes the package;
#     `ferry resume` of the killed send then sends nothing, and LAB does
#     not build a second copy of the package in place;
#   - two installations (two sending stores, one account) send the same
#     package at once, one over a fast link and one striped over two slow
#     ones: once the package is complete, the slow one is told and stops
#     (it does not send the rest, which it counts as held, not as its
#     links'), both exit 0, each segment written once;
#   - an import asked for by a client on another machine is refused
#     (only this machine may ask the receiver to read its files): checked
#     by the receiver's rule on loopback addresses in a unit of its own,
#     here only that the local client's import ran in the receiver.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init test_arrivals

PKG=$WORK/src/pkg
mkdir -p "$PKG"
binary_data "$PKG/a.bin" $((24 * 1024 * 1024))
echo note >"$PKG/note.txt"
MEDIA=$WORK/media
mkdir -p "$MEDIA"

start_proxy "$WORK/proxy.log" --rate 1000000
CEN_HOST=127.0.0.1:$PROXY_PORT SENDER_EXTRA="segment-size = 1M" write_configs
cat >>"$CEN_CONF" <<EOF

[address LAB usb]
type = courier
password-file = $CEN_PW_FILE
media = $MEDIA
EOF
start_serve

# the network send starts, slowly
"$FERRY" send "$PKG" --to LAB --level 0 --json --config "$CEN_CONF" \
	>"$WORK/s.json" 2>"$WORK/s.err" &
ps=$!
E2E_PIDS+=("$ps")
wait_for_log "$SERVE_LOG" "package 'pkg' \(" 30 || fail "the send did not start"
sleep 2

# the parcel of the same package, created while the network holds it
run_ferry "$WORK/c.out" "$WORK/c.err" parcel create "$PKG" --to LAB \
	--config "$CEN_CONF" --level 0
expect_rc 0 "$RC" "a parcel created while the network send holds the package"
expect_grep "... and registered at LAB" "parcel [0-9a-f]+ of 'pkg' registered" "$SERVE_LOG"

# imported at LAB while the network is still sending
check "the network send is still running" kill -0 "$ps"
run_ferry "$WORK/i.out" "$WORK/i.err" parcel import "$MEDIA" --config "$LAB_CONF"
expect_rc 0 "$RC" "the parcel imported while the network sends the same package"
expect_grep "the receiver ran the import" "importing 1 path\(s\) for a client on this machine" \
	"$SERVE_LOG"
check "... which lists no segment of the parcel as missing (those the network was writing are its)" \
	bash -c "! grep -q 'missing segments of the parcel' '$WORK/i.out'"
rc=0
t0=$SECONDS
wait "$ps" || rc=$?
expect_rc 0 "$rc" "the network send, once the parcel brought the rest"
check "it ended soon after the import ($((SECONDS - t0)) s)" [ $((SECONDS - t0)) -le 15 ]
compare_trees "$PKG" "$LAB_STORE/packages/pkg" "the package from both arrivals"
n=$(json_get "$WORK/s.json" 'd["segments"]')
net=$(grep -oE "\(([0-9]+) segments received" "$SERVE_LOG" | grep -oE "[0-9]+" | paste -sd+ | bc)
net=${net:-0}
imp=$(grep -oE "([0-9]+) segment\(s\) imported" "$WORK/i.out" | grep -oE "^[0-9]+")
imp=${imp:-0}
check "each segment written once: $net by network + $imp by parcel = $n" \
	[ $((net + imp)) = "$n" ]
check "the parcel brought part of it ($imp segments)" [ "$imp" -ge 1 ]
check "the network brought part of it ($net segments)" [ "$net" -ge 1 ]

# a parcel of two volumes, one of them imported while the network sends,
# the network bringing the rest: the parcel came (received), it was not
# "not needed"
PKG2=$WORK/src/pkg2
mkdir -p "$PKG2"
head -c $((12 * 1024 * 1024)) /dev/urandom >"$PKG2/b.bin"
M2=$WORK/media2
mkdir -p "$M2"
"$FERRY" send "$PKG2" --to LAB --level 0 --json --config "$CEN_CONF" \
	>"$WORK/s2.json" 2>"$WORK/s2.err" &
ps=$!
E2E_PIDS+=("$ps")
wait_for_log "$SERVE_LOG" "package 'pkg2' \(" 30 || fail "the second send did not start"
run_ferry "$WORK/c2.out" "$WORK/c2.err" parcel create "$PKG2" --to LAB \
	--config "$CEN_CONF" --level 0 --media "$M2" --volume-size 7M
expect_rc 0 "$RC" "a parcel of two volumes"
vol1=$(find "$M2" -name vol-001.fpv)
check "the parcel has a second volume" test -n "$(find "$M2" -name vol-002.fpv)"
run_ferry "$WORK/i2.out" "$WORK/i2.err" parcel import "$vol1" --config "$LAB_CONF"
expect_rc 0 "$RC" "its first volume imported while the network sends"
rc=0
wait "$ps" || rc=$?
expect_rc 0 "$rc" "the network send of the rest"
compare_trees "$PKG2" "$LAB_STORE/packages/pkg2" "the package from the network and half a parcel"
imp=$(grep -oE "([0-9]+) segment\(s\) imported" "$WORK/i2.out" | grep -oE "^[0-9]+")
check "the first volume brought segments (${imp:-0})" [ "${imp:-0}" -ge 1 ]
run_ferry "$WORK/pl2.json" "$WORK/pl2.err" parcel list --json --config "$CEN_CONF"
st=$(json_get "$WORK/pl2.json" '[p["state"] for p in d if p["name"] == "pkg2"][0]')
check "parcel list: the parcel imported in part is received ($st)" [ "$st" = received ]

# the link frozen while a segment is on its way, the sender killed: the
# session at LAB holds that segment's claim for as long as its peer is
# quiet; the parcel's copy takes it, and the package completes
PKG3=$WORK/src/pkg3
mkdir -p "$PKG3"
binary_data "$PKG3/c.bin" $((16 * 1024 * 1024))
M3=$WORK/media3
mkdir -p "$M3"
"$FERRY" send "$PKG3" --to LAB --level 0 --config "$CEN_CONF" \
	>"$WORK/s3.out" 2>"$WORK/s3.err" &
ps=$!
E2E_PIDS+=("$ps")
wait_for_log "$SERVE_LOG" "package 'pkg3' \(" 30 || fail "the third send did not start"
sleep 2
run_ferry "$WORK/c3.out" "$WORK/c3.err" parcel create "$PKG3" --to LAB \
	--config "$CEN_CONF" --level 0 --media "$M3"
expect_rc 0 "$RC" "the parcel of a package the network is sending"
kill -STOP "$PROXY_PID"
kill -9 "$ps"
wait "$ps" 2>/dev/null
tf=$(grep -l "^name=pkg3\$" "$CEN_STORE"/outgoing/*-LAB/transfer)
run_ferry "$WORK/i3.out" "$WORK/i3.err" parcel import "$M3" --config "$LAB_CONF"
expect_rc 0 "$RC" "the parcel imported while the link is frozen mid-segment"
expect_grep "... which took the segment the frozen session was receiving" \
	"segment [0-9]+ of 'pkg3' was still coming by network; written from the parcel" \
	"$SERVE_LOG"
check "... and completed the package" test -d "$LAB_STORE/packages/pkg3"
compare_trees "$PKG3" "$LAB_STORE/packages/pkg3" "the package the parcel completed"
ino=$(stat -c %i "$LAB_STORE/packages/pkg3/c.bin")
kill -9 "$PROXY_PID"
wait "$PROXY_PID" 2>/dev/null
PROXY_PID=
start_proxy "$WORK/proxy.log" --rate 1000000
run_ferry "$WORK/r3.out" "$WORK/r3.err" resume "$(sed -n 's/^id=//p' "$tf")" \
	--config "$CEN_CONF"
expect_rc 0 "$RC" "the killed send resumed after the parcel completed its package"
expect_grep "... which found it there" "'pkg3' is at LAB already" "$WORK/r3.out"
expect_grep "... and did not read again what it had hashed" \
	"segments as this send hashed them before: not read nor sent again" "$WORK/r3.err"
check "LAB built no second copy of it (nothing taken from the package in place)" \
	bash -c "! grep -q \"package 'pkg3': [0-9]* segment(s) the offer names are the version in place's\" '$SERVE_LOG'"
check "... and the package in place is the same file ($ino)" \
	[ "$(stat -c %i "$LAB_STORE/packages/pkg3/c.bin")" = "$ino" ]
compare_trees "$PKG3" "$LAB_STORE/packages/pkg3" "the package after the resume"

# two installations send the same package at once over links of 4 and
# 1 MB/s: the slow one stops once the package is complete
PKG4=$WORK/src/pkg4
mkdir -p "$PKG4"
binary_data "$PKG4/d.bin" $((16 * 1024 * 1024))
start_link "$WORK/fast.log" 4000000
sed -e "s#^store = .*#store = $WORK/cen2#" "$CEN_CONF" >"$WORK/cen2.conf"
sed -i "s#^host = .*#host = 127.0.0.1:$LINK_PORT#" "$CEN_CONF"
start_link "$WORK/slow2.log" 1000000
lan_address slow2 "$LINK_PORT" 8M >>"$WORK/cen2.conf"
"$FERRY" send "$PKG4" --to LAB --level 0 --json --config "$WORK/cen2.conf" \
	>"$WORK/s4s.json" 2>"$WORK/s4s.err" &
ps=$!
E2E_PIDS+=("$ps")
wait_for_log "$SERVE_LOG" "package 'pkg4' \(" 30 || fail "the slow send did not start"
run_ferry "$WORK/s4f.json" "$WORK/s4f.err" send "$PKG4" --to LAB --level 0 \
	--json --config "$CEN_CONF"
expect_rc 0 "$RC" "the send over the fast link"
t0=$SECONDS
rc=0
wait "$ps" || rc=$?
expect_rc 0 "$rc" "the send over the slow link, of the same package, at once"
check "the slow send ended soon after the package was complete ($((SECONDS - t0)) s)" \
	[ $((SECONDS - t0)) -le 5 ]
compare_trees "$PKG4" "$LAB_STORE/packages/pkg4" "the package both installations sent"
n=$(json_get "$WORK/s4s.json" 'd["segments"]')
ss=$(json_get "$WORK/s4s.json" 'd["segments_sent"]')
sk=$(json_get "$WORK/s4s.json" 'd["segments_skipped"]')
sf=$(json_get "$WORK/s4f.json" 'd["segments_sent"]')
check "the slow send sent part of it ($ss of $n), the rest counted as held ($sk)" \
	[ "$ss" -lt "$n" -a "$((ss + sk))" -ge "$n" ]
check "... and its links are credited with what they sent only ($(json_get "$WORK/s4s.json" '[(o["name"], o["segments"]) for o in d["outputs"]]'))" \
	[ "$(json_get "$WORK/s4s.json" 'sum(o["segments"] for o in d["outputs"])')" -le "$ss" ]
net=$(grep -E "'pkg4'|pkg4" "$SERVE_LOG" | grep -oE "\(([0-9]+) segments received|\(([0-9]+) segments received in this one" | grep -oE "[0-9]+" | paste -sd+ | bc)
check "LAB wrote each segment once (${net:-?} received by both = $n)" [ "${net:-0}" = "$n" ]

e2e_finish
