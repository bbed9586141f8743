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

e2e_finish
