#!/bin/bash
# test_stripe_links.sh - one package over two real shaped links at once
# (issue 16). LAB lives in a network namespace joined to this one by two
# veth pairs, each shaped with tc tbf: "fast" at 20 Mbit/s and "slow" at
# 5 Mbit/s, one `ferry serve` inside listening on both. CEN has a lan
# address over each, with its bandwidth configured.
#   - one package striped over both: byte-identical; each link carried a
#     share roughly proportional to its rate; the whole took well under
#     what the fast link alone would need; the receiver wrote each
#     segment once (its sessions' "N segments received" add up to the
#     package's segments);
#   - the slow link slowed to a crawl mid-transfer (tbf at 64 kbit/s):
#     the fast link's endgame copies of what the slow one still carries
#     come whole first and are the ones written; the package does not
#     wait for the slow link (a 1 MiB segment takes it 2 minutes);
#   - the slow link cut mid-transfer (ip link set down): its segments
#     move to the fast link and the package completes, byte-identical;
#     its stored rate is not what it carried before the cut;
#   - one link alone, down for 4 s mid-send: the rate kept is what it
#     carries while it moves, not its bytes over the wall time;
#   - the slow link's connection reset (ss -K) and the link back: it is
#     redialled after retry-delay and carries segments again;
#   - the slow link gone longer than its retries: tried again every
#     retry-delay while the fast one carries, used again once back;
#   - a send interrupted (SIGINT) and resumed at once: the receiver takes
#     the resume's copies of what the old sessions had on their way, and
#     asks for nothing again;
#   - a schedule window that closes on the slow link mid-transfer: it
#     stops, the fast link carries the rest, the package completes;
#   - a schedule closed to the send's priority from the start on the slow
#     link: it carries nothing, the fast link all.
# Needs root and network namespaces; skipped (never passed) without.
# labels: needs-root slow
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init test_stripe_links

[ "$(id -u)" = 0 ] || skip "needs root (network namespaces, tc)"
command -v ip >/dev/null && command -v tc >/dev/null || skip "needs ip and tc (iproute2)"
NS=ferry-stl-$$
VFC=fsf$$ # fast pair: this side, LAB's side
VFL=fsF$$
VSC=fss$$ # slow pair
VSL=fsS$$
ip netns add "$NS" 2>/dev/null || skip "cannot create a network namespace"
cleanup_ns() {
	ip netns pids "$NS" 2>/dev/null | xargs -r kill -9 2>/dev/null
	ip link del "$VFC" 2>/dev/null
	ip route del unreachable "$SLOW_L/32" 2>/dev/null
	ip link del "$VSC" 2>/dev/null
	ip netns del "$NS" 2>/dev/null
}
trap 'e2e_cleanup; cleanup_ns' EXIT
n=$((RANDOM % 200 + 20))
FAST_C=10.217.$n.1 FAST_L=10.217.$n.2
SLOW_C=10.218.$n.1 SLOW_L=10.218.$n.2
FAST_RATE=20000000 SLOW_RATE=5000000
# pair THIS LABS THIS_IP LAB_IP RATE: a veth pair into LAB's namespace,
# up, both directions shaped to RATE (bit/s)
pair() {
	ip link add "$1" type veth peer name "$2" || skip "cannot create a veth pair"
	ip link set "$2" netns "$NS"
	ip addr add "$3/30" dev "$1"
	ip link set "$1" up
	ip netns exec "$NS" ip addr add "$4/30" dev "$2"
	ip netns exec "$NS" ip link set "$2" up
	tc qdisc replace dev "$1" root tbf rate "$5bit" burst 32kb latency 400ms
	ip netns exec "$NS" tc qdisc replace dev "$2" root tbf rate "$5bit" burst 32kb latency 400ms
}
# slow_rate RATE: the slow pair reshaped to RATE, both directions
slow_rate() {
	tc qdisc change dev "$VSC" root tbf rate "$1" burst 32kb latency 400ms
	ip netns exec "$NS" tc qdisc change dev "$VSL" root tbf rate "$1" burst 32kb latency 400ms
}
pair "$VFC" "$VFL" "$FAST_C" "$FAST_L" $FAST_RATE
pair "$VSC" "$VSL" "$SLOW_C" "$SLOW_L" $SLOW_RATE
ip netns exec "$NS" ip link set lo up

