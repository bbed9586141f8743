#!/bin/bash
# test_bench_link.sh - `ferry bench link` (issue 17) against a real
# `ferry serve`.
# On loopback (any user):
#   - the JSON document: received_bps, rtt_ms {min, avg}, retransmits,
#     intervals (the first one omitted), the site and address; the rate
#     is stored, and `ferry plan --json` then shows it as measured;
#   - --no-store leaves the stored rate as it was;
#   - --streams 2: two streams whose rates add up to the total, two
#     sessions at the receiver;
#   - --reverse: LAB sends, this machine counts; its TCP's rtt reported;
#   - an account LAB does not know: refused, exit 4;
#   - a receiver that does not know BENCH (an older ferry; a test build's
#     FERRY_REFUSE_BENCH): exit 1, saying so;
#   - no serve at the address: exit 1, naming it;
#   - --via naming no address, or a courier; an unknown site: exit 3;
#   - the human table: a line per interval, the warm-up marked, "stored".
# With root (network namespaces, a veth pair shaped by tc tbf):
#   - at 100 Mbit/s and at 2 Mbit/s: received_bps within 10% of the tbf
#     rate (goodput is about 95% of it: Ethernet, IP and TCP headers);
#   - a RAS address (sna) over the 2 Mbit/s line: dialled before the
#     measurement, hung up after.
# Without root the shaped part is skipped (said so), the rest runs.
# labels: needs-root
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init test_bench_link

# bench OUT ERR args...: ferry bench link with CEN's config
bench() {
	local out=$1 err=$2
	shift 2
	run_ferry "$out" "$err" bench link "$@" --config "$CEN_CONF"
}

# ---- loopback ------------------------------------------------------------------
PKG=$WORK/pkg
mkdir -p "$PKG"
head -c 3000000 /dev/urandom >"$PKG/a.bin"
start_serve

bench "$WORK/b1.json" "$WORK/b1.err" LAB --seconds 3 --json
expect_rc 0 "$RC" "bench link on loopback"
check "one JSON document" json_ok "$WORK/b1.json"
bps=$(json_get "$WORK/b1.json" 'd["received_bps"]')
log "loopback: received_bps $bps"
check "received_bps is a rate above 100 Mbit/s on loopback ($bps)" \
	python3 -c "import sys; sys.exit(not float('$bps') > 1e8)"
check "rtt_ms min <= avg, both above 0" [ "$(json_get "$WORK/b1.json" \
	'd["rtt_ms"]["min"] > 0 and d["rtt_ms"]["avg"] >= d["rtt_ms"]["min"]')" = true ]
check "retransmits is a count" [ "$(json_get "$WORK/b1.json" 'd["retransmits"] >= 0')" = true ]
check "three intervals, the first omitted, the others not" [ "$(json_get "$WORK/b1.json" \
	'[i["omitted"] for i in d["intervals"]] == [True, False, False] and all(i["end"] - i["start"] > 0.99 for i in d["intervals"])')" = true ]
check "the total is the non-omitted intervals' bytes over their span" [ "$(json_get "$WORK/b1.json" \
	'abs(sum(i["bytes"] for i in d["intervals"] if not i["omitted"]) * 8 / 2.0 - d["received_bps"]) < 0.01 * d["received_bps"]')" = true ]
check "site, address, seconds, reverse, stored" [ "$(json_get "$WORK/b1.json" \
	'(d["site"], d["address"], d["seconds"], d["reverse"], d["stored"])')" = "('LAB', 'lan', 3, False, True)" ]
expect_grep "LAB logged the measurement as received" "CEN: bench link from 127.0.0.1:[0-9]+ \(stream 1 of 1\): [0-9.]+ Mbit/s received" "$SERVE_LOG"

run_ferry "$WORK/plan.json" "$WORK/plan.err" plan "$PKG" --to LAB --offline --json --config "$CEN_CONF"
expect_rc 0 "$RC" "plan after the measurement"
check "plan shows the rate as measured, the one stored ($bps bit/s)" [ "$(json_get "$WORK/plan.json" \
	"[(o['rate_source'], abs(o['rate'] * 8 - $bps) < 1e-6 * $bps + 8, o['measured_at'] is not None) for o in d['outputs']]")" = "[('measured', True, True)]" ]
