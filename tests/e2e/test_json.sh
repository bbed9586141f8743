#!/bin/bash
# test_json.sh - what scripts rely on: every --json output is exactly one
# JSON document (resume of two transfers, and of none), with the same
# field types in send, resume and status (level a number everywhere), a
# failure carries its message; human summaries go to stdout, diagnostics
# to stderr; an unknown name is an error naming it; a configuration error
# prints nothing on stdout; a resume whose source is gone is recorded as
# failed.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init test_json
SENDER_RETRIES=0
write_configs

O=$WORK/out
E=$WORK/err
for p in p1 p2 p3 p4 p5; do
	mkdir -p "$WORK/$p"
	head -c 300000 /dev/urandom >"$WORK/$p/data"
done

# ---- failures (no receiver yet) ------------------------------------------------
run_ferry "$WORK/f1.json" "$WORK/f1.err" send "$WORK/p1" --to LAB \
	--config "$CEN_CONF" --json
expect_rc 1 "$RC" "send --json to a site that does not answer"
check "send --json on failure prints one JSON document" json_ok "$WORK/f1.json"
r=$(json_get "$WORK/f1.json" '"%s|%s" % (d["ok"], d["error"])')
case $r in
False\|*"cannot connect"*) pass "the failure object says why: ${r#*|}" ;;
*) fail "the failure object does not carry the message: $r" ;;
esac
run_ferry "$WORK/f0.json" "$WORK/f0.err" send "$WORK/nosuchdir" --to LAB \
	--config "$CEN_CONF" --json
expect_rc 1 "$RC" "send --json of a missing source"
check "send --json of a missing source prints one JSON document" json_ok "$WORK/f0.json"
r=$(json_get "$WORK/f0.json" '"%s|%s|%s" % (d["ok"], d["transfer"], d["error"])')
case $r in
False\|None\|*nosuchdir*) pass "it says ok false, no transfer, and names the path: ${r##*|}" ;;
*) fail "send --json of a missing source: $r" ;;
esac
for p in p2 p3; do
	run_ferry "$O" "$E" send "$WORK/$p" --to LAB --config "$CEN_CONF"
	expect_rc 1 "$RC" "send $p with no receiver"
done
check "a failed send prints nothing on stdout" test ! -s "$O"
expect_grep "a failed send says how to resume, on stderr" \
	"ferry resume .* --config" "$E"

# ---- unknown names: an error naming them ------------------------------------------------
for cmd in status resume verify; do
	conf=$CEN_CONF
	[ "$cmd" = verify ] && conf=$LAB_CONF
	run_ferry "$O" "$E" "$cmd" nosuch --config "$conf" --json
	expect_rc 1 "$RC" "$cmd of an unknown name"
	expect_grep "$cmd names the unknown name on stderr" "'nosuch'" "$E"
	check "$cmd of an unknown name prints nothing on stdout" test ! -s "$O"
done

# ---- status --json: types ------------------------------------------------------------------
run_ferry "$WORK/st.json" "$E" status --json --config "$CEN_CONF"
check "status --json is one JSON document" json_ok "$WORK/st.json"
r=$(json_get "$WORK/st.json" \
	'",".join(sorted(set("%s/%s" % (type(e["level"]).__name__, type(e["level_auto"]).__name__) for e in d if e["direction"] == "out")))')
[ "$r" = "int/bool" ] && pass "status: level is a number, level_auto a boolean" ||
	fail "status: level/level_auto types are '$r', not int/bool"

# ---- resume: one by name (human), then two (JSON), then none (JSON) ------------------------
start_serve
run_ferry "$O" "$E" resume p3 --config "$CEN_CONF"
expect_rc 0 "$RC" "resume p3"
expect_grep "resume prints its summary on stdout" "^sent 'p3' to LAB" "$O"
check "resume's summary is not on stderr" bash -c "! grep -q \"^sent 'p3'\" '$E'"

run_ferry "$WORK/r2.json" "$E" resume --json --config "$CEN_CONF"
expect_rc 0 "$RC" "resume --json of two transfers"
check "resume --json of two transfers is one JSON document" json_ok "$WORK/r2.json"
r=$(json_get "$WORK/r2.json" \
	'"%s %d %s" % (d["ok"], len(d["transfers"]), sorted(t["name"] + ":" + str(t["ok"]) for t in d["transfers"]))')