# LAB: in the namespace, listening on every address (both links)
cat >"$LAB_CONF" <<EOF
[site]
code = LAB
store = $LAB_STORE
listen = :7070
[account CEN]
password-file = $PW_FILE
EOF
# cen_conf [SLOW-EXTRA]: CEN's two addresses to LAB, each with its rate
cen_conf() {
	cat >"$CEN_CONF" <<EOF
[site]
code = CEN
store = $CEN_STORE
[address LAB fast]
type = lan
host = $FAST_L:7070
password-file = $PW_FILE
bandwidth = $FAST_RATE
[address LAB slow]
type = lan
host = $SLOW_L:7070
password-file = $PW_FILE
bandwidth = $SLOW_RATE
${1:-}
[sender]
retries = 3
retry-delay = 1s
segment-size = 1M
EOF
}
cen_conf

# (ip netns exec execs ferry: SERVE_PID is the receiver, which e2e_finish
# stops with SIGTERM and expects to exit 0)
ip netns exec "$NS" "$FERRY" serve --config "$LAB_CONF" 2>>"$SERVE_LOG" &
SERVE_PID=$!
E2E_PIDS+=($!)
wait_for_log "$SERVE_LOG" "receiving on" 10 || die "LAB did not start in its namespace"

# outputs JSON: "fast-segments fast-bytes slow-segments slow-bytes
# segments seconds" of a send --json
outputs() {
	python3 - "$1" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
o = {x["name"]: x for x in r.get("outputs", [])}
f, s = o.get("fast", {}), o.get("slow", {})
print(f.get("segments", 0), f.get("bytes", 0), s.get("segments", 0),
      s.get("bytes", 0), r["segments"], "%.2f" % r["seconds"])
EOF
}
# send_on_both NAME JSON ERR: a send of $WORK/src/NAME in the background
# (its pid in BG), once LAB has it on both links
send_on_both() {
	"$FERRY" send "$WORK/src/$1" --to LAB --level 0 --json --config "$CEN_CONF" \
		>"$2" 2>"$3" &
	BG=$!
	E2E_PIDS+=("$BG")
	wait_for_log "$SERVE_LOG" "package '$1' .*shared with other sessions of this sender" 20 ||
		fail "the send of '$1' did not start on both links"
}
# slow_carried NAME: wait (10 s at most) until status says the slow link
# has carried a segment of NAME; how many it has in $before
slow_carried() {
	local i
	for ((i = 0; i < 40; i++)); do
		"$FERRY" status "$1" --json --config "$CEN_CONF" >"$WORK/$1-st.json" 2>/dev/null
		before=$(json_get "$WORK/$1-st.json" '[o["segments"] for t in d if t.get("direction") == "out" for o in t["outputs"] if o["name"] == "slow"][0]')
		[ "${before:-0}" -ge 1 ] && return 0
		sleep 0.25
	done
}
# received NAME: the segments LAB's sessions of package NAME say they
# received, added up (each session logs its count when it ends)
received() {
	grep -E "package '$1' (complete and verified|completed by another session)|another session completes package '$1';|of '$1' held, resumable" \
		"$SERVE_LOG" | sed -En 's/.* \(?([0-9]+) segments received.*/\1/p' |
		awk '{ n += $1 } END { print n + 0 }'
}

# ---- one package over both links -------------------------------------------
# 24 MiB: about 10 s at 25 Mbit/s, 10.1 s of the fast link's alone
PKG=$WORK/src/pkg
mkdir -p "$PKG"
binary_data "$PKG/a.bin" $((17 * 1024 * 1024))
binary_data "$PKG/b.bin" $((7 * 1024 * 1024 + 4321))
bytes=$(du -sb --apparent-size "$PKG" | cut -f1)
t0=$(date +%s.%N)
run_ferry "$WORK/s.json" "$WORK/s.err" send "$PKG" --to LAB --level 0 --json \
	--config "$CEN_CONF"
