#!/bin/bash
# test_admin.sh - what an administrator meets on the first day: config
# mistakes refused with file, line and value (ports, keys and sections
# given twice); serve refusing a store it cannot use; exit codes of
# parcel ship and of invalid names; a unique prefix of a parcel id; the
# default config /etc/ferry/ferry.conf; cmake --install with the man page,
# the systemd unit and the bash completion.
# labels: needs-root
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init test_admin

O=$WORK/out
E=$WORK/err
BAD=$WORK/bad.conf

# serve_rc CONF: run serve for at most 10 s; RC is its exit (124: it ran)
serve_rc() {
	timeout 10 "$FERRY" serve --config "$1" >"$O" 2>"$E"
	RC=$?
}

# ---- 1. listen and host ports --------------------------------------------------
for v in 127.0.0.1:99999 127.0.0.1:0 :abc :-5; do
	sed "s|^listen = .*|listen = $v|" "$LAB_CONF" >"$BAD"
	line=$(grep -n '^listen' "$BAD" | cut -d: -f1)
	serve_rc "$BAD"
	expect_rc 3 "$RC" "serve with listen = $v"
	expect_grep "listen = $v: the error names file, line and value" \
		"config '$BAD', line $line: listen '$v'" "$E"
	check "listen = $v: serve did not start receiving" \
		bash -c "! grep -q 'receiving on' '$E'"
done
mkdir -p "$WORK/pkg"
echo data >"$WORK/pkg/file"
sed "s|^host = .*|host = 127.0.0.1:99999|" "$CEN_CONF" >"$BAD"
line=$(grep -n '^host' "$BAD" | cut -d: -f1)
run_ferry "$O" "$E" send "$WORK/pkg" --to LAB --config "$BAD"
expect_rc 3 "$RC" "send with host = 127.0.0.1:99999"
expect_grep "the bad host port is named with its line" \
	"config '$BAD', line $line: host '127.0.0.1:99999'" "$E"

# ---- 2. a key or a section given twice -----------------------------------------------
cp "$CEN_CONF" "$BAD"
printf 'retries = 7\n' >>"$BAD"
first=$(grep -n '^retries' "$BAD" | head -n 1 | cut -d: -f1)
second=$(grep -n '^retries' "$BAD" | tail -n 1 | cut -d: -f1)
run_ferry "$O" "$E" status --config "$BAD"
expect_rc 3 "$RC" "a key given twice in [sender]"
expect_grep "the repeated key names both lines" \
	"config '$BAD', line $second: 'retries' is given twice in \[sender\], on lines $first and $second" "$E"
cp "$CEN_CONF" "$BAD"
printf '\n[site]\nlisten = 127.0.0.1:1\n' >>"$BAD"
second=$(grep -n '^\[site\]' "$BAD" | tail -n 1 | cut -d: -f1)
run_ferry "$O" "$E" status --config "$BAD"
expect_rc 3 "$RC" "a section given twice"
expect_grep "the repeated section names both lines" \
	"line $second: section \[site\] is given twice, on lines 1 and $second" "$E"
printf 'code = CEN\nstore = /x\n' | cat - "$CEN_CONF" >"$BAD"
run_ferry "$O" "$E" status --config "$BAD"
expect_rc 3 "$RC" "keys before any section"
expect_grep "the first key outside a section is named on line 1" \
	"line 1: key 'code' outside any section" "$E"
sed 's/^\([a-z]\)/    \1/' "$CEN_CONF" >"$BAD"
run_ferry "$O" "$E" status --config "$BAD"
expect_rc 0 "$RC" "a config with indented keys"

# ---- 3. serve checks its store at start ------------------------------------------------
: >"$WORK/plain-file"
sed "s|^store = .*|store = $WORK/plain-file|" "$LAB_CONF" >"$BAD"
serve_rc "$BAD"
expect_rc 3 "$RC" "serve with a store that is a regular file"
expect_grep "the store that is a file is named" "store '$WORK/plain-file' is not a directory" "$E"

# ---- 4. exit codes, parcel ids by prefix --------------------------------------------------
run_ferry "$O" "$E" send "$WORK/pkg" --to LAB --config "$CEN_CONF" --name ..
expect_rc 2 "$RC" "send --name .. (a usage error)"
expect_grep "the invalid --name is named" "--name '\.\.'" "$E"
run_ferry "$O" "$E" parcel create "$WORK/pkg" --to LAB --config "$CEN_CONF" --name 'a/b'
expect_rc 2 "$RC" "parcel create --name a/b"
run_ferry "$O" "$E" verify .. --config "$LAB_CONF"
expect_rc 2 "$RC" "verify .. (not a package name)"

