# parcel_lib.sh - shared setup and helpers of the courier parcel tests
# (test_parcel.sh, test_parcel_media.sh, test_parcel_forged.sh); sourced,
# not run (its name does not match test_*.sh, so ctest does not run it).
#
#   . "$(dirname "${BASH_SOURCE[0]}")/parcel_lib.sh"
#   parcel_init test_name   # e2e_init, a test build, LAB's courier address,
#                           # $WORK/vol.py
#   ... start_serve; create / import / ...; e2e_finish
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# parcel_init NAME: lib.sh's e2e_init NAME; skipped (77) on a build without
# the test switches; configs where LAB has a courier address whose own
# medium is $MEDIA (segment size 1M); the volume tool $WORK/vol.py
parcel_init() {
	e2e_init "$1"
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
	write_volpy
}

# ---- helpers -----------------------------------------------------------------------

# mount_tmpfs DIR SIZE: a small tmpfs at DIR (unmounted on exit); the test
# is skipped (exit 77) when this cannot be done (not root)
mount_tmpfs() {
	mkdir -p "$1"
	if mount -t tmpfs -o "size=$2" tmpfs "$1" 2>"$WORK/mount.err"; then
		E2E_MOUNTS+=("$1")
		return 0
	fi
	skip "cannot mount a tmpfs at $1: $(cat "$WORK/mount.err")"
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

# seg_range VOL: the segments of volume VOL, as ranges (the import's
# notation: 3,5-9), from its frames opened by vol.py
seg_range() {
	python3 "$WORK/vol.py" frames "$1" | awk '{print $1}' | sort -n | awk '
		NR == 1 { s = $1; p = $1; next }
		$1 == p + 1 { p = $1; next }
		{ out = out (out ? "," : "") (s == p ? s : s "-" p); s = $1; p = $1 }
		END { if (NR) print out (out ? "," : "") (s == p ? s : s "-" p) }'
}

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
	local j=$LAB_STORE/partial/$1/journal s r
	# partial packages are named by the listing id: the receiver's
	# record of the parcel says which
	if [ ! -e "$j" ]; then
		r=$(grep -lx "package=$1" "$LAB_STORE"/incoming/* 2>/dev/null | head -n 1)
		[ -n "$r" ] && j=$LAB_STORE/partial/$(sed -n 's/^partial=//p' "$r")/journal
	fi
	s=$(stat -c %s "$j" 2>/dev/null || echo 32)
	echo $(((s > 32 ? s - 32 : 0) / 32))
}

# pkg_id DIR: the package id of the parcel whose volumes are in DIR
# (ferry-parcel-<id12>), from the source's record of it (the volumes and
# their packing lists do not say it)
pkg_id() {
	local id=${1%/}
	id=${id##*ferry-parcel-}
	sed -nE 's/^package=([0-9a-f]{32})$/\1/p' "$CEN_STORE/parcels/$id/parcel"
}

# send NAME SRC OUT: `ferry send` at CEN with --json; sets RC and SENT/SEGS
send() {
	run_ferry "$WORK/$3.json" "$WORK/$3.err" send "$2" --to LAB --config "$CEN_CONF" \
		--name "$1" --json
	SENT=$(json_get "$WORK/$3.json" 'd["segments_sent"]' 2>/dev/null)
	SEGS=$(json_get "$WORK/$3.json" 'd["segments"]' 2>/dev/null)
}

# write_volpy: $WORK/vol.py, to look into and damage sealed volumes with
# the account's password ($PW_FILE), through libsodium (ctypes): an
# implementation of docs/FORMAT.md's sealing of its own. Its "forge" also
# needs a python3 that can compute XXH3 (python3-xxhash, or libxxhash via
# ctypes; see find_xxpy)
write_volpy() {
	cat >"$WORK/vol.py" <<'EOF'
"""vol.py CMD VOLUME [K]: look into and damage sealed parcel volumes.
frames VOL        one line per frame record, opened: index flags stored
                  offset (of the record)
types VOL         the record types in file order, as one string
regions VOL       one line per part of the volume: name offset length
                  (header, and per record rhdr, nonce, body, tag)
plain VOL         every record body opened, concatenated, to stdout
flip VOL K        xor 0xff one byte in the middle of the payload of the
                  K-th frame record (0-based); prints its segment index
flipat VOL OFF    xor 0x01 the byte at OFF
drop VOL K        remove the K-th frame record
dup VOL K         repeat the K-th frame record right after it
swap VOL K        swap the K-th and the next frame records
move VOL K DEST   take the K-th frame record out of VOL into DEST, after
                  DEST's last frame
forge VOL K       open the K-th (raw) frame, change a payload byte,
                  recompute its XXH3-128 hash field and header checksum,
                  seal it again with the same key stream and the old tag;
                  prints its segment index
xxh               exit 0 if XXH3 can be computed here
"""
import ctypes, struct, sys

PW_FILE = "@PW_FILE@"
so = ctypes.CDLL("libsodium.so.23")
if so.sodium_init() < 0:
    sys.exit("sodium_init failed")

def gh(n, msg, key=None):
    out = ctypes.create_string_buffer(n)
    so.crypto_generichash(out, ctypes.c_size_t(n), msg,
                          ctypes.c_ulonglong(len(msg)), key,
                          ctypes.c_size_t(len(key) if key else 0))
    return out.raw

def account_key(account):
    pw = open(PW_FILE, "rb").read().split(b"\n")[0].split(b"\r")[0]
    salt = gh(16, b"ferry-account:" + account)
    out = ctypes.create_string_buffer(32)
    so.crypto_pwhash_alg_argon2id13.restype = ctypes.c_int
    r = so.crypto_pwhash(out, ctypes.c_ulonglong(32), pw,
                         ctypes.c_ulonglong(len(pw)), salt,
                         ctypes.c_ulonglong(2), ctypes.c_size_t(8 << 20),
                         ctypes.c_int(so.crypto_pwhash_alg_argon2id13()))
    if r != 0:
        sys.exit("crypto_pwhash failed")
    return out.raw

def xor_stream(key, nonce, ic, data):
    out = ctypes.create_string_buffer(len(data))
    so.crypto_stream_xchacha20_xor_ic(out, bytes(data),
                                      ctypes.c_ulonglong(len(data)), nonce,
                                      ctypes.c_uint64(ic), key)
    return out.raw

def aead_open(key, nonce, ad, ct, mac):
    out = ctypes.create_string_buffer(max(len(ct), 1))
    r = so.crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
        out, None, bytes(ct), ctypes.c_ulonglong(len(ct)), bytes(mac),
        bytes(ad), ctypes.c_ulonglong(len(ad)), bytes(nonce), key)
    return out.raw[:len(ct)] if r == 0 else None

class Volume:
    def __init__(self, path):
        self.path = path
        self.data = bytearray(open(path, "rb").read())
        d = self.data
        if d[:4] != b"FRPV" or struct.unpack_from("<H", d, 4)[0] != 3:
            sys.exit("%s: not a version 3 volume" % path)
        account = bytes(d[96:112]).rstrip(b"\0")
        self.key = gh(32, b"ferry-parcel-v3" + bytes(d[8:24]),
                      account_key(account))
        if gh(16, b"ferry-parcel-check", self.key) != bytes(d[24:40]):
            sys.exit("%s: the key check fails: wrong password" % path)
        ph = bytearray(d[:128])
        ph[40:44] = b"\0" * 4
        ph[120:128] = b"\0" * 8
        self.ph = bytes(ph)
        self.recs = []   # (offset, type, len)
        pos = 128
        while pos + 16 <= len(d):
            magic, typ, ln, _ = struct.unpack_from("<IIII", d, pos)
            if magic != 0x52505246:
                sys.exit("bad record magic at %d" % pos)
            self.recs.append((pos, typ, ln))
            pos += 16 + 24 + ln + 16

    def parts(self, rec):
        pos, typ, ln = rec
        d = self.data
        return (bytes(d[pos:pos + 16]), bytes(d[pos + 16:pos + 40]),
                d[pos + 40:pos + 40 + ln], bytes(d[pos + 40 + ln:pos + 56 + ln]))

    def open(self, rec):
        rh, nonce, body, mac = self.parts(rec)
        pt = aead_open(self.key, nonce, self.ph + rh, body, mac)
        if pt is None:
            sys.exit("%s: record at %d does not open" % (self.path, rec[0]))
        return pt

    def frames(self):
        out = []
        for rec in self.recs:
            if rec[1] != 3:
                continue
            rh, nonce, body, mac = self.parts(rec)
            fh = xor_stream(self.key, nonce, 1, body[:64])
            idx, raw, stored = struct.unpack_from("<III", fh, 24)
            out.append((rec, idx, fh[5], stored))
        return out

def xxh_funcs():
    try:
        import xxhash
        return (lambda b: xxhash.xxh3_64_intdigest(b),
                lambda b: xxhash.xxh3_128(b).digest())
    except ImportError:
        pass
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

cmd = sys.argv[1]
if cmd == "xxh":
    try:
        h64, h128 = xxh_funcs()
        ok = h128(b"") == bytes.fromhex("99aa06d3014798d86001c324468d497f")
        sys.exit(0 if ok else 1)
    except Exception:
        sys.exit(1)
path = sys.argv[2]
if cmd == "flipat":
    with open(path, "r+b") as f:
        f.seek(int(sys.argv[3]))
        b = f.read(1)
        f.seek(int(sys.argv[3]))
        f.write(bytes([b[0] ^ 1]))
    sys.exit(0)
v = Volume(path)
if cmd == "frames":
    for rec, idx, flags, stored in v.frames():
        print(idx, flags, stored, rec[0])
    sys.exit(0)
if cmd == "types":
    print("".join(str(r[1]) for r in v.recs))
    sys.exit(0)
if cmd == "regions":
    print("header 0 128")
    for pos, typ, ln in v.recs:
        print("rhdr%d %d 16" % (typ, pos))
        print("nonce%d %d 24" % (typ, pos + 16))
        print("body%d %d %d" % (typ, pos + 40, ln))
        print("tag%d %d 16" % (typ, pos + 40 + ln))
    sys.exit(0)
if cmd == "plain":
    for rec in v.recs:
        sys.stdout.buffer.write(v.open(rec))
    sys.exit(0)
def rec_bytes(vol, k):
    pos, typ, ln = [r for r in vol.recs if r[1] == 3][k]
    return pos, bytes(vol.data[pos:pos + 56 + ln])
if cmd in ("drop", "dup", "swap", "move"):
    k = int(sys.argv[3])
    pos, rb = rec_bytes(v, k)
    d = v.data
    if cmd == "drop":
        d[pos:pos + len(rb)] = b""
    elif cmd == "dup":
        d[pos:pos] = rb
    elif cmd == "swap":
        pos2, rb2 = rec_bytes(v, k + 1)
        d[pos:pos2 + len(rb2)] = rb2 + rb
    else:
        dest = Volume(sys.argv[4])
        at = [r for r in dest.recs if r[1] == 1][0][0]
        dest.data[at:at] = rb
        open(dest.path, "wb").write(dest.data)
        d[pos:pos + len(rb)] = b""
    open(path, "wb").write(d)
    sys.exit(0)
rec, idx, flags, stored = v.frames()[int(sys.argv[3])]
pos, typ, ln = rec
body0 = pos + 40
mid = body0 + 64 + stored // 2
if cmd == "flip":
    v.data[mid] ^= 0xFF
elif cmd == "forge":
    if flags != 0:
        sys.exit("frame of segment %d is not raw (flags %d)" % (idx, flags))
    h64, h128 = xxh_funcs()
    rh, nonce, body, mac = v.parts(rec)
    pt = bytearray(v.open(rec))
    payload = bytes(pt[64:64 + stored])
    # first prove the hashes are computed as ferry does
    if h128(payload) != bytes(pt[40:56]):
        sys.exit("XXH3-128 of the payload does not match the frame's hash field")
    if struct.pack("<Q", h64(bytes(pt[:56]))) != bytes(pt[56:64]):
        sys.exit("XXH3-64 of the header does not match its checksum")
    pt[64 + stored // 2] ^= 0x5A
    pt[40:56] = h128(bytes(pt[64:64 + stored]))
    pt[56:64] = struct.pack("<Q", h64(bytes(pt[:56])))
    v.data[body0:body0 + ln] = xor_stream(v.key, nonce, 1, pt)
else:
    sys.exit("unknown command " + cmd)
with open(path, "r+b") as f:
    f.seek(body0)
    f.write(v.data[body0:body0 + ln])
print(idx)
EOF
	sed -i "s|@PW_FILE@|$PW_FILE|" "$WORK/vol.py"
}

# find_xxpy: sets XXPY to a python3 that can compute XXH3 for vol.py's
# "forge"; 1 when there is none
find_xxpy() {
	local py
	XXPY=
	for py in python3 /usr/bin/python3 /usr/local/bin/python3; do
		if command -v "$py" >/dev/null && "$py" "$WORK/vol.py" xxh 2>/dev/null; then
			XXPY=$py
			return 0
		fi
	done
	return 1
}

# build_tree DIR: the tree of part 1 at DIR: 300 small files (some empty)
# in 10 directories, an empty file at the top and one deeper, an empty dir,
# a relative symlink, a mode 0640 file, 12 MiB of binaries that compress and
# 4 MiB + 555 bytes of random data that stays raw
build_tree() {
	local tree=$1
	mkdir -p "$tree"
	python3 - "$tree" <<'PYEOF'
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
PYEOF
	mkdir -p "$tree/empty-dir" "$tree/big" "$tree/links"
	: >"$tree/empty-file"
	: >"$tree/d03/empty-too"
	ln -s ../d01/sub/f07 "$tree/links/to-f07"
	binary_data "$tree/big/blob.bin" $((12 * 1024 * 1024))
	head -c $((4 * 1024 * 1024 + 555)) /dev/urandom >"$tree/big/random.bin" # stays raw
	chmod 0640 "$tree/d02/sub/f03"
	log "tree: $(find "$tree" -type f | wc -l) files, $(du -sh "$tree" | cut -f1)"
}
