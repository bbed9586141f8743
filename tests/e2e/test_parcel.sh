#!/bin/bash
# test_parcel.sh - courier parcels end to end, with the real binary:
#
#  0. `parcel create` refuses a site without a courier address, or with
#     only a courier address (no network address): exit 3.
#  1. a tree (hundreds of small files, empty files, an empty dir, a
#     symlink, 12 MiB of binaries) goes across in several volumes cut by
#     --volume-size; ship, import, identical; `parcel list` follows the
#     states created -> shipped -> received.
#  3. a byte flipped in a frame's payload: that segment is refused by
#     volume and segment ("authentication tag mismatch"), exit 5, the
#     others imported; the network sends the one missing segment.
#  5. a volume missing: the importer names it and its segments; it comes
#     later and the package completes.
#  6. a parcel addressed to another site: refused, exit 5, nothing stored.
#  7. volumes imported twice: "already held", exit 0, nothing changes;
#     a volume named twice in one import (by two paths) is read once.
#  8. half by parcel, half by network: a parcel created while the site is
#     unreachable (not registered), half imported, `ferry send` sends only
#     the rest; `parcel list` registers it late.
#  9. an import killed with -9 mid-way resumes from its journal.
# 10. the volume format: version 3 (sealed, frames first); a volume cut
#     in half imports its frames with the registered manifest; a volume
#     of version 2 (made by an older ferry, unsealed) is refused with the
#     upgrade message and nothing stored; a package the site holds
#     complete makes no parcel and leaves nothing on the medium.
# 11. the source changed under frames written before its hashes were
#     known (also the frame whose write closed a volume): exit 1, "source
#     changed", nothing left on the medium; a file removed after it was
#     hashed: exit 1 naming it, no volume kept.
# 12. sealed at rest: the media (volumes and packing lists) of a package
#     with telling names and known content, raw (level 0) and compressed,
#     hold no name of a file, a directory or the package, and no 64-byte
#     window of any file; the same records opened (vol.py, with the
#     password) do, so the search would see them.
# 13. a byte flipped anywhere in a volume (its header, a record's header,
#     nonce, body or tag, of a frame, the manifest, the segment list or
#     the trailer): refused naming the volume, exit 5, the other volumes
#     imported; frame records (each whole and authentic) dropped,
#     repeated, swapped, or moved to another volume of the parcel: the
#     trailer's chain refuses the volume by name, exit 5; a wrong password
#     for the account: refused naming the volume and the account, exit 4,
#     nothing stored.
# 14. a stale parcel: version 1 made, version 2 then sent by network;
#     importing the parcel leaves version 2 in place ("newer version",
#     exit 0, superseded in --json), and the source lists it not-needed.
# 17. parcel create killed -9 while it writes: `parcel list` says
#     interrupted, `parcel ship` refuses it, saying why; the next parcel
#     to that medium removes its cut volumes, and the medium imports.
# 18. the site's first network address closed (and leading nowhere), the
#     next silent: the registration goes by the open one, saying why;
#     every address closed now: the parcel is written unregistered, and
#     create says why; an address open to high priority only is used.
#
# Parts that can be skipped are tests of their own, shown as Skipped by
# ctest when they cannot run: 1b (a tree spilling from a small tmpfs onto
# the next --media) and 2 (a tmpfs medium runs out) in
# test_parcel_media.sh (root), 4 (a frame forged with its hashes
# recomputed) in test_parcel_forged.sh (python3-xxhash or libxxhash).
# The setup and helpers are in parcel_lib.sh.
. "$(dirname "${BASH_SOURCE[0]}")/parcel_lib.sh"
parcel_init test_parcel

# ---- 0. parcel create needs a courier address and a network address -----------------
mkdir -p "$WORK/src/small"
echo small >"$WORK/src/small/a.txt"
NOCOURIER_CONF=$WORK/nocourier.conf
sed '/^\[address LAB usb\]/,$d' "$CEN_CONF" >"$NOCOURIER_CONF"
printf '\n[sender]\nsegment-size = 1M\n' >>"$NOCOURIER_CONF"
run_ferry "$WORK/c0a.out" "$WORK/c0a.err" parcel create "$WORK/src/small" --to LAB \
	--config "$NOCOURIER_CONF"
expect_rc 3 "$RC" "parcel create for a site without a courier address"
expect_grep "the error says there is no courier address" "no courier address" "$WORK/c0a.err"

ONLYCOURIER_CONF=$WORK/onlycourier.conf
cat >"$ONLYCOURIER_CONF" <<EOF
[site]
code = CEN
store = $CEN_STORE

[address LAB usb]
type = courier
password-file = $PW_FILE
media = $MEDIA
EOF
run_ferry "$WORK/c0b.out" "$WORK/c0b.err" parcel create "$WORK/src/small" --to LAB \
	--config "$ONLYCOURIER_CONF"
expect_rc 3 "$RC" "parcel create for a site with only a courier address"
expect_grep "the error says a network address is needed" "no network address.*courier needs one" \
	"$WORK/c0b.err"
[ -z "$(ls -A "$MEDIA")" ] && pass "nothing written on the medium by the refused creates" ||
	fail "the refused creates left $(ls -A "$MEDIA") on the medium"

start_serve

# ---- 1. a tree across several volumes --------------------------------------------
TREE=$WORK/src/tree
build_tree "$TREE"

# 1a. --volume-size 3M, compressed
M1=$WORK/m1
mkdir -p "$M1"
run_ferry "$WORK/c1.json" "$WORK/c1.err" parcel create "$TREE" --to LAB --config "$CEN_CONF" \
	--name tree --media "$M1" --volume-size 3M --level 3 --json
