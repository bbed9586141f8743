#!/bin/bash
# test_stream.sh - streamed frames (a SEGMENT of its header alone, then
# PIECE messages, then FIN with the payload's length) and frames
# compressed against the segment before them (FR_FRAME_REF). On a slow
# line the frame the line waits for is streamed and every segment is
# compressed against the one before (test_ras: a plain lan address with
# bandwidth = 2M over a shaped veth, no switch); here FERRY_FORCE_STREAM=1
# and FERRY_FORCE_REF=1 make the sender do so on loopback:
#   - a tree of several segments arrives identical, the first frame
#     streamed at the full level, the others against the one before, in
#     fewer bytes than without references;
#   - a byte flipped inside a PIECE: the piece does not open, the
#     receiver drops the session but keeps the pieces before it, and the
#     retry sends only the rest of the frame; the tree arrives identical;
#   - the connection cut in the middle of a streamed frame: the receiver
#     keeps what came, the retry sends only the rest (SEGMENT_CONT of the
#     streamed frame), and the tree arrives identical;
#   - a receiver that takes neither (FERRY_REFUSE_STREAM=1, as a ferry
#     from before them) gets whole frames on their own on an immediate
#     retry of the same address, and the package arrives; the same when
#     only references are sent.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init test_stream
need_test_hooks

PKG=$WORK/src/tree
mkdir -p "$PKG/text" "$PKG/bin"
# compressible text and real binaries: 3 segments of 4 MiB (level 19 is
# slow: the package is no larger than that needs); each frame at level 19
# is more than two 64 KiB pieces
find /usr/include /usr/share/doc /usr/share/perl* -type f 2>/dev/null | LC_ALL=C sort |
	xargs cat 2>/dev/null | head -c $((6 * 1024 * 1024)) >"$PKG/text/all.txt"
binary_data "$PKG/bin/blob.bin" $((4 * 1024 * 1024))
echo small >"$PKG/text/small.txt"
SENDER_EXTRA="segment-size = 4M"
write_configs
start_serve

# ---- streamed, on loopback -----------------------------------------------------------
FERRY_FORCE_STREAM=1 FERRY_FORCE_REF=1 run_ferry "$WORK/s.out" "$WORK/s.err" send "$PKG" --to LAB \
	--name tree-s --level 19 --config "$CEN_CONF" --json -v
expect_rc 0 "$RC" "send with streamed frames"
expect_one_attempt "$WORK/s.err" "$WORK/s.out"
compare_trees "$PKG" "$LAB_STORE/packages/tree-s" "the tree sent with a streamed frame"
expect_grep "the first frame was streamed at level 19" \
	"segment [0-9]+ streams at level 19" "$WORK/s.err"
check "the frames were compressed (level $(json_get "$WORK/s.out" 'd["level"]'))" \
	[ "$(json_get "$WORK/s.out" 'd["level"]')" = 19 ]
expect_grep "segment 1 was compressed against segment 0" \
	"segment 1 is compressed against segment 0" "$WORK/s.err"
expect_grep "segment 2 was compressed against segment 1" \
	"segment 2 is compressed against segment 1" "$WORK/s.err"
# the same without references: more bytes on the wire
FERRY_FORCE_STREAM=1 run_ferry "$WORK/n.out" "$WORK/n.err" send "$PKG" --to LAB \
	--name tree-n --level 19 --config "$CEN_CONF" --json -v
expect_rc 0 "$RC" "send with streamed frames, no references"
expect_one_attempt "$WORK/n.err" "$WORK/n.out"
compare_trees "$PKG" "$LAB_STORE/packages/tree-n" "the tree sent without references"
wr=$(json_get "$WORK/s.out" 'd["wire_bytes"]')
wn=$(json_get "$WORK/n.out" 'd["wire_bytes"]')
check "references saved bytes on the wire ($wr against $wn)" [ "$wr" -lt "$wn" ]
check "no reference went astray at LAB" [ "$(count_log "$SERVE_LOG" 'which is not here')" = 0 ]

# ---- a flipped byte inside a PIECE ---------------------------------------------------
start_proxy "$WORK/flip.log" --flip-piece 2:100
CEN_HOST=127.0.0.1:$PROXY_PORT write_configs
fails0=$(count_log "$SERVE_LOG" 'message authentication failed from CEN')
kept0=$(count_log "$SERVE_LOG" "kept [0-9]+ bytes of segment [0-9]+'s streamed frame")
FERRY_FORCE_STREAM=1 FERRY_FORCE_REF=1 run_ferry "$WORK/f.out" "$WORK/f.err" send "$PKG" --to LAB \
	--name tree-f --level 19 --config "$CEN_CONF" -v
expect_rc 0 "$RC" "send with a byte flipped in a streamed frame"
expect_grep "the proxy flipped a byte inside a PIECE" "flipped stream byte .*type 17" "$WORK/flip.log"
check "the receiver dropped the session: the piece did not open" \
	[ "$(count_log "$SERVE_LOG" 'message authentication failed from CEN')" -gt "$fails0" ]
