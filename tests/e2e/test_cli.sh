#!/bin/bash
# test_cli.sh - the command line's contract: help, usage errors (exit 2),
# config errors (exit 3) that name file, line and key, secrets kept out
# of configs, a missing source named, status on an empty store, one
# receiver per store.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init test_cli

O=$WORK/out
E=$WORK/err

# ---- help ----------------------------------------------------------------------
run_ferry "$O" "$E" --help
expect_rc 0 "$RC" "ferry --help"
expect_grep "ferry --help lists the send command" '^ *send ' "$O"
run_ferry "$O" "$E" send --help
expect_rc 0 "$RC" "ferry send --help"
expect_grep "ferry send --help mentions --to" '--to' "$O" "$E"
for cmd in serve resume status verify; do
	run_ferry "$O" "$E" "$cmd" --help
	expect_rc 0 "$RC" "ferry $cmd --help"
done
run_ferry "$O" "$E" version
expect_rc 0 "$RC" "ferry version"
expect_grep "ferry version names the protocol and the volume format it speaks" \
	"protocol 4 \(sealed sessions, one read of the source\), parcel volume format 3 \(sealed\); (AES-256-GCM|XChaCha20-Poly1305) here" "$O"

# ---- usage errors: exit 2 ------------------------------------------------------------
run_ferry "$O" "$E" frobnicate
expect_rc 2 "$RC" "unknown command"
expect_grep "unknown command is named" "frobnicate" "$E"
run_ferry "$O" "$E"
expect_rc 2 "$RC" "no command at all"
mkdir -p "$WORK/pkg"
echo data >"$WORK/pkg/file"
run_ferry "$O" "$E" send "$WORK/pkg" --config "$CEN_CONF"
expect_rc 2 "$RC" "send without --to"
expect_grep "missing --to is explained" '--to' "$E"
expect_grep "... with the synopsis" '^usage: ferry send PATH --to SITE' "$E"
expect_grep "... and where the options are" "^Run 'ferry send --help' for its options\.$" "$E"
check "... not the whole help (the error stays in sight: $(wc -l <"$E") lines)" [ "$(wc -l <"$E")" -le 4 ]
run_ferry "$O" "$E" send --to LAB --config "$CEN_CONF"
expect_rc 2 "$RC" "send without PATH"
run_ferry "$O" "$E" send "$WORK/pkg" --to LAB --config "$CEN_CONF" --bogus
expect_rc 2 "$RC" "unknown option"
expect_grep "unknown option is named" '--bogus' "$E"
# an option of another command is refused, not ignored
run_ferry "$O" "$E" send "$WORK/pkg" --to LAB --offline --config "$CEN_CONF"
expect_rc 2 "$RC" "send --offline (plan's option)"
expect_grep "... names the option" "option '--offline' is not one of this command's" "$E"
run_ferry "$O" "$E" status --priority high --config "$CEN_CONF"
expect_rc 2 "$RC" "status --priority (send's option)"
# ... and each parcel command takes its own
run_ferry "$O" "$E" parcel ship abc --json --config "$CEN_CONF"
expect_rc 2 "$RC" "parcel ship --json (list's and import's option)"
expect_grep "... names the option and the command" "option '--json' is not one of parcel ship's" "$E"
run_ferry "$O" "$E" parcel import "$WORK" --offline --config "$CEN_CONF"
expect_rc 2 "$RC" "parcel import --offline (list's option)"
run_ferry "$O" "$E" parcel list --level 3 --config "$CEN_CONF"
expect_rc 2 "$RC" "parcel list --level (create's option)"
# a duration without its unit: 7 seconds or 7 days? Refused, nothing pruned
run_ferry "$O" "$E" prune --older-than 7 --config "$CEN_CONF"
expect_rc 2 "$RC" "prune --older-than without a unit"
expect_grep "... says a unit is needed" "--older-than '7' must be a duration with its unit" "$E"
run_ferry "$O" "$E" send "$WORK/pkg" --to LAB --config "$CEN_CONF" --level 42
expect_rc 2 "$RC" "--level out of range"
run_ferry "$O" "$E" send "$WORK/pkg" --to LAB --config "$CEN_CONF" --priority urgent
expect_rc 2 "$RC" "--priority not high/medium/low"
if [ ! -e /etc/ferry/ferry.conf ]; then
	# no config named and no default config: a configuration error
	(unset FERRY_CONFIG; "$FERRY" status >"$O" 2>"$E")
	expect_rc 3 "$?" "status without --config, FERRY_CONFIG or /etc/ferry/ferry.conf"
	expect_grep "the missing default config is named" "/etc/ferry/ferry.conf" "$E"