expect_rc 0 "$RC" "parcel create of the tree in 3M volumes"
ID1=$(basename "$(ls -d "$M1"/ferry-parcel-* 2>/dev/null | head -n 1)")
ID1=${ID1#ferry-parcel-}
D1=$M1/ferry-parcel-$ID1
n1=$(nvols "$M1")
log "parcel $ID1: $n1 volumes: $(cd "$D1" 2>/dev/null && ls -s vol-*.fpv | tr '\n' ' ')"
[ "$n1" -ge 3 ] && pass "the tree went into $n1 volumes" || fail "the tree is in $n1 volume(s)"
for f in "$D1"/vol-*.fpv; do python3 "$WORK/vol.py" frames "$f"; done >"$WORK/frames1"
nz=$(awk '$2 == 1' "$WORK/frames1" | wc -l)
nr=$(awk '$2 == 0' "$WORK/frames1" | wc -l)
[ "$nz" -ge 1 ] && [ "$nr" -ge 1 ] &&
	pass "--level 3: $nz frames zstd-compressed, $nr raw (random data)" ||
	fail "--level 3: $nz zstd frames, $nr raw frames"
big=$(find "$D1" -name 'vol-*.fpv' -size +3072k | wc -l)
[ "$big" = 0 ] && pass "no volume is over --volume-size 3M" ||
	fail "$big volume(s) over 3 MiB: $(ls -l "$D1")"
[ "$(find "$D1" -name 'vol-*.txt' | wc -l)" = "$n1" ] &&
	pass "every volume has its packing list" || fail "packing lists: $(ls "$D1")"
expect_grep "vol-001.txt says which volume of how many" "^volume: +1 of $n1 +\(vol-001.fpv" \
	"$D1/vol-001.txt"
if json_ok "$WORK/c1.json"; then
	pass "parcel create --json prints one JSON document"
else
	fail "parcel create --json is not JSON: $(head -c 300 "$WORK/c1.json")"
fi
c1=$(json_get "$WORK/c1.json" '"%s %s %s" % (d["registered"], d["volumes"], d["left_out"])' 2>/dev/null)
[ "$c1" = "True $n1 0" ] && pass "create --json: registered, $n1 volumes, nothing left out" ||
	fail "create --json (registered volumes left_out): '$c1'"
expect_grep "the receiver registered the parcel" "parcel $ID1 of 'tree' registered" "$SERVE_LOG"

list_json l1a
expect_rc 0 "$RC" "parcel list"
expect_list_state l1a "$ID1" created "after create"
r=$(state_of l1a "$ID1" volumes)
[ "$r" = "$n1" ] && pass "parcel list --json: $n1 volumes" || fail "parcel list --json: volumes '$r', $n1 written"
run_ferry "$WORK/ship1.out" "$WORK/ship1.err" parcel ship "${ID1:0:6}" --config "$CEN_CONF"
expect_rc 0 "$RC" "parcel ship (by the first 6 characters of the id)"
expect_grep "ship says marked shipped" "parcel $ID1 .*marked shipped" "$WORK/ship1.out"
list_json l1b
expect_list_state l1b "$ID1" shipped "after ship"

import i1 "$M1"
expect_rc 0 "$RC" "import of every volume of the tree"
expect_grep "import says the package is complete" "segments held - complete" "$WORK/i1.out"
compare_trees "$TREE" "$LAB_STORE/packages/tree" "tree by parcel (3M volumes)"
list_json l1c
expect_list_state l1c "$ID1" received "after import"
st=$(state_of l1c "$ID1" received)
[ -n "$st" ] && [ "$st" -gt 0 ] && pass "parcel list --json has a receipt time ($st)" ||
	fail "parcel list --json: received time '$st'"

# ---- 3. a byte flipped in a frame's payload -------------------------------------------
SRC3=$WORK/src/flip
mkdir -p "$SRC3"
binary_data "$SRC3/data.bin" $((6 * 1024 * 1024 + 4321))
M3=$WORK/m3
mkdir -p "$M3"
create c3 flip "$SRC3" --media "$M3" --volume-size 3M --level 0
expect_rc 0 "$RC" "parcel create (flip)"
D3=$M3/ferry-parcel-$PARCEL_ID
bad=$(python3 "$WORK/vol.py" flip "$D3/vol-002.fpv" 1)
log "flipped a payload byte of segment $bad in vol-002.fpv"
import i3 "$M3"
expect_rc 5 "$RC" "import with a damaged frame"
expect_grep "the error names the volume and the segment" \
	"vol-002.fpv: segment $bad refused: authentication tag mismatch" "$WORK/i3.err"
[ "$HELD" = $((NSEG - 1)) ] && pass "every other segment imported ($HELD of $NSEG)" ||
	fail "after the damaged frame: held '$HELD' of '$NSEG'"
expect_grep "import names segment $bad as missing" \
	"missing segments of the parcel \(1\): $bad\$" "$WORK/i3.out"
send flip "$SRC3" s3
expect_rc 0 "$RC" "ferry send of the damaged parcel's package"
[ "$SENT" = 1 ] && pass "the network sent the one refused segment" ||
	fail "send sent '$SENT' segments of '$SEGS', expected 1"
compare_trees "$SRC3" "$LAB_STORE/packages/flip" "package after a damaged frame"

# ---- 5 and 7. a volume missing, then volumes imported twice ---------------------------
SRC5=$WORK/src/gap
mkdir -p "$SRC5/docs"
binary_data "$SRC5/data.bin" $((7 * 1024 * 1024))
for i in 1 2 3 4 5; do head -c $((i * 777)) /dev/urandom >"$SRC5/docs/r$i"; done
M5=$WORK/m5
mkdir -p "$M5"
create c5 gap "$SRC5" --media "$M5" --volume-size 3M --level 0
expect_rc 0 "$RC" "parcel create (gap)"
D5=$M5/ferry-parcel-$PARCEL_ID
n5=$(nvols "$M5")
[ "$n5" -ge 3 ] && pass "gap parcel in $n5 volumes" || fail "gap parcel in $n5 volume(s)"
rest=()
for f in "$D5"/vol-*.fpv; do [ "$(basename "$f")" = vol-002.fpv ] || rest+=("$f"); done
gap=$(seg_range "$D5/vol-002.fpv")
import i5 "${rest[@]}"
expect_rc 0 "$RC" "import of every volume but vol-002"
expect_grep "import names the missing volume" "^missing volumes: vol-002.fpv\$" "$WORK/i5.out"
expect_grep "import names vol-002's segments ($gap) as missing" \
	"^missing segments of the parcel \([0-9]+\): $gap\$" "$WORK/i5.out"
held5=$HELD
j5=$(journal_records "$(pkg_id "$D5")")
[ ! -e "$LAB_STORE/packages/gap" ] && pass "no package under packages/ without vol-002" ||
	fail "package gap appeared without vol-002"

# a second parcel of the package, registered: what LAB now holds is left
# out, but for the frames written before LAB answered (the first 3M
# volume waits for that answer before it closes)
M5B=$WORK/m5b
mkdir -p "$M5B"
run_ferry "$WORK/c5b.json" "$WORK/c5b.err" parcel create "$SRC5" --to LAB --config "$CEN_CONF" \
	--name gap --media "$M5B" --volume-size 3M --level 0 --json
expect_rc 0 "$RC" "a second parcel of the package, LAB holding all but vol-002"
read -r reg5 segs5 nseg5 < <(json_get "$WORK/c5b.json" \
	'"%s %s %s" % (d["registered"], d["segments"], d["n_segments"])' 2>/dev/null)
miss5=$((NSEG - held5))
log "second parcel: $segs5 of $nseg5 segments; LAB misses $miss5"
[ "$reg5" = True ] && [ "${segs5:-0}" -ge "$miss5" ] && [ "${segs5:-99}" -lt "${nseg5:-0}" ] &&
	pass "the registered parcel leaves out what LAB holds ($segs5 of $nseg5 segments, $miss5 missing at LAB)" ||
	fail "second parcel: registered '$reg5', $segs5 of $nseg5 segments; LAB misses $miss5"

# 7. the same volumes again
import i7 "${rest[@]}"
expect_rc 0 "$RC" "second import of the same volumes"
expect_grep "second import: nothing imported, all already held" \
	"0 segment\(s\) imported, $held5 already held, 0 refused" "$WORK/i7.out"
[ "$HELD" = "$held5" ] && pass "second import: still $HELD segments held" ||
	fail "second import: held $HELD, was $held5"
[ "$(journal_records "$(pkg_id "$D5")")" = "$j5" ] &&
	pass "second import: the journal is unchanged ($j5 records)" ||
	fail "second import: journal went from $j5 records to $(journal_records "$(pkg_id "$D5")")"
# each volume given once more, vol-001 by another path too: read once
run_ferry "$WORK/i7j.json" "$WORK/i7j.err" parcel import "${rest[@]}" "${rest[@]}" \
	"$D5/./vol-001.fpv" --config "$LAB_CONF" --json
expect_rc 0 "$RC" "third import of the same volumes, each named twice, --json"
expect_grep "a volume named twice is read once" "given twice: read once" "$WORK/i7j.err"
if json_ok "$WORK/i7j.json"; then
	pass "parcel import --json prints one JSON document"
else
	fail "parcel import --json is not JSON: $(head -c 300 "$WORK/i7j.json")"
fi
r=$(json_get "$WORK/i7j.json" \
	'"%s|%s|%s|%s|%s" % (len(d["parcels"]), d["parcels"][0]["imported"], d["parcels"][0]["already_held"], d["parcels"][0]["complete"], d["parcels"][0]["missing_volumes"])' 2>/dev/null)
[ "$r" = "1|0|$held5|False|vol-002.fpv" ] &&
	pass "import --json: 0 imported, $held5 already held, incomplete, vol-002.fpv missing" ||
	fail "import --json (imported|already_held|complete|missing_volumes): '$r'"

import i5b "$D5/vol-002.fpv"
expect_rc 0 "$RC" "import of vol-002 alone"
expect_grep "vol-002 completes the package" "segments held - complete" "$WORK/i5b.out"
compare_trees "$SRC5" "$LAB_STORE/packages/gap" "package after the late volume"

# 7. every volume again, the package being complete
before=$(snapshot "$LAB_STORE/packages/gap")
import i7b "$D5"
expect_rc 0 "$RC" "import of the volumes of a package already complete"
expect_grep "import of a complete package says it is held" "already held|complete" \
	"$WORK/i7b.out" "$WORK/i7b.err"
[ "$(snapshot "$LAB_STORE/packages/gap")" = "$before" ] &&
	pass "the complete package is untouched by the import" ||
	fail "the complete package changed on the second import"
[ ! -e "$LAB_STORE/partial/$(pkg_id "$D5")" ] &&
	pass "no partial directory was made again for the complete package" ||
	fail "partial/$(pkg_id "$D5") exists again"

# ---- 6. a parcel for another site ---------------------------------------------------
OTHER_CONF=$WORK/other.conf
cp "$CEN_CONF" "$OTHER_CONF"
cat >>"$OTHER_CONF" <<EOF

[address OTHER lan]
type = lan
host = 127.0.0.1:$(pick_port)
password-file = $PW_FILE

[address OTHER usb]
type = courier
password-file = $PW_FILE
media = $WORK/m6
EOF
mkdir -p "$WORK/m6"
run_ferry "$WORK/c6.out" "$WORK/c6.err" parcel create "$SRC3" --to OTHER \
	--config "$OTHER_CONF" --name elsewhere --volume-size 3M --level 0
expect_rc 0 "$RC" "parcel create for site OTHER (unreachable)"
before=$(snapshot "$LAB_STORE")
import i6 "$WORK/m6"
expect_rc 5 "$RC" "import at LAB of a parcel for OTHER"
expect_grep "the error says addressed to site OTHER" "vol-001.fpv: addressed to site OTHER" \
	"$WORK/i6.err"
[ "$(snapshot "$LAB_STORE")" = "$before" ] && pass "nothing stored at LAB" ||
	fail "LAB's store changed: $(diff <(echo "$before") <(snapshot "$LAB_STORE") | head -n 5)"
# --json: still one document, naming the volumes refused and why
run_ferry "$WORK/i6j.json" "$WORK/i6j.err" parcel import "$WORK/m6" --config "$LAB_CONF" --json
expect_rc 5 "$RC" "import --json at LAB of a parcel for OTHER"
r=$(json_get "$WORK/i6j.json" \
	'"%s|%s|%s|%s" % (d["ok"], len(d["parcels"]), len(d["refused_volumes"]) > 0, "OTHER" in d["refused_volumes"][0]["error"])' 2>/dev/null)
[ "$r" = "False|0|True|True" ] &&
	pass "import --json of refused volumes: one document, ok false, the volumes named" ||
	fail "import --json of refused volumes (ok|parcels|refused|why): '$r' in $(head -c 300 "$WORK/i6j.json")"

# ---- 8. half by parcel, half by network ----------------------------------------------
SRC8=$WORK/src/half
mkdir -p "$SRC8"
binary_data "$SRC8/data.bin" $((10 * 1024 * 1024 + 99))
echo half >"$SRC8/note.txt"
stop_serve
M8=$WORK/m8
mkdir -p "$M8"
create c8 half "$SRC8" --media "$M8" --volume-size 3M --level 0
expect_rc 0 "$RC" "parcel create with the site unreachable"
ID8=$PARCEL_ID
expect_grep "create warns it cannot register the parcel" \
	"cannot register the parcel with LAB.*parcel list" "$WORK/c8.err"
expect_grep "create's summary says not registered" "not registered yet" "$WORK/c8.out"
run_ferry "$WORK/l8a.out" "$WORK/l8a.err" parcel list --config "$CEN_CONF"
expect_rc 0 "$RC" "parcel list with the site unreachable"
expect_grep "parcel list shows the parcel (not registered)" "^$ID8 .*\(not registered\)" \
	"$WORK/l8a.out"
expect_grep "parcel list warns it is still not registered" \
	"parcel $ID8: still not registered with LAB" "$WORK/l8a.err"
start_serve
D8=$M8/ferry-parcel-$ID8
n8=$(nvols "$M8")
half=()
for ((k = 1; k <= n8 / 2; k++)); do half+=("$D8/$(printf 'vol-%03d.fpv' $k)"); done
import i8 "${half[@]}"
expect_rc 0 "$RC" "import of the first ${#half[@]} of $n8 volumes"
held8=$HELD
log "half: $held8 of $NSEG segments held by parcel"
send half "$SRC8" s8
expect_rc 0 "$RC" "ferry send of the half-imported package"
[ -n "$SENT" ] && [ -n "$SEGS" ] && [ "$SENT" -lt "$SEGS" ] && [ "$SENT" = $((SEGS - held8)) ] &&
	pass "the network sent only the $SENT segments the parcel had not brought (of $SEGS)" ||
	fail "send: segments_sent '$SENT' of '$SEGS', $held8 held by parcel"
compare_trees "$SRC8" "$LAB_STORE/packages/half" "package half by parcel, half by network"
# the courier's other volumes arrive after the network completed the package
second=()
for ((k = n8 / 2 + 1; k <= n8; k++)); do second+=("$D8/$(printf 'vol-%03d.fpv' $k)"); done
before=$(snapshot "$LAB_STORE/packages/half")
import i8b "${second[@]}"
expect_rc 0 "$RC" "import of the other volumes once the network completed the package"
expect_grep "that import says the segments are held" "already held|complete" \
	"$WORK/i8b.out" "$WORK/i8b.err"
[ "$(snapshot "$LAB_STORE/packages/half")" = "$before" ] &&
	pass "the package completed by the network is untouched by the late volumes" ||
	fail "the late volumes changed the package"
list_json l8b
expect_rc 0 "$RC" "parcel list with the site reachable again"
expect_grep "parcel list registers the parcel late" "parcel $ID8 registered with LAB" \
	"$WORK/l8b.err"
expect_grep "the receiver logs the late registration" "parcel $ID8 of 'half' registered" "$SERVE_LOG"
r=$(state_of l8b "$ID8" registered)
[ "$r" = true ] && pass "parcel list --json: registered true" ||
	fail "parcel list --json: registered '$r'"
r=$(state_of l8b "$ID8" state)
case $r in
received | not-needed) pass "parcel list --json: the half parcel is '$r'" ;;
*) fail "parcel list --json: the half parcel's state is '$r'" ;;
esac
run_ferry "$WORK/l8c.out" "$WORK/l8c.err" parcel list --config "$CEN_CONF" --offline
grep "^$ID8" "$WORK/l8c.out" | grep -Eq ' (received|not-needed) ' &&
	! grep "^$ID8" "$WORK/l8c.out" | grep -q 'not registered' &&
	pass "parcel list (text): registered, $(grep "^$ID8" "$WORK/l8c.out" | awk '{print $4}')" ||
	fail "parcel list (text): $(grep "^$ID8" "$WORK/l8c.out")"

