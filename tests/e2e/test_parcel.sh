#!/bin/bash
# test_parcel.sh - courier parcels end to end, with the real binary:
#
#  0. `parcel create` refuses a site without a courier address, or with
#     only a courier address (no network address): exit 3.
#  1. a tree (hundreds of small files, empty files, an empty dir, a
#     symlink, 12 MiB of binaries) goes across in several volumes, cut
#     by --volume-size and by a small tmpfs medium spilling onto the next
#     --media; ship, import, identical; `parcel list` follows the states
#     created -> shipped -> received.
#  2. a tmpfs medium runs out: "media full", exit 1; what was written
#     imports, and `ferry send` completes the package over the network.
#  3. a byte flipped in a frame's payload: that segment is refused by
#     volume and segment, exit 5, the others imported; the network sends
#     the one missing segment.
#  4. a payload altered with its XXH3 hash and header checksum recomputed:
#     refused as "authentication tag mismatch", exit 5.
#  5. a volume missing: the importer names it and its segments; it comes
#     later and the package completes.
#  6. a parcel addressed to another site: refused, exit 5, nothing stored.
#  7. volumes imported twice: "already held", exit 0, nothing changes;
#     a volume named twice in one import (by two paths) is read once.
#  8. half by parcel, half by network: a parcel created while the site is
#     unreachable (not registered), half imported, `ferry send` sends only
#     the rest; `parcel list` registers it late.
#  9. an import killed with -9 mid-way resumes from its journal.
# 10. the volume format: version 2 (frames first); a volume cut in half
#     imports its frames with the registered manifest; version 1 is still
#     written (FERRY_PARCEL_V1=1) and read; a package the site holds
#     complete makes no parcel and leaves nothing on the medium.
# 11. the source changed under frames written before its hashes were
#     known (also the frame whose write closed a volume): exit 1, "source
#     changed", nothing left on the medium.
#
# Parts 1b and 2 need a tmpfs (root); without one they are skipped with a
# log line and the rest still runs.
# labels: needs-root
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init test_parcel
need_test_hooks

MEDIA=$WORK/media # the courier address's own medium
mkdir -p "$MEDIA" "$WORK/src"
# the courier address goes in through the lib's knobs, so that a config
# rewritten by start_serve (port taken) keeps it
SENDER_EXTRA="segment-size = 1M"
ADDR_EXTRA="
[address LAB usb]
type = courier
password-file = $PW_FILE
media = $MEDIA"
write_configs

# ---- helpers -----------------------------------------------------------------------

# mount_tmpfs DIR SIZE: a small tmpfs at DIR (unmounted on exit); 1 when
# this cannot be done (not root)
mount_tmpfs() {
	mkdir -p "$1"
	if mount -t tmpfs -o "size=$2" tmpfs "$1" 2>"$WORK/mount.err"; then
		E2E_MOUNTS+=("$1")
		return 0
	fi
	log "SKIP part: cannot mount a tmpfs: $(cat "$WORK/mount.err")"
	return 1
}

# create OUT NAME SRC args...: `ferry parcel create SRC --to LAB --name NAME`
# with stdout to OUT.out, stderr to OUT.err; sets RC and PARCEL_ID (the 12-hex
# parcel id from the summary line)
create() {
	local out=$1 name=$2 src=$3
	shift 3
	run_ferry "$WORK/$out.out" "$WORK/$out.err" parcel create "$src" --to LAB \
		--config "$CEN_CONF" --name "$name" "$@"
	PARCEL_ID=$(sed -nE 's/^parcel ([0-9a-f]{12}): .*/\1/p' "$WORK/$out.out" | head -n 1)
}

