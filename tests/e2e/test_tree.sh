#!/bin/bash
# test_tree.sh - a realistic tree (3000 small files, empty files and dirs,
# modes, symlinks in and out of the package, 30 MB of binaries) goes
# across byte for byte; status, verify and a second (no-op) send agree;
# a corrupted byte is found by verify and named. A symlink whose target
# passes through another symlink of the package is left out, and the
# rest of its tree goes. (The 3000 small files are one segment: more
# writes than the receiver keeps in flight, WRITES_MAX in serve.c.) A
# tree of 12,000 small files in 1 MiB segments: several segments at once
# each with more writes than that, raw and compressed, arrive whole.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init test_tree

SRC=$WORK/src/tree
mkdir -p "$SRC"
python3 - "$SRC" <<'EOF'
import os, random, sys
root = sys.argv[1]
rnd = random.Random(1234)
n = 0
for d in range(30):
    for s in range(10):
        p = os.path.join(root, "d%02d" % d, "s%d" % s)
        os.makedirs(p)
        for f in range(10):
            n += 1
            size = 0 if n % 37 == 0 else rnd.randrange(1, 3000)
            with open(os.path.join(p, "f%02d" % f), "wb") as fh:
                fh.write(bytes(rnd.getrandbits(8) for _ in range(size)))
EOF
mkdir -p "$SRC/empty" "$SRC/d00/s0/deep/er/empty2" "$SRC/bin" "$SRC/private" \
	"$SRC/links" "$SRC/big"
: >"$SRC/empty-file"
printf '#!/bin/sh\necho tool\n' >"$SRC/bin/tool"
chmod 0750 "$SRC/bin/tool"
printf 'read only\n' >"$SRC/bin/readonly.txt"
chmod 0444 "$SRC/bin/readonly.txt"
printf 'secret\n' >"$SRC/private/secret.txt"
chmod 0600 "$SRC/private/secret.txt"
chmod 0700 "$SRC/private"
ln -s ../d00/s0/f01 "$SRC/links/to-file"
ln -s ../d01 "$SRC/links/to-dir"
ln -s /etc/passwd "$SRC/links/escape_passwd"
binary_data "$SRC/big/blob.bin" $((30 * 1024 * 1024))
chmod 0750 "$SRC" # the package's own directory, not a default mode
touch -d '2010-01-02 03:04:05.123456789' "$SRC/private" "$SRC" # (last: the
# root's own time, which what went into it changed)
nfiles=$(find "$SRC" -type f | wc -l)
log "source: $nfiles files, $(du -sh "$SRC" | cut -f1)"
[ "$nfiles" -ge 3000 ] || die "test data: only $nfiles files generated"

start_serve
DST=$LAB_STORE/packages/tree

# ---- first send --------------------------------------------------------------
# the symlink to /etc/passwd is left out: listed, and exit 6 (incomplete)
run_ferry "$WORK/send1.json" "$WORK/send1.err" send "$SRC" --to LAB \
	--config "$CEN_CONF" --json
expect_rc 6 "$RC" "send of the tree (a symlink left out)"
expect_one_attempt "$WORK/send1.err" "$WORK/send1.json"
check "send --json prints one JSON document" json_ok "$WORK/send1.json"
lo=$(json_get "$WORK/send1.json" '(d["ok"], "left out" in d["error"], d["left_out"])')
[ "$lo" = "(False, True, [{'path': 'links/escape_passwd', 'type': 'symlink out of the package'}])" ] &&
	pass "send JSON lists the symlink left out" || fail "send JSON: $lo"
segs=$(json_get "$WORK/send1.json" 'd["segments"]')
sent=$(json_get "$WORK/send1.json" 'd["segments_sent"]')
[ -n "$segs" ] && [ "$sent" = "$segs" ] &&
	pass "first send sent every segment ($sent of $segs)" ||
	fail "first send: segments_sent '$sent', segments '$segs'"
expect_grep "sender warns about the symlink leaving the package" \
	"escape_passwd.*/etc/passwd|/etc/passwd.*escape_passwd" "$WORK/send1.err"
expect_grep "... saying it is absolute" "'/etc/passwd', an absolute path" "$WORK/send1.err"