# ---- 9. an import killed with -9 -------------------------------------------------------
SRC9=$WORK/src/big
mkdir -p "$SRC9"
binary_data "$SRC9/data.bin" $((150 * 1024 * 1024))
M9=$WORK/m9
mkdir -p "$M9"
create c9 big "$SRC9" --media "$M9" --volume-size 60M --level 0
expect_rc 0 "$RC" "parcel create (150 MiB)"
D9=$M9/ferry-parcel-$PARCEL_ID
P9=$(pkg_id "$D9")
"$FERRY" parcel import "$M9" --config "$LAB_CONF" >"$WORK/i9a.out" 2>"$WORK/i9a.err" &
ipid=$!
E2E_PIDS+=("$ipid")
killed=0
for ((i = 0; i < 6000; i++)); do
	[ "$(journal_records "$P9")" -ge 24 ] && { kill -9 "$ipid" 2>/dev/null && killed=1; break; }
	kill -0 "$ipid" 2>/dev/null || break
	sleep 0.005
done
wait "$ipid" 2>/dev/null
at=$(journal_records "$P9")
if [ "$killed" = 1 ] && [ ! -e "$LAB_STORE/packages/big" ]; then
	pass "import killed with -9 mid-way ($at segments journaled)"
	import i9 "$M9"
	expect_rc 0 "$RC" "import again after the kill"
	expect_grep "the second import completes the package" "segments held - complete" "$WORK/i9.out"
	again=$(sed -nE 's/.*: ([0-9]+) segment\(s\) imported, ([0-9]+) already held.*/\2/p' \
		"$WORK/i9.out")
	[ -n "$again" ] && [ "$again" -ge "$at" ] &&
		pass "the second import kept the $again segments held before (journal: $at)" ||
		fail "the second import found '$again' segments held; the journal had $at"
	compare_trees "$SRC9" "$LAB_STORE/packages/big" "package after a killed import"
