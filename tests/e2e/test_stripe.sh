#!/bin/bash
# test_stripe.sh - one package over two links at once (issue 16), on
# loopback: two addresses to LAB, each through its own proxy limited to
# its own rate (4 MB/s and 1 MB/s). The send uses both at once and the
# package arrives byte-identical; each link carried its share, the fast
# one the most; the receiver wrote each segment once. A link cut
# mid-transfer hands its segments to the other and the package completes;
# --via pins one link. Two sends at once over the same links keep no
# learned rate. A line still dialling when the LAN completes the package
# is given up; a line whose every dial fails shows failed once the LAN
# completed the package. An empty directory goes by one link. A line whose
# window closes before it could land a segment is not dialled.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init test_stripe

PKG=$WORK/src/pkg
mkdir -p "$PKG"
binary_data "$PKG/a.bin" $((24 * 1024 * 1024))
binary_data "$PKG/b.bin" $((9 * 1024 * 1024 + 12345))

# two proxies, two addresses: "lan" (fast) and "slow", and "crawl"
start_link "$WORK/fast.log" 4000000
FAST=$LINK_PORT
start_link "$WORK/slow.log" 1000000
SLOW=$LINK_PORT
SLOW_PID=$LINK_PID
CEN_HOST=127.0.0.1:$FAST ADDR_EXTRA="bandwidth = 32M" \
SENDER_EXTRA="segment-size = 1M" write_configs
{
	lan_address slow "$SLOW" 8M
	lan_address crawl "$SLOW" 64k
} >>"$CEN_CONF"
start_serve

t0=$SECONDS
run_ferry "$WORK/s.json" "$WORK/s.err" send "$PKG" --to LAB --level 0 \
	--json --config "$CEN_CONF"
expect_rc 0 "$RC" "a send over two links at once"
compare_trees "$PKG" "$LAB_STORE/packages/pkg" "the package striped over two links"
expect_grep "the send names every link" "over 3 links: lan\+slow\+crawl at once" "$WORK/s.err"
python3 - "$WORK/s.json" <<'EOF' >"$WORK/outs"
import json, sys
r = json.load(open(sys.argv[1]))
outs = {o["name"]: o for o in r["outputs"]}
print(outs["lan"]["segments"], outs["slow"]["segments"],
      outs["lan"]["segments"] + outs["slow"]["segments"], r["segments"],
      outs["crawl"]["segments"])
EOF
read -r nf ns tot all nc <"$WORK/outs"
check "every segment was acknowledged by one of the links ($nf + $ns = $tot of $all)" \
	[ "$tot" = "$all" ]
check "the slow link carried a share ($ns segments)" [ "$ns" -ge 2 ]
check "send --json: one attempt (the most any link took)" \
	[ "$(json_get "$WORK/s.json" 'd["attempts"]')" = 1 ]
