#!/bin/bash
# test_ras.sh - RAS senders over a real shaped line: LAB lives in its own
# network namespace, joined to this one by a veth pair shaped with tc tbf
# to the line rate. The dial command brings the pair up, the hang-up
# command takes it down (and logs both).
#   - a transfer over each type (async and x25 at 64 kbit/s, isdn at 128
#     kbit/s, sna at 2 Mbit/s), each dialled, then hung up after idle;
#   - a parcel whose site's one network address is the line: its
#     registration dials it, and it is hung up once idle;
#   - a wrong password: refused (exit 4) and the line hung up;
#   - a dial command that fails: the error names it and its exit status;
#   - a sender interrupted while it dials: the line is hung up once idle;
#   - a --courier send over the line: its parcel's registration waits for
#     the line's dial and goes over it;
#   - a sender killed -9 while it dials: the next send waits for that dial,
#     and the line is hung up once idle;
#   - a sender killed on the line: hung up its idle-timeout after the kill;
#   - one transfer at a time per line: the second waits for the first;
#   - both sites sending to each other at once, each with its own address
#     and account;
#   - the line cut mid-transfer: the sender notices, hangs up, redials
#     with its retry settings and sends only the segments LAB lacks;
#   - the line cut in the middle of a frame: LAB keeps what came of it,
#     and the redialled sender sends only the rest of that frame;
#   - a plain lan address over the shaped link, no FERRY_* switch: the
#     manifest goes compressed (not loopback), and with its bandwidth
#     of 2 Mbit/s (a slow line) the first frame is streamed and the
#     others are compressed against the segment before them.
# FERRY_E2E_SHORT=1 (tools/test.sh, under ASan) runs a subset that covers
# the same code paths in well under a minute: one line type dialled, a
# transfer and the hang-up after idle, a parcel registered over the line,
# the wrong password, the failed
# dial, the dial interrupted, the plain lan address, the line cut mid-transfer and redialled,
# and the line cut in the middle of a compressed, streamed frame.
# Needs root and network namespaces; skipped (never passed) without.
# labels: needs-root slow alongside
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init test_ras
SHORT=${FERRY_E2E_SHORT:-0}
[ "$SHORT" = 1 ] && log "short variant (FERRY_E2E_SHORT=1)"

[ "$(id -u)" = 0 ] || skip "needs root (network namespaces, tc)"
command -v ip >/dev/null && command -v tc >/dev/null || skip "needs ip and tc (iproute2)"
NS=ferry-ras-$$
VC=frc$$
VL=frl$$
ip netns add "$NS" 2>/dev/null || skip "cannot create a network namespace"
cleanup_ns() {
	ip netns pids "$NS" 2>/dev/null | xargs -r kill -9 2>/dev/null
	ip link del "$VC" 2>/dev/null
	ip netns del "$NS" 2>/dev/null
}
trap 'e2e_cleanup; cleanup_ns' EXIT
ip link add "$VC" type veth peer name "$VL" || skip "cannot create a veth pair"
ip link set "$VL" netns "$NS"
n=$((RANDOM % 200 + 20))
CIP=10.211.$n.1
LIP=10.211.$n.2
ip addr add "$CIP/30" dev "$VC"
ip netns exec "$NS" ip addr add "$LIP/30" dev "$VL"
ip netns exec "$NS" ip link set lo up
# the line starts hung up
ip link set "$VC" down

# shape RATE: both directions of the line to RATE
shape() {
	tc qdisc replace dev "$VC" root tbf rate "$1" burst 4kb latency 400ms
	ip netns exec "$NS" tc qdisc replace dev "$VL" root tbf rate "$1" burst 4kb latency 400ms
}

# wait_tx BYTES SECS: wait until BYTES more have gone out on the line (a
# cut at a known point of a frame, whatever the machine's speed)
wait_tx() {
	local f=/sys/class/net/$VC/statistics/tx_bytes i b0
	b0=$(cat "$f")
	for ((i = 0; i < $2 * 20; i++)); do
		[ $(($(cat "$f") - b0)) -ge "$1" ] && return 0
		sleep 0.05
	done
	return 1
}

# dial and hang-up: they act on both ends and log what they did
cat >"$WORK/dial" <<EOF
#!/bin/sh
echo "dial \$FERRY_SITE \$FERRY_ADDRESS \$FERRY_TYPE" >>"$WORK/line.log"
ip link set $VC up && ip netns exec $NS ip link set $VL up || exit 1
i=0
while [ \$i -lt 50 ]; do
	ip -o link show $VC | grep -q 'state UP' && exit 0
	sleep 0.1; i=\$((i + 1))