compare_trees "$SRC" "$DST" "received tree" escape_passwd
check "the package directory's own mtime is carried ($(stat -c %y "$DST"))" \
	[ "$(stat -c %y "$SRC")" = "$(stat -c %y "$DST")" ]
check "... and a directory's in it" \
	[ "$(stat -c %y "$SRC/private")" = "$(stat -c %y "$DST/private")" ]
if [ -e "$DST/links/escape_passwd" ] || [ -L "$DST/links/escape_passwd" ]; then
	fail "the symlink to /etc/passwd was carried over"
else
	pass "the symlink to /etc/passwd was left out"
fi
[ "$(readlink "$DST/links/to-file" 2>/dev/null)" = ../d00/s0/f01 ] &&
	pass "symlink inside the package kept with its target" ||
	fail "symlink links/to-file: '$(readlink "$DST/links/to-file" 2>&1)'"
m_src=$(stat -c %a "$SRC")
m_dst=$(stat -c %a "$DST" 2>/dev/null)
[ "$m_src" = "$m_dst" ] &&
	pass "package root directory keeps its mode ($m_src)" ||
	fail "package root directory mode: source $m_src, received $m_dst"
[ -z "$(ls -A "$LAB_STORE/partial" 2>/dev/null)" ] &&
	pass "nothing left under partial/" ||
	fail "partial/ not empty: $(ls -A "$LAB_STORE/partial")"

# ---- verify and status ---------------------------------------------------------
run_ferry "$WORK/verify1.json" "$WORK/verify1.err" verify tree \
	--config "$LAB_CONF" --json
expect_rc 0 "$RC" "verify of the received tree"
[ "$(json_get "$WORK/verify1.json" 'd["ok"]')" = true ] &&
	pass "verify JSON says ok true" || fail "verify JSON: $(cat "$WORK/verify1.json")"

run_ferry "$WORK/st_out.json" "$WORK/st_out.err" status --json --config "$CEN_CONF"
expect_rc 0 "$RC" "status on the sender"
st=$(json_get "$WORK/st_out.json" \
	'[(e["state"], e["n_left_out"]) for e in d if e["direction"]=="out" and e["name"]=="tree"]')
# sent, but the symlink to /etc/passwd was left out (exit 6): incomplete
[ "$st" = "[('incomplete', 1)]" ] && pass "sender status: tree is incomplete, 1 left out" ||
	fail "sender status for tree: $st ($(cat "$WORK/st_out.json"))"
run_ferry "$WORK/st_in.json" "$WORK/st_in.err" status --json --config "$LAB_CONF"
expect_rc 0 "$RC" "status on the receiver"
st=$(json_get "$WORK/st_in.json" \
	'[(e["state"], e["segments_done"]==e["segments"]) for e in d if e["direction"]=="in" and e["name"]=="tree"]')
[ "$st" = "[('complete', True)]" ] && pass "receiver status: tree is complete" ||
	fail "receiver status for tree: $st ($(cat "$WORK/st_in.json"))"

# ---- sending again is a no-op -------------------------------------------------------
run_ferry "$WORK/send2.json" "$WORK/send2.err" send "$SRC" --to LAB \
	--config "$CEN_CONF" --json --skip-special
expect_rc 0 "$RC" "second send of the same tree (--skip-special)"
expect_one_attempt "$WORK/send2.err" "$WORK/send2.json"
s2=$(json_get "$WORK/send2.json" '(d["ok"], d["segments_sent"], d["wire_bytes"])')
[ "$s2" = "(True, 0, 0)" ] && pass "second send is a no-op (segments_sent 0)" ||
	fail "second send: (ok, segments_sent, wire_bytes) = $s2"
compare_trees "$SRC" "$DST" "tree after the second send" escape_passwd