else
	fail "the import ended before it could be killed (journal: $at records)"
fi

# ---- 10. the volume format: version 2, a cut volume, version 1, not needed ------------
SRC10=$WORK/src/fmt
mkdir -p "$SRC10"
binary_data "$SRC10/data.bin" $((7 * 1024 * 1024 + 99))
echo fmt >"$SRC10/note.txt"
M10=$WORK/m10
mkdir -p "$M10"
create c10 fmt "$SRC10" --media "$M10" --volume-size 3M --level 0
expect_rc 0 "$RC" "parcel create (format)"
D10=$M10/ferry-parcel-$PARCEL_ID
ver=$(od -An -tu2 -j4 -N2 "$D10/vol-001.fpv" | tr -d ' ')
[ "$ver" = 3 ] && pass "volumes are written in version 3" || fail "volume version '$ver'"
# frames first, the manifest closing the volume: record types in file order
types=$(python3 "$WORK/vol.py" types "$D10/vol-001.fpv")
[[ "$types" =~ ^3+124$ ]] && pass "version 3 layout: frames, then manifest, segment list, trailer ($types)" ||
	fail "record types in vol-001.fpv: '$types'"
# a volume cut short has no manifest: the registered one is used, and the
# frames before the cut are imported
cp "$D10/vol-001.fpv" "$WORK/vol-001.whole"
sz=$(stat -c %s "$D10/vol-001.fpv")
truncate -s $((sz / 2)) "$D10/vol-001.fpv"
import i10a "$D10/vol-001.fpv"
expect_rc 5 "$RC" "import of a volume cut in half"
expect_grep "the importer says where the volume ends" "vol-001.fpv is truncated" "$WORK/i10a.err"
expect_grep "the registered manifest stands in for the cut one" \
	"using the one registered for it" "$WORK/i10a.err"
[ -n "$HELD" ] && [ "$HELD" -ge 1 ] && [ "$HELD" -lt "$NSEG" ] &&
	pass "the frames before the cut were imported ($HELD of $NSEG segments)" ||
	fail "after the cut volume: held '$HELD' of '$NSEG'"
# its segment list was in the part cut off: the import names what is
# missing by volume, not every segment of the package as the parcel's
expect_grep "... names the missing volumes" "^missing volumes: .*the last volume has not been imported" "$WORK/i10a.out"
check "... and lists no segments it cannot know are the parcel's" \
	bash -c "! grep -q 'missing segments of the parcel' '$WORK/i10a.out'"