done
exit 1
EOF
cat >"$WORK/hangup" <<EOF
#!/bin/sh
echo "hangup \$FERRY_SITE \$FERRY_ADDRESS" >>"$WORK/line.log"
ip link set $VC down
EOF
chmod +x "$WORK/dial" "$WORK/hangup"
: >"$WORK/line.log"

# LAB: in the namespace. CEN: here. Each has an account for the other.
printf 'lab secret\n' >"$WORK/lab.pw"
chmod 600 "$WORK/lab.pw"
cat >"$LAB_CONF" <<EOF
[site]
code = LAB
store = $LAB_STORE
listen = $LIP:7070
[account CEN]
password-file = $PW_FILE
[address CEN isdn]
type = isdn
host = $CIP:7071
account = LAB
password-file = $WORK/lab.pw
[sender]
retry-delay = 1s
EOF
cat >"$WORK/cen-serve.conf" <<EOF
[site]
code = CEN
store = $CEN_STORE
listen = $CIP:7071
[account LAB]
password-file = $WORK/lab.pw
EOF
ras_addr() { # TYPE NAME [PASSWORD-FILE]
	cat <<EOF
[address LAB $2]
type = $1
host = $LIP:7070
dial = $WORK/dial
hang-up = $WORK/hangup
idle-timeout = ${IDLE:-2s}
password-file = ${3:-$PW_FILE}
EOF
}
cen_conf() { # extra [sender] lines (retries: $RETRIES, default 5)
	{
		printf '[site]\ncode = CEN\nstore = %s\n' "$CEN_STORE"
		ras_addr async modem
		ras_addr x25 pad
		ras_addr isdn isdn
		ras_addr sna sna
		printf '[sender]\nretries = %s\nretry-delay = 1s\n%s\n' "${RETRIES:-5}" "$1"
	} >"$CEN_CONF"
}
cen_conf ""

# (ip netns exec execs ferry: SERVE_PID is the receiver, which e2e_finish
# stops with SIGTERM and expects to exit 0)
ip netns exec "$NS" "$FERRY" serve --config "$LAB_CONF" 2>>"$SERVE_LOG" &
SERVE_PID=$!
E2E_PIDS+=($!)
wait_for_log "$SERVE_LOG" "receiving on" 10 || fail "LAB did not start in its namespace"

# wait_hung_up NAME SECONDS: the line's keeper hung NAME up
wait_hung_up() {
	wait_for_log "$CEN_STORE/outgoing/.lines/LAB-$1.log" "hung up after" "$2"
}

# line_plan NAME: `ferry plan` of $WORK/p-$type --via $name, offline, into
# $WORK/NAME.json (it never dials)
line_plan() {
	run_ferry "$WORK/$1.json" "$WORK/$1.err" plan "$WORK/p-$type" --to LAB \
		--via "$name" --offline --json --config "$CEN_CONF"
	expect_rc 0 "$RC" "plan --via $name"
}