check "the fast link carried the most ($nf against $ns)" [ "$nf" -gt "$ns" ]
# a 64 kbit/s link would take 2 minutes for one segment that the others
# land in a fraction of a second: it carries nothing and is never opened
check "the 64 kbit/s link carried nothing ($nc segments)" [ "$nc" = 0 ]
check "... and was never opened (two sessions at LAB)" \
	[ "$(count_log "$SERVE_LOG" "package 'pkg' \(")" = 2 ]
check "the receiver had two sessions of the package" \
	[ "$(count_log "$SERVE_LOG" "shared with other sessions of this sender")" -ge 1 ]
# the other session ends when the sender closes it, after the package is
# complete: an ordinary end, not a transfer to resume
wait_for_log "$SERVE_LOG" "(package 'pkg' completed by another session|another session completes package 'pkg')" 10 ||
	fail "the second session's end was not logged"
check "no session of the completed package is reported resumable" \
	[ "$(count_log "$SERVE_LOG" "of 'pkg' held, resumable")" = 0 ]
check "the learned rates are kept for the next send" \
	[ -s "$CEN_STORE/links/LAB.lan" ] || [ -s "$CEN_STORE/links/LAB.slow" ]
# two sends at once over the same links: each sees only its share of
# them, so neither keeps what it saw as the links' rates
rm -f "$CEN_STORE"/links/LAB.*
mkdir -p "$WORK/src/two1" "$WORK/src/two2"
binary_data "$WORK/src/two1/a.bin" $((12 * 1024 * 1024))
binary_data "$WORK/src/two2/a.bin" $((12 * 1024 * 1024))
"$FERRY" send "$WORK/src/two1" --to LAB --level 0 --config "$CEN_CONF" -v \
	>"$WORK/two1.out" 2>"$WORK/two1.err" &
p1=$!
"$FERRY" send "$WORK/src/two2" --to LAB --level 0 --config "$CEN_CONF" -v \
	>"$WORK/two2.out" 2>"$WORK/two2.err" &
p2=$!
E2E_PIDS+=("$p1" "$p2")
rc1=0 rc2=0
wait "$p1" || rc1=$?
wait "$p2" || rc2=$?
expect_rc 0 "$rc1" "the first of two sends at once over the same links"
expect_rc 0 "$rc2" "the second"
compare_trees "$WORK/src/two1" "$LAB_STORE/packages/two1" "the first package of two at once"
compare_trees "$WORK/src/two2" "$LAB_STORE/packages/two2" "the second"
check "the sends saw each other on the fast link" \
	grep -q "another send uses address lan too" "$WORK/two1.err" "$WORK/two2.err"
check "no rate learned from a shared link is kept ($(ls "$CEN_STORE/links" 2>/dev/null | tr '\n' ' '))" \
	[ ! -e "$CEN_STORE/links/LAB.lan" ]

# the same package again, striped: the site holds it, nothing is sent,
# and the summary and the JSON say so
run_ferry "$WORK/s2.out" "$WORK/s2.err" send "$PKG" --to LAB --level 0 --config "$CEN_CONF"
expect_rc 0 "$RC" "the same package sent again over the links"
expect_grep "... says it is there already" "^'pkg' is at LAB already: nothing sent \($all segments" "$WORK/s2.out"
run_ferry "$WORK/s3.json" "$WORK/s3.err" send "$PKG" --to LAB --level 0 --json --config "$CEN_CONF"
check "... every segment already there, none on the wire ($(json_get "$WORK/s3.json" '(d["segments_skipped"], d["wire_bytes"])'))" \
	[ "$(json_get "$WORK/s3.json" '(d["segments_skipped"], d["wire_bytes"])')" = "($all, 0)" ]
run_ferry "$WORK/st3.json" "$WORK/st3.err" status pkg --json --config "$CEN_CONF"
check "... and status still names the links ($(json_get "$WORK/st3.json" 'd[0]["output"]'))" \
	[ "$(json_get "$WORK/st3.json" 'd[0]["output"]')" = "3 links: lan+slow+crawl" ]

# a link cut mid-transfer: the slow proxy dies; its segments move to the
# fast link and the package completes
mkdir -p "$WORK/src/pkg2"
binary_data "$WORK/src/pkg2/c.bin" $((20 * 1024 * 1024))
"$FERRY" send "$WORK/src/pkg2" --to LAB --level 0 --config "$CEN_CONF" \
	>"$WORK/c.out" 2>"$WORK/c.err" &
pc=$!
E2E_PIDS+=("$pc")
wait_for_log "$SERVE_LOG" "package 'pkg2' .*shared with other sessions" 30 ||
	fail "the second send did not start on both links"
sleep 2
kill -9 "$SLOW_PID"
rc=0
wait "$pc" || rc=$?
expect_rc 0 "$rc" "the send whose slow link was cut"
compare_trees "$WORK/src/pkg2" "$LAB_STORE/packages/pkg2" "the package after one link was cut"

# --via pins one link; what it carried over it is kept as its rate
mkdir -p "$WORK/src/pkg3"
binary_data "$WORK/src/pkg3/d.bin" $((5 * 1024 * 1024))
rm -f "$CEN_STORE/links/LAB.lan"
run_ferry "$WORK/v.json" "$WORK/v.err" send "$WORK/src/pkg3" --to LAB --via lan \
	--level 0 --json --config "$CEN_CONF"
expect_rc 0 "$RC" "a send pinned to one link with --via"
check "... which does not stripe" [ "$(count_log "$WORK/v.err" " links: ")" = 0 ]
compare_trees "$WORK/src/pkg3" "$LAB_STORE/packages/pkg3" "the package sent by one link"
r=$(sed -n 's/^rate=//p' "$CEN_STORE/links/LAB.lan" 2>/dev/null)
check "... its rate is learned and kept (${r:-none} B/s through a 4 MB/s link)" \
	[ "${r:-0}" -ge 2000000 -a "${r:-0}" -le 4400000 ]

# a package that compresses well goes faster than the link: what is kept
# is what the link carried on the wire, not the package's bytes per
# second (the next package may not compress; the stored rate was 10x the
# link's)
mkdir -p "$WORK/src/pkg3t"
python3 -c '
import os, sys
with open(sys.argv[1], "wb") as f: # half random, half zeros: about 2:1
    for i in range(3072):
        f.write(os.urandom(2048) + bytes(2048))
' "$WORK/src/pkg3t/half.bin"
rm -f "$CEN_STORE/links/LAB.lan"
run_ferry "$WORK/vt.json" "$WORK/vt.err" send "$WORK/src/pkg3t" --to LAB --via lan \
	--level 3 --json --config "$CEN_CONF"
expect_rc 0 "$RC" "a compressible package over one link"
r=$(sed -n 's/^rate=//p' "$CEN_STORE/links/LAB.lan" 2>/dev/null)
check "... the rate kept is the link's, on the wire (${r:-none} B/s through a 4 MB/s link; $(json_get "$WORK/vt.json" 'd["wire_bytes"]') wire bytes of $(json_get "$WORK/vt.json" 'd["bytes"]'))" \
	[ -n "$r" -a "${r:-0}" -le 4400000 ]

# a wrong password on one of two addresses: that link is refused (and not
# tried again), the other carries the package; the refusal names the
# address whose password is wrong, and status shows that output failed
CEN_HOST=127.0.0.1:$PORT ADDR_EXTRA="bandwidth = 32M" SENDER_EXTRA="segment-size = 1M" \
	write_configs
printf 'not the password\n' >"$WORK/badpw"
chmod 600 "$WORK/badpw"
printf '\n[address LAB typo]\ntype = lan\nhost = 127.0.0.1:%s\npassword-file = %s\nbandwidth = 32M\n' \
	"$PORT" "$WORK/badpw" >>"$CEN_CONF"
mkdir -p "$WORK/src/pkg4"
binary_data "$WORK/src/pkg4/e.bin" $((4 * 1024 * 1024 + 7))
run_ferry "$WORK/t.json" "$WORK/t.err" send "$WORK/src/pkg4" --to LAB --level 0 --json \
	--config "$CEN_CONF"
expect_rc 0 "$RC" "a send whose second address has a wrong password"
compare_trees "$WORK/src/pkg4" "$LAB_STORE/packages/pkg4" "the package sent by the other link"
expect_grep "... the refusal names the address and says the others carry on" \
	"refused account CEN: .*\(the password of \[address LAB typo\]\); the other links carry on" \
	"$WORK/t.err"
check "... and that address was not tried again" \
	[ "$(grep -c "refused account CEN" "$WORK/t.err")" = 1 ]
r=$(json_get "$WORK/t.json" '[(o["segments"], o["finished"]) for o in d["outputs"] if o["name"] == "typo"][0]')
check "send --json: the refused output carried nothing, finished null ($r)" [ "$r" = "(0, None)" ]
run_ferry "$WORK/t-st.json" "$WORK/t-st.err" status pkg4 --json --config "$CEN_CONF"
r=$(json_get "$WORK/t-st.json" '[(o["state"], "refused" in (o["error"] or "")) for t in d if t.get("direction") == "out" for o in t["outputs"] if o["name"] == "typo"][0]')
check "status: the refused output is failed, with its error ($r)" [ "$r" = "('failed', True)" ]

cp "$CEN_CONF" "$WORK/typo.conf"

# an address that takes the connection and never answers the handshake
# (a line that came up broken): the package completes by the other, and
# the send returns then, not when that handshake times out (a minute)
start_silent
CEN_HOST=127.0.0.1:$PORT ADDR_EXTRA="bandwidth = 32M" SENDER_EXTRA="segment-size = 1M" \
	write_configs
lan_address mute "$SILENT" 32M >>"$CEN_CONF"
mkdir -p "$WORK/src/pkg5"
binary_data "$WORK/src/pkg5/f.bin" $((3 * 1024 * 1024))
t0=$SECONDS
run_ferry "$WORK/m.json" "$WORK/m.err" send "$WORK/src/pkg5" --to LAB --level 0 --json \
	--config "$CEN_CONF"
t=$((SECONDS - t0))
expect_rc 0 "$RC" "a send with an address that never answers its handshake"
compare_trees "$WORK/src/pkg5" "$LAB_STORE/packages/pkg5" "the package sent by the other link"
check "the send returned once the package was complete ($t s), not after the handshake's timeout" \
	[ "$t" -le 15 ]
r=$(json_get "$WORK/m.json" '[o["segments"] for o in d["outputs"] if o["name"] == "mute"][0]')
check "the silent address carried nothing ($r)" [ "$r" = 0 ]

# a wrong password on both addresses: exit 4, and the last refusal does
# not say the other links carry on
sed "s#^password-file = .*#password-file = $WORK/badpw#" "$WORK/typo.conf" >"$WORK/allbad.conf"
run_ferry "$WORK/a.out" "$WORK/a.err" send "$WORK/src/pkg4" --to LAB --name pkg4b \
	--level 0 --config "$WORK/allbad.conf"
expect_rc 4 "$RC" "a send whose every address has a wrong password"
check "... both refused ($(grep -c "refused account CEN" "$WORK/a.err"))" \
	[ "$(grep -c "refused account CEN" "$WORK/a.err")" = 2 ]
expect_grep "... the last says no other link carries on" \
	"refused account CEN: .*; no other link carries on now" "$WORK/a.err"

# a package of no file data (an empty directory) over two addresses: one
# carries its listing; sent again, it is at LAB already
mkdir -p "$WORK/src/emptyd"
run_ferry "$WORK/e1.out" "$WORK/e1.err" send "$WORK/src/emptyd" --to LAB --config "$CEN_CONF"
expect_rc 0 "$RC" "an empty directory sent with two addresses"
check "... it is at LAB" [ -d "$LAB_STORE/packages/emptyd" ]
expect_grep "... said sent, not 'already'" "^sent 'emptyd' to LAB: 0 B" "$WORK/e1.out"
run_ferry "$WORK/e2.out" "$WORK/e2.err" send "$WORK/src/emptyd" --to LAB --config "$CEN_CONF"
expect_rc 0 "$RC" "the empty directory sent again"
expect_grep "... now it is at LAB already" "^'emptyd' is at LAB already: nothing sent" "$WORK/e2.out"

# ---- a line still dialling when the LAN completes the package ---------------
# a LAN at 1 MB/s and an isdn line fast by its bandwidth, whose dial
# takes 30 s: the line is wanted, but the LAN lands all 8 MiB first. The
# send returns then (the dial given up), not when the dial ends, and the
# line's late session leaves LAB no second (partial) copy of the package
start_link "$WORK/sd.log" 1000000
printf '#!/bin/sh
echo dial start >>%s
sleep 30
echo dial end >>%s
' \
	"$WORK/sdline.log" "$WORK/sdline.log" >"$WORK/slowdial"
printf '#!/bin/sh
echo hangup >>%s
' "$WORK/sdline.log" >"$WORK/sdhangup"
chmod +x "$WORK/slowdial" "$WORK/sdhangup"
cat >"$WORK/sd.conf" <<EOF
[site]
code = CEN
store = $WORK/cen-sd
[address LAB lan]
type = lan
host = 127.0.0.1:$LINK_PORT
password-file = $CEN_PW_FILE
bandwidth = 8M
[address LAB isdn]
type = isdn
host = 127.0.0.1:$PORT
password-file = $CEN_PW_FILE
bandwidth = 32M
dial = $WORK/slowdial
hang-up = $WORK/sdhangup
idle-timeout = 2s
[sender]
segment-size = 1M
EOF
mkdir -p "$WORK/src/sdial"
binary_data "$WORK/src/sdial/s.bin" $((8 * 1024 * 1024))
t0=$SECONDS
run_ferry "$WORK/sd.json" "$WORK/sd.err" send "$WORK/src/sdial" --to LAB --level 0 --json \
	--config "$WORK/sd.conf"
t=$((SECONDS - t0))
expect_rc 0 "$RC" "a send whose line dials for 30 s while the LAN carries it all"
compare_trees "$WORK/src/sdial" "$LAB_STORE/packages/sdial" "the package the LAN carried while the line dialled"
expect_grep "... the line was wanted: its dial began" "dial start" "$WORK/sdline.log"
check "the send returned once the package was complete ($t s), not when the dial ended" \
	[ "$t" -le 22 ]
check "... the dial was given up ($(tr '\n' ' ' <"$WORK/sdline.log"))" \
	bash -c "! grep -q 'dial end' \"$WORK/sdline.log\""
run_ferry "$WORK/sdl.json" "$WORK/sdl.err" status sdial --json --config "$LAB_CONF"
check "LAB lists the package once, complete ($(json_get "$WORK/sdl.json" '[e["state"] for e in d if e["direction"] == "in"]'))" \
	[ "$(json_get "$WORK/sdl.json" '[e["state"] for e in d if e["direction"] == "in"]')" = "['complete']" ]

# ---- a line whose every dial fails, while the LAN carries the package -------
# (12 s of LAN: the line is worth its assumed 5 s dial) the send
# completes by the LAN (exit 0); the line, which never carried a
# segment, shows failed with its error afterwards, not done
printf '#!/bin/sh\necho "no carrier" >&2\nexit 3\n' >"$WORK/baddial"
chmod +x "$WORK/baddial"
sed -e "s|^store = .*|store = $WORK/cen-bd|" -e "s|^dial = .*|dial = $WORK/baddial|" \
	-e "s|^segment-size = 1M|&\nretries = 1\nretry-delay = 1s|" "$WORK/sd.conf" >"$WORK/bd.conf"
mkdir -p "$WORK/src/bdial"
binary_data "$WORK/src/bdial/b.bin" $((12 * 1024 * 1024))
run_ferry "$WORK/bd.json" "$WORK/bd.err" send "$WORK/src/bdial" --to LAB --level 0 --json \
	--config "$WORK/bd.conf"
expect_rc 0 "$RC" "a send by the LAN while the line's dial fails"
compare_trees "$WORK/src/bdial" "$LAB_STORE/packages/bdial" "the package the LAN carried alone"
run_ferry "$WORK/bds.json" "$WORK/bds.err" status bdial --json --config "$WORK/bd.conf"
check "afterwards the line shows failed, with its error ($(json_get "$WORK/bds.json" '[(o["name"], o["state"], o["error"]) for t in d for o in t["outputs"]]'))" \
	[ "$(json_get "$WORK/bds.json" '[(o["state"], "dial" in (o["error"] or "")) for t in d for o in t["outputs"] if o["name"] == "isdn"]')" = "[('failed', True)]" ]
check "... and the LAN done" \
	[ "$(json_get "$WORK/bds.json" '[o["state"] for t in d for o in t["outputs"] if o["name"] == "lan"]')" = "['done']" ]

# ---- a line whose window closes before it could land a segment is not dialled ----
# a slow LAN (about 0.18 MB/s: 2 MiB take 12 s) and an isdn line (16 KB/s:
# a 64 KiB segment in 4 s, after a dial counted 5 s) whose schedule
# closes 6 s into the send (FERRY_CLOCK_SHIFT_S, a test build): by rate
# the line would earn a segment, by its window it cannot land one
if "$FERRY" version | grep -q 'test build'; then
	WL=$WORK/src/winline
	mkdir -p "$WL"
	binary_data "$WL/w.bin" $((2 * 1024 * 1024))
	printf '#!/bin/sh\necho dial >>%s\n' "$WORK/line.log" >"$WORK/dial"
	printf '#!/bin/sh\necho hangup >>%s\n' "$WORK/line.log" >"$WORK/hangup"
	chmod +x "$WORK/dial" "$WORK/hangup"
	now=$(date +%s)
	shift_s=$(((54 - now % 60 + 60) % 60))
	close=$(((now + shift_s) / 60 * 60 + 60))
	cat >"$WORK/wl.conf" <<EOF
[site]
code = CEN
store = $WORK/cen-wl
[address LAB lan]
type = lan
host = 127.0.0.1:$PORT
password-file = $CEN_PW_FILE
bandwidth = 3M
rate-limit = pulse 32K 100ms
[address LAB isdn]
type = isdn
host = 127.0.0.1:$PORT
password-file = $CEN_PW_FILE
dial = $WORK/dial
hang-up = $WORK/hangup
idle-timeout = 2s
schedule = $(date -d "@$close" +%H:%M)-$(date -d "@$((close + 60))" +%H:%M) high; all
[sender]
segment-size = 64K
EOF
	FERRY_CLOCK_SHIFT_S=$shift_s "$FERRY" send "$WL" --to LAB --level 0 --json \
		--config "$WORK/wl.conf" >"$WORK/wl.json" 2>"$WORK/wl.err" &
	pw=$!
	E2E_PIDS+=("$pw")
	# 9 s in, its window closed 3 s ago: status says so (not idle)
	sleep 9
	"$FERRY" status winline --json --config "$WORK/wl.conf" >"$WORK/wls.json" 2>/dev/null
	rc=0
	wait "$pw" || rc=$?
	expect_rc 0 "$rc" "a send with a line whose window closes 6 s in"
	check "status showed the line closed once its window closed ($(json_get "$WORK/wls.json" '[(o["state"], o["why"]) for t in d for o in t["outputs"] if o["name"] == "isdn"]'))" \
		[ "$(json_get "$WORK/wls.json" '[o["state"] for t in d for o in t["outputs"] if o["name"] == "isdn"]')" = "['closed']" ]
	compare_trees "$WL" "$LAB_STORE/packages/winline" "the package the LAN carried"
	check "the line was not dialled ($(tr '\n' ' ' <"$WORK/line.log" 2>/dev/null))" \
		[ ! -s "$WORK/line.log" ]
else
	log "not a test build (no FERRY_CLOCK_SHIFT_S): the line's closing window is left out"
fi

e2e_finish