cp "$WORK/vol-001.whole" "$D10/vol-001.fpv"
import i10b "$M10"
expect_rc 0 "$RC" "import of the whole parcel after the cut volume"
compare_trees "$SRC10" "$LAB_STORE/packages/fmt" "package after a cut volume"
# a volume of version 2 (written by the ferry before volumes were
# sealed): refused with the upgrade message, nothing read or stored
before=$(snapshot "$LAB_STORE")
import i10c "$FERRY_SRC/tests/e2e/data/parcel-v2.fpv"
expect_rc 5 "$RC" "import of a version 2 volume"
expect_grep "the error names the volume, says an older ferry made it and to make it again" \
	"parcel-v2.fpv: made by an older ferry \(volume format 2, not sealed\).*make the parcel again with this ferry" \
	"$WORK/i10c.err"
[ "$(snapshot "$LAB_STORE")" = "$before" ] && pass "nothing stored from the version 2 volume" ||
	fail "the store changed: $(diff <(echo "$before") <(snapshot "$LAB_STORE") | head -n 5)"
# the destination holds the package complete: no parcel, nothing left
# on the medium, even though frames went out before it answered
M10N=$WORK/m10n
mkdir -p "$M10N"
create c10n fmt "$SRC10" --media "$M10N" --level 0
expect_rc 0 "$RC" "parcel create of a package the site holds"
expect_grep "create says no parcel is needed" "already holds 'fmt' complete: no parcel needed" \
	"$WORK/c10n.err"
left=$(find "$M10N" -mindepth 1 | wc -l)
[ "$left" = 0 ] && pass "nothing is left on the medium" || fail "left on the medium: $(find "$M10N")"
list_json l10
n10=$(json_get "$WORK/l10.json" "len([p for p in d if p['name'] == 'fmt'])" 2>/dev/null)
[ "$n10" = 1 ] && pass "parcel list has no record of the parcel not needed" ||
	fail "parcel list has $n10 parcel(s) named fmt"

# ---- 11. the source changes under frames written before its hashes -------------------
# The hashing pass is held back (a test knob) so that frames go out first;
# a.bin is then changed in place: the parcel must not be kept, its
# frames no longer match the manifest. The two cases run side by side,
# each on its own copy of the source, so that their held-back hashing
# passes overlap.
SRC11=$WORK/src/chg
SRC11B=$WORK/src/chg2
mkdir -p "$SRC11" "$SRC11B"
binary_data "$SRC11/b.bin" $((3 * 1024 * 1024))
cp "$SRC11/b.bin" "$SRC11B/b.bin"

# changed_under OUT NAME SRC MEDIA AT args...: a fresh SRC/a.bin; `parcel
# create` of SRC in the background with the hashing held back 3 s; once
# vol-001 holds 2 MiB of frames, a.bin is changed at byte AT. Sets SZ
# (vol-001's size then) and CPID (the create, to wait for).
changed_under() {
	local out=$1 name=$2 src=$3 media=$4 at=$5 i
	shift 5
	binary_data "$src/a.bin" $((3 * 1024 * 1024))
	mkdir -p "$media"
	FERRY_HASH_DELAY_MS=3000 "$FERRY" parcel create "$src" --to LAB \
		--config "$CEN_CONF" --name "$name" --media "$media" --level 0 "$@" \
		>"$WORK/$out.out" 2>"$WORK/$out.err" &
	CPID=$!
	E2E_PIDS+=("$CPID")
	SZ=0
	for ((i = 0; i < 1000; i++)); do
		SZ=$(find "$media" -name 'vol-001.fpv' -printf '%s\n' 2>/dev/null | head -n 1)
		[ "${SZ:-0}" -gt $((2 * 1024 * 1024)) ] && break
		sleep 0.01
	done
	printf 'changed' | dd of="$src/a.bin" bs=1 seek="$at" conv=notrunc status=none
	log "$out: vol-001 held ${SZ:-0} bytes when a.bin was changed"
}

M11=$WORK/m11
changed_under c11 chg "$SRC11" "$M11" 1000
sz11=$SZ
pid11=$CPID
# 11b. in 3M volumes: the third segment's frame is the one that closes
# the first volume, which waits for the hashes; that frame is changed
M11B=$WORK/m11b
changed_under c11b chg2 "$SRC11B" "$M11B" $((2 * 1024 * 1024 + 1000)) --volume-size 3M
pid11b=$CPID
wait "$pid11"
rc11=$?
wait "$pid11b"
rc11b=$?

[ "${sz11:-0}" -gt $((2 * 1024 * 1024)) ] && pass "frames were on the medium before the hashes" ||
	fail "no frame was written within 10 s"
expect_rc 1 "$rc11" "parcel create whose source changed under it"
expect_grep "the error says the source changed" "no longer matches its hash: the source changed" \
	"$WORK/c11.err"
left=$(find "$M11" -mindepth 1 | wc -l)
[ "$left" = 0 ] && pass "no volume of it is left on the medium" ||
	fail "left on the medium: $(find "$M11")"
expect_rc 1 "$rc11b" "parcel create whose third segment changed while the first volume waited"
expect_grep "the error names segment 2" "segment 2 of .* no longer matches its hash" "$WORK/c11b.err"
left=$(find "$M11B" -mindepth 1 | wc -l)
[ "$left" = 0 ] && pass "no volume of that parcel is left either" ||
	fail "left on the medium: $(find "$M11B")"

# 11c. a file removed after the hashing pass read it, before its frame:
# level 19 keeps the frames slow and the hashing pass is done in
# milliseconds; z.bin, sorted last, goes once the first frames are on
# the medium. The read fails naming it, and the parcel is not kept (it
# used to be kept, its missing segments said not to fit the medium)
SRC11C=$WORK/src/gone
M11C=$WORK/m11c
mkdir -p "$SRC11C" "$M11C"
for i in $(seq -w 1 24); do head -c $((1024 * 1024)) /dev/urandom >"$SRC11C/f$i"; done
head -c $((1024 * 1024)) /dev/urandom >"$SRC11C/z.bin"
"$FERRY" parcel create "$SRC11C" --to LAB --config "$CEN_CONF" --name gone \
	--media "$M11C" --level 19 >"$WORK/c11c.out" 2>"$WORK/c11c.err" &
pid11c=$!
E2E_PIDS+=("$pid11c")
for ((i = 0; i < 1000; i++)); do
	[ "$(find "$M11C" -name 'vol-001.fpv' -size +1k 2>/dev/null | wc -l)" -gt 0 ] && break
	sleep 0.01
done
rm "$SRC11C/z.bin"
rc=0
wait "$pid11c" || rc=$?
expect_rc 1 "$rc" "parcel create whose last file was removed under it"
expect_grep "the error names the file" "z\.bin" "$WORK/c11c.err"
left=$(find "$M11C" -name '*.fpv' | wc -l)
[ "$left" = 0 ] && pass "no volume of it is kept" ||
	fail "kept on the medium: $(find "$M11C" -type f) ($(cat "$WORK/c11c.out"))"