# ---- a transfer over each type, then hang-up after idle -----------------
# (plan counts each line's dial: assumed before it was dialled here, none
# while it is up, then the one measured)
# (x25's 192 KiB go in one 24 s send: a slow send is not a dead line)
specs=("async modem 64kbit 24" "x25 pad 64kbit 192" "isdn isdn 128kbit 48" "sna sna 2mbit 512")
[ "$SHORT" = 1 ] && specs=("isdn isdn 128kbit 48")
for spec in "${specs[@]}"; do
	set -- $spec
	type=$1 name=$2 rate=$3 kib=$4
	shape "$rate"
	mkdir -p "$WORK/p-$type"
	binary_data "$WORK/p-$type/data.bin" $((kib * 1024))
	dials=$(count_log "$WORK/line.log" "^dial LAB $name $type")
	line_plan "$type-p0"
	check "never dialled here, plan counts the $type line's assumed dial ($(json_get "$WORK/$type-p0.json" '[(o["setup_source"], o["setup"]) for o in d["outputs"]]'))" \
		[ "$(json_get "$WORK/$type-p0.json" '[(o["setup_source"], o["setup"] >= 5) for o in d["outputs"]]')" = "[('assumed', True)]" ]
	run_ferry "$WORK/$type.out" "$WORK/$type.err" send "$WORK/p-$type" \
		--to LAB --config "$CEN_CONF" --via "$name" --level 0
	expect_rc 0 "$RC" "a transfer over $type ($rate)"
	line_plan "$type-p1" # (within its idle-timeout: still up)
	check "with the line up, plan counts no dial ($(json_get "$WORK/$type-p1.json" '[(o["setup_source"], o["setup"]) for o in d["outputs"]]'))" \
		[ "$(json_get "$WORK/$type-p1.json" '[(o["setup_source"], o["setup"] < 1) for o in d["outputs"]]')" = "[('up', True)]" ]
	compare_trees "$WORK/p-$type" "$LAB_STORE/packages/p-$type" "the package sent over $type"
	check "the $type line was dialled" \
		[ "$(count_log "$WORK/line.log" "^dial LAB $name $type")" = $((dials + 1)) ]
	if wait_hung_up "$name" 10; then
		pass "the $type line was hung up after 2 s idle"
	else
		fail "the $type line was not hung up: $(cat "$CEN_STORE/outgoing/.lines/LAB-$name.log" 2>&1)"
	fi
	check "the line is down after the hang-up" \
		bash -c "! ip -o link show $VC | grep -q 'state UP'"
	line_plan "$type-p2"
	check "hung up, plan counts the dial measured here ($(json_get "$WORK/$type-p2.json" '[(o["setup_source"], o["setup"]) for o in d["outputs"]]'))" \
		[ "$(json_get "$WORK/$type-p2.json" '[(o["setup_source"], o["setup"] < 3) for o in d["outputs"]]')" = "[('measured', True)]" ]
done

# ---- a parcel registered over the line ------------------------------------------
# the site's one network address is the line, hung up: `parcel create`
# dials it to register the parcel, learns LAB holds the package (no
# parcel), and the keeper hangs the line up once idle
mkdir -p "$WORK/media"
{
	printf '[site]\ncode = CEN\nstore = %s\n' "$CEN_STORE"
	ras_addr isdn isdn
	printf '[address LAB usb]\ntype = courier\nmedia = %s\npassword-file = %s\n' \
		"$WORK/media" "$PW_FILE"
} >"$WORK/parcel.conf"
dials=$(count_log "$WORK/line.log" "^dial LAB isdn isdn")
hups=$(count_log "$CEN_STORE/outgoing/.lines/LAB-isdn.log" "hung up after")
run_ferry "$WORK/pc.out" "$WORK/pc.err" parcel create "$WORK/p-isdn" --to LAB \
	--config "$WORK/parcel.conf" --level 0
expect_rc 0 "$RC" "parcel create with a line as the site's network address"
check "the line was dialled for the registration" \
	[ "$(count_log "$WORK/line.log" "^dial LAB isdn isdn")" = $((dials + 1)) ]
expect_grep "... which went through: LAB holds the package, no parcel" \
	"already holds 'p-isdn' complete: no parcel needed" "$WORK/pc.err"
check "... nothing is left on the medium" [ -z "$(ls -A "$WORK/media")" ]
wait_for_log "$CEN_STORE/outgoing/.lines/LAB-isdn.log" "hung up after" 10 $((hups + 1)) &&
	pass "the line was hung up once idle" ||
	fail "the line was not hung up: $(tail -n 3 "$CEN_STORE/outgoing/.lines/LAB-isdn.log" 2>&1)"

# ---- a wrong password --------------------------------------------------------
printf 'not the password\n' >"$WORK/wrong.pw"
chmod 600 "$WORK/wrong.pw"
{
	printf '[site]\ncode = CEN\nstore = %s\n' "$CEN_STORE"
	ras_addr isdn isdn "$WORK/wrong.pw"
} >"$WORK/wrong.conf"
run_ferry "$WORK/wrong.out" "$WORK/wrong.err" send "$WORK/p-isdn" --to LAB \
	--config "$WORK/wrong.conf" --name wrongpw
expect_rc 4 "$RC" "a wrong password"
expect_grep "the error names the refused account" "refused account CEN" "$WORK/wrong.err"
check "nothing arrived" [ ! -e "$LAB_STORE/packages/wrongpw" ]
check "the line was hung up at once" \
	bash -c "! ip -o link show $VC | grep -q 'state UP'"

