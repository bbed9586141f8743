#!/bin/bash
# test_repair.sh - a package damaged at the receiver is found and repaired.
#
# verify names every difference in one run (human and --json), exit 5;
# verify --repair marks the damaged segments missing, and the next send
# (case 1) or resume (case 2) of the same package carries exactly those
# segments, written in place; verify then passes and the files are the
# source's again. 16 KiB segments keep it small.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init test_repair

SEG=16384
SENDER_EXTRA="segment-size = 16K"
write_configs
SRC=$WORK/src
DST=$LAB_STORE/packages/pkg
mkdir -p "$SRC/sub"
head -c 1000 /dev/urandom >"$SRC/a.txt"
head -c 1000 /dev/urandom >"$SRC/b.txt"
binary_data "$SRC/big.bin" 200000
head -c 50000 /dev/urandom >"$SRC/sub/c.bin"
chmod 644 "$SRC/sub/c.bin"
ln -s ../a.txt "$SRC/sub/link"
mkdir "$SRC/empty"
: >"$SRC/sub/zero"
start_serve

# stream offset of a file (files laid end to end in path byte order)
stream_off() {
	python3 - "$SRC" "$1" <<'EOF'
import os, sys
root, want = sys.argv[1], sys.argv[2]
files = []
for d, dirs, fs in os.walk(root):
    for f in fs:
        p = os.path.join(d, f)
        if os.path.isfile(p) and not os.path.islink(p):
            files.append(os.path.relpath(p, root))
off = 0
for f in sorted(files, key=lambda s: s.encode()):
    if f == want:
        print(off); sys.exit(0)
    off += os.path.getsize(os.path.join(root, f))
sys.exit(1)
EOF
}
seg_of() { echo $((($(stream_off "$1") + $2) / SEG)); }

# flip_byte FILE OFFSET: the damage of a failing disk, mtime unchanged
flip_byte() {
	python3 - "$1" "$2" <<'EOF'
import os, sys
f, off = sys.argv[1], int(sys.argv[2])
st = os.stat(f)
with open(f, "r+b") as fh:
    fh.seek(off); b = fh.read(1); fh.seek(off); fh.write(bytes([b[0] ^ 0xFF]))
os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
EOF
}

verify() { # OUT [args]: ferry verify pkg, RC set
	local out=$1
	shift
	run_ferry "$out" "$out.err" verify pkg --config "$LAB_CONF" "$@"
}

run_ferry "$WORK/send1.json" "$WORK/send1.err" send "$SRC" --to LAB \
	--config "$CEN_CONF" --name pkg --json
expect_rc 0 "$RC" "first send"
TOTAL=$(json_get "$WORK/send1.json" 'd["segments"]')
TRANSFER=$(json_get "$WORK/send1.json" 'd["transfer"]')
check "the package has several segments ($TOTAL)" [ "${TOTAL:-0}" -ge 10 ]
verify "$WORK/v0.out" --repair
expect_rc 0 "$RC" "verify --repair of an intact package"
expect_grep "it says there is nothing to repair" "nothing to repair" "$WORK/v0.out"

# ---- case 1: a flipped byte, a mode, a removed file, an extra file ---------------
flip_byte "$DST/big.bin" 100000
verify "$WORK/v1.out"
expect_rc 5 "$RC" "verify after a byte of big.bin was flipped"
expect_grep "verify names big.bin" "'big.bin'" "$WORK/v1.out"

chmod 600 "$DST/sub/c.bin"
rm "$DST/b.txt"
printf 'x\n' >"$DST/extra"$'\n'"name"
verify "$WORK/v2.out"
expect_rc 5 "$RC" "verify with four differences"
expect_grep "content of big.bin reported" "'big.bin'.*(content|hash)" "$WORK/v2.out"
expect_grep "mode of sub/c.bin reported" "'sub/c.bin'.*mode.*0600" "$WORK/v2.out"
expect_grep "missing b.txt reported" "'b.txt'.*missing" "$WORK/v2.out"
expect_grep "extra file reported, its newline escaped" \
	"'extra\\\\nname'.*not in the package" "$WORK/v2.out"