# ---- 12. sealed at rest: nothing on the media tells the package --------------------
# Telling names, and content known to the test: random bytes (stay raw at
# any level), text that compresses (raw at level 0: the dangerous case).
SRC12=$WORK/src/seal
mkdir -p "$SRC12/walrus-confidential-dir"
head -c $((700 * 1024)) /dev/urandom >"$SRC12/zebra-payroll-secret.bin"
python3 - "$SRC12/walrus-confidential-dir/quokka-minutes-plaintext.txt" <<'EOF'
import random, sys
r = random.Random(12)
words = ["merger", "ledger", "courier", "budget", "tender", "quarter", "figure"]
with open(sys.argv[1], "w") as f:
    for i in range(6000):
        f.write("line %d: %s\n" % (i, " ".join(r.choice(words) for _ in range(9))))
EOF
NAMES12="zebra-payroll-secret quokka-minutes-plaintext walrus-confidential-dir orca-merger-plans"
# no_leak DIR WHAT: every file under DIR (volumes, packing lists) searched
# for the names and for every 64-byte window of the package's files
no_leak() {
	local dir=$1 what=$2 found
	found=$(python3 - "$SRC12" "$dir" $NAMES12 <<'EOF'
import os, sys
src, media, names = sys.argv[1], sys.argv[2], sys.argv[3:]
W = 64
windows = set()
for root, _, files in os.walk(src):
    for fn in files:
        d = open(os.path.join(root, fn), "rb").read()
        for i in range(0, len(d) - W + 1):
            windows.add(d[i:i + W])
hits = []
for root, _, files in os.walk(media):
    for fn in files:
        p = os.path.join(root, fn)
        d = open(p, "rb").read()
        for n in names:
            if n.encode() in d:
                hits.append("%s: name %s" % (fn, n))
        for i in range(0, len(d) - W + 1):
            if d[i:i + W] in windows:
                hits.append("%s: a 64-byte window of the package at %d" % (fn, i))
                break
print("; ".join(hits))
EOF
)
	[ -z "$found" ] && pass "$what: no name and no 64-byte window of the package on the media" ||
		fail "$what: the media give away the package: $found"
}
for lv in 0 3; do
	M12=$WORK/m12-$lv
	mkdir -p "$M12"
	create c12-$lv orca-merger-plans "$SRC12" --media "$M12" --level $lv
	expect_rc 0 "$RC" "parcel create (level $lv) of a package with telling names"
	no_leak "$M12" "level $lv"
	# the same search on the records opened finds them: it can see a leak
	D12=$M12/ferry-parcel-$PARCEL_ID
	mkdir -p "$WORK/open12-$lv"
	python3 "$WORK/vol.py" plain "$D12/vol-001.fpv" >"$WORK/open12-$lv/plain"
	grep -q quokka-minutes-plaintext "$WORK/open12-$lv/plain" &&
		pass "level $lv: the opened manifest has the file names (the search would see them)" ||
		fail "level $lv: the opened records do not have the file names"
done
r=$(python3 "$WORK/vol.py" frames "$WORK/m12-0/ferry-parcel-"*/vol-001.fpv | awk '$2 == 0' | wc -l)
[ "$r" -ge 1 ] && pass "level 0: the frames are raw ($r), and still nothing shows" ||
	fail "level 0: no raw frame"
# the packing list: the parcel, the volume, its size, the sites, no more
txt=$(ls "$WORK"/m12-0/ferry-parcel-*/vol-001.txt)
expect_grep "the packing list names the parcel, the volume and the sites" \
	"^volume: +1 of 1 " "$txt"
if grep -Eiq 'package|segment|orca|walrus|quokka|zebra|account' "$txt"; then
	fail "the packing list says more than it may: $(grep -Ei 'package|segment|orca|walrus|quokka|zebra|account' "$txt")"
else
	pass "the packing list names no package, file, segment or account"
fi
import i12 "$WORK/m12-0"
expect_rc 0 "$RC" "import of the sealed parcel"
compare_trees "$SRC12" "$LAB_STORE/packages/orca-merger-plans" "sealed parcel"

# ---- 13. a byte flipped anywhere; a wrong password ----------------------------------
# Each flip on a parcel of its own (its own package), in 1M volumes of
# one frame each: vol-001 is damaged at one place, the others are whole.
n13=0
flip13() {
	local region=$1 off=$2 src d at
	n13=$((n13 + 1))
	src=$WORK/src/flip13-$n13
	mkdir -p "$src" "$WORK/m13-$n13"
	head -c $((2 * 1024 * 1024 + 777)) /dev/urandom >"$src/data.bin"
	create c13-$n13 flip13-$n13 "$src" --media "$WORK/m13-$n13" --volume-size 1100K --level 0
	d=$WORK/m13-$n13/ferry-parcel-$PARCEL_ID
	at=$(python3 "$WORK/vol.py" regions "$d/vol-001.fpv" | awk -v r="$region" '$1 == r { print $2; exit }')
	if [ -z "$at" ] || [ "$RC" != 0 ]; then
		fail "flip in $region: no such region (create rc $RC)"
		return
	fi
	python3 "$WORK/vol.py" flipat "$d/vol-001.fpv" $((at + off))
	import i13-$n13 "$d"
	expect_rc 5 "$RC" "a byte flipped in vol-001's $region (+$off)"
	expect_grep "flip in $region: the error names the volume" "vol-001.fpv" "$WORK/i13-$n13.err"
	[ -n "$HELD" ] && [ -n "$NSEG" ] && [ "$HELD" -ge $((NSEG - 1)) ] &&
		pass "flip in $region: the other volumes imported ($HELD of $NSEG segments)" ||
		fail "flip in $region: held '$HELD' of '$NSEG'"
	if [ -d "$LAB_STORE/packages/flip13-$n13" ]; then
		compare_trees "$src" "$LAB_STORE/packages/flip13-$n13" "flip in $region: the package completed"
	fi
}
flip13 header 30 # the key check, caught by the header's checksum
flip13 header 121
flip13 rhdr3 5
flip13 nonce3 7
flip13 body3 20 # the frame's header
flip13 body3 100000 # its payload
flip13 tag3 3
flip13 rhdr1 9
flip13 nonce1 0
flip13 body1 2 # the manifest
flip13 tag1 15
flip13 body2 0 # the segment list
flip13 tag2 1
flip13 nonce4 23 # the trailer
flip13 body4 40 # its chain of the records
flip13 tag4 0