# ---- a dial that fails ---------------------------------------------------------
printf '#!/bin/sh\necho "no carrier" >&2\nexit 3\n' >"$WORK/nodial"
chmod +x "$WORK/nodial"
{
	printf '[site]\ncode = CEN\nstore = %s\n' "$CEN_STORE"
	ras_addr isdn isdn | sed "s#^dial = .*#dial = $WORK/nodial#"
	printf '[sender]\nretries = 0\n'
} >"$WORK/nodial.conf"
run_ferry "$WORK/nodial.out" "$WORK/nodial.err" send "$WORK/p-isdn" --to LAB \
	--config "$WORK/nodial.conf" --name nodial
expect_rc 1 "$RC" "a send whose dial command fails"
expect_grep "the error names the dial command and its exit" \
	"dial command '$WORK/nodial' for LAB isdn failed \(exit 3\)" "$WORK/nodial.err"
check "nothing arrived" [ ! -e "$LAB_STORE/packages/nodial" ]

# ---- a sender interrupted while it dials ---------------------------------------
# the dial command goes on and brings the line up; nobody is sending on
# it, and the line's keeper (started before the dial) hangs it up once
# idle, as after any transfer: a charged call is not left open
cat >"$WORK/slowdial" <<EOF
#!/bin/sh
sleep 2
exec $WORK/dial
EOF
chmod +x "$WORK/slowdial"
{
	printf '[site]\ncode = CEN\nstore = %s\n' "$CEN_STORE"
	ras_addr isdn isdn | sed "s#^dial = .*#dial = $WORK/slowdial#"
	printf '[sender]\nretries = 0\n'
} >"$WORK/slowdial.conf"
hangups0=$(grep -c '^hangup' "$WORK/line.log")
"$FERRY" send "$WORK/p-isdn" --to LAB --config "$WORK/slowdial.conf" --name slowdial \
	>"$WORK/sd.out" 2>"$WORK/sd.err" &
pid=$!
E2E_PIDS+=("$pid")
wait_for_log "$WORK/sd.err" "dialling LAB isdn" 10 || fail "the slow dial did not start"
run_ferry "$WORK/sds.json" "$WORK/sds.err" status slowdial --json --config "$WORK/slowdial.conf"
check "status while the line dials: its output says dialling ($(json_get "$WORK/sds.json" '[(o["state"], o["why"]) for o in d[0]["outputs"]]'))" \
	[ "$(json_get "$WORK/sds.json" '[(o["state"], o["why"]) for o in d[0]["outputs"]]')" = "[('dialling', 'dialling')]" ]
kill -INT "$pid"
rc=0
wait "$pid" || rc=$?
expect_rc 130 "$rc" "a send interrupted while it dials"
for ((i = 0; i < 200; i++)); do
	[ "$(grep -c '^hangup' "$WORK/line.log")" -gt "$hangups0" ] && break
	sleep 0.1
done
check "the line its dial brought up is hung up once idle" \
	[ "$(grep -c '^hangup' "$WORK/line.log")" -gt "$hangups0" ]
check "... after the dial ended ($(tail -n 2 "$WORK/line.log" | cut -d' ' -f1 | tr '\n' ' '))" \
	[ "$(tail -n 2 "$WORK/line.log" | cut -d' ' -f1 | tr '\n' ' ')" = "dial hangup " ]

# ---- a --courier send whose one network address is the line -------------------
# the send dials the line (slowly) while its parcel is written; the
# parcel's registration waits for that dial and goes over the line (it
# is not left unregistered, as when the site cannot be reached)
mkdir -p "$WORK/p-cs" "$WORK/media-cs"
binary_data "$WORK/p-cs/data.bin" $((128 * 1024))
{
	cat "$WORK/slowdial.conf"
	printf '[address LAB usb]\ntype = courier\nmedia = %s\ntransit = 1s\npassword-file = %s\n' \
		"$WORK/media-cs" "$PW_FILE"
} >"$WORK/cs.conf"
hups=$(count_log "$CEN_STORE/outgoing/.lines/LAB-isdn.log" "hung up after")
run_ferry "$WORK/cs.out" "$WORK/cs.err" send "$WORK/p-cs" --to LAB --courier --level 0 \
	--config "$WORK/cs.conf"
expect_rc 0 "$RC" "a --courier send over a line that dials slowly"
expect_grep "... its parcel takes a tail" "a parcel by usb carries segments" "$WORK/cs.err"
check "... whose registration waited for the dial, not given up ($(grep -o 'cannot register[^:]*: [^)]*' "$WORK/cs.err"))" \
	bash -c "! grep -q 'cannot register the parcel' '$WORK/cs.err'"
