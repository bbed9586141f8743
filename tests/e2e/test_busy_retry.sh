#!/bin/bash
# test_busy_retry.sh - a receiver that answers "busy" (every session slot
# taken) is asked again after about a second, not after retry-delay (60 s
# here): the second send goes through soon after the first one ends. With
# retries = 0 a busy receiver still means one try only. A send over two
# addresses asks again as soon, on each link. A parcel made while the
# receiver is busy is written, and registered later.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init test_busy_retry

mkdir -p "$WORK/src/a" "$WORK/src/b"
head -c $((6 * 1024 * 1024)) /dev/urandom >"$WORK/src/a/data.bin"
head -c $((1024 * 1024)) /dev/urandom >"$WORK/src/b/data.bin"
LAB_EXTRA="[receiver]
max-connections = 1"
SENDER_DELAY=60s
SENDER_RETRIES=2
SENDER_EXTRA="segment-size = 1M"
write_configs
start_serve
start_proxy "$WORK/proxy.log" --rate 1000000
CEN_HOST=127.0.0.1:$PROXY_PORT write_configs
cp "$CEN_CONF" "$WORK/slow.conf"
CEN_HOST= write_configs

# hold NAME: a send of package a as NAME through the 1 MB/s proxy, which
# holds LAB's only session for about 6 s; its pid in pa once LAB has it
hold() {
	"$FERRY" send "$WORK/src/a" --to LAB --name "$1" --level 0 --config "$WORK/slow.conf" \
		>"$WORK/$1.out" 2>"$WORK/$1.err" &
	pa=$!
	E2E_PIDS+=("$pa")
	wait_for_log "$SERVE_LOG" "package '$1' \(" 30 || die "the holding send $1 did not start"
}

# the first send holds LAB's only session for about 6 s (the two sends
# below must both reach LAB meanwhile, on a slow machine too)
hold a

# with retries = 0: refused once, no retry
sed -e "s|^retries = .*|retries = 0|" "$CEN_CONF" >"$WORK/once.conf"
t0=$SECONDS
run_ferry "$WORK/once.out" "$WORK/once.err" send "$WORK/src/b" --to LAB --name once \
	--level 0 --config "$WORK/once.conf"
expect_rc 1 "$RC" "with retries = 0, a send to a busy receiver fails (resumable)"
expect_grep "... saying the receiver is busy" "receiver busy, try later" "$WORK/once.err"
expect_grep "... and how to go on" \
	"transfer [0-9a-f]+-LAB failed and is resumable: what arrived is kept; run 'ferry resume [0-9a-f]+-LAB --config .*' to continue" \
	"$WORK/once.err"
check "... without trying again ($((SECONDS - t0)) s)" [ $((SECONDS - t0)) -lt 3 ]

t0=$SECONDS
run_ferry "$WORK/b.out" "$WORK/b.err" send "$WORK/src/b" --to LAB --name b --level 0 \
	--config "$CEN_CONF"
dt=$((SECONDS - t0))
expect_rc 0 "$RC" "the second send, while the first holds the only session"
expect_grep "it was told the receiver is busy" "receiver busy, try later" "$WORK/b.err"
expect_grep "... and tried again after 1 s" "LAB is busy; trying 'b' again in 1 s" "$WORK/b.err"
check "it went through within 20 s, not after retry-delay ($dt s)" [ "$dt" -lt 20 ]
rc=0
wait "$pa" || rc=$?
expect_rc 0 "$rc" "the first send"
compare_trees "$WORK/src/b" "$LAB_STORE/packages/b" "package b"

# a send over two addresses at once: each link asks the busy receiver
# again after about a second too (it had counted them against retries,
# and failed after two retry-delays)
cp "$CEN_CONF" "$WORK/two.conf"
lan_address second "$PORT" >>"$WORK/two.conf"
hold a2
t0=$SECONDS
run_ferry "$WORK/c.out" "$WORK/c.err" send "$WORK/src/b" --to LAB --name c --level 0 \
	--config "$WORK/two.conf"
dt=$((SECONDS - t0))
expect_rc 0 "$RC" "a send over two addresses while another holds the only session"
expect_grep "... striped" "over 2 links" "$WORK/c.err"
expect_grep "... each link asked again after 1 s" "address (lan|second) again in 1 s \(1 of 10\)" "$WORK/c.err"
check "it went through within 20 s, not after retry-delay ($dt s)" [ "$dt" -lt 20 ]
rc=0
wait "$pa" || rc=$?
expect_rc 0 "$rc" "the holding send"
compare_trees "$WORK/src/b" "$LAB_STORE/packages/c" "package c"

# a parcel made while the receiver is busy: written all the same, not
# registered yet (it had been dropped, "refused"); parcel list registers
# it once the receiver has room
cp "$CEN_CONF" "$WORK/parcel.conf"
mkdir -p "$WORK/media"
printf '\n[address LAB usb]\ntype = courier\npassword-file = %s\nmedia = %s\ntransit = 1d\n' \
	"$CEN_PW_FILE" "$WORK/media" >>"$WORK/parcel.conf"
hold a3
run_ferry "$WORK/p.out" "$WORK/p.err" parcel create "$WORK/src/b" --to LAB --name pb \
	--config "$WORK/parcel.conf"
expect_rc 0 "$RC" "parcel create while the receiver is busy"
expect_grep "... not registered yet, said" "cannot register the parcel with LAB .*once LAB has room" "$WORK/p.err"
check "... its volume is written" [ -n "$(find "$WORK/media" -name 'vol-*.fpv')" ]
rc=0
wait "$pa" || rc=$?
expect_rc 0 "$rc" "the holding send"
run_ferry "$WORK/pl.out" "$WORK/pl.err" parcel list --config "$WORK/parcel.conf"
expect_grep "parcel list registers it once LAB has room" "registered with LAB" "$WORK/pl.err"
stop_proxy
e2e_finish
