#!/bin/bash
# test_offer.sh - the manifest compressed (OFFER_Z). Off loopback it is
# the default (test_ras: a plain lan address over a shaped veth); here
# FERRY_FORCE_OFFER_Z=1 makes the sender use it on loopback:
#   - a tree of many files arrives identical, its manifest sent as a
#     fraction of its size;
#   - a receiver that takes only OFFER (FERRY_REFUSE_OFFER_Z=1, as a
#     ferry from before OFFER_Z) gets the manifest plain on an immediate
#     retry of the same address, not after retry-delay, and the package
#     arrives.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init test_offer
need_test_hooks

PKG=$WORK/src/tree
for d in $(seq 1 20); do
	mkdir -p "$PKG/dir-$d/sub"
	for f in $(seq 1 40); do
		echo "file $d/$f" >"$PKG/dir-$d/sub/some-longer-file-name-$f.txt"
	done
done
binary_data "$PKG/dir-1/blob.bin" $((2 * 1024 * 1024))
SENDER_DELAY=30s
write_configs
start_serve

# ---- compressed, accepted ----------------------------------------------------------
FERRY_FORCE_OFFER_Z=1 run_ferry "$WORK/z.out" "$WORK/z.err" send "$PKG" --to LAB \
	--name tree-z --config "$CEN_CONF" -v
expect_rc 0 "$RC" "send with a compressed manifest"
expect_one_attempt "$WORK/z.err"
compare_trees "$PKG" "$LAB_STORE/packages/tree-z" "the tree sent with OFFER_Z"
sizes=$(sed -n 's/.*manifest: \([0-9]*\) bytes, \([0-9]*\) compressed.*/\1 \2/p' "$WORK/z.err" | head -1)
read -r raw z <<<"$sizes"
if [ -n "$raw" ] && [ "$z" -lt $((raw / 3)) ]; then
	pass "the manifest went compressed: $raw bytes as $z"
else
	fail "no compressed manifest in the sender's log: '$sizes'"
fi

# ---- an older receiver: plain at once ----------------------------------------------
stop_serve
FERRY_REFUSE_OFFER_Z=1 start_serve
SENDER_DELAY=300s write_configs # a retry after retry-delay could not pass
t0=$SECONDS
FERRY_FORCE_OFFER_Z=1 run_ferry "$WORK/o.out" "$WORK/o.err" send "$PKG" --to LAB \
	--name tree-old --config "$CEN_CONF"
expect_rc 0 "$RC" "send to a receiver that takes only OFFER"
expect_one_attempt "$WORK/o.err"
compare_trees "$PKG" "$LAB_STORE/packages/tree-old" "the tree sent to the older receiver"
expect_grep "the sender says why it sends the manifest plain" \
	"does not take a compressed manifest" "$WORK/o.err"
check "the plain retry came at once, not after retry-delay (300 s): $((SECONDS - t0)) s" \
	[ $((SECONDS - t0)) -lt 60 ]

e2e_finish