verify "$WORK/v2.json" --json
expect_rc 5 "$RC" "verify --json with four differences"
kinds=$(json_get "$WORK/v2.json" \
	'(d["ok"], sorted((x["kind"], x["path"]) for x in d["differences"]))')
want="(False, [('content', 'big.bin'), ('extra', 'extra\\nname'), ('missing', 'b.txt'), ('mode', 'sub/c.bin')])"
[ "$kinds" = "$want" ] && pass "verify --json lists the four differences" ||
	fail "verify --json differences: $kinds, wanted $want ($(cat "$WORK/v2.json"))"

verify "$WORK/r1.out" --repair
expect_rc 5 "$RC" "verify --repair (the package still waits for its segments)"
expect_grep "repair says what it leaves: the extra file" \
	"extra.*(leaves|remove it)" "$WORK/r1.out"
WANT=$(printf '%s\n' "$(seg_of big.bin 100000)" "$(seg_of b.txt 0)" |
	sort -u | wc -l)
expect_grep "repair says how many segments the next send carries" \
	"$WANT segment" "$WORK/r1.out"
# a prune at LAB meanwhile keeps the repair's mark
sleep 2.1
run_ferry "$WORK/prune.out" "$WORK/prune.err" prune --older-than 1s --config "$LAB_CONF"
expect_rc 0 "$RC" "prune while a repair waits"
expect_grep "prune keeps the package waiting for its repair" "kept .*repair" "$WORK/prune.out"
run_ferry "$WORK/st.json" "$WORK/st.err" status --json --config "$LAB_CONF"
st=$(json_get "$WORK/st.json" '[e["state"] for e in d if e["direction"] == "in" and e["name"] == "pkg"]')
[ "$st" = "['repairing']" ] &&
	pass "status shows the package once, repairing (not complete too)" ||
	fail "status of the package being repaired: $st"
run_ferry "$WORK/send2.json" "$WORK/send2.err" send "$SRC" --to LAB \
	--config "$CEN_CONF" --name pkg --json
expect_rc 0 "$RC" "send after verify --repair"
got=$(json_get "$WORK/send2.json" '(d["segments_sent"], d["segments_skipped"])')
[ "$got" = "($WANT, $((TOTAL - WANT)))" ] &&
	pass "the send carried exactly the $WANT damaged segments" ||
	fail "send after repair: (sent, skipped) = $got, wanted ($WANT, $((TOTAL - WANT)))"
