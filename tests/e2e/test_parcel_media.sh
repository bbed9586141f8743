#!/bin/bash
# test_parcel_media.sh - courier parcels on small media, with the real
# binary (parts 1b and 2 of the parcel tests; the others are in
# test_parcel.sh, the helpers in parcel_lib.sh):
#
# 1b. the tree of part 1 (hundreds of small files, empty files, an empty
#     dir, a symlink, 12 MiB of binaries; built again here) over a 3 MiB
#     tmpfs: it fills and the volumes go on on the next --media, numbered
#     on; both media import, identical.
#  2. a 4 MiB tmpfs medium runs out under 8 MiB: "media full", exit 1;
#     what was written imports, and `ferry send` completes the package
#     over the network.
#  3. a medium mounted where the running receiver cannot see it (in the
#     importer's own mount namespace, as a mount made after a service
#     with private mounts started): `parcel import` says so and imports
#     in its own process; the package completes.
#
# They need a tmpfs: skipped (exit 77) when one cannot be mounted (not root).
# labels: needs-root
. "$(dirname "${BASH_SOURCE[0]}")/parcel_lib.sh"
parcel_init test_parcel_media

# the media first: without them there is nothing to test
mount_tmpfs "$WORK/t1" 3m
mount_tmpfs "$WORK/t2" 4m

start_serve

TREE=$WORK/src/tree
build_tree "$TREE"

# 1b. a small tmpfs fills and the rest goes to the next --media
M1B=$WORK/m1b
mkdir -p "$M1B"
create c1b tree2 "$TREE" --media "$WORK/t1" --media "$M1B" --level 0
expect_rc 0 "$RC" "parcel create over a 3 MiB tmpfs and a second medium"
expect_grep "create says the first medium is full and goes on on the next" \
	"$WORK/t1 is full; going on on $M1B" "$WORK/c1b.err"
a=$(nvols "$WORK/t1")
b=$(nvols "$M1B")
log "parcel $PARCEL_ID: $a volume(s) on the tmpfs, $b on the second medium"
[ "$a" -ge 1 ] && [ "$b" -ge 1 ] && pass "volumes on both media ($a + $b)" ||
	fail "volumes on the tmpfs: $a, on the second medium: $b"
[ -e "$M1B/ferry-parcel-$PARCEL_ID/vol-00$((a + 1)).fpv" ] &&
	pass "numbering goes on on the second medium (vol-00$((a + 1)).fpv)" ||
	fail "second medium holds: $(ls "$M1B/ferry-parcel-$PARCEL_ID" 2>&1)"
import i1b "$WORK/t1" "$M1B"
expect_rc 0 "$RC" "import of the volumes from both media"
expect_grep "import says complete" "segments held - complete" "$WORK/i1b.out"
compare_trees "$TREE" "$LAB_STORE/packages/tree2" "tree by parcel (two media)"

# ---- 2. media full -------------------------------------------------------------------
SRC2=$WORK/src/full
mkdir -p "$SRC2"
binary_data "$SRC2/data.bin" $((8 * 1024 * 1024))
echo end >"$SRC2/z.txt"
create c2 full "$SRC2" --media "$WORK/t2" --level 0
[ "$RC" -ne 0 ] && pass "parcel create on a medium too small fails (exit $RC)" ||
	fail "parcel create on a 4 MiB medium for 8 MiB exited 0"
expect_rc 1 "$RC" "parcel create with the media full"
expect_grep "the error says media full" "media full" "$WORK/c2.err"
expect_grep "create says what did not fit" "segment\(s\) did not fit" "$WORK/c2.out"
n2=$(nvols "$WORK/t2")
[ "$n2" -ge 1 ] && pass "$n2 volume(s) written before the media filled" ||
	fail "no volume left on the full medium"
import i2 "$WORK/t2"
expect_rc 0 "$RC" "import of the volumes that fitted"
log "after the import: $HELD of $NSEG segments held"
[ -n "$HELD" ] && [ "$HELD" -gt 0 ] && [ "$HELD" -lt "$NSEG" ] &&
	pass "the package is incomplete: $HELD of $NSEG segments" ||
	fail "after importing a cut parcel: held '$HELD' of '$NSEG'"
expect_grep "import names the missing segments" "missing segments of the parcel" "$WORK/i2.out"
[ ! -e "$LAB_STORE/packages/full" ] && pass "no package under packages/ yet" ||
	fail "an incomplete package appeared under packages/"
send full "$SRC2" s2
expect_rc 0 "$RC" "ferry send completes the cut parcel's package"
[ -n "$HELD" ] && [ "$SENT" = $((NSEG - HELD)) ] &&
	pass "the network sent only the $SENT missing segments" ||
	fail "send sent '$SENT' of '$SEGS'; $HELD were held"
compare_trees "$SRC2" "$LAB_STORE/packages/full" "package by a cut parcel and the network"

# ---- 3. a medium the receiver cannot see ------------------------------------------------
SRC3=$WORK/src/hidden
mkdir -p "$SRC3"
binary_data "$SRC3/h.bin" $((3 * 1024 * 1024))
create c3 hidden "$SRC3" --level 0
expect_rc 0 "$RC" "parcel create on the courier's medium"
mkdir -p "$WORK/private"
unshare -m bash -c 'mount -t tmpfs tmpfs "$1" && cp -r "$2"/ferry-parcel-"$3" "$1"/ &&
	"$4" parcel import "$1" --config "$5"' _ "$WORK/private" "$MEDIA" "$PARCEL_ID" \
	"$FERRY" "$LAB_CONF" >"$WORK/i3.out" 2>"$WORK/i3.err"
expect_rc 0 "$?" "parcel import of a medium mounted where the receiver cannot see it"
expect_grep "... which says the receiver does not see it" \
	"the receiver running at .* does not see the volumes in $WORK/private .*importing here" \
	"$WORK/i3.err"
expect_grep "... and imports it itself" "segments held - complete" "$WORK/i3.out"
compare_trees "$SRC3" "$LAB_STORE/packages/hidden" "the package from the hidden medium"

stop_serve
e2e_finish