wall=$(python3 -c "import time; print('%.2f' % (time.time() - $t0))")
expect_rc 0 "$RC" "a send over both shaped links"
compare_trees "$PKG" "$LAB_STORE/packages/pkg" "the package striped over both links"
expect_grep "the send says it uses both links" "'pkg' to LAB over 2 links" "$WORK/s.err"
read -r nf bf ns bs segs secs <<<"$(outputs "$WORK/s.json")"
log "fast: $nf segments, $bf bytes; slow: $ns segments, $bs bytes; $segs segments; $secs s ($wall s wall)"
check "every segment was acknowledged once, by one link ($nf + $ns = $segs)" \
	[ $((nf + ns)) = "$segs" ]
# the slow link has a fifth of the rate: its share of the bytes is about
# 20%; loosely, between 8% and 32%
share=$(python3 -c "print(round(100 * $bs / max(1, $bf + $bs)))")
check "each link carried a share near its rate's: slow $share% (8..32%, 20% by rate)" \
	[ "$share" -ge 8 ] && [ "$share" -le 32 ]
alone=$(python3 -c "print('%.2f' % ($bytes * 8 / $FAST_RATE))")
check "striped in $wall s, under 0.95 x the fast link alone ($alone s)" \
	python3 -c "import sys; sys.exit(not ($wall < 0.95 * $alone))"
got=$(received pkg)
check "LAB wrote each segment once ($got received by its sessions, $segs in the package)" \
	[ "$got" = "$segs" ]
# the rates the send learned (kept for the next send and plan) are what
# the links carry: one TCP stream gets ~95% of a tbf rate; within 15%
for o in fast slow; do
	r=$(json_get "$WORK/s.json" "[x['rate'] for x in d['outputs'] if x['name'] == '$o'][0]")
	nominal=$([ $o = fast ] && echo $FAST_RATE || echo $SLOW_RATE)
	check "the $o link's learned rate is what it carries ($r B/s, ${nominal} bit/s shaped)" \
		python3 -c "import sys; sys.exit(not (abs($r * 8 / ($nominal * 0.95) - 1) < 0.15))"
done

# ---- the slow link slowed to a crawl mid-transfer -----------------------------
# the slow link is alive but carries 64 kbit/s from 1 s into the send:
# what it holds is copied onto the fast link (the endgame), and LAB writes
# the copy that came whole first instead of waiting for the slow one
CRAWL=$WORK/src/crawl
mkdir -p "$CRAWL"
binary_data "$CRAWL/k.bin" $((12 * 1024 * 1024 + 55))
send_on_both crawl "$WORK/k.json" "$WORK/k.err"
pk=$BG
# a second after both links' sessions began (the slow one is busy then)
sleep 1
slow_rate 64kbit
tslow=$(date +%s.%N)
rc=0
wait "$pk" || rc=$?
tend=$(date +%s.%N)
slow_rate "${SLOW_RATE}bit"
after=$(python3 -c "print('%.1f' % ($tend - $tslow))")
expect_rc 0 "$rc" "the send whose slow link slowed to a crawl"
compare_trees "$CRAWL" "$LAB_STORE/packages/crawl" "the package whose slow link crawled"
read -r nf bf ns bs segs secs <<<"$(outputs "$WORK/k.json")"
won=$(grep -c "of 'crawl' came whole by this link first; written from this copy" "$SERVE_LOG")
lost=$(grep -c "of 'crawl' came whole by another link first; this session's copy is dropped" "$SERVE_LOG")
log "fast: $nf segments; slow: $ns segments; $segs segments; ended $after s after the slowdown; $won copies written first, $lost slow copies dropped"
check "copies by the fast link were written ahead of the slow link's ($won)" [ "$won" -ge 1 ]
check "every segment was acknowledged once ($nf + $ns = $segs)" [ $((nf + ns)) = "$segs" ]
# (the fast link alone carries the whole package in 5 s; without the
# race LAB waited for the slow session to fall silent for 5 s, ~20 s)
check "the send did not wait for the crawling link ($after s after the slowdown; a segment takes it 131 s)" \
	python3 -c "import sys; sys.exit(not ($after < 12))"