PCONF=$WORK/parcel.conf
mkdir -p "$WORK/media"
cat >"$PCONF" <<EOF
[site]
code = CEN
store = $WORK/pstore
[address LAB lan]
type = lan
host = 127.0.0.1:9
password-file = $PW_FILE
[address LAB usb]
type = courier
password-file = $PW_FILE
media = $WORK/media
EOF
run_ferry "$O" "$E" parcel ship nosuch --config "$PCONF"
expect_rc 1 "$RC" "parcel ship of an id that names no parcel"
expect_grep "the missing parcel is named" "no parcel 'nosuch'" "$E"
# parcels (offline: LAB is not running) until two ids share a first
# character; 17 make it certain
declare -A by_first=()
dup=
for i in $(seq 1 17); do
	"$FERRY" parcel create "$WORK/pkg" --to LAB --config "$PCONF" --name "p$i" \
		>"$O" 2>"$E" || { fail "parcel create p$i: $(cat "$E")"; break; }
	id=$(sed -n 's/^parcel \([0-9a-f]*\):.*/\1/p' "$O")
	f=${id:0:1}
	if [ -n "${by_first[$f]:-}" ]; then
		dup=$f
		break
	fi
	by_first[$f]=$id
done
if [ -n "$dup" ]; then
	run_ferry "$O" "$E" parcel ship "$dup" --config "$PCONF"
	expect_rc 1 "$RC" "parcel ship '$dup' (names two parcels)"
	expect_grep "the ambiguous prefix is refused" "'$dup' names 2 parcels" "$E"
	expect_grep "the error lists the first match" "${by_first[$dup]}" "$E"
	expect_grep "the error lists the second match" "$id" "$E"
	# a first character no other id has names one parcel
	for f in "${!by_first[@]}"; do
		[ "$f" = "$dup" ] && continue
		run_ferry "$O" "$E" parcel ship "$f" --config "$PCONF"
		expect_rc 0 "$RC" "parcel ship by one character ('$f')"
		expect_grep "the one parcel it names is shipped" \
			"parcel ${by_first[$f]} .*marked shipped" "$O"
		break
	done
	run_ferry "$O" "$E" parcel ship "${id:0:3}" --config "$PCONF"
	expect_rc 0 "$RC" "parcel ship by three characters ('${id:0:3}')"
else
	fail "no two of 17 parcel ids share a first character"
fi

# ---- 5. SIGTERM stops serve cleanly ---------------------------------------------------------
start_serve
kill -TERM "$SERVE_PID"
wait "$SERVE_PID"
expect_rc 0 "$?" "serve stopped by SIGTERM"
SERVE_PID=

# ---- 6. the default config /etc/ferry/ferry.conf ----------------------------------------
# in a mount namespace of its own, over an overlay of /etc, so the host's
# /etc is not touched
if unshare -m true 2>/dev/null; then
	cp "$CEN_CONF" "$WORK/default.conf"
	printf 'colour = red\n' >"$WORK/default-bad.conf"
	cat >"$WORK/ns.sh" <<EOF
set -e
mkdir -p "$WORK/ov"
mount -t tmpfs tmpfs "$WORK/ov"
mkdir "$WORK/ov/u" "$WORK/ov/w"
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$WORK/ov/u,workdir=$WORK/ov/w" /etc
rm -rf /etc/ferry
set +e
unset FERRY_CONFIG
"$FERRY" status >"$WORK/ns-none.out" 2>"$WORK/ns-none.err"; echo \$? >"$WORK/ns-none.rc"
mkdir -p /etc/ferry
cp "$WORK/default-bad.conf" /etc/ferry/ferry.conf
"$FERRY" status >"$WORK/ns-bad.out" 2>"$WORK/ns-bad.err"; echo \$? >"$WORK/ns-bad.rc"
cp "$WORK/default.conf" /etc/ferry/ferry.conf
"$FERRY" status >"$WORK/ns-good.out" 2>"$WORK/ns-good.err"; echo \$? >"$WORK/ns-good.rc"
EOF
	if unshare -m bash "$WORK/ns.sh" 2>"$WORK/ns.err" && [ -f "$WORK/ns-good.rc" ]; then
		expect_rc 3 "$(cat "$WORK/ns-none.rc")" "no --config, no FERRY_CONFIG, no /etc/ferry/ferry.conf"
		expect_grep "the error names what was tried" \
			"tried --config.*FERRY_CONFIG.*/etc/ferry/ferry.conf" "$WORK/ns-none.err"
		expect_rc 3 "$(cat "$WORK/ns-bad.rc")" "a bad /etc/ferry/ferry.conf"
		expect_grep "/etc/ferry/ferry.conf is the config read" \
			"config '/etc/ferry/ferry.conf', line 1" "$WORK/ns-bad.err"
		expect_rc 0 "$(cat "$WORK/ns-good.rc")" "status with /etc/ferry/ferry.conf"
	else
		log "NOTE: default-config checks skipped: no overlay of /etc in a mount namespace: $(tail -n 1 "$WORK/ns.err")"
	fi