stored=$(cat "$CEN_STORE"/links/LAB.lan)

bench "$WORK/b2.json" "$WORK/b2.err" LAB --seconds 2 --no-store --json
expect_rc 0 "$RC" "bench link --no-store"
check "--no-store: stored false, why said" [ "$(json_get "$WORK/b2.json" '(d["stored"], d["not_stored"])')" = "(False, '--no-store')" ]
check "--no-store left the stored rate as it was" [ "$(cat "$CEN_STORE"/links/LAB.lan)" = "$stored" ]

# ---- a send over the address while it is measured: neither keeps a rate -----
# the bench counts a share of the link: not stored
sed -e "/^type = lan/a rate-limit = pulse 256K 100ms" "$CEN_CONF" >"$WORK/slow.conf"
PKG2=$WORK/pkg2
mkdir -p "$PKG2"
head -c 9000000 /dev/urandom >"$PKG2/b.bin"
"$FERRY" bench link LAB --seconds 4 --json --config "$CEN_CONF" >"$WORK/b5.json" 2>"$WORK/b5.err" &
pb=$!
sleep 1
run_ferry "$WORK/s5.json" "$WORK/s5.err" send "$PKG2" --to LAB --level 0 --json --config "$WORK/slow.conf"
expect_rc 0 "$RC" "a rate-limited send while the address is measured"
rc=0
wait "$pb" || rc=$?
expect_rc 0 "$rc" "bench link while a send used the address"
check "the bench kept nothing, saying a send used the address" [ "$(json_get "$WORK/b5.json" \
	'(d["stored"], d["not_stored"].startswith("a send used the address"))')" = "(False, True)" ]
check "the stored rate is as it was" [ "$(cat "$CEN_STORE"/links/LAB.lan)" = "$stored" ]
# a send during the measurement learns nothing from the link either
rm -f "$CEN_STORE"/links/LAB.lan
head -c 41000000 /dev/urandom >"$PKG2/c.bin"
"$FERRY" bench link LAB --seconds 6 --no-store --config "$CEN_CONF" >"$WORK/b6.out" 2>"$WORK/b6.err" &
pb=$!
sleep 1
run_ferry "$WORK/s6.json" "$WORK/s6.err" send "$PKG2" --to LAB --level 0 --json --config "$CEN_CONF"
expect_rc 0 "$RC" "a send while the address is measured"
wait "$pb"
check "the send did not keep a rate for the address the bench measured" \
	[ ! -e "$CEN_STORE"/links/LAB.lan ]
check "the bench's mark is gone once it is over" [ ! -e "$CEN_STORE"/links/LAB.lan.bench ]
printf '%s' "$stored" >"$CEN_STORE"/links/LAB.lan

before=$(count_log "$SERVE_LOG" 'CEN connected from')
bench "$WORK/b3.json" "$WORK/b3.err" LAB --seconds 2 --streams 2 --omit 0 --json --no-store
expect_rc 0 "$RC" "bench link --streams 2"
check "two streams, each measured, adding up to the total" [ "$(json_get "$WORK/b3.json" \
	'len(d["streams"]) == 2 and all(s["received_bps"] > 0 for s in d["streams"]) and abs(sum(s["received_bps"] for s in d["streams"]) - d["received_bps"]) <= 2')" = true ]
check "--omit 0: no interval omitted" [ "$(json_get "$WORK/b3.json" 'not any(i["omitted"] for i in d["intervals"])')" = true ]
check "two sessions at LAB for two streams" [ $(($(count_log "$SERVE_LOG" 'CEN connected from') - before)) = 2 ]

bench "$WORK/b4.json" "$WORK/b4.err" LAB --seconds 2 --reverse --json
expect_rc 0 "$RC" "bench link --reverse"
check "--reverse: counted here, LAB's rtt reported, not stored" [ "$(json_get "$WORK/b4.json" \
	'(d["reverse"], d["received_bps"] > 1e8, d["rtt_ms"]["avg"] > 0, d["stored"])')" = "(True, True, True, False)" ]