# the slow session ends once its peer's close comes through the crawl
wait_for_log "$SERVE_LOG" "another session completes package 'crawl'" 30 ||
	log "the slow session of 'crawl' had not ended after 30 s"
got=$(received crawl)
check "LAB wrote each segment once ($got received by its sessions, $segs in the package)" \
	[ "$got" = "$segs" ]

# ---- the slow link cut mid-transfer ------------------------------------------
# once the slow link has carried a segment or two (and has more in
# flight), its pair goes down for good: what it held moves to the fast link
CUT=$WORK/src/cut
mkdir -p "$CUT"
binary_data "$CUT/c.bin" $((20 * 1024 * 1024 + 999))
slow_kept=$(sed -n 's/^rate=//p' "$CEN_STORE/links/LAB.slow" 2>/dev/null)
export FERRY_STALL_SHOW_MS=2000 # a test build's: stalled after 2 s, not 10
send_on_both cut "$WORK/c.json" "$WORK/c.err"
unset FERRY_STALL_SHOW_MS
pc=$BG
sleep 3
ip netns exec "$NS" ip link set "$VSL" down
tcut=$(date +%s.%N)
log "slow link cut, $(held_in cut) segments held at LAB"
# status shows the silent link as stalled while it still holds segments
stalled=
while kill -0 "$pc" 2>/dev/null && [ -z "$stalled" ]; do
	"$FERRY" status cut --json --config "$CEN_CONF" >"$WORK/c-st.json" 2>/dev/null
	[ "$(json_get "$WORK/c-st.json" '[(o["why"], o["eta"]) for t in d if t.get("direction") == "out" for o in t["outputs"] if o["name"] == "slow"][0]' 2>/dev/null)" = "('stalled', None)" ] &&
		stalled=1
	sleep 0.3
done
rc=0
wait "$pc" || rc=$?
tend=$(date +%s.%N)
log "the send ended $(python3 -c "print('%.1f' % ($tend - $tcut))") s after the cut"
expect_rc 0 "$rc" "the send whose slow link was cut"
check "status showed the silent link as stalled, with no ETA" [ -n "$stalled" ]
expect_grep "the sender said the silent link has taken nothing" \
	"address slow has taken nothing for [0-9]+ s; the other links carry on" "$WORK/c.err"
compare_trees "$CUT" "$LAB_STORE/packages/cut" "the package after the slow link was cut"
read -r nf bf ns bs segs secs <<<"$(outputs "$WORK/c.json")"
log "fast: $nf segments; slow: $ns segments; $segs segments; $secs s"
check "every segment was acknowledged, the slow link's moved to the fast one ($nf + $ns = $segs)" \
	[ $((nf + ns)) = "$segs" ] && [ "$ns" -lt 4 ]
# the frame the dead link had under way is not waited for: LAB ends the
# silent session once the copy comes by the fast link (5 s of silence),
# and the sender does not wait for the dead link's stall check (60 s)
check "a link shown stalled kept its stored rate (${slow_kept:-none}), not what it carried before the cut" \
	[ "$(sed -n 's/^rate=//p' "$CEN_STORE/links/LAB.slow" 2>/dev/null)" = "$slow_kept" ]
after=$(python3 -c "print('%.1f' % ($tend - $tcut))")
check "the send ended soon after the cut ($after s; the fast link alone needs $(python3 -c "print('%.1f' % ($(du -sb --apparent-size "$CUT" | cut -f1) * 8 / $FAST_RATE))") s for all)" \
	python3 -c "import sys; sys.exit(not ($after < 20))"
ip netns exec "$NS" ip link set "$VSL" up

