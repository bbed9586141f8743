#!/bin/bash
# test_big.sh - one 2 GiB file (sparse, with random data at several
# offsets: the start, mid-segment, straddling segment boundaries and the
# 1 GiB mark, the very end; plus 8 MiB of binaries at 700 MiB), sent as a
# single-file package, compared byte for byte (cmp) and verified.
# labels: slow
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init test_big

need=$((5 * 1024 * 1024)) # KiB: the sender's file is sparse, the receiver's is not
avail=$(df -Pk "$WORK" | awk 'NR==2 {print $4}')
[ "$avail" -gt "$need" ] || skip "needs 5 GiB free in $WORK, have $((avail / 1024)) MiB"

SRC=$WORK/src
mkdir -p "$SRC"
BIG=$SRC/big.img
truncate -s 2G "$BIG"
# random data at the start, in the middle of segments, straddling segment
# and 1 GiB boundaries, and at the very end
for off_kib in 0 1000 $((8 * 1024 - 1)) $((512 * 1024 + 3)) $((1024 * 1024 - 2)) \
	$((1536 * 1024 + 77)) $((2 * 1024 * 1024 - 1024)); do
	dd if=/dev/urandom of="$BIG" bs=1K seek="$off_kib" count=1024 conv=notrunc \
		status=none || die "dd at $off_kib KiB failed"
done
binary_data "$WORK/bin.dat" $((8 * 1024 * 1024))
dd if="$WORK/bin.dat" of="$BIG" bs=1M seek=700 conv=notrunc status=none
size=$(stat -c %s "$BIG")
[ "$size" = $((2 * 1024 * 1024 * 1024)) ] || die "test file is $size bytes, not 2 GiB"
chmod 0640 "$BIG"
log "source: $(du -h --apparent-size "$BIG" | cut -f1) apparent, $(du -h "$BIG" | cut -f1) allocated"

start_serve
t0=$(date +%s.%N)
run_ferry "$WORK/send.json" "$WORK/send.err" send "$BIG" --to LAB --config "$CEN_CONF" --json
t1=$(date +%s.%N)
expect_rc 0 "$RC" "send of a 2 GiB file"
expect_one_attempt "$WORK/send.err" "$WORK/send.json"
r=$(json_get "$WORK/send.json" '"%s %s %s %s" % (d["ok"], d["bytes"], d["segments"], d["segments_sent"])')
log "send: (ok, bytes, segments, sent) = $r in $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}') s"
read -r ok bytes segs sent <<<"$r"
[ "$ok" = True ] && [ "$bytes" = "$size" ] && [ "$sent" = "$segs" ] &&
	pass "send JSON: ok, $bytes bytes, $sent of $segs segments" ||
	fail "send JSON (ok, bytes, segments, segments_sent): $r"

DST=$LAB_STORE/packages/big.img/big.img
if [ -f "$DST" ]; then
	pass "received file at packages/big.img/big.img"
	[ "$(stat -c %s "$DST")" = "$size" ] && pass "received size is $size" ||
		fail "received size $(stat -c %s "$DST"), expected $size"
	if cmp "$BIG" "$DST"; then
		pass "received file identical to the source (cmp)"
	else
		fail "received file differs from the source (cmp)"
	fi
	[ "$(stat -c %a "$DST")" = 640 ] && pass "mode 0640 kept" ||
		fail "mode $(stat -c %a "$DST"), expected 640"
else
	fail "no received file at $DST: $(ls -la "$LAB_STORE/packages" 2>&1 | head)"
fi

run_ferry "$WORK/verify.json" "$WORK/verify.err" verify big.img --config "$LAB_CONF" --json
expect_rc 0 "$RC" "ferry verify of the 2 GiB package"
run_ferry "$WORK/st.json" "$WORK/st.err" status --json --config "$LAB_CONF"
st=$(json_get "$WORK/st.json" '[(e["state"], e["bytes"]) for e in d if e["direction"]=="in"]')
[ "$st" = "[('complete', $size)]" ] && pass "receiver status: complete, $size bytes" ||
	fail "receiver status: $st"

e2e_finish