# import OUT paths...: `ferry parcel import` at LAB; sets RC, HELD and NSEG
# (from the summary's "H of N segments held")
import() {
	local out=$1
	shift
	run_ferry "$WORK/$out.out" "$WORK/$out.err" parcel import "$@" --config "$LAB_CONF"
	local hn
	hn=$(sed -nE 's/.*; ([0-9]+) of ([0-9]+) segments held.*/\1 \2/p' "$WORK/$out.out" |
		tail -n 1)
	HELD=${hn% *}
	NSEG=${hn#* }
}

# nvols DIR: number of volume files under DIR
nvols() { find "$1" -name 'vol-*.fpv' | wc -l; }

# seg_range TXT: the "segments: N in this volume: RANGES" part of a packing list
seg_range() { sed -nE 's/^segments: +[0-9]+ in this volume: (.*)$/\1/p' "$1"; }

# list_json OUT [--offline]: `ferry parcel list --json`; sets RC
list_json() {
	local out=$1
	shift
	run_ferry "$WORK/$out.json" "$WORK/$out.err" parcel list --config "$CEN_CONF" --json "$@"
}

# state_of OUT ID FIELD: FIELD of parcel ID in the list OUT.json
state_of() {
	json_get "$WORK/$1.json" "[p[\"$3\"] for p in d if p[\"parcel\"].startswith(\"$2\")][0]" 2>/dev/null
}

# expect_list_state OUT ID STATE "what": the JSON list says STATE for ID,
# and so does the text list
expect_list_state() {
	local out=$1 id=$2 want=$3 what=$4 got
	if json_ok "$WORK/$out.json"; then
		pass "$what: parcel list --json prints one JSON document"
	else
		fail "$what: parcel list --json is not JSON: $(head -c 300 "$WORK/$out.json")"
	fi
	got=$(state_of "$out" "$id" state)
	[ "$got" = "$want" ] && pass "$what: parcel list --json says state \"$want\"" ||
		fail "$what: parcel list --json state of $id is '$got', expected '$want'"
	run_ferry "$WORK/$out.txt" "$WORK/$out.txt.err" parcel list --config "$CEN_CONF" --offline
	grep -Eq "^$id +.* $want " "$WORK/$out.txt" &&
		pass "$what: parcel list (text) says $want" ||
		fail "$what: parcel list (text): $(grep "^$id" "$WORK/$out.txt")"
}

# snapshot DIR: every path under DIR with its size and mtime
snapshot() { (cd "$1" && find . -printf '%y %s %T@ %p\n' | LC_ALL=C sort); }

# journal_records PKGID: records in the partial journal of package PKGID
journal_records() {
	local j=$LAB_STORE/partial/$1/journal s
	s=$(stat -c %s "$j" 2>/dev/null || echo 32)
	echo $(((s > 32 ? s - 32 : 0) / 32))
}

# pkg_id TXT: the package id from a packing list
pkg_id() { sed -nE 's/^package: .*\(id ([0-9a-f]{32})\)$/\1/p' "$1"; }

# send NAME SRC OUT: `ferry send` at CEN with --json; sets RC and SENT/SEGS
send() {
	run_ferry "$WORK/$3.json" "$WORK/$3.err" send "$2" --to LAB --config "$CEN_CONF" \
		--name "$1" --json
	SENT=$(json_get "$WORK/$3.json" 'd["segments_sent"]' 2>/dev/null)
	SEGS=$(json_get "$WORK/$3.json" 'd["segments"]' 2>/dev/null)
}

# a python3 that can compute XXH3 (python3-xxhash, or libxxhash via ctypes)
cat >"$WORK/vol.py" <<'EOF'
"""vol.py CMD VOLUME [K]: look at and damage parcel volumes.
frames VOL        one line per frame record: index flags stored offset
flip VOL K        xor 0xff one byte in the middle of the payload of the
                  K-th frame record (0-based); prints its segment index
forge VOL K       change a payload byte of the K-th (raw) frame, recompute
                  its XXH3-128 hash field and its header checksum; prints
                  its segment index
xxh               exit 0 if XXH3 can be computed here
"""
import struct, sys

def xxh_funcs():
    try:
        import xxhash
        return (lambda b: xxhash.xxh3_64_intdigest(b),
                lambda b: xxhash.xxh3_128(b).digest())
    except ImportError:
        pass
    import ctypes
    lib = ctypes.CDLL("libxxhash.so.0")
    class H128(ctypes.Structure):
        _fields_ = [("low", ctypes.c_uint64), ("high", ctypes.c_uint64)]
    lib.XXH3_64bits.restype = ctypes.c_uint64
    lib.XXH3_64bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    lib.XXH3_128bits.restype = H128
    lib.XXH3_128bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    def h128(b):
        h = lib.XXH3_128bits(b, len(b))
        return struct.pack(">QQ", h.high, h.low)   # canonical: big-endian
    return (lambda b: lib.XXH3_64bits(b, len(b)), h128)

def frames(data):
    pos, out = 128, []
    while pos + 16 <= len(data):
        magic, typ, ln, _ = struct.unpack_from("<IIII", data, pos)
        if magic != 0x52505246:
            sys.exit("bad record magic at %d" % pos)
        if typ == 3:
            fh = pos + 16
            idx, raw, stored = struct.unpack_from("<III", data, fh + 24)
            out.append((fh, idx, data[fh + 5], stored))
        pos += 16 + ln + 32
    return out

cmd = sys.argv[1]
if cmd == "xxh":
    try:
        h64, h128 = xxh_funcs()
        ok = h128(b"") == bytes.fromhex("99aa06d3014798d86001c324468d497f")
        sys.exit(0 if ok else 1)
    except Exception:
        sys.exit(1)
path = sys.argv[2]
data = bytearray(open(path, "rb").read())
fr = frames(data)
if cmd == "frames":
    for fh, idx, flags, stored in fr:
        print(idx, flags, stored, fh)
    sys.exit(0)
fh, idx, flags, stored = fr[int(sys.argv[3])]
mid = fh + 64 + stored // 2
if cmd == "flip":
    data[mid] ^= 0xFF
elif cmd == "forge":
    if flags != 0:
        sys.exit("frame of segment %d is not raw (flags %d)" % (idx, flags))
    h64, h128 = xxh_funcs()
    payload = bytes(data[fh + 64:fh + 64 + stored])
    # first prove the hashes are computed as ferry does
    if h128(payload) != bytes(data[fh + 40:fh + 56]):
        sys.exit("XXH3-128 of the payload does not match the frame's hash field")
    if struct.pack("<Q", h64(bytes(data[fh:fh + 56]))) != bytes(data[fh + 56:fh + 64]):
        sys.exit("XXH3-64 of the header does not match its checksum")
    data[mid] ^= 0x5A
    payload = bytes(data[fh + 64:fh + 64 + stored])
    data[fh + 40:fh + 56] = h128(payload)
    data[fh + 56:fh + 64] = struct.pack("<Q", h64(bytes(data[fh:fh + 56])))
else:
    sys.exit("unknown command " + cmd)
with open(path, "r+b") as f:
    f.seek(fh)
    f.write(data[fh:fh + 64 + stored])
print(idx)
EOF
XXPY=
for py in python3 /usr/bin/python3 /usr/local/bin/python3; do
	if command -v "$py" >/dev/null && "$py" "$WORK/vol.py" xxh 2>/dev/null; then
		XXPY=$py
		break
	fi
done

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
mkdir -p "$TREE"
python3 - "$TREE" <<'EOF'
import os, random, sys
root = sys.argv[1]
rnd = random.Random(4321)
n = 0
for d in range(10):
    p = os.path.join(root, "d%02d" % d, "sub")
    os.makedirs(p)
    for f in range(30):
        n += 1
        size = 0 if n % 41 == 0 else rnd.randrange(1, 5000)
        with open(os.path.join(p, "f%02d" % f), "wb") as fh:
            fh.write(rnd.randbytes(size))
EOF
mkdir -p "$TREE/empty-dir" "$TREE/big" "$TREE/links"
: >"$TREE/empty-file"
: >"$TREE/d03/empty-too"
ln -s ../d01/sub/f07 "$TREE/links/to-f07"
binary_data "$TREE/big/blob.bin" $((12 * 1024 * 1024))
head -c $((4 * 1024 * 1024 + 555)) /dev/urandom >"$TREE/big/random.bin" # stays raw
chmod 0640 "$TREE/d02/sub/f03"
log "tree: $(find "$TREE" -type f | wc -l) files, $(du -sh "$TREE" | cut -f1)"

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

# 1b. a small tmpfs fills and the rest goes to the next --media
if mount_tmpfs "$WORK/t1" 3m; then
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
fi

# ---- 2. media full -------------------------------------------------------------------
SRC2=$WORK/src/full
mkdir -p "$SRC2"
binary_data "$SRC2/data.bin" $((8 * 1024 * 1024))
echo end >"$SRC2/z.txt"
if mount_tmpfs "$WORK/t2" 4m; then
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
fi

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
	"vol-002.fpv: segment $bad refused: content hash mismatch" "$WORK/i3.err"
[ "$HELD" = $((NSEG - 1)) ] && pass "every other segment imported ($HELD of $NSEG)" ||
	fail "after the damaged frame: held '$HELD' of '$NSEG'"
expect_grep "import names segment $bad as missing" \
	"missing segments of the parcel \(1\): $bad\$" "$WORK/i3.out"
send flip "$SRC3" s3
expect_rc 0 "$RC" "ferry send of the damaged parcel's package"
[ "$SENT" = 1 ] && pass "the network sent the one refused segment" ||
	fail "send sent '$SENT' segments of '$SEGS', expected 1"
compare_trees "$SRC3" "$LAB_STORE/packages/flip" "package after a damaged frame"

# ---- 4. a frame altered with its hashes recomputed -----------------------------------
if [ -z "$XXPY" ]; then
	log "SKIP part 4: no python3 with xxhash (apt-get install python3-xxhash) nor libxxhash.so.0"
else
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
fi

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
gap=$(seg_range "$D5/vol-002.txt")
import i5 "${rest[@]}"
expect_rc 0 "$RC" "import of every volume but vol-002"
expect_grep "import names the missing volume" "^missing volumes: vol-002.fpv\$" "$WORK/i5.out"
expect_grep "import names vol-002's segments ($gap) as missing" \
	"^missing segments of the parcel \([0-9]+\): $gap\$" "$WORK/i5.out"
held5=$HELD
j5=$(journal_records "$(pkg_id "$D5/vol-001.txt")")
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
expect_grep "its packing list says the others are at the destination" \
	"the others were already at the destination" "$M5B"/ferry-parcel-*/vol-001.txt

# 7. the same volumes again
import i7 "${rest[@]}"
expect_rc 0 "$RC" "second import of the same volumes"
expect_grep "second import: nothing imported, all already held" \
	"0 segment\(s\) imported, $held5 already held, 0 refused" "$WORK/i7.out"
[ "$HELD" = "$held5" ] && pass "second import: still $HELD segments held" ||
	fail "second import: held $HELD, was $held5"
[ "$(journal_records "$(pkg_id "$D5/vol-001.txt")")" = "$j5" ] &&
	pass "second import: the journal is unchanged ($j5 records)" ||
	fail "second import: journal went from $j5 records to $(journal_records "$(pkg_id "$D5/vol-001.txt")")"
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
[ ! -e "$LAB_STORE/partial/$(pkg_id "$D5/vol-001.txt")" ] &&
	pass "no partial directory was made again for the complete package" ||
	fail "partial/$(pkg_id "$D5/vol-001.txt") exists again"

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
P9=$(pkg_id "$D9/vol-001.txt")
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
[ "$ver" = 2 ] && pass "volumes are written in version 2" || fail "volume version '$ver'"
# frames first, the manifest closing the volume: record types in file order
types=$(python3 - "$D10/vol-001.fpv" <<'EOF2'
import struct, sys
d = open(sys.argv[1], "rb").read()
pos, t = 128, []
while pos + 16 <= len(d):
    _, typ, ln, _ = struct.unpack_from("<IIII", d, pos)
    t.append(str(typ))
    pos += 16 + ln + 32
print("".join(t))
EOF2
)
[[ "$types" =~ ^3+124$ ]] && pass "version 2 layout: frames, then manifest, segment list, trailer ($types)" ||
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
cp "$WORK/vol-001.whole" "$D10/vol-001.fpv"
import i10b "$M10"
expect_rc 0 "$RC" "import of the whole parcel after the cut volume"
compare_trees "$SRC10" "$LAB_STORE/packages/fmt" "package after a cut volume"
# version 1 (manifest first) is still written on request and read
M10V=$WORK/m10v1
mkdir -p "$M10V"
FERRY_PARCEL_V1=1 create c10v fmt1 "$SRC10" --media "$M10V" --volume-size 3M --level 0
expect_rc 0 "$RC" "parcel create in version 1"
ver=$(od -An -tu2 -j4 -N2 "$M10V/ferry-parcel-$PARCEL_ID/vol-001.fpv" | tr -d ' ')
[ "$ver" = 1 ] && pass "FERRY_PARCEL_V1=1 writes version 1" || fail "volume version '$ver'"
import i10c "$M10V"
expect_rc 0 "$RC" "import of a version 1 parcel"
compare_trees "$SRC10" "$LAB_STORE/packages/fmt1" "package by a version 1 parcel"
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
# frames no longer match the manifest.
SRC11=$WORK/src/chg
mkdir -p "$SRC11"
binary_data "$SRC11/b.bin" $((3 * 1024 * 1024))

# changed_under OUT NAME MEDIA AT args...: a fresh a.bin; `parcel create`
# with the hashing held back 3 s; once vol-001 holds 2 MiB of frames,
# a.bin is changed at byte AT. Sets RC and SZ (vol-001's size then).
changed_under() {
	local out=$1 name=$2 media=$3 at=$4 cpid i
	shift 4
	binary_data "$SRC11/a.bin" $((3 * 1024 * 1024))
	mkdir -p "$media"
	FERRY_HASH_DELAY_MS=3000 "$FERRY" parcel create "$SRC11" --to LAB \
		--config "$CEN_CONF" --name "$name" --media "$media" --level 0 "$@" \
		>"$WORK/$out.out" 2>"$WORK/$out.err" &
	cpid=$!
	E2E_PIDS+=("$cpid")
	SZ=0
	for ((i = 0; i < 1000; i++)); do
		SZ=$(find "$media" -name 'vol-001.fpv' -printf '%s\n' 2>/dev/null | head -n 1)
		[ "${SZ:-0}" -gt $((2 * 1024 * 1024)) ] && break
		sleep 0.01
	done
	printf 'changed' | dd of="$SRC11/a.bin" bs=1 seek="$at" conv=notrunc status=none
	wait "$cpid"
	RC=$?
	log "$out: vol-001 held ${SZ:-0} bytes when a.bin was changed"
}

M11=$WORK/m11
changed_under c11 chg "$M11" 1000
[ "${SZ:-0}" -gt $((2 * 1024 * 1024)) ] && pass "frames were on the medium before the hashes" ||
	fail "no frame was written within 10 s"
expect_rc 1 "$RC" "parcel create whose source changed under it"
expect_grep "the error says the source changed" "no longer matches its hash: the source changed" \
	"$WORK/c11.err"
left=$(find "$M11" -mindepth 1 | wc -l)
[ "$left" = 0 ] && pass "no volume of it is left on the medium" ||
	fail "left on the medium: $(find "$M11")"
# 11b. in 3M volumes: the third segment's frame is the one that closes
# the first volume, which waits for the hashes; that frame is changed
M11B=$WORK/m11b
changed_under c11b chg2 "$M11B" $((2 * 1024 * 1024 + 1000)) --volume-size 3M
expect_rc 1 "$RC" "parcel create whose third segment changed while the first volume waited"
expect_grep "the error names segment 2" "segment 2 of .* no longer matches its hash" "$WORK/c11b.err"
left=$(find "$M11B" -mindepth 1 | wc -l)
[ "$left" = 0 ] && pass "no volume of that parcel is left either" ||
	fail "left on the medium: $(find "$M11B")"

stop_serve
e2e_finish