expect_grep "LAB logged the reverse measurement" "bench link from 127.0.0.1:[0-9]+ \(reverse, stream 1 of 1\): sent 2 s" "$SERVE_LOG"

bench "$WORK/b5.out" "$WORK/b5.err" LAB --seconds 2 --no-store
expect_rc 0 "$RC" "bench link, the human table"
expect_grep "a line per interval, the warm-up marked" '^\[  0\.0-  1\.0 s\] .*bit/s.*warm-up, left out' "$WORK/b5.out"
expect_grep "the total and what it counted" '^total: .*bit/s received by LAB' "$WORK/b5.out"
expect_grep "rtt and retransmits" '^rtt min [0-9.]+ ms, avg [0-9.]+ ms; [0-9]+ retransmits' "$WORK/b5.out"
expect_grep "not stored, and why" '^not stored: --no-store' "$WORK/b5.out"

# an account LAB does not know
cat >>"$CEN_CONF" <<EOF
[address LAB stranger]
type = lan
host = 127.0.0.1:$PORT
account = NOBODY
password-file = $PW_FILE
[address LAB media]
type = courier
media = $WORK/media
transit = 2d
password-file = $PW_FILE
EOF
bench "$WORK/b6.out" "$WORK/b6.err" LAB --via stranger --seconds 2
expect_rc 4 "$RC" "an unknown account is refused"
expect_grep "the refusal names the account" "refused account NOBODY" "$WORK/b6.err"
bench "$WORK/b7.out" "$WORK/b7.err" LAB --via nowhere
expect_rc 3 "$RC" "--via naming no address"
expect_grep "the error names it and the site's addresses" "LAB has no address 'nowhere' \(it has: lan, stranger, media\)" "$WORK/b7.err"
bench "$WORK/b8.out" "$WORK/b8.err" LAB --via media
expect_rc 3 "$RC" "--via naming a courier address"
expect_grep "the error says it is a courier" "'media' of LAB is a courier" "$WORK/b8.err"
bench "$WORK/b9.out" "$WORK/b9.err" NOWHERE
expect_rc 3 "$RC" "an unknown site"
stop_serve
if "$FERRY" version | grep -q 'test build'; then
	FERRY_REFUSE_BENCH=1 start_serve
	bench "$WORK/b11.out" "$WORK/b11.err" LAB --seconds 2
	expect_rc 1 "$RC" "a receiver that does not know BENCH (FERRY_REFUSE_BENCH, as an older ferry)"
	expect_grep "the error says its ferry does not know bench link" "LAB \(127.0.0.1:$PORT\) does not know 'bench link' \(it answered 'expected OFFER'" "$WORK/b11.err"
	stop_serve
else
	log "SKIPPED the older receiver: needs a test build (FERRY_REFUSE_BENCH)"
fi
bench "$WORK/b10.out" "$WORK/b10.err" LAB --seconds 2
expect_rc 1 "$RC" "no serve at the address"
expect_grep "the error names the address" "cannot connect to 127.0.0.1:$PORT \(LAB lan\)" "$WORK/b10.err"

# ---- shaped links in namespaces (root) -------------------------------------------
if [ "$(id -u)" != 0 ] || ! command -v tc >/dev/null || ! command -v ip >/dev/null; then
	log "SKIPPED the shaped links: needs root, ip and tc (namespaces, tbf)"
	e2e_finish
fi
NS=ferry-bl-$$
VC=fbc$$
VL=fbl$$
if ! ip netns add "$NS" 2>/dev/null; then
	log "SKIPPED the shaped links: cannot create a network namespace"
	e2e_finish