fi
run_ferry "$O" "$E" verify --config "$LAB_CONF"
expect_rc 2 "$RC" "verify without NAME"

# ---- config errors: exit 3 ---------------------------------------------------------------
BAD=$WORK/bad.conf
cp "$CEN_CONF" "$BAD"
printf 'retrys = 5\n' >>"$BAD"
line=$(grep -n '^retrys' "$BAD" | cut -d: -f1)
run_ferry "$O" "$E" send "$WORK/pkg" --to LAB --config "$BAD"
expect_rc 3 "$RC" "config with an unknown key"
expect_grep "the unknown-key error names the file" "$BAD" "$E"
expect_grep "the unknown-key error names the line ($line)" "line $line([^0-9]|$)" "$E"
expect_grep "the unknown-key error names the key" "retrys" "$E"
run_ferry "$O" "$E" status --config "$BAD"
expect_rc 3 "$RC" "status with an unknown key in the config"

cp "$CEN_CONF" "$BAD"
sed -i 's|^password-file = .*|password = hunter2|' "$BAD"
run_ferry "$O" "$E" send "$WORK/pkg" --to LAB --config "$BAD"
expect_rc 3 "$RC" "config with 'password = x'"
expect_grep "the password refusal says why" "password" "$E"
if grep -q hunter2 "$E" "$O"; then
	fail "the password from the config was echoed in the error"
else
	pass "the password from the config is not echoed"
fi

cp "$CEN_CONF" "$BAD"
sed -i "s|^password-file = .*|password-file = $WORK/no-such.pw|" "$BAD"
run_ferry "$O" "$E" send "$WORK/pkg" --to LAB --config "$BAD"
expect_rc 3 "$RC" "config naming a missing password file"
expect_grep "the missing password file is named" "$WORK/no-such.pw" "$E"

cp "$LAB_CONF" "$BAD"
sed -i "s|^password-file = .*|password-file = $WORK/no-such.pw|" "$BAD"
run_ferry "$O" "$E" serve --config "$BAD"
expect_rc 3 "$RC" "serve with a missing account password file"
expect_grep "serve names the missing password file" "$WORK/no-such.pw" "$E"

run_ferry "$O" "$E" status --config "$WORK/no-such.conf"
expect_rc 3 "$RC" "a config file that does not exist"
expect_grep "the missing config is named" "$WORK/no-such.conf" "$E"

cp "$CEN_CONF" "$BAD"
printf '[bogus]\nkey = 1\n' >>"$BAD"
run_ferry "$O" "$E" status --config "$BAD"
expect_rc 3 "$RC" "config with an unknown section"
expect_grep "the unknown section is named" "bogus" "$E"

cp "$CEN_CONF" "$BAD"
sed -i 's|^retries = .*|retries = many|' "$BAD"
run_ferry "$O" "$E" status --config "$BAD"
expect_rc 3 "$RC" "config with a bad value"
expect_grep "the bad value is named" "many" "$E"

# a password file readable by others works but is warned about
chmod 644 "$PW_FILE"
run_ferry "$O" "$E" status --config "$CEN_CONF"
expect_rc 0 "$RC" "status with a world-readable password file"
expect_grep "a world-readable password file is warned about" "$PW_FILE" "$E"
chmod 600 "$PW_FILE"
run_ferry "$O" "$E" status --config "$CEN_CONF"
if [ -s "$E" ]; then
	fail "status with a correct config writes to stderr: $(head -n 3 "$E")"
else
	pass "no warning with a mode-600 password file"
fi

# a RAS address whose dial command is not there, or that has no hang-up:
# warned about at once, not only when the line is wanted
cp "$CEN_CONF" "$BAD"
printf '\n[address LAB isdn]\ntype = isdn\nhost = 127.0.0.1:1\npassword-file = %s\ndial = %s\n' \
	"$PW_FILE" "$WORK/no-such-dial" >>"$BAD"
run_ferry "$O" "$E" status --config "$BAD"
expect_rc 0 "$RC" "status with a RAS address whose dial command is missing"
expect_grep "the missing dial command is named" "dial command '$WORK/no-such-dial' is not an executable file" "$E"
expect_grep "... and the missing hang-up said" "a dial command and no hang-up: the line is left up once idle" "$E"

# ---- sending something that is not there ------------------------------------------------
run_ferry "$O" "$E" send "$WORK/does-not-exist" --to LAB --config "$CEN_CONF"
[ "$RC" -ne 0 ] && pass "sending a missing path fails (exit $RC)" ||
	fail "sending a missing path exited 0"
