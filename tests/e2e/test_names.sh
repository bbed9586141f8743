#!/bin/bash
# test_names.sh - every name Linux allows is carried, and what cannot be
# carried is never dropped in silence:
#
#  1. a tree whose names hold a newline, a tab, a control byte, a
#     backslash, a leading dash, spaces and an invalid UTF-8 byte (files,
#     a directory, an in-tree symlink) arrives with every regular file
#     byte-identical under its exact name; `verify` passes.
#  2. a fifo, a unix socket and (as root) a character device are left
#     out: listed in the summary (names escaped, never raw), exit 6; with
#     -q still on stderr; in --json as "left_out": [{path, type}] with
#     "ok": false; the JSON is valid.
#  3. --skip-special: exit 0, still listed; resume keeps it, or is given
#     it, and lists the same.
#  4. `verify` names a changed file escaped.
#  5. `parcel create` walks the same way: exit 6, listed in its JSON as
#     "left_out_entries"; --skip-special: exit 0; its import carries every
#     name.
#  6. a symlink PATH (current -> release-1.2) names the package current.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init test_names

MEDIA=$WORK/media
mkdir -p "$MEDIA"
ADDR_EXTRA="
[address LAB usb]
type = courier
password-file = $PW_FILE
media = $MEDIA"
write_configs

SRC=$WORK/src/names
mkdir -p "$SRC"
python3 - "$SRC" <<'EOF'
import os, socket, sys
root = os.fsencode(sys.argv[1])
def put(name, data):
    with open(os.path.join(root, name), "wb") as f:
        f.write(data)
put(b"new\nline", b"newline\n")
put(b"tab\tname", b"tab\n")
put(b"ctl\x01byte\x7f", b"control\n")
put(b"back\\slash", b"backslash\n")
put(b"-leading-dash", b"dash\n")
put(b"with  spaces ", b"spaces\n")
put(b"bad\xffutf8", b"invalid utf-8\n")
put(b"caf\xc3\xa9", b"valid utf-8\n")
os.mkdir(os.path.join(root, b"dir\nwith\tnl"))
put(b"dir\nwith\tnl/inner\nfile", os.urandom(100000))
os.symlink(b"tab\tname", os.path.join(root, b"link\nto-tab"))
os.mkfifo(os.path.join(root, b"a\nfifo"))
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(os.path.join(root, b"a-sock"))
s.close()
EOF
DEV=0
if [ "$(id -u)" = 0 ] && mknod "$SRC/dev-null" c 1 3 2>/dev/null; then
	DEV=1
else
	log "not root (or mknod refused): the device node part is skipped"
fi
NLEFT=$((2 + DEV))

start_serve
DST=$LAB_STORE/packages/names

# the regular files, directories and symlinks of a tree, NUL-separated
listing() {
	(cd "$1" && find . -mindepth 1 \( -type f -o -type d -o -type l \) \
		-print0 | LC_ALL=C sort -z)
}

# ---- 1, 2: send --json ---------------------------------------------------------
run_ferry "$WORK/s1.json" "$WORK/s1.err" send "$SRC" --to LAB \
	--config "$CEN_CONF" --json
expect_rc 6 "$RC" "send of a tree with a fifo and a socket: incomplete"
check "send --json prints valid JSON" json_ok "$WORK/s1.json"
ok=$(json_get "$WORK/s1.json" 'd["ok"]')
[ "$ok" = false ] && pass "JSON says ok false" || fail "JSON ok is '$ok'"
# the JSON string holds the exact name: "a\nfifo" decodes to a newline
got=$(json_get "$WORK/s1.json" \
	'sorted((e["path"], e["type"]) for e in d["left_out"])')