# ---- one link, quiet for 4 s mid-send: the rate kept is what it carries ---------
# over the fast link alone (--via), which goes down 2 s in and comes back
# 4 s later: the send completes, and what it keeps as the link's rate is
# what the link carried while it moved, not the bytes over the wall time
# (which would read a third low, and start the next send and plan there)
QUIET=$WORK/src/quiet
mkdir -p "$QUIET"
binary_data "$QUIET/q.bin" $((16 * 1024 * 1024 + 77))
rm -f "$CEN_STORE/links/LAB.fast"
"$FERRY" send "$QUIET" --to LAB --via fast --level 0 --json --config "$CEN_CONF" \
	>"$WORK/q.json" 2>"$WORK/q.err" &
pq=$!
E2E_PIDS+=("$pq")
sleep 2
ip netns exec "$NS" ip link set "$VFL" down
sleep 4
ip netns exec "$NS" ip link set "$VFL" up
rc=0
wait "$pq" || rc=$?
expect_rc 0 "$rc" "the send over one link that went quiet for 4 s"
compare_trees "$QUIET" "$LAB_STORE/packages/quiet" "the package across the quiet link"
r=$(sed -n 's/^rate=//p' "$CEN_STORE/links/LAB.fast" 2>/dev/null)
secs=$(json_get "$WORK/q.json" 'd["seconds"]')
log "the fast link's kept rate after 4 s of quiet: ${r:-none} B/s; the send took $secs s"
check "the rate kept is what the link carries (${r:-none} B/s; ${FAST_RATE} bit/s shaped; within 20% of 95%)" \
	python3 -c "import sys; sys.exit(not (abs(${r:-0} * 8 / ($FAST_RATE * 0.95) - 1) < 0.2))"

# ---- the slow link drops and comes back -----------------------------------------
# its connection is reset (ss -K, as a line that hangs up): what it had
# under way goes to the fast link at once, the output is redialled after
# retry-delay (1 s) and carries segments again
BACK=$WORK/src/back
mkdir -p "$BACK"
binary_data "$BACK/b.bin" $((32 * 1024 * 1024 + 3))
conns0=$(count_log "$SERVE_LOG" "connected from $SLOW_C:")
send_on_both back "$WORK/b.json" "$WORK/b.err"
pb=$BG
# once the slow link has carried a segment (it has more under way then)
slow_carried back
ss -K dst "$SLOW_L" dport = 7070 >/dev/null 2>&1
# (the redial comes after retry-delay: none is up again yet)
if [ "$(ss -Htn state established dst "$SLOW_L" dport = 7070 | wc -l)" = 0 ]; then
	log "the slow link's connection reset, $before segments carried by it"
	rc=0
	wait "$pb" || rc=$?
	expect_rc 0 "$rc" "the send whose slow link dropped and came back"
	compare_trees "$BACK" "$LAB_STORE/packages/back" "the package across the drop"
	expect_grep "the sender said it redials the slow link while the fast one carries on" \
		"address slow again in 1 s \(retry 1 of 3\); the other links carry on" "$WORK/b.err"
	check "LAB saw the slow link connect again" \
		[ "$(count_log "$SERVE_LOG" "connected from $SLOW_C:")" -ge $((conns0 + 2)) ]
	read -r nf bf ns bs segs secs <<<"$(outputs "$WORK/b.json")"
	log "fast: $nf segments; slow: $ns segments ($before before the drop); $segs segments; $secs s"
	check "the slow link carried segments again once redialled ($ns against $before before the drop)" \
		[ "$ns" -gt "${before:-0}" ]
	check "every segment was acknowledged once ($nf + $ns = $segs)" [ $((nf + ns)) = "$segs" ]
	# the redialled link's offer finds held what the fast one landed:
	# not "already there" (LAB held nothing of it when the send began)
	sk=$(json_get "$WORK/b.json" 'd["segments_skipped"]')
	check "nothing counted as already there ($sk)" [ "$sk" = 0 ]
	got=$(received back)
	check "LAB wrote each segment once ($got received, $segs in the package)" [ "$got" = "$segs" ]