expect_grep "the missing path is named" "$WORK/does-not-exist" "$E"
run_ferry "$O" "$E" send "$WORK/pkg" --to NOWHERE --config "$CEN_CONF"
[ "$RC" -ne 0 ] && pass "sending to a site without an address fails (exit $RC)" ||
	fail "sending to an unknown site exited 0"
expect_grep "the unknown site is named" "NOWHERE" "$E"

# ---- status on an empty store ------------------------------------------------------------
run_ferry "$O" "$E" status --config "$CEN_CONF"
expect_rc 0 "$RC" "status on an empty store"
run_ferry "$O" "$E" status --json --config "$CEN_CONF"
expect_rc 0 "$RC" "status --json on an empty store"
[ "$(json_get "$O" 'len(d)')" = 0 ] && pass "status --json on an empty store is []" ||
	fail "status --json on an empty store: $(cat "$O")"
run_ferry "$O" "$E" status --json --config "$LAB_CONF"
expect_rc 0 "$RC" "status --json on the receiver's empty store"
run_ferry "$O" "$E" resume --config "$CEN_CONF"
expect_rc 0 "$RC" "resume with nothing to resume"
run_ferry "$O" "$E" verify nothing-here --config "$LAB_CONF"
[ "$RC" -ne 0 ] && [ "$RC" -ne 2 ] && pass "verify of an unknown package fails (exit $RC)" ||
	fail "verify of an unknown package exited $RC"
expect_grep "verify names the unknown package" "nothing-here" "$E"

# ---- test switches: obeyed by a test build only, and strictly ----------------
if "$FERRY" version | grep -q 'test build'; then
	mkdir -p "$WORK/sw"
	echo x >"$WORK/sw/f"
	FERRY_NO_DIRECT=yes run_ferry "$O" "$E" send "$WORK/sw" --to LAB --config "$CEN_CONF"
	expect_rc 2 "$RC" "a test switch with a value other than 1"
	expect_grep "the bad switch is named with its value" "FERRY_NO_DIRECT='yes' must be 1" "$E"
	FERRY_STALL_MS=10s run_ferry "$O" "$E" send "$WORK/sw" --to LAB --config "$CEN_CONF"
	expect_rc 2 "$RC" "a numeric test switch that is not a number"
	expect_grep "the bad number is named" "FERRY_STALL_MS='10s' must be a number" "$E"
else
	log "not a test build: the FERRY_* switches are ignored, not checked here"
fi

# ---- one receiver per store ------------------------------------------------------
# a second `ferry serve` on the same store (another port) is refused at
# once, naming the first by its pid; the first goes on
start_serve
sed "s|^listen = .*|listen = 127.0.0.1:$((PORT + 1))|" "$LAB_CONF" >"$WORK/lab2.conf"
run_ferry "$O" "$E" serve --config "$WORK/lab2.conf"
expect_rc 1 "$RC" "a second serve on the same store"
expect_grep "... names the first by its pid, and the store" \
	"another ferry serve \(pid=$SERVE_PID\) receives into the store '$LAB_STORE'" "$E"
check "... the first goes on" kill -0 "$SERVE_PID"

# ---- a source file the sender cannot read: said at once, not retried ----------
# (run as nobody: root reads anything)
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	NB=$WORK/nobody
	mkdir -p "$NB/src"
	chmod o+x "$WORK"
	binary_data "$NB/src/a.bin" $((1024 * 1024))
	echo secret >"$NB/src/b.txt"
	chmod 000 "$NB/src/b.txt"
	install -m 600 -o 65534 "$CEN_PW_FILE" "$NB/pw"
	sed -e "s|^store = .*|store = $NB/cen|" -e "s|^password-file = .*|password-file = $NB/pw|" \
		-e "s|^retry-delay = .*|retry-delay = 3s|" -e "s|^retries = .*|retries = 2|" \
		"$CEN_CONF" >"$NB/cen.conf"
	chown -R 65534 "$NB"
	chmod 644 "$NB/cen.conf"
	t0=$(date +%s)
	RC=0
	setpriv --reuid=65534 --regid=65534 --clear-groups -- \
		"$FERRY" send "$NB/src" --to LAB --config "$NB/cen.conf" >"$O" 2>"$E" || RC=$?
	t1=$(date +%s)
	expect_rc 1 "$RC" "a send whose source has a file the sender cannot read"
	expect_grep "... names the file and why" "cannot read 'b.txt': Permission denied" "$E"
	check "... at once, not retried ($((t1 - t0)) s)" \
		bash -c "[ $((t1 - t0)) -lt 3 ] && ! grep -q 'retry 1 of' '$E'"
else
	log "not root, or no setpriv: the unreadable source is not tried"
fi
stop_serve

e2e_finish