# whole records out of place: the trailer's chain of the records tells
# (vol-001 and vol-002 hold two frames each)
n13r=0
shuffle13() {
	local what=$1 src d a args=()
	shift
	n13r=$((n13r + 1))
	src=$WORK/src/shuffle13-$n13r
	mkdir -p "$src" "$WORK/m13r-$n13r"
	head -c $((5 * 1024 * 1024 + 99)) /dev/urandom >"$src/data.bin"
	create c13r-$n13r shuffle13-$n13r "$src" --media "$WORK/m13r-$n13r" --volume-size 2200K --level 0
	d=$WORK/m13r-$n13r/ferry-parcel-$PARCEL_ID
	for a in "$@"; do args+=("${a/VOL2/$d/vol-002.fpv}"); done
	python3 "$WORK/vol.py" "$what" "$d/vol-001.fpv" "${args[@]}" 2>"$WORK/shuffle13-$n13r.err" ||
		fail "vol.py $what: $(cat "$WORK/shuffle13-$n13r.err")"
	import i13r-$n13r "$d"
	expect_rc 5 "$RC" "vol-001's frame records: $what $1"
	expect_grep "$what: the volume is refused by name, its records not the ones its trailer lists" \
		"vol-001.fpv: its records are not the ones its trailer lists" "$WORK/i13r-$n13r.err"
}
shuffle13 drop 1
shuffle13 dup 0
shuffle13 swap 0
shuffle13 move 1 VOL2

# a wrong password for the account: refused, naming volume and account
WRONG_PW=$WORK/wrong.pw
printf 'not the password\n' >"$WRONG_PW"
chmod 600 "$WRONG_PW"
WRONG_CONF=$WORK/wrong.conf
awk -v pw="$WRONG_PW" '/^\[account CEN\]/ { a = 1 } /^\[/ && !/^\[account CEN\]/ { a = 0 }
	a && /^password-file/ { print "password-file = " pw; next } { print }' "$LAB_CONF" >"$WRONG_CONF"
SRC13W=$WORK/src/wrongkey
mkdir -p "$SRC13W" "$WORK/m13w"
head -c 100000 /dev/urandom >"$SRC13W/w.bin"
create c13w wrongkey "$SRC13W" --media "$WORK/m13w" --level 0
before=$(snapshot "$LAB_STORE")
run_ferry "$WORK/i13w.out" "$WORK/i13w.err" parcel import "$WORK/m13w" --config "$WRONG_CONF"
expect_rc 4 "$RC" "import with a wrong password for the account (authentication refused)"
expect_grep "the error names the volume and the account" \
	"vol-001.fpv: cannot be opened with the key of account CEN" "$WORK/i13w.err"
[ "$(snapshot "$LAB_STORE")" = "$before" ] &&
	pass "nothing stored with the wrong password" ||
	fail "the store changed: $(diff <(echo "$before") <(snapshot "$LAB_STORE") | head -n 5)"

# ---- 14. a stale parcel: a newer version went by network after it was made ----------
SRC14=$WORK/src/stale
mkdir -p "$SRC14" "$WORK/m14"
echo v1 >"$SRC14/VERSION"
head -c 300000 /dev/urandom >"$SRC14/data"
create c14 stale "$SRC14" --media "$WORK/m14"
expect_rc 0 "$RC" "parcel create of version 1"
ID14=$PARCEL_ID
# (no wait: placed in the same second as the parcel was made counts as
# after it; a rollback was let through then)
echo v2 >"$SRC14/VERSION"
head -c 300000 /dev/urandom >"$SRC14/data"
send stale "$SRC14" s14
expect_rc 0 "$RC" "version 2 sent by network"
before=$(snapshot "$LAB_STORE/packages/stale")
import i14 "$WORK/m14"
expect_rc 0 "$RC" "import of the stale parcel (nothing wrong with it)"
expect_grep "the import says the parcel is stale, naming the newer version" 	"package 'stale' here is a newer version .*the parcel is stale: nothing imported" "$WORK/i14.out"
[ "$(snapshot "$LAB_STORE/packages/stale")" = "$before" ] &&
	[ "$(cat "$LAB_STORE/packages/stale/VERSION")" = v2 ] &&
	pass "the newer version in place is untouched (VERSION v2)" ||
	fail "the stale parcel rolled the package back: VERSION $(cat "$LAB_STORE/packages/stale/VERSION")"
run_ferry "$WORK/i14j.json" "$WORK/i14j.err" parcel import "$WORK/m14" --config "$LAB_CONF" --json
r=$(json_get "$WORK/i14j.json" '"%s %s" % (d["parcels"][0]["superseded"], d["parcels"][0]["imported"])')
check "parcel import --json: superseded, nothing imported ($r)" [ "$r" = "True 0" ]
list_json l14
r=$(state_of l14 "$ID14" state)
check "parcel list at the source: the stale parcel is not-needed ($r)" [ "$r" = not-needed ]

# a fifo named like a volume is skipped, not waited on forever
mkdir -p "$WORK/m15"
mkfifo "$WORK/m15/vol-001.fpv"
timeout 20 "$FERRY" parcel import "$WORK/m15" --config "$LAB_CONF" >"$WORK/i15.out" 2>"$WORK/i15.err"
RC=$?
expect_rc 1 "$RC" "import of a directory holding only a fifo named vol-001.fpv"
expect_grep "... which is named and skipped" "vol-001.fpv' is not a regular file: skipped" \
	"$WORK/i15.err"
# a file named like a volume that is not one (shorter than a volume's
# header): refused by name, exit 5 as any refused volume
mkdir -p "$WORK/m16"
head -c 100 /dev/urandom >"$WORK/m16/vol-001.fpv"
import i16 "$WORK/m16"
expect_rc 5 "$RC" "import of 100 random bytes named vol-001.fpv"
expect_grep "... named as not a volume" "vol-001.fpv: not a usable parcel volume" "$WORK/i16.err"

# ---- 17. parcel create killed -9 while it writes ------------------------------
# its record says interrupted (not "creating" for ever); ship refuses it
# naming why; the next list does not register it with the site
mkdir -p "$WORK/src/killed" "$WORK/m17"
binary_data "$WORK/src/killed/big.bin" $((48 * 1024 * 1024))
"$FERRY" parcel create "$WORK/src/killed" --to LAB --config "$CEN_CONF" --media "$WORK/m17" \
	--level 19 >"$WORK/c17.out" 2>"$WORK/c17.err" &