verify "$WORK/v3.out"
expect_rc 5 "$RC" "verify after the repair: only the extra file is left"
check "verify now names only the extra file" \
	[ "$(grep -c "^pkg: '" "$WORK/v3.out")" = 1 ]
rm "$DST/extra"$'\n'"name"
verify "$WORK/v4.out"
expect_rc 0 "$RC" "verify passes once the extra file is gone"
compare_trees "$SRC" "$DST" "package after the repair by send"

# ---- case 2: two flipped bytes in two files, repaired by resume ------------------
flip_byte "$DST/sub/c.bin" 20000
flip_byte "$DST/big.bin" 150000
touch -d '2001-01-01' "$DST/a.txt"
verify "$WORK/v5.json" --json
expect_rc 5 "$RC" "verify --json after two flips and a touch"
kinds=$(json_get "$WORK/v5.json" 'sorted((x["kind"], x["path"]) for x in d["differences"])')
want="[('content', 'big.bin'), ('content', 'sub/c.bin'), ('mtime', 'a.txt')]"
[ "$kinds" = "$want" ] && pass "verify --json lists both contents and the mtime" ||
	fail "verify --json differences: $kinds, wanted $want"
WANT=$(printf '%s\n' "$(seg_of big.bin 150000)" "$(seg_of sub/c.bin 20000)" |
	sort -u | wc -l)
verify "$WORK/r2.out" --repair
expect_rc 5 "$RC" "verify --repair before the resume"
run_ferry "$WORK/resume.json" "$WORK/resume.err" resume "$TRANSFER" \
	--config "$CEN_CONF" --json
expect_rc 0 "$RC" "resume after verify --repair"
got=$(json_get "$WORK/resume.json" 'd["transfers"][0]["segments_sent"]')
[ "$got" = "$WANT" ] && pass "the resume carried exactly the $WANT damaged segments" ||
	fail "resume after repair sent $got segments, wanted $WANT"
verify "$WORK/v6.out"
expect_rc 0 "$RC" "verify after the repair by resume"
compare_trees "$SRC" "$DST" "package after the repair by resume"
run_ferry "$WORK/send3.json" "$WORK/send3.err" send "$SRC" --to LAB \
	--config "$CEN_CONF" --name pkg --json
got=$(json_get "$WORK/send3.json" 'd["segments_sent"]')
[ "$RC" = 0 ] && [ "$got" = 0 ] && pass "a repaired package is complete again" ||
	fail "send after the repair: exit $RC, $got segments sent"

# send_again WHAT WANT: a send after a repair carries WANT segments, and
# the package is whole again
send_again() {
	run_ferry "$WORK/s.json" "$WORK/s.err" send "$SRC" --to LAB \
		--config "$CEN_CONF" --name pkg --json
	got=$(json_get "$WORK/s.json" 'd["segments_sent"]')
	[ "$RC" = 0 ] && [ "$got" = "$2" ] &&
		pass "$1: the send carried the $2 segments marked" ||
		fail "$1: send exit $RC, $got segments sent, wanted $2"
	verify "$WORK/s.verify"
	expect_rc 0 "$RC" "$1: verify after the send"
	compare_trees "$SRC" "$DST" "$1"
}

# ---- case 3: only metadata: put back at once, nothing to send -------------------
chmod 700 "$DST/sub/c.bin"
touch -d '2002-02-02' "$DST/sub"
rm "$DST/sub/link" "$DST/sub/zero"
rmdir "$DST/empty"
verify "$WORK/r3.out" --repair
expect_rc 0 "$RC" "verify --repair of modes, times, a link, a dir and an empty file"
expect_grep "it says the package is ok after the repair" "ok after the repair" \
	"$WORK/r3.out"
verify "$WORK/v7.out"
expect_rc 0 "$RC" "verify after the metadata repair"
compare_trees "$SRC" "$DST" "package after the metadata repair"

# ---- case 4: a directory where a file was: repair refuses, touches nothing -------
mv "$DST/sub/c.bin" "$WORK/c.bin.moved"
mkdir "$DST/sub/c.bin"
verify "$WORK/r4.out" --repair
expect_rc 5 "$RC" "verify --repair with a directory where a file belongs"
expect_grep "it says to move the directory away" "'sub/c.bin'.*move it away" \
	"$WORK/r4.out"
check "no repair was marked" [ -z "$(ls "$LAB_STORE/partial")" ]
rmdir "$DST/sub/c.bin"
verify "$WORK/r5.out" --repair
expect_rc 5 "$RC" "verify --repair of the missing file"
WANT=$(( ($(stream_off sub/c.bin) + 50000 - 1) / SEG - $(stream_off sub/c.bin) / SEG + 1))
send_again "a missing file" "$WANT"

# ---- case 5: a file cut short ------------------------------------------------------
truncate -s 1000 "$DST/big.bin"
touch -r "$SRC/big.bin" "$DST/big.bin"
verify "$WORK/v8.out"
expect_grep "verify names the size" "'big.bin' has 1000 bytes, the package 200000" \
	"$WORK/v8.out"
verify "$WORK/r6.out" --repair
expect_rc 5 "$RC" "verify --repair of a file cut short"
WANT=$(( ($(stream_off big.bin) + 200000 - 1) / SEG - $(stream_off big.bin) / SEG + 1))
send_again "a file cut short" "$WANT"

# ---- case 6: the package directory is gone -----------------------------------------
rm -rf "$DST"
verify "$WORK/r7.out" --repair
expect_rc 5 "$RC" "verify --repair of a package whose directory is gone"
expect_grep "it says the next send carries all of it" "carries all of it" \
	"$WORK/r7.out"
send_again "a package directory gone" "$TOTAL"

e2e_finish