run_ferry "$WORK/csl.json" "$WORK/csl.err" parcel list --offline --json --config "$WORK/cs.conf"
check "... parcel list: registered" \
	[ "$(json_get "$WORK/csl.json" '[p["registered"] for p in d if p["name"] == "p-cs"]')" = "[True]" ]
compare_trees "$WORK/p-cs" "$LAB_STORE/packages/p-cs" "the package the network completed"
wait_for_log "$CEN_STORE/outgoing/.lines/LAB-isdn.log" "hung up after" 10 $((hups + 1)) &&
	pass "... and the line hung up once idle" || fail "the line was not hung up after the --courier send"

# ---- a sender killed -9 while it dials: its dial runs on ----------------------
# the next send on the line waits for that dial before it uses the line
# (it had taken the line as up, failed, and hung up; the dial then
# brought the line up with no keeper to hang it up); the line's keeper
# hangs it up once idle
sed "s#^dial = .*#dial = $WORK/slowdial4#" "$WORK/slowdial.conf" >"$WORK/orphan.conf"
printf '#!/bin/sh\nsleep 4\nexec %s\n' "$WORK/dial" >"$WORK/slowdial4"
chmod +x "$WORK/slowdial4"
hung0=$(count_log "$CEN_STORE/outgoing/.lines/LAB-isdn.log" "hung up after")
"$FERRY" send "$WORK/p-isdn" --to LAB --config "$WORK/orphan.conf" --name orphan1 \
	>"$WORK/o1.out" 2>"$WORK/o1.err" &
pid=$!
E2E_PIDS+=("$pid")
wait_for_log "$WORK/o1.err" "dialling LAB isdn" 10 || fail "the slow dial did not start"
# (killed once its dial command runs: the line's .dialling names it)
for _ in $(seq 100); do
	[ -s "$CEN_STORE/outgoing/.lines/LAB-isdn.dialling" ] && break
	sleep 0.05
done
kill -9 "$pid"
wait "$pid" 2>/dev/null
run_ferry "$WORK/o2.out" "$WORK/o2.err" send "$WORK/p-isdn" --to LAB --config "$WORK/orphan.conf" \
	--name orphan2
expect_rc 0 "$RC" "a send on the line while the dial of a killed sender still runs (retries 0)"
expect_grep "... it waited for that dial" "a dial by a sender that is gone still runs; waiting for it" "$WORK/o2.err"
compare_trees "$WORK/p-isdn" "$LAB_STORE/packages/orphan2" "the package sent once the orphaned dial was done"
wait_for_log "$CEN_STORE/outgoing/.lines/LAB-isdn.log" "hung up after" 15 $((hung0 + 1)) ||
	fail "the line was not hung up once idle after the orphaned dial: $(tail -n 3 "$CEN_STORE/outgoing/.lines/LAB-isdn.log")"

# ---- a sender killed on the line: idle counts from then, not from the dial ----
# the line carried a transfer for 3 s (more than its 2 s idle-timeout)
# when its sender is killed; the keeper hangs up 2 s later, not at once
shape 128kbit
mkdir -p "$WORK/p-kill"
binary_data "$WORK/p-kill/data.bin" $((160 * 1024))
hangups0=$(grep -c '^hangup' "$WORK/line.log")
"$FERRY" send "$WORK/p-kill" --to LAB --config "$CEN_CONF" --via isdn --level 0 \
	>"$WORK/pk.out" 2>"$WORK/pk.err" &
pid=$!
E2E_PIDS+=("$pid")
wait_for_log "$SERVE_LOG" "package 'p-kill' \(" 20 || fail "the send over the line did not start"
sleep 3
kill -9 "$pid"
t_kill=$(date +%s.%N)
wait "$pid" 2>/dev/null
for ((i = 0; i < 150; i++)); do
	[ "$(grep -c '^hangup' "$WORK/line.log")" -gt "$hangups0" ] && break
	sleep 0.1