cpid=$!
E2E_PIDS+=("$cpid")
rec=
for _ in $(seq 200); do
	rec=$(grep -l '^state=creating$' "$CEN_STORE"/parcels/*/parcel 2>/dev/null | head -n 1)
	[ -n "$rec" ] && [ -n "$(find "$WORK/m17" -name 'vol-*.fpv' 2>/dev/null)" ] && break
	sleep 0.05
done
if kill -9 "$cpid" 2>/dev/null && [ -n "$rec" ]; then
	wait "$cpid" 2>/dev/null
	ID17=$(sed -n 's/^id=//p' "$rec")
	list_json l17 --offline
	r=$(state_of l17 "$ID17" state)
	check "parcel list: a parcel whose create was killed is interrupted ($r)" [ "$r" = interrupted ]
	run_ferry "$WORK/sh17.out" "$WORK/sh17.err" parcel ship "$ID17" --config "$CEN_CONF"
	expect_rc 1 "$RC" "parcel ship of the interrupted parcel"
	expect_grep "... says it was not written whole" "was not written whole" "$WORK/sh17.err"
	# the next parcel to that medium removes the cut volumes first: an
	# import of the medium then finds only whole volumes
	create c17b killed2 "$WORK/src/killed" --media "$WORK/m17" --level 0
	expect_rc 0 "$RC" "a new parcel to the medium of the interrupted one"
	expect_grep "... which removes the interrupted one's cut volumes" \
		"removed [0-9]+ file\(s\) of parcel ${ID17:0:12} .*interrupted" "$WORK/c17b.err"
	check "... its directory is gone from the medium" [ ! -e "$WORK/m17/ferry-parcel-${ID17:0:12}" ]
	import i17 "$WORK/m17"
	expect_rc 0 "$RC" "import of that medium"
else
	wait "$cpid" 2>/dev/null
	fail "parcel create of 48 MiB at level 19 ended before it could be killed"
fi

# ---- 18. the address a parcel's messages go by ------------------------------
# the site's first address is closed for good (its schedule lets no send
# through) and leads nowhere; a silent one (it takes the connection and
# says nothing) comes next; the registration goes by the open one, saying
# why it passed the others, and learns LAB holds the package: no parcel.
# With every network address closed now (one opens later), the parcel is
# written unregistered, and create says why. An address open to high
# priority only carries these messages all the same.
mkdir -p "$WORK/src/route" "$WORK/m18a" "$WORK/m18b" "$WORK/m18c"
binary_data "$WORK/src/route/r.bin" $((2 * 1024 * 1024))
send route "$WORK/src/route" s18
expect_rc 0 "$RC" "the package sent first"
python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
print(s.getsockname()[1], flush=True)
c = []
while True:
    c.append(s.accept()[0])
' >"$WORK/silent.port" &
E2E_PIDS+=($!)
for _ in $(seq 50); do [ -s "$WORK/silent.port" ] && break; sleep 0.1; done
ROUTE_CONF=$WORK/route.conf
{
	printf '[site]\ncode = CEN\nstore = %s\n\n' "$CEN_STORE"
	printf '[address LAB shut]\ntype = lan\nhost = 127.0.0.1:1\n'
	printf 'password-file = %s\nschedule = daily none\npriority = 1\n\n' "$CEN_PW_FILE"
	printf '[address LAB silent]\ntype = lan\nhost = 127.0.0.1:%s\n' "$(cat "$WORK/silent.port")"
	printf 'password-file = %s\npriority = 2\n\n' "$CEN_PW_FILE"
	sed -n '/^\[address LAB lan\]/,$p' "$CEN_CONF" | sed 's/^\[address LAB lan\]$/&\npriority = 3/'
} >"$ROUTE_CONF"
t0=$(date +%s)
run_ferry "$WORK/c18a.out" "$WORK/c18a.err" parcel create "$WORK/src/route" --to LAB \
	--config "$ROUTE_CONF" --name route --media "$WORK/m18a" --level 0
t1=$(date +%s)
expect_rc 0 "$RC" "parcel create past a closed and a silent address"
expect_grep "... registers by the open address: LAB holds it, no parcel" \
	"already holds 'route' complete: no parcel needed" "$WORK/c18a.err"
expect_grep "... saying why it passed the silent one" \
	"127.0.0.1:$(cat "$WORK/silent.port").*; trying LAB lan" "$WORK/c18a.err"
check "... which it gave up within its handshake's 20 s ($((t1 - t0)) s)" [ $((t1 - t0)) -le 30 ]
check "... nothing is left on the medium" [ -z "$(ls -A "$WORK/m18a")" ]
# killed while it waits for the silent address (its frames written, the
# site not answered yet): the record says interrupted at once, and the
# next parcel to the medium removes its volume (it had left no record,
# and its volume stayed for a minute, or for good)
mkdir -p "$WORK/m18k"
"$FERRY" parcel create "$WORK/src/route" --to LAB --config "$ROUTE_CONF" --name routek \
	--media "$WORK/m18k" --level 0 >"$WORK/c18k.out" 2>"$WORK/c18k.err" &
pk=$!
E2E_PIDS+=("$pk")
for _ in $(seq 100); do
	[ -n "$(find "$WORK/m18k" -name 'vol-*.fpv' 2>/dev/null)" ] && break
	sleep 0.05
done
sleep 0.3
kill -9 "$pk" 2>/dev/null
wait "$pk" 2>/dev/null
list_json l18 --offline
r=$(json_get "$WORK/l18.json" '[p["state"] for p in d if p["name"] == "routek"]')
check "parcel create killed before the site answered: listed interrupted ($r)" [ "$r" = "['interrupted']" ]
create c18m route2 "$WORK/src/route" --media "$WORK/m18k" --level 0
expect_grep "... the next parcel to the medium removes its volume at once" \
	"removed [0-9]+ file\(s\) of parcel .*interrupted" "$WORK/c18m.err"
[ "$(date +%S)" -lt 55 ] || sleep 6
from=$(date +%H:%M)
to=$(date -d '+10 min' +%H:%M)
sed -e '/^\[address LAB silent\]$/,/^$/d' \
	-e "s/^\[address LAB lan\]$/&\nschedule = $from-$to none; daily all/" "$ROUTE_CONF" >"$WORK/shut.conf"
run_ferry "$WORK/c18b.out" "$WORK/c18b.err" parcel create "$WORK/src/route" --to LAB \
	--config "$WORK/shut.conf" --name route --media "$WORK/m18b" --level 0
expect_rc 0 "$RC" "parcel create with every network address closed"
expect_grep "... says none is open now and the parcel carries every segment" \
	"no network address of site LAB is open now .*carry every segment.*once LAB is open" \
	"$WORK/c18b.err"
check "... no connection was tried" bash -c "! grep -q 'cannot connect' '$WORK/c18b.err'"
check "... the parcel is written" [ "$(nvols "$WORK/m18b")" -ge 1 ]
sed -e '/^\[address LAB silent\]$/,/^$/d' \
	-e 's/^\[address LAB lan\]$/&\nschedule = daily high/' "$ROUTE_CONF" >"$WORK/high.conf"
run_ferry "$WORK/c18c.out" "$WORK/c18c.err" parcel create "$WORK/src/route" --to LAB \
	--config "$WORK/high.conf" --name route --media "$WORK/m18c" --level 0
expect_grep "an address open to high priority only carries the registration" \
	"already holds 'route' complete: no parcel needed" "$WORK/c18c.err"

stop_serve
e2e_finish