[ "$r" = "True 2 ['p1:True', 'p2:True']" ] && pass "resume --json lists both transfers: $r" ||
	fail "resume --json of two: $r"
r=$(json_get "$WORK/r2.json" 'sorted(set(type(t["level"]).__name__ for t in d["transfers"]))')
[ "$r" = "['int']" ] && pass "resume: level is a number" || fail "resume: level types $r"

run_ferry "$WORK/r0.json" "$E" resume --json --config "$CEN_CONF"
expect_rc 0 "$RC" "resume --json with nothing to resume"
check "resume --json of none is one JSON document" json_ok "$WORK/r0.json"
r=$(json_get "$WORK/r0.json" '"%s %d" % (d["ok"], len(d["transfers"]))')
[ "$r" = "True 0" ] && pass "resume --json of none: ok, no transfers" ||
	fail "resume --json of none: $r"

# ---- send: summary on stdout; --json types match status's ------------------------------------
run_ferry "$O" "$E" send "$WORK/p4" --to LAB --config "$CEN_CONF"
expect_rc 0 "$RC" "send p4"
expect_grep "send prints its summary on stdout" "^sent 'p4' to LAB" "$O"
check "send's summary is not on stderr" bash -c "! grep -q \"^sent 'p4'\" '$E'"
run_ferry "$WORK/s5.json" "$E" send "$WORK/p5" --to LAB --config "$CEN_CONF" \
	--json --level auto
expect_rc 0 "$RC" "send p5 --json"
check "send --json is one JSON document" json_ok "$WORK/s5.json"
r=$(json_get "$WORK/s5.json" \
	'"%s %s %s" % (type(d["level"]).__name__, d["level_auto"], d["error"])')
[ "$r" = "int True None" ] && pass "send: level a number, level_auto true, error null" ||
	fail "send --json: level/level_auto/error are '$r'"
run_ferry "$WORK/st2.json" "$E" status p5 --json --config "$CEN_CONF"
r=$(python3 - "$WORK/s5.json" "$WORK/st2.json" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
t = [e for e in json.load(open(sys.argv[2])) if e["direction"] == "out"][0]
bad = [k for k in s if k in t and type(s[k]) is not type(t[k]) and s[k] is not None and t[k] is not None]
print("same" if not bad else "differ: " + ",".join(bad))
EOF
)
[ "$r" = same ] && pass "fields shared by send and status have the same types" ||
	fail "send and status field types $r"

# ---- a configuration error prints nothing on stdout; a failure names what it was --
run_ferry "$WORK/c1.json" "$WORK/c1.err" send "$WORK/p1" --to NOPE --config "$CEN_CONF" --json
expect_rc 3 "$RC" "send --json to a site with no address"
check "... stdout stays empty" [ ! -s "$WORK/c1.json" ]
expect_grep "... the error lists the sites there are addresses for" \
	"no address for site 'NOPE' .*sites with addresses: LAB" "$WORK/c1.err"
run_ferry "$WORK/c2.json" "$WORK/c2.err" send "$WORK/no-such-dir" --to LAB --config "$CEN_CONF" --json
expect_rc 1 "$RC" "send --json of a path that does not exist"
r=$(json_get "$WORK/c2.json" '"%s %s %s" % (d["name"], d["site"], d["ok"])')
check "... its JSON names the package and the site it was asked for ($r)" [ "$r" = "no-such-dir LAB False" ]

# ---- a resume whose source is gone is recorded as failed ---------------------------
stop_serve
mkdir -p "$WORK/gone"
head -c 300000 /dev/urandom >"$WORK/gone/data"
run_ferry "$WORK/g1.json" "$WORK/g1.err" send "$WORK/gone" --to LAB --config "$CEN_CONF" --json
mv "$WORK/gone" "$WORK/gone-moved"
run_ferry "$WORK/g2.out" "$WORK/g2.err" resume gone --config "$CEN_CONF"
expect_rc 1 "$RC" "resume of a transfer whose source was moved away"
run_ferry "$WORK/g3.json" "$WORK/g3.err" status gone --json --config "$CEN_CONF"
r=$(json_get "$WORK/g3.json" '"%s|%s" % (d[0]["state"], "No such file" in (d[0]["error"] or ""))')
check "status says the transfer failed, and why ($r)" [ "$r" = "failed|True" ]

e2e_finish