fi
cleanup_ns() {
	ip netns pids "$NS" 2>/dev/null | xargs -r kill -9 2>/dev/null
	ip link del "$VC" 2>/dev/null
	ip netns del "$NS" 2>/dev/null
}
trap 'e2e_cleanup; cleanup_ns' EXIT
ip link add "$VC" type veth peer name "$VL" || die "cannot create a veth pair"
ip link set "$VL" netns "$NS"
n=$((RANDOM % 200 + 20))
CIP=10.219.$n.1
LIP=10.219.$n.2
ip addr add "$CIP/30" dev "$VC"
ip link set "$VC" up
ip netns exec "$NS" ip addr add "$LIP/30" dev "$VL"
ip netns exec "$NS" ip link set "$VL" up
ip netns exec "$NS" ip link set lo up
# shape RATE BURST: both directions of the pair to RATE (bit/s)
shape() {
	tc qdisc replace dev "$VC" root tbf rate "$1bit" burst "$2" latency 100ms
	ip netns exec "$NS" tc qdisc replace dev "$VL" root tbf rate "$1bit" burst "$2" latency 100ms
}
cat >"$WORK/dial" <<EOF
#!/bin/sh
echo "dial \$FERRY_SITE \$FERRY_ADDRESS" >>"$WORK/line.log"
ip link set $VC up || exit 1
EOF
cat >"$WORK/hangup" <<EOF
#!/bin/sh
echo "hangup \$FERRY_SITE \$FERRY_ADDRESS" >>"$WORK/line.log"
ip link set $VC down
EOF
chmod +x "$WORK/dial" "$WORK/hangup"
: >"$WORK/line.log"
cat >"$LAB_CONF" <<EOF
[site]
code = LAB
store = $LAB_STORE
listen = $LIP:7070
[account CEN]
password-file = $PW_FILE
EOF
cat >"$CEN_CONF" <<EOF
[site]
code = CEN
store = $CEN_STORE
[address LAB wire]
type = lan
host = $LIP:7070
password-file = $PW_FILE
[address LAB line]
type = sna
host = $LIP:7070
dial = $WORK/dial
hang-up = $WORK/hangup
idle-timeout = 30s
password-file = $PW_FILE
EOF
ip netns exec "$NS" "$FERRY" serve --config "$LAB_CONF" 2>>"$SERVE_LOG" &
SERVE_PID=$!
E2E_PIDS+=($!)
wait_for_log "$SERVE_LOG" "receiving on $LIP" 10 || die "LAB did not start in its namespace"

# within RATE JSON: received_bps within 10% of RATE
within() {
	python3 -c "import json,sys; r=json.load(open('$2'))['received_bps']; sys.exit(not abs(r - $1) <= 0.1 * $1)"
}
for rate in 100000000 2000000; do
	burst=$([ $rate -gt 10000000 ] && echo 256kb || echo 8kb)
	shape $rate $burst
	bench "$WORK/s$rate.json" "$WORK/s$rate.err" LAB --via wire --seconds 5 --json
	expect_rc 0 "$RC" "bench link over the line shaped to $rate bit/s"
	got=$(json_get "$WORK/s$rate.json" 'd["received_bps"]')
	log "tbf $rate bit/s: received_bps $got ($(python3 -c "print('%.3f' % ($got / $rate))") of the rate)"
	check "received_bps within 10% of the tbf rate $rate ($got)" within $rate "$WORK/s$rate.json"
done

# a RAS address over the 2 Mbit/s line: dialled before, hung up after
ip link set "$VC" down
bench "$WORK/ras.json" "$WORK/ras.err" LAB --via line --seconds 3 --json
expect_rc 0 "$RC" "bench link on a RAS address"
check "the line was dialled and hung up (line.log: dial, hangup)" \
	[ "$(cut -d' ' -f1 "$WORK/line.log" | tr '\n' ' ')" = "dial hangup " ]
check "the JSON says so, with the line's frame size (8192 for sna)" [ "$(json_get "$WORK/ras.json" \
	'(d["type"], d["line"]["dialled"], d["line"]["hung_up"], d["frame"])')" = "('sna', True, True, 8192)" ]
check "the RAS measurement is within 10% of the line's 2 Mbit/s" within 2000000 "$WORK/ras.json"
check "the line is down after" sh -c "! ip -o link show $VC | grep -q 'state UP'"
e2e_finish
