#!/bin/bash
# test_corrupt_wire.sh - one byte changed on the way, once (first
# connection only), by a proxy between sender and receiver:
#  a) inside a raw segment payload (3.5 MB into the stream, level 0);
#  b) inside a zstd-compressed payload;
#  c) inside a segment's record (its frame header, sealed);
#  d) inside a segment message's length field.
# Every message after the handshake is sealed: the receiver cannot open
# the altered one, drops the session with "message authentication
# failed", and the transfer succeeds through a retry.
#  e) a frame damaged before it was sealed (FERRY_CORRUPT_SEGMENT, as bad
#     memory at the sender would): the receiver finds its content does
#     not match the manifest, asks for it again, and the transfer
#     recovers within the same session.
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
	local fails0
	fails0=$(count_log "$SERVE_LOG" 'message authentication failed from CEN')
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
	[ "$(count_log "$SERVE_LOG" 'message authentication failed from CEN')" -gt "$fails0" ] &&
		pass "$what: the receiver dropped the session (message authentication failed)" ||
		fail "$what: the receiver did not log an authentication failure"
	r=$(json_get "$WORK/$name.json" '"%s %s" % (d["ok"], d["attempts"])')
	[ "$r" = "True 2" ] && pass "$what: recovered by the retry (ok, attempts 2)" ||
		fail "$what: JSON (ok, attempts): $r"
}

# a) raw payload, 3.5 MB into the stream (1 MiB segments, level 0: every
# frame is 1 MiB of payload behind its record)
one_case raw "a) flipped byte in a raw segment payload" 0 --flip-at $((3 * 1024 * 1024 + 512 * 1024))
expect_grep "a) proxy: the flip landed inside a payload" \
	'type 20 .*payload message #[1-9]' "$WORK/proxy-raw.log"

# b) a zstd-compressed payload: 200 bytes into the 2nd frame's payload
one_case zstd "b) flipped byte in a compressed segment payload" 3 --flip-payload 2:200
expect_grep "b) proxy: the flip landed in payload message #2" \
	'payload message #2' "$WORK/proxy-zstd.log"
lvl=$(json_get "$WORK/zstd.json" 'd["level"]')
[ "$lvl" != 0 ] && pass "b) the segments went compressed (level $lvl)" ||
	fail "b) the segments were sent raw (level 0); the case did not test zstd"

# c) the 3rd segment's record: its frame header (index field, offset 24)
one_case hdr "c) flipped byte in a segment's record" 0 --flip-seg 3:24
expect_grep "c) proxy: the flip landed at body offset 24 of segment message #3" \
	'body offset 24, segment message #3' "$WORK/proxy-hdr.log"

# d) the length field of the 4th segment message (message header)
one_case len "d) flipped byte in a segment message's length" 0 --flip-seg 4:-4
expect_grep "d) proxy: the flip landed in segment message #4's header" \
	'flipped stream byte' "$WORK/proxy-len.log"
kill -0 "$SERVE_PID" 2>/dev/null && pass "ferry serve survived every corruption" ||
	fail "ferry serve died"

# e) a frame damaged before it was sealed: only the content check sees it
if ! "$FERRY" version | grep -q 'test build'; then
	log "e) skipped: a build without FERRY_TEST_HOOKS"
else
	stop_proxy
	CEN_HOST=
	write_configs
	corrupt0=$(count_log "$SERVE_LOG" 'arrived corrupt')
	FERRY_CORRUPT_SEGMENT=2 timeout 120 "$FERRY" send "$PKG" --to LAB --name bad \
		--config "$CEN_CONF" --json --level 0 >"$WORK/bad.json" 2>"$WORK/bad.err"
	expect_rc 0 $? "e) send with segment 2 damaged before sealing"
	expect_grep "e) receiver log: arrived corrupt, asking for it again" \
		"segment 2 of 'bad' arrived corrupt.*asking for it again" "$SERVE_LOG"
	r=$(json_get "$WORK/bad.json" '"%s %s %s" % (d["ok"], d["segments_resent"], d["attempts"])')
	[ "$r" = "True 1 1" ] && pass "e) re-sent within the first session (ok, resent 1, attempts 1)" ||
		fail "e) JSON (ok, resent, attempts): $r"
	expect_grep "e) sender says it sends the segment again" "corrupt.*again" "$WORK/bad.err"
	compare_trees "$PKG" "$LAB_STORE/packages/bad" "e) the package with a damaged frame re-sent"
fi

e2e_finish