done
after=$(awk -v a="$t_kill" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
check "the line of a killed sender is hung up" [ "$(grep -c '^hangup' "$WORK/line.log")" -gt "$hangups0" ]
check "... its idle-timeout (2 s) after the kill, not at once ($after s)" \
	awk -v t="$after" 'BEGIN { exit !(t >= 1.5) }'

# ---- a plain lan address over the shaped link: the real triggers ------------
# No FERRY_* switch (lib.sh unsets them). Not loopback: the manifest goes
# compressed (OFFER_Z), at level 19 on a line of 2 Mbit/s or less. The
# configured bandwidth (2 Mbit/s, as shaped) makes the line slow: the frame
# the line waits for is streamed, and each segment is compressed against
# the one before it. (A lan address without bandwidth is of unknown rate:
# not slow, its frames go whole; the manifest still goes compressed.)
shape 2mbit
{
	printf '[site]\ncode = CEN\nstore = %s\n' "$CEN_STORE"
	printf '[address LAB lan]\ntype = lan\nhost = %s:7070\n' "$LIP"
	printf 'password-file = %s\nbandwidth = 2M\n' "$PW_FILE"
	printf '[sender]\nretries = 0\nsegment-size = 64K\n'
} >"$WORK/lan.conf"
for d in $(seq 1 10); do
	mkdir -p "$WORK/lan/dir-$d"
	for f in $(seq 1 30); do
		echo "file $d/$f" >"$WORK/lan/dir-$d/some-longer-file-name-$f.txt"
	done
done
find /usr/include -type f -name '*.h' 2>/dev/null | LC_ALL=C sort | xargs cat 2>/dev/null |
	head -c $((256 * 1024)) >"$WORK/lan/text.txt"
"$WORK/dial" # a lan address has no dial command
run_ferry "$WORK/lan.json" "$WORK/lan.err" send "$WORK/lan" --to LAB \
	--config "$WORK/lan.conf" --level 19 --json -v
"$WORK/hangup"
expect_rc 0 "$RC" "a send by a plain lan address over the shaped link"
compare_trees "$WORK/lan" "$LAB_STORE/packages/lan" "the tree sent by the lan address"
sizes=$(sed -n 's/.*manifest: \([0-9]*\) bytes, \([0-9]*\) compressed.*/\1 \2/p' "$WORK/lan.err" | head -n 1)
read -r raw z <<<"$sizes"
if [ -n "$raw" ] && [ "$z" -lt $((raw / 3)) ]; then
	pass "the manifest went compressed off loopback: $raw bytes as $z"
else
	fail "no compressed manifest in the sender's log: '$sizes'"
fi
expect_grep "the first frame was streamed (a slow line)" \
	"segment [0-9]+ streams at level 19" "$WORK/lan.err"
expect_grep "a segment was compressed against the one before it" \
	"segment [0-9]+ is compressed against segment [0-9]+" "$WORK/lan.err"

if [ "$SHORT" != 1 ]; then
# ---- one transfer at a time on a line ----------------------------------------
shape 2mbit
mkdir -p "$WORK/one" "$WORK/two"
binary_data "$WORK/one/data.bin" $((384 * 1024))
binary_data "$WORK/two/data.bin" $((384 * 1024))
dials=$(count_log "$WORK/line.log" "^dial LAB isdn")
"$FERRY" send "$WORK/one" --to LAB --config "$CEN_CONF" --via isdn --level 0 \
	>"$WORK/one.out" 2>"$WORK/one.err" &
p1=$!
# once the first has dialled (it holds the line)
wait_for_log "$WORK/line.log" "^dial LAB isdn" 30 $((dials + 1)) ||
	fail "the first transfer did not dial"
"$FERRY" send "$WORK/two" --to LAB --config "$CEN_CONF" --via isdn --level 0 \
	>"$WORK/two.out" 2>"$WORK/two.err" &
p2=$!
E2E_PIDS+=("$p1" "$p2")
if wait_for_log "$WORK/two.err" "carrying another transfer; waiting" 20; then
	run_ferry "$WORK/tws.json" "$WORK/tws.err" status two --json --config "$CEN_CONF"
	# (unless the first let go of the line meanwhile: it completes first)
	grep -q "package 'one' complete" "$SERVE_LOG" || check "status of the transfer waiting for the line: waiting, not dialling ($(json_get "$WORK/tws.json" '[(o["state"], o["why"]) for o in d[0]["outputs"]]'))" \
		[ "$(json_get "$WORK/tws.json" '[(o["state"], o["why"]) for o in d[0]["outputs"]]')" = "[('waiting', 'waiting')]" ]
fi
rc1=0 rc2=0
wait "$p1" || rc1=$?
wait "$p2" || rc2=$?
expect_rc 0 "$rc1" "the first transfer on the line"
expect_rc 0 "$rc2" "the second transfer on the line"
expect_grep "the second waited for the line" "carrying another transfer; waiting" "$WORK/two.err"
# LAB's log: 'one' complete before 'two' connected
check "the transfers did not overlap on the line" python3 - "$SERVE_LOG" <<'EOF'
import sys, re
lines = open(sys.argv[1]).read().splitlines()
done_one = next(i for i, l in enumerate(lines) if "package 'one' complete" in l)
start_two = next(i for i, l in enumerate(lines) if "package 'two' (" in l)
sys.exit(0 if done_one < start_two else 1)
EOF
compare_trees "$WORK/two" "$LAB_STORE/packages/two" "the second package"
wait_hung_up isdn 10 >/dev/null

# ---- both directions at once ---------------------------------------------------
# (CEN's line stays up a while after its send, so as not to cut LAB's)
IDLE=30s cen_conf ""
"$FERRY" serve --config "$WORK/cen-serve.conf" 2>>"$WORK/cen-serve.log" &
E2E_PIDS+=($!)
wait_for_log "$WORK/cen-serve.log" "receiving on" 10 || fail "CEN's receiver did not start"
mkdir -p "$WORK/to-lab" "$WORK/to-cen"
binary_data "$WORK/to-lab/data.bin" $((512 * 1024))
binary_data "$WORK/to-cen/data.bin" $((512 * 1024))
"$WORK/dial" # LAB's address to CEN has no dial command of its own
"$FERRY" send "$WORK/to-lab" --to LAB --config "$CEN_CONF" --via isdn --level 0 \
	>"$WORK/to-lab.out" 2>"$WORK/to-lab.err" &
pa=$!
ip netns exec "$NS" "$FERRY" send "$WORK/to-cen" --to CEN --config "$LAB_CONF" --level 0 \
	>"$WORK/to-cen.out" 2>"$WORK/to-cen.err" &
pb=$!
E2E_PIDS+=("$pa" "$pb")
rca=0 rcb=0
wait "$pa" || rca=$?
wait "$pb" || rcb=$?
expect_rc 0 "$rca" "CEN -> LAB while LAB sends to CEN"
expect_rc 0 "$rcb" "LAB -> CEN while CEN sends to LAB"
compare_trees "$WORK/to-lab" "$LAB_STORE/packages/to-lab" "CEN's package at LAB"
compare_trees "$WORK/to-cen" "$CEN_STORE/packages/to-cen" "LAB's package at CEN"
# hang up by hand: the keeper sees it is no longer the line's and ends
kill "$(sed -n 's/^pid=//p' "$CEN_STORE/outgoing/.lines/LAB-isdn.up")" 2>/dev/null
rm -f "$CEN_STORE/outgoing/.lines/LAB-isdn.up"
"$WORK/hangup"

fi # not SHORT

# ---- the line cut mid-transfer -------------------------------------------------
shape 1mbit
cen_conf "segment-size = 64K"
mkdir -p "$WORK/cut"
binary_data "$WORK/cut/data.bin" $((1024 * 1024))
dials=$(count_log "$WORK/line.log" "^dial LAB isdn")
"$FERRY" send "$WORK/cut" --to LAB --config "$CEN_CONF" --via isdn --level 0 \
	--json >"$WORK/cut.json" 2>"$WORK/cut.err" &
pc=$!
E2E_PIDS+=("$pc")
# cut once some segments are held at LAB
for ((i = 0; i < 200; i++)); do
	[ "$(count_log "$SERVE_LOG" "package 'cut' \(")" -ge 1 ] && [ -d "$LAB_STORE/partial" ] &&
		[ "$(held_in cut)" -ge 3 ] && break
	sleep 0.1
done
held=$(held_in cut)
ip link set "$VC" down
log "line cut with $held segments held at LAB"
rc=0
wait "$pc" || rc=$?
expect_rc 0 "$rc" "the transfer, after the line was cut and redialled"
compare_trees "$WORK/cut" "$LAB_STORE/packages/cut" "the package sent across the cut"
expect_grep "the sender saw the line die" "nothing moved for|connection to the receiver lost|cannot connect" "$WORK/cut.err"
d2=$(count_log "$WORK/line.log" "^dial LAB isdn")
check "the line was redialled ($dials -> $d2 dials)" [ "$d2" -ge $((dials + 2)) ]
expect_grep "the failed attempt hung the line up" "hung up: the session over it failed" \
	"$CEN_STORE/outgoing/.lines/LAB-isdn.log"
check "some segments were held before the cut ($held)" [ "$held" -ge 3 ]
# the last session at LAB only had to receive what it lacked
last=$(grep "package 'cut' (" "$SERVE_LOG" | tail -n 1)
check "the redialled session did not start from zero ($last)" \
	bash -c "[[ '$last' =~ :\ ([0-9]+)\ held ]] && [ \${BASH_REMATCH[1]} -ge 3 ]"

RETRIES=12 cen_conf ""
if [ "$SHORT" != 1 ]; then
# ---- the line cut in the middle of a frame ---------------------------------------
# one 1 MiB frame at 1 Mbit/s (8 s): cut once 400 KB went; the receiver
# keeps what came, and the redialled sender sends only the rest
mkdir -p "$WORK/mid"
binary_data "$WORK/mid/data.bin" $((1024 * 1024))
"$FERRY" send "$WORK/mid" --to LAB --config "$CEN_CONF" --via isdn --level 0 \
	--json >"$WORK/mid.json" 2>"$WORK/mid.err" &
pm=$!
E2E_PIDS+=("$pm")
wait_for_log "$SERVE_LOG" "package 'mid' \(" 30 || fail "the transfer of 'mid' did not start"
wait_tx 400000 30 || fail "400 KB of 'mid' did not go in 30 s"
ip link set "$VC" down
log "line cut in the middle of the frame"
rc=0
wait "$pm" || rc=$?
expect_rc 0 "$rc" "the transfer cut mid-frame, after the redial"
compare_trees "$WORK/mid" "$LAB_STORE/packages/mid" "the package cut mid-frame"
kept=$(sed -n "s/.*kept \([0-9]*\) of the [0-9]* bytes of segment 0's frame.*/\1/p" "$SERVE_LOG" | tail -n 1)
check "LAB kept the part of the frame that came (${kept:-none} bytes)" \
	[ "${kept:-0}" -ge 100000 ]
expect_grep "LAB took the rest as a continuation" "segment 0 resumes at byte $kept of" "$SERVE_LOG"
expect_grep "the sender said so" "segment 0 resumes at byte $kept of" "$WORK/mid.err"
wire=$(json_get "$WORK/mid.json" 'd["wire_bytes"]')
check "the bytes kept were not sent again (wire $wire < 1 MiB + 1 MiB - kept + 64 KiB)" \
	[ "$wire" -lt $((2 * 1048576 - ${kept:-0} + 65536)) ]
fi # not SHORT

# ---- the same with compression: the resumed frame must be the same bytes ------
# (the sender compresses the segment again at the level the kept part
# says, and zstd gives the same frame)
mkdir -p "$WORK/midz"
find /usr/include /usr/share/doc -type f -name '*.h' -o -type f -name 'copyright' 2>/dev/null |
	sort | xargs cat 2>/dev/null | head -c $((3 * 1024 * 1024)) >"$WORK/midz/text.txt"
"$FERRY" send "$WORK/midz" --to LAB --config "$CEN_CONF" --via isdn \
	--json >"$WORK/midz.json" 2>"$WORK/midz.err" &
pz=$!
E2E_PIDS+=("$pz")
wait_for_log "$SERVE_LOG" "package 'midz' \(" 30 || fail "the transfer of 'midz' did not start"
# the frame is about 300 KB at level 19 (five 64 KiB pieces): cut once
# 100 KB of it went (a piece and a half)
wait_tx 100000 30 || fail "100 KB of 'midz' did not go in 30 s"
ip link set "$VC" down
rc=0
wait "$pz" || rc=$?
expect_rc 0 "$rc" "the compressed transfer cut mid-frame, after the redial"
compare_trees "$WORK/midz" "$LAB_STORE/packages/midz" "the compressed package cut mid-frame"
# on a slow line the first frame goes as a stream (PIECE messages as zstd
# produces them): the part kept is of a streamed frame
kz=$(sed -n "s/.*kept \([0-9]*\) bytes of segment 0's streamed frame.*/\1/p" "$SERVE_LOG" | tail -n 1)
check "LAB kept part of the compressed, streamed frame (${kz:-none} bytes)" \
	[ "${kz:-0}" -ge 10000 ]
expect_grep "LAB took the rest of the streamed frame" \
	"segment 0's streamed frame resumes at byte $kz\$" "$SERVE_LOG"
expect_grep "the compressed frame resumed where it was cut" "segment 0 resumes at byte $kz of" "$WORK/midz.err"
check "the resumed frame was the same bytes (nothing re-sent)" \
	grep -Eq "package 'midz' complete and verified .*, 0 re-sent\)" "$SERVE_LOG"
check "it was compressed (level $(json_get "$WORK/midz.json" 'd["level"]'))" \
	[ "$(json_get "$WORK/midz.json" 'd["level"]')" -gt 0 ]

e2e_finish