check "the receiver kept the piece before it" \
	[ "$(count_log "$SERVE_LOG" "kept [0-9]+ bytes of segment [0-9]+'s streamed frame")" -gt "$kept0" ]
expect_grep "the retry sent only the rest of the streamed frame" \
	"streamed frame resumes at byte" "$SERVE_LOG"
compare_trees "$PKG" "$LAB_STORE/packages/tree-f" "the tree sent across the flipped byte"
stop_proxy

# ---- the connection cut in the middle of a streamed frame ----------------------------
# The proxy passes the first piece of the first streamed frame and holds
# before the second, whichever segment streams first; it is killed there
# and comes back on the same port, and the retry resumes the frame.
PROXY_PORT=
start_proxy "$WORK/cut.log" --hold-piece 2
lines0=$(wc -l <"$SERVE_LOG")
CEN_HOST=127.0.0.1:$PROXY_PORT SENDER_RETRIES=5 write_configs
FERRY_FORCE_STREAM=1 FERRY_FORCE_REF=1 "$FERRY" send "$PKG" --to LAB --name tree-c --level 19 \
	--config "$CEN_CONF" --json -v >"$WORK/c.out" 2>"$WORK/c.err" &
pc=$!
E2E_PIDS+=("$pc")
wait_for_log "$WORK/cut.log" "holding before .*piece 2" 60 ||
	fail "the cut transfer did not stream two pieces"
stop_proxy
log "connection cut in the middle of the streamed frame"
KEEP_PORT=1 start_proxy "$WORK/cut.log"
rc=0
wait "$pc" || rc=$?
expect_rc 0 "$rc" "the transfer cut in the middle of a streamed frame"
compare_trees "$PKG" "$LAB_STORE/packages/tree-c" "the tree sent across the cut"
kept=$(tail -n +$((lines0 + 1)) "$SERVE_LOG" | sed -n "s/.*kept \([0-9]*\) bytes of segment \([0-9]*\)'s streamed frame.*/\1 \2/p" |
	tail -n 1)
read -r kb kseg <<<"$kept"
check "LAB kept the part of the streamed frame that came (${kb:-none} bytes)" \
	[ "${kb:-0}" -ge 65536 ]
expect_grep "LAB took the rest of the streamed frame" \
	"segment $kseg's streamed frame resumes at byte $kb\$" "$SERVE_LOG"
expect_grep "the sender streamed it again from where it was cut" \
	"segment $kseg streams at level 19, from where it was cut" "$WORK/c.err"
expect_grep "the sender said so" "segment $kseg resumes at byte $kb of" "$WORK/c.err"
# the frame compressed again is the same bytes: nothing arrived corrupt
expect_grep "the resumed frame was whole and right (nothing re-sent)" \
	"package 'tree-c' complete and verified .*, 0 re-sent\)" "$SERVE_LOG"
stop_proxy
CEN_HOST= write_configs

# ---- an older receiver: whole frames at once -----------------------------------------
stop_serve
FERRY_REFUSE_STREAM=1 start_serve
SENDER_DELAY=300s write_configs # a retry after retry-delay could not pass
t0=$SECONDS
FERRY_FORCE_STREAM=1 FERRY_FORCE_REF=1 run_ferry "$WORK/o.out" "$WORK/o.err" send "$PKG" --to LAB \
	--name tree-old --level 19 --config "$CEN_CONF" -v
expect_rc 0 "$RC" "send to a receiver that takes only whole frames"
expect_one_attempt "$WORK/o.err"
compare_trees "$PKG" "$LAB_STORE/packages/tree-old" "the tree sent to the older receiver"
expect_grep "the sender says why it sends whole frames" \
	"does not take streamed frames or frames against another segment" "$WORK/o.err"
check "the retry with whole frames came at once, not after retry-delay (300 s): $((SECONDS - t0)) s" \
	[ $((SECONDS - t0)) -lt 90 ]
check "no frame was streamed on the retry" \
	[ "$(count_log "$WORK/o.err" 'streams at level')" = 1 ]
# references alone (a frame after the first): the same fallback. A frame
# goes against the segment before only when that one is hashed by the
# time it is compressed (else on its own, which this receiver takes):
# up to three sends, until one had such a frame refused
for try in 1 2 3; do
	FERRY_FORCE_REF=1 run_ferry "$WORK/r.out" "$WORK/r.err" send "$PKG" --to LAB \
		--name "tree-oldr$try" --level 19 --config "$CEN_CONF" -v
	grep -q "does not take streamed frames" "$WORK/r.err" && break
	log "try $try: no frame went against another segment"
done
expect_rc 0 "$RC" "send with references to a receiver that takes only whole frames"
expect_one_attempt "$WORK/r.err"
compare_trees "$PKG" "$LAB_STORE/packages/tree-oldr$try" "the tree sent with references to the older receiver"
expect_grep "the sender says why it sends frames on their own" \
	"does not take streamed frames or frames against another segment" "$WORK/r.err"

e2e_finish