# ---- corruption is found and named ---------------------------------------------------
# flip_byte FILE OFFSET: xor one byte with 0xff
flip_byte() {
	python3 - "$1" "$2" <<'EOF'
import sys
f, off = sys.argv[1], int(sys.argv[2])
with open(f, "r+b") as fh:
    fh.seek(off); b = fh.read(1); fh.seek(off); fh.write(bytes([b[0] ^ 0xFF]))
EOF
}
verify_names() { # REL OFFSET "what"
	local rel=$1 off=$2 what=$3
	flip_byte "$DST/$rel" "$off"
	run_ferry "$WORK/verify2.out" "$WORK/verify2.err" verify tree --config "$LAB_CONF"
	expect_rc 5 "$RC" "verify after corrupting $what"
	expect_grep "verify names the corrupted file '$rel'" "$rel" \
		"$WORK/verify2.out" "$WORK/verify2.err"
	run_ferry "$WORK/verify3.json" "$WORK/verify3.err" verify tree \
		--config "$LAB_CONF" --json
	[ "$RC" = 5 ] && [ "$(json_get "$WORK/verify3.json" 'd["ok"]')" = false ] &&
		pass "verify --json reports ok false" ||
		fail "verify --json after corruption: exit $RC, $(cat "$WORK/verify3.json")"
	flip_byte "$DST/$rel" "$off"
	touch -r "$SRC/$rel" "$DST/$rel" # verify checks mtimes too
	run_ferry "$WORK/verify4.out" "$WORK/verify4.err" verify tree --config "$LAB_CONF"
	expect_rc 0 "$RC" "verify after restoring the byte"
}
verify_names big/blob.bin $((20 * 1024 * 1024 + 12345)) "a byte in the middle of the big file"
verify_names d17/s4/f06 0 "a byte of a small file"

# ---- a symlink through another symlink -----------------------------------------
# lib -> real, and x -> lib/f passes through lib: followed at the
# destination it could lead anywhere lib leads, so it is left out (named,
# like a link out of the package); y -> real/f and lib itself go.
CH=$WORK/src/chain
mkdir -p "$CH/real"
echo data >"$CH/real/f"
ln -s real "$CH/lib"
ln -s lib/f "$CH/x"
ln -s real/f "$CH/y"
run_ferry "$WORK/chain.json" "$WORK/chain.err" send "$CH" --to LAB \
	--config "$CEN_CONF" --json --skip-special
expect_rc 0 "$RC" "send of a tree with a symlink through a symlink (--skip-special)"
lo=$(json_get "$WORK/chain.json" 'd["left_out"]')
check "it lists x as left out ($lo)" \
	[ "$lo" = "[{'path': 'x', 'type': 'symlink through a symlink'}]" ]
expect_grep "the sender says why" "leaving out .*chain/x.*passes through another symlink" \
	"$WORK/chain.err"
check "the rest arrived (lib and y kept, x not)" sh -c \
	"[ \"\$(readlink '$LAB_STORE/packages/chain/lib')\" = real ] &&
	 [ \"\$(readlink '$LAB_STORE/packages/chain/y')\" = real/f ] &&
	 [ ! -e '$LAB_STORE/packages/chain/x' ] && [ ! -L '$LAB_STORE/packages/chain/x' ] &&
	 cmp -s '$CH/real/f' '$LAB_STORE/packages/chain/real/f'"

# ---- many small files in small segments -------------------------------------
# about 3,500 files a segment, several segments in the receiver's slots at
# once, their writes held to WRITES_MAX: each goes on as others complete
SENDER_EXTRA="segment-size = 1M"
write_configs
MANY=$WORK/src/many
python3 - "$MANY" <<'EOF'
import os, random, sys
rnd = random.Random(77)
for i in range(12000):
    d = os.path.join(sys.argv[1], "d%02d" % (i // 500))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d" % i), "wb") as fh:
        fh.write(bytes(rnd.getrandbits(8) for _ in range(300)) if i % 2 else
                 (b"small text line %d\n" % i) * 16)
EOF
for lv in 0 3; do
	rm -rf "$LAB_STORE/packages/many"
	run_ferry "$WORK/many$lv.json" "$WORK/many$lv.err" send "$MANY" --to LAB \
		--level $lv --json --config "$CEN_CONF"
	expect_rc 0 "$RC" "send of 12,000 small files in 1 MiB segments at level $lv"
	compare_trees "$MANY" "$LAB_STORE/packages/many" "12,000 small files at level $lv"
done

e2e_finish