else
	log "NOTE: default-config checks skipped: unshare -m is not possible here"
fi

# ---- 7. cmake --install -------------------------------------------------------------------
BUILD=$(dirname "$FERRY")
INST=$WORK/inst
if [ ! -f "$BUILD/cmake_install.cmake" ] || ! command -v cmake >/dev/null; then
	fail "no cmake build directory at $BUILD"
elif cmake --install "$BUILD" --prefix "$INST" >"$WORK/install.log" 2>&1; then
	pass "cmake --install --prefix $INST"
	for f in bin/ferry share/man/man1/ferry.1 lib/systemd/system/ferry.service \
		share/bash-completion/completions/ferry; do
		check "installed: $f" test -s "$INST/$f"
	done
	UNIT=$INST/lib/systemd/system/ferry.service
	expect_grep "the unit starts the installed binary with the default config" \
		"^ExecStart=$INST/bin/ferry serve --config /etc/ferry/ferry.conf\$" "$UNIT"
	expect_grep "the unit restarts on failure" "^Restart=on-failure" "$UNIT"
	if command -v systemd-analyze >/dev/null; then
		if command -v man >/dev/null; then
			MANPATH=$INST/share/man systemd-analyze verify "$UNIT" >"$O" 2>&1
		else
			systemd-analyze verify --man=no "$UNIT" >"$O" 2>&1
		fi
		expect_rc 0 "$?" "systemd-analyze verify ferry.service"
		[ -s "$O" ] && cat "$O"
	else
		log "NOTE: systemd-analyze not found: the unit file was not verified"
	fi
	COMPL=$INST/share/bash-completion/completions/ferry
	bash -c "source '$COMPL' && complete -p ferry" >"$O" 2>&1
	expect_rc 0 "$?" "the bash completion defines a completion for ferry"
	# complete WORD...: what the completion offers for the last word
	complete_words() {
		bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
			_ferry; printf "%s\n" "${COMPREPLY[@]}"' _ "$COMPL" "$@"
	}
	complete_words ferry "" >"$O"
	for c in serve send resume status verify parcel; do
		expect_grep "'ferry <TAB>' offers $c" "^$c\$" "$O"
	done
	complete_words ferry parcel "" >"$O"
	expect_grep "'ferry parcel <TAB>' offers ship" "^ship\$" "$O"
	complete_words ferry bench "" >"$O"
	expect_grep "'ferry bench <TAB>' offers pipeline" "^pipeline\$" "$O"
	complete_words ferry bench link --s >"$O"
	expect_grep "'ferry bench link --s<TAB>' offers --streams" "^--streams\$" "$O"
	complete_words ferry send --t >"$O"
	expect_grep "'ferry send --t<TAB>' offers --to" "^--to\$" "$O"
	complete_words ferry send x --config "$CEN_CONF" --to "" >"$O"
	expect_grep "'--to <TAB>' offers the config's sites" "^LAB\$" "$O"
else
	fail "cmake --install: $(tail -n 5 "$WORK/install.log")"
fi

# ---- 8. serve on a read-only file system -------------------------------------------------
RO=$WORK/ro
mkdir -p "$RO"
if mount -t tmpfs -o size=1m tmpfs "$RO" 2>"$WORK/mount.err"; then
	E2E_MOUNTS+=("$RO")
	mkdir -p "$RO/fresh" "$RO/used/partial" "$RO/used/packages" "$RO/used/manifests"
	mount -o remount,ro "$RO"
	for s in fresh used; do
		sed "s|^store = .*|store = $RO/$s|" "$LAB_CONF" >"$BAD"
		serve_rc "$BAD"
		expect_rc 3 "$RC" "serve with a store ($s) on a read-only file system"
		expect_grep "the read-only store is named with the reason" \
			"store '$RO/$s': Read-only file system" "$E"
	done
elif [ "$E2E_FAILS" = 0 ]; then
	skip "cannot mount a tmpfs for the read-only store: $(cat "$WORK/mount.err")"
else
	log "NOTE: read-only store not checked: cannot mount a tmpfs"
fi

e2e_finish