else
	kill -9 "$pb" 2>/dev/null
	wait "$pb" 2>/dev/null
	log "ss -K did not reset the connection here (a kernel without INET_DIAG_DESTROY): the drop and return are left out"
fi

# ---- the slow link gone longer than its retries, then back ---------------------
# its address becomes unreachable on this side (a redial fails at once) and
# its connection is reset: its 3 retries, 1 s apart, are used up while the
# fast link carries on; it is then tried every retry-delay, so once the
# pair is up again it is used again (it was given up for the rest of the
# send). And a link that carried again has its retries back.
LONG=$WORK/src/long
mkdir -p "$LONG"
binary_data "$LONG/l.bin" $((48 * 1024 * 1024 + 5))
send_on_both long "$WORK/l.json" "$WORK/l.err"
pl=$BG
slow_carried long
# (an unreachable route, not the pair down: with no route of its own the
# connection could go by the default route to whatever answers there)
ip route add unreachable "$SLOW_L/32"
ss -K dst "$SLOW_L" dport = 7070 >/dev/null 2>&1
wait_for_log "$WORK/l.err" "address slow failed 4 times in a row; tried again every 1 s while the other links carry the package" 20 ||
	fail "the slow link's retries were not used up while it was down"
sleep 2
ip route del unreachable "$SLOW_L/32"
log "slow link down and up again, $before segments carried by it before"
wait_for_log "$WORK/l.err" "address slow carries again" 40 &&
	check "... which says it carries again while the send still runs" kill -0 "$pl" ||
	fail "the sender did not say the slow link carries again"
rc=0
wait "$pl" || rc=$?
expect_rc 0 "$rc" "the send whose slow link was gone longer than its retries"
compare_trees "$LONG" "$LAB_STORE/packages/long" "the package across the long drop"
read -r nf bf ns bs segs secs <<<"$(outputs "$WORK/l.json")"
log "fast: $nf segments; slow: $ns segments ($before before the drop); $segs segments; $secs s"
check "the slow link carried segments again once back ($ns against $before before the drop)" \
	[ "$ns" -gt "${before:-0}" ]
check "every segment was acknowledged once ($nf + $ns = $segs)" [ $((nf + ns)) = "$segs" ]
got=$(received long)
check "LAB wrote each segment once ($got received, $segs in the package)" [ "$got" = "$segs" ]
check "the status of the slow output is not failed at the end" \
	bash -c "! grep -q 'slow (lan) *failed' <('$FERRY' status long --config '$CEN_CONF' 2>&1)"

# ---- interrupted (SIGINT) and resumed at once ----------------------------------
# the receiver still holds the interrupted sessions' frames on their way
# when the resume's copies of them come: it ends those sessions (their
# peer closed) and writes the new copies, asking for nothing again
INT=$WORK/src/int
mkdir -p "$INT"
binary_data "$INT/i.bin" $((16 * 1024 * 1024 + 3))
"$FERRY" send "$INT" --to LAB --level 0 --config "$CEN_CONF" \
	>"$WORK/i.out" 2>"$WORK/i.err" &
pi=$!
E2E_PIDS+=("$pi")
wait_for_log "$SERVE_LOG" "package 'int' .*shared with other sessions of this sender" 20 ||
	fail "the send of 'int' did not start on both links"
sleep 2
kill -INT "$pi"
wait "$pi" 2>/dev/null
run_ferry "$WORK/ir.json" "$WORK/ir.err" resume int --json --config "$CEN_CONF"
expect_rc 0 "$RC" "the send resumed at once after SIGINT"
compare_trees "$INT" "$LAB_STORE/packages/int" "the package resumed at once"
again=$(json_get "$WORK/ir.json" 'd["transfers"][0]["segments_resent"]')
check "nothing was asked for again ($again re-sent; $(grep -c 'sending it again' "$WORK/ir.err") said)" \
	[ "$again" = 0 ]

