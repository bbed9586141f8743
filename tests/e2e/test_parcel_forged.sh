#!/bin/bash
# test_parcel_forged.sh - a forged courier parcel, with the real binary
# (part 4 of the parcel tests; the others are in test_parcel.sh and
# test_parcel_media.sh, the helpers in parcel_lib.sh):
#
#  4. a payload altered with its XXH3 hash and header checksum recomputed:
#     refused as "authentication tag mismatch" naming volume and segment,
#     exit 5, the others imported; the network sends the one forged
#     segment.
#
# Forging needs a python3 that computes XXH3 (python3-xxhash, or
# libxxhash.so.0 through ctypes): skipped (exit 77) without one.
. "$(dirname "${BASH_SOURCE[0]}")/parcel_lib.sh"
parcel_init test_parcel_forged
find_xxpy ||
	skip "no python3 with xxhash (apt-get install python3-xxhash) nor libxxhash.so.0"

start_serve

# ---- 4. a frame altered with its hashes recomputed -----------------------------------
SRC4=$WORK/src/forged
mkdir -p "$SRC4"
binary_data "$SRC4/data.bin" $((6 * 1024 * 1024 + 1234))
M4=$WORK/m4
mkdir -p "$M4"
create c4 forged "$SRC4" --media "$M4" --volume-size 3M --level 0
expect_rc 0 "$RC" "parcel create (forged)"
D4=$M4/ferry-parcel-$PARCEL_ID
if bad=$("$XXPY" "$WORK/vol.py" forge "$D4/vol-002.fpv" 1 2>"$WORK/forge.err"); then
	pass "payload of segment $bad altered, its XXH3-128 and header checksum recomputed"
	import i4 "$M4"
	expect_rc 5 "$RC" "import with a forged frame"
	expect_grep "the error says authentication tag mismatch, naming volume and segment" \
		"vol-002.fpv: segment $bad refused: authentication tag mismatch: altered or forged" \
		"$WORK/i4.err"
	[ "$HELD" = $((NSEG - 1)) ] && pass "every other segment imported ($HELD of $NSEG)" ||
		fail "after the forged frame: held '$HELD' of '$NSEG'"
	send forged "$SRC4" s4
	expect_rc 0 "$RC" "ferry send of the forged parcel's package"
	[ "$SENT" = 1 ] && pass "the network sent the one forged segment" ||
		fail "send sent '$SENT' segments of '$SEGS', expected 1"
	compare_trees "$SRC4" "$LAB_STORE/packages/forged" "package after a forged frame"
else
	fail "cannot forge the frame: $(cat "$WORK/forge.err")"
fi

stop_serve
e2e_finish
