#!/bin/bash
# test_corrupt_wire.sh - a proxy between sender and receiver flips one
# byte of the sender's stream, once (first connection only):
#  a) inside a raw segment payload (3.5 MB into the stream, level 0):
#     the receiver finds the segment corrupt, asks again, the transfer
#     succeeds in the same session (segments_resent >= 1);
#  b) inside a zstd-compressed payload: same;
#  c) inside a segment's 64-byte frame header: the receiver refuses the
#     frame; the transfer succeeds through a retry;
#  d) inside a segment message's length field: same.
# Each time the received package must be identical to the source.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init test_corrupt_wire

PKG=$WORK/src/pkg
mkdir -p "$PKG/a/b"
binary_data "$PKG/a/bin.dat" $((12 * 1024 * 1024))
head -c $((3 * 1024 * 1024 + 4321)) /dev/urandom >"$PKG/a/b/random.dat"
for i in $(seq 1 50); do echo "file $i" >"$PKG/a/b/small$i"; done
chmod 0640 "$PKG/a/b/small7"

SENDER_EXTRA="segment-size = 1M"
SENDER_RETRIES=2
SENDER_DELAY=1s
write_proxy
start_serve

# one_case NAME "what" LEVEL PROXY-ARGS...
one_case() {
	local name=$1 what=$2 level=$3
	shift 3
	local plog=$WORK/proxy-$name.log
	stop_proxy
	PROXY_PORT=
	start_proxy "$plog" "$@"
	CEN_HOST=127.0.0.1:$PROXY_PORT
	write_configs
	local corrupt0 hdr0
	corrupt0=$(count_log "$SERVE_LOG" 'arrived corrupt')
	timeout 120 "$FERRY" send "$PKG" --to LAB --name "$name" --config "$CEN_CONF" \
		--json --level "$level" >"$WORK/$name.json" 2>"$WORK/$name.err"
	RC=$?
	expect_rc 0 "$RC" "$what: send"
	if grep -q 'flipped stream byte' "$plog"; then
		pass "$what: proxy flipped a byte ($(grep -o 'flipped.*' "$plog" | head -n 1))"
	else
		fail "$what: the proxy never flipped a byte (stream shorter than expected?)"
		tail -n 5 "$plog"
	fi
	compare_trees "$PKG" "$LAB_STORE/packages/$name" "$what"
	run_ferry "$WORK/$name.verify" "$WORK/$name.verr" verify "$name" --config "$LAB_CONF"
	expect_rc 0 "$RC" "$what: ferry verify"
	CASE_CORRUPT=$(($(count_log "$SERVE_LOG" 'arrived corrupt') - corrupt0))
}

# a) raw payload, 3.5 MB into the stream (1 MiB segments, level 0: every
# frame is 1 MiB of payload behind ~72 bytes of headers)
one_case raw "a) flipped byte in a raw segment payload" 0 --flip-at $((3 * 1024 * 1024 + 512 * 1024))
expect_grep "a) proxy: the flip landed inside a segment message" \
	'segment message #[1-9]' "$WORK/proxy-raw.log"
[ "$CASE_CORRUPT" -ge 1 ] && pass "a) receiver logged the segment as corrupt and asked again" ||
	fail "a) receiver logged no corrupt segment"
expect_grep "a) receiver log: arrived corrupt, asking for it again" \
	"segment [0-9]+ of 'raw' arrived corrupt.*asking for it again" "$SERVE_LOG"
r=$(json_get "$WORK/raw.json" '"%s %s %s" % (d["ok"], d["segments_resent"], d["attempts"])')
read -r ok resent attempts <<<"$r"
[ "$ok" = True ] && [ "$resent" -ge 1 ] &&
	pass "a) JSON: ok, segments_resent $resent" || fail "a) JSON (ok, resent, attempts): $r"
[ "$attempts" = 1 ] && pass "a) recovered within the first session (attempts 1)" ||
	fail "a) took $attempts attempts; a corrupt payload should be re-sent in the same session"
expect_grep "a) sender says it sends the segment again" "corrupt.*again" "$WORK/raw.err"

# b) a zstd-compressed payload: 200 bytes into the 2nd segment's payload
one_case zstd "b) flipped byte in a compressed segment payload" 3 --flip-seg 2:$((64 + 200))
expect_grep "b) proxy: the flip landed in segment message #2's payload" \
	'segment message #2' "$WORK/proxy-zstd.log"
r=$(json_get "$WORK/zstd.json" '"%s %s %s %s" % (d["ok"], d["segments_resent"], d["attempts"], d["level"])')
read -r ok resent attempts lvl <<<"$r"
[ "$lvl" = 0 ] && fail "b) the segments were sent raw (level 0); the case did not test zstd"
[ "$CASE_CORRUPT" -ge 1 ] && [ "$resent" -ge 1 ] && [ "$ok" = True ] &&
	pass "b) corrupt compressed segment detected and re-sent (resent $resent, attempts $attempts)" ||
	fail "b) JSON (ok, resent, attempts, level): $r; receiver logged $CASE_CORRUPT corrupt"

# c) the 3rd segment's frame header, in its index field (offset 24)
hdr0=$(count_log "$SERVE_LOG" 'frame header|frame from')
one_case hdr "c) flipped byte in a frame header" 0 --flip-seg 3:24
expect_grep "c) proxy: the flip landed at body offset 24 of segment message #3" \
	'body offset 24, segment message #3' "$WORK/proxy-hdr.log"
n=$(($(count_log "$SERVE_LOG" 'frame header|frame from') - hdr0))
[ "$n" -ge 1 ] && pass "c) receiver named the bad frame header: $(grep -E 'frame header|frame from' "$SERVE_LOG" | tail -n 1 | cut -c 21-)" ||
	fail "c) receiver did not log a bad frame header"
r=$(json_get "$WORK/hdr.json" '"%s %s" % (d["ok"], d["attempts"])')
log "c) JSON (ok, attempts): $r"

# d) the length field of the 4th segment message (message header)
one_case len "d) flipped byte in a segment message's length" 0 --flip-seg 4:-4
expect_grep "d) proxy: the flip landed in segment message #4's header" \
	'flipped stream byte' "$WORK/proxy-len.log"
r=$(json_get "$WORK/len.json" '"%s %s" % (d["ok"], d["attempts"])')
log "d) JSON (ok, attempts): $r"
kill -0 "$SERVE_PID" 2>/dev/null && pass "ferry serve survived every corruption" ||
	fail "ferry serve died"

e2e_finish