want2=$(python3 -c "
l = [('a\nfifo', 'fifo'), ('a-sock', 'socket')]
if $DEV: l.append(('dev-null', 'char device'))
print(sorted(l))")
[ "$got" = "$want2" ] && pass "JSON left_out lists them: $got" ||
	fail "JSON left_out: '$got', expected '$want2'"
# status remembers it: the transfer is incomplete, with how many were left out
run_ferry "$WORK/st1.json" "$WORK/st1.err" status --json --config "$CEN_CONF"
st=$(json_get "$WORK/st1.json" '[(e["state"], e["n_left_out"]) for e in d if e["direction"] == "out"]')
want_st="[('incomplete', $(python3 -c "print(len($want2))"))]"
[ "$st" = "$want_st" ] && pass "status: the transfer is incomplete, $st" ||
	fail "status of the transfer that left something out: $st, expected $want_st"

if [ "$(listing "$SRC" | tr '\0' '|')" = "$(listing "$DST" | tr '\0' '|')" ] &&
	[ -n "$(listing "$DST")" ]; then
	pass "every file, directory and symlink arrived under its exact name"
else
	fail "names differ: source '$(listing "$SRC" | tr '\0\n\t' '|~^')'," \
		"received '$(listing "$DST" 2>/dev/null | tr '\0\n\t' '|~^')'"
fi
bad=0
while IFS= read -r -d '' f; do
	cmp -s "$SRC/$f" "$DST/$f" || { bad=1; log "differs: $(printf %q "$f")"; }
done < <(cd "$SRC" && find . -type f -print0)
[ "$bad" = 0 ] && pass "every regular file byte-identical" ||
	fail "some files differ"
[ "$(readlink "$DST/link"$'\n'"to-tab" 2>/dev/null)" = $'tab\tname' ] &&
	pass "symlink with a newline in its name kept with its target" ||
	fail "symlink 'link\\nto-tab' not carried"
for n in $'a\nfifo' a-sock dev-null; do
	if [ -e "$DST/$n" ] || [ -L "$DST/$n" ]; then
		fail "$(printf %q "$n") was created at the receiver"
	fi
done

run_ferry "$WORK/v.out" "$WORK/v.err" verify names --config "$LAB_CONF"
expect_rc 0 "$RC" "verify of the received package"

# no raw control byte of a name in what ferry printed
if python3 - "$WORK/s1.json" "$WORK/s1.err" "$SERVE_LOG" <<'EOF'; then
import sys
for p in sys.argv[1:]:
    b = open(p, "rb").read()
    for line in b.split(b"\n"):
        if b"\t" in line or b"\x01" in line or b"\x7f" in line or b"\xff" in line:
            sys.exit("raw control byte in %s: %r" % (p, line))
EOF
	pass "no raw control byte of a name in the output or the logs"
else
	fail "a name was printed raw"
fi

# ---- 2: text summary, and -q ---------------------------------------------------
run_ferry "$WORK/s2.out" "$WORK/s2.err" send "$SRC" --to LAB --config "$CEN_CONF"
expect_rc 6 "$RC" "send again (text summary)"
expect_grep "the summary lists what was left out" \
	"left out $NLEFT: .*a\\\\nfifo \(fifo\)" "$WORK/s2.out" "$WORK/s2.err"
expect_grep "the summary names the socket" "a-sock \(socket\)" \
	"$WORK/s2.out" "$WORK/s2.err"
[ "$DEV" = 1 ] && expect_grep "the summary names the device" \
	"dev-null \(char device\)" "$WORK/s2.out" "$WORK/s2.err"

run_ferry "$WORK/s3.out" "$WORK/s3.err" send "$SRC" --to LAB \
	--config "$CEN_CONF" -q
expect_rc 6 "$RC" "send -q"
expect_grep "-q still says what was left out, on stderr" \
	"left out $NLEFT: .*a\\\\nfifo \(fifo\)" "$WORK/s3.err"

# ---- 3: --skip-special ---------------------------------------------------------
run_ferry "$WORK/s4.json" "$WORK/s4.err" send "$SRC" --to LAB \
	--config "$CEN_CONF" --json --skip-special
expect_rc 0 "$RC" "send --skip-special"
ok=$(json_get "$WORK/s4.json" 'd["ok"]')
n=$(json_get "$WORK/s4.json" 'len(d["left_out"])')
[ "$ok" = true ] && [ "$n" = "$NLEFT" ] &&
	pass "--skip-special: ok true, still $n listed" ||
	fail "--skip-special: ok '$ok', left_out count '$n'"
run_ferry "$WORK/s5.out" "$WORK/s5.err" send "$SRC" --to LAB \
	--config "$CEN_CONF" --skip-special
expect_rc 0 "$RC" "send --skip-special (text)"
expect_grep "--skip-special still lists them" "left out $NLEFT" \
	"$WORK/s5.out" "$WORK/s5.err"

# resume goes through the same walk; a send's --skip-special is kept
run_ferry "$WORK/r1.out" "$WORK/r1.err" resume names --config "$CEN_CONF" -q
expect_rc 0 "$RC" "resume of the --skip-special send"
run_ferry "$WORK/s6.out" "$WORK/s6.err" send "$SRC" --to LAB \
	--config "$CEN_CONF" -q
run_ferry "$WORK/r2.out" "$WORK/r2.err" resume names --config "$CEN_CONF" -q
expect_rc 6 "$RC" "resume -q"
expect_grep "resume -q says what was left out" "left out $NLEFT: .*a-sock" \
	"$WORK/r2.err"
run_ferry "$WORK/r3.json" "$WORK/r3.err" resume names --config "$CEN_CONF" \
	--json --skip-special
expect_rc 0 "$RC" "resume --skip-special"
n=$(json_get "$WORK/r3.json" 'len(d["transfers"][0]["left_out"])')
[ "$n" = "$NLEFT" ] && pass "resume --json lists $n left out" ||
	fail "resume --json left_out count '$n'"

# ---- 4: parcel create ------------------------------------------------------------
mkdir -p "$WORK/src2"
cp -a "$SRC" "$WORK/src2/names2" 2>/dev/null
python3 -c 'import os,socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' \
	"$WORK/src2/names2/a-sock" 2>/dev/null
run_ferry "$WORK/p1.json" "$WORK/p1.err" parcel create "$WORK/src2/names2" \
	--to LAB --config "$CEN_CONF" --json
expect_rc 6 "$RC" "parcel create of the tree: incomplete"
check "parcel create --json prints valid JSON" json_ok "$WORK/p1.json"
n=$(json_get "$WORK/p1.json" 'len(d["left_out_entries"])')
[ "$n" = "$NLEFT" ] && pass "parcel JSON lists $n left out" ||
	fail "parcel JSON left_out_entries count '$n'"
run_ferry "$WORK/p2.out" "$WORK/p2.err" parcel create "$WORK/src2/names2" \
	--to LAB --config "$CEN_CONF" --skip-special
expect_rc 0 "$RC" "parcel create --skip-special"
expect_grep "parcel create lists what was left out" \
	"left out $NLEFT: .*a\\\\nfifo \(fifo\)" "$WORK/p2.out" "$WORK/p2.err"
run_ferry "$WORK/i1.out" "$WORK/i1.err" parcel import "$MEDIA" \
	--config "$LAB_CONF"
expect_rc 0 "$RC" "parcel import at the destination"
if [ "$(listing "$SRC" | tr '\0' '|')" = \
	"$(listing "$LAB_STORE/packages/names2" | tr '\0' '|')" ]; then
	pass "the parcel carried every name"
else
	fail "names differ after the parcel import"
fi

# ---- verify names a damaged file escaped ---------------------------------------------
printf 'NEWLINE\n' >"$DST/new"$'\n'"line"
run_ferry "$WORK/v2.out" "$WORK/v2.err" verify names --config "$LAB_CONF"
expect_rc 5 "$RC" "verify after a file with a newline in its name changed"
expect_grep "verify names it escaped" "'new\\\\nline'" "$WORK/v2.out" "$WORK/v2.err"
run_ferry "$WORK/v3.json" "$WORK/v3.err" verify names --config "$LAB_CONF" --json
check "verify --json is valid JSON" json_ok "$WORK/v3.json"

# ---- 6. the package's name is the last part of PATH as given --------------------
mkdir -p "$WORK/src6/release-1.2"
echo one >"$WORK/src6/release-1.2/f"
ln -s release-1.2 "$WORK/src6/current"
run_ferry "$WORK/n6.json" "$WORK/n6.err" send "$WORK/src6/current/" --to LAB \
	--config "$CEN_CONF" --json
r=$(json_get "$WORK/n6.json" 'd["name"]')
check "a symlink PATH names the package after the link, not its target ($r)" [ "$r" = current ]
check "... and it arrives under that name" [ "$(cat "$LAB_STORE/packages/current/f")" = one ]

e2e_finish