# ---- a window that closes on the slow link mid-transfer ----------------------
# schedule = 'X-Y high; all' on the slow link: closed to this medium send
# from the minute X. FERRY_CLOCK_SHIFT_S (a test build) puts the sender's
# schedule clock at second 54 of a minute, so that X comes 6 s into the
# send: the slow link stops there, the fast one carries the rest, and the
# send does not wait for the window to open again at Y.
if "$FERRY" version | grep -q 'test build'; then
	WIN=$WORK/src/win
	mkdir -p "$WIN"
	binary_data "$WIN/w.bin" $((24 * 1024 * 1024 + 77))
	# the clock read just before the send (not before making its data)
	now=$(date +%s)
	shift_s=$(((54 - now % 60 + 60) % 60))
	close=$(((now + shift_s) / 60 * 60 + 60)) # X, on the shifted clock
	cen_conf "schedule = $(date -d "@$close" +%H:%M)-$(date -d "@$((close + 60))" +%H:%M) high; all"
	t0=$(date +%s.%N)
	FERRY_CLOCK_SHIFT_S=$shift_s run_ferry "$WORK/w.json" "$WORK/w.err" send "$WIN" \
		--to LAB --level 0 --json --config "$CEN_CONF"
	closes_in=$(python3 -c "print('%.1f' % ($close - $shift_s - $t0))")
	expect_rc 0 "$RC" "the send whose slow link's window closed"
	compare_trees "$WIN" "$LAB_STORE/packages/win" "the package sent across the close"
	expect_grep "the slow link stopped when its window closed" \
		"the schedule of address LAB slow closed it to medium-priority" "$WORK/w.err"
	read -r nf bf ns bs segs secs <<<"$(outputs "$WORK/w.json")"
	sfin=$(json_get "$WORK/w.json" '[o["finished"] for o in d["outputs"] if o["name"] == "slow"][0]')
	log "window closed ${closes_in} s into the send; fast: $nf segments; slow: $ns, the last at $sfin s; $secs s"
	check "the slow link carried its share before the close ($ns segments)" [ "$ns" -ge 1 ]
	check "... and nothing after it (its last at $sfin s, the close at $closes_in s)" \
		python3 -c "import sys; sys.exit(not ($sfin <= $closes_in + 1.0))"
	check "every segment was acknowledged ($nf + $ns = $segs)" [ $((nf + ns)) = "$segs" ]
	check "the send did not wait for the window to open again ($secs s)" \
		python3 -c "import sys; sys.exit(not ($secs < 30))"
	got=$(received win)
	check "LAB wrote each segment once ($got received by its sessions, $segs in the package)" \
		[ "$got" = "$segs" ]
else
	log "not a test build (no FERRY_CLOCK_SHIFT_S): the window that closes mid-transfer is left out"
fi

# ---- a window closed to the send from the start, on the slow link -----------
# (the real clock: closed this minute and the next, open after) the slow
# link waits for its window and carries nothing; the fast one carries all
now=$(date +%s)
cen_conf "schedule = $(date -d "@$now" +%H:%M)-$(date -d "@$((now + 120))" +%H:%M) high; all"
SHUT=$WORK/src/shut
mkdir -p "$SHUT"
binary_data "$SHUT/s.bin" $((6 * 1024 * 1024 + 5))
run_ferry "$WORK/sh.json" "$WORK/sh.err" send "$SHUT" --to LAB --level 0 --json \
	--config "$CEN_CONF"
expect_rc 0 "$RC" "the send whose slow link is closed to it"
compare_trees "$SHUT" "$LAB_STORE/packages/shut" "the package sent while the slow link is closed"
expect_grep "the slow link waits for its window" \
	"address slow is closed to medium-priority sends now \(it opens at [^)]*\); the other links carry on" "$WORK/sh.err"
read -r nf bf ns bs segs secs <<<"$(outputs "$WORK/sh.json")"
check "the slow link carried nothing, the fast one all ($ns and $nf of $segs)" \
	[ "$ns" = 0 ] && [ "$nf" = "$segs" ]
got=$(received shut)
check "LAB wrote each segment once ($got received, $segs in the package)" [ "$got" = "$segs" ]

e2e_finish
