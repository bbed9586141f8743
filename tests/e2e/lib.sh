# lib.sh - shared helpers for ferry's end-to-end tests (sourced, not run).
#
# Each test script does:
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#   e2e_init test_name          # work dir, port, trap, configs
#   ... start_serve; run ferry; check / expect_* ...
#   e2e_finish                  # PASS/FAIL summary and exit code
#
# Environment: FERRY (binary; default $FERRY_SRC/build/ferry or
# /work/main/build/ferry), FERRY_SRC (repo root), FERRY_E2E_KEEP=1 keeps
# the work dir, FERRY_E2E_VERBOSE=1 echoes every ferry command,
# FERRY_E2E_SHORT=1 makes a slow test that has one run its short variant
# (test_ras, test_policy: e2e/<name>_short on a sanitizer build).
# A sanitizer report in a log under the work dir fails the test.
# Exit codes: 0 pass, 1 fail, 77 skipped.

set -u
set -o pipefail

E2E_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${FERRY_SRC:=$(cd "$E2E_LIB_DIR/../.." && pwd)}"
if [ -z "${FERRY:-}" ]; then
	if [ -x "$FERRY_SRC/build/ferry" ]; then
		FERRY=$FERRY_SRC/build/ferry
	else
		FERRY=/work/main/build/ferry
	fi
fi

# A test sees only the FERRY_* variables it sets itself: the switches of a
# test build (FERRY_FORCE_STREAM, ...) or a config (FERRY_CONFIG) left in
# the caller's environment would change what it tests. Kept: the binary
# and tree (FERRY, FERRY_SRC) and the scripts' own knobs (FERRY_E2E_*,
# FERRY_KILL_*).
for _v in $(compgen -e); do
	case $_v in
	FERRY | FERRY_SRC | FERRY_E2E_* | FERRY_KILL_*) ;;
	FERRY_*) unset "$_v" ;;
	esac
done
unset _v

E2E_NAME=e2e
E2E_FAILS=0
E2E_CHECKS=0
E2E_PIDS=()      # background processes to kill on exit
E2E_MOUNTS=()    # mount points to unmount on exit
E2E_T0=$(date +%s.%N)
WORK=
PORT=
SERVE_PID=
SERVE_LOG=

# ---- reporting ---------------------------------------------------------------

log() { printf '%s: %s\n' "$E2E_NAME" "$*"; }

pass() {
	E2E_CHECKS=$((E2E_CHECKS + 1))
	printf 'PASS: %s: %s\n' "$E2E_NAME" "$*"
}

fail() {
	E2E_CHECKS=$((E2E_CHECKS + 1))
	E2E_FAILS=$((E2E_FAILS + 1))
	printf 'FAIL: %s: %s\n' "$E2E_NAME" "$*"
}

# need_test_hooks: this test forces paths with FERRY_* switches, which only
# a build configured with -DFERRY_TEST_HOOKS=ON obeys (tools/test.sh makes
# one): skipped, never passed, on another build.
need_test_hooks() {
	"$FERRY" version | grep -q 'test build' ||
		skip "needs a test build (cmake -DFERRY_TEST_HOOKS=ON): it uses FERRY_* switches"
}

# check "description" command...   (passes when the command succeeds)
check() {
	local what=$1
	shift
	if "$@"; then pass "$what"; else fail "$what"; fi
}

# expect_rc WANT GOT "description"
expect_rc() {
	if [ "$2" -eq "$1" ]; then
		pass "$3 (exit $2)"
	else
		fail "$3: expected exit $1, got $2"
	fi
}

# expect_grep "description" PATTERN FILE...   (extended regexp)
expect_grep() {
	local what=$1 pat=$2
	shift 2
	# a pattern of "--" (as in 'expect_grep WHAT -- PAT FILE') would match
	# any "--" and take PAT for a file: refuse it loudly
	if [ "$pat" = "--" ]; then
		fail "$what: expect_grep takes the pattern directly, not after --"
		return
	fi
	if grep -Eq -- "$pat" "$@" 2>/dev/null; then
		pass "$what"
	else
		fail "$what: /$pat/ not found in $*"
		local f
		for f in "$@"; do
			[ -f "$f" ] && { echo "---- $f (last 15 lines)"; tail -n 15 "$f"; }
		done
		echo "----"
	fi
}

# give up at once (setup could not be done)
die() {
	fail "$*"
	e2e_finish
}

skip() {
	printf 'SKIP: %s: %s\n' "$E2E_NAME" "$*"
	E2E_SKIPPED=1
	exit 77
}

e2e_finish() {
	local t f
	stop_serve # a receiver must stop cleanly on SIGTERM
	# a sanitizer report of any ferry process (a build with
	# -DFERRY_SANITIZE=ON), also of one whose exit no check looked at
	# (a receiver, a line keeper): its logs are under $WORK
	for f in $(grep -rlE --exclude-dir=packages --exclude-dir=partial \
		--include='*.log' --include='*.err' --include='*.out' --include='*.json' \
		'ERROR: (Address|Leak)Sanitizer|runtime error: ' "$WORK" 2>/dev/null); do
		fail "a sanitizer report in $f: $(grep -Em1 'ERROR: (Address|Leak)Sanitizer|runtime error: ' "$f")"
	done
	t=$(awk -v a="$E2E_T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	if [ "$E2E_FAILS" -gt 0 ]; then
		if [ -n "$SERVE_LOG" ] && [ -f "$SERVE_LOG" ]; then
			echo "---- serve log ($SERVE_LOG), last 40 lines"
			tail -n 40 "$SERVE_LOG"
			echo "----"
		fi
		printf 'FAIL: %s: %d of %d checks failed (%s s)\n' "$E2E_NAME" \
			"$E2E_FAILS" "$E2E_CHECKS" "$t"
		exit 1
	fi
	printf 'PASS: %s: all %d checks passed (%s s)\n' "$E2E_NAME" \
		"$E2E_CHECKS" "$t"
	exit 0
}

# ---- setup and teardown --------------------------------------------------------

e2e_cleanup() {
	local rc=$? p m live
	# only our own background jobs still running (a reaped pid may
	# belong to someone else by now)
	live=" $(jobs -p | tr '\n' ' ') "
	for p in "${E2E_PIDS[@]}"; do
		case $live in *" $p "*) kill -9 "$p" 2>/dev/null ;; esac
	done
	for p in "${E2E_PIDS[@]}"; do
		case $live in *" $p "*) wait "$p" 2>/dev/null ;; esac
	done
	for m in "${E2E_MOUNTS[@]}"; do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
	if [ -n "$WORK" ] && [ -d "$WORK" ]; then
		if [ "${FERRY_E2E_KEEP:-0}" = 1 ]; then
			echo "$E2E_NAME: work dir kept: $WORK"
		else
			rm -rf "$WORK"
		fi
	fi
	return $rc
}

# e2e_init NAME: work dir, trap, a free port and default configs
e2e_init() {
	E2E_NAME=$1
	if [ ! -x "$FERRY" ]; then
		echo "$E2E_NAME: ferry binary '$FERRY' not found; build it first" >&2
		exit 1
	fi
	command -v python3 >/dev/null || skip "python3 is required"
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/ferry-$E2E_NAME.XXXXXX") || exit 1
	trap e2e_cleanup EXIT
	trap 'exit 130' INT TERM
	LAB_STORE=$WORK/lab
	CEN_STORE=$WORK/cen
	LAB_CONF=$WORK/lab.conf
	CEN_CONF=$WORK/cen.conf
	PW_FILE=$WORK/cen.pw
	SERVE_LOG=$WORK/serve.log
	printf 'correct horse battery staple\n' >"$PW_FILE"
	chmod 600 "$PW_FILE"
	# knobs the tests may change before write_configs
	CEN_HOST=            # default 127.0.0.1:$PORT
	CEN_PW_FILE=$PW_FILE
	ADDR_EXTRA=
	SENDER_RETRIES=2
	SENDER_DELAY=1s
	SENDER_EXTRA=
	LAB_EXTRA=
	PORT=$(pick_port)
	write_configs
	log "work dir $WORK, port $PORT, ferry $FERRY"
}

# a TCP port on 127.0.0.1 nobody uses: below the kernel's ephemeral range
# (a connection's own port there blocks a receiver's restart on it), and
# no socket on it in any state
pick_port() {
	local p i lo=32768
	read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || lo=32768
	[ "$lo" -gt 21000 ] || lo=60000 # an unusual range: the old way
	for i in $(seq 1 200); do
		p=$((20000 + (RANDOM * 32768 + RANDOM) % (lo - 20000)))
		if command -v ss >/dev/null; then
			[ -z "$(ss -Hatn "sport = :$p" 2>/dev/null)" ] || continue
		else
			python3 -c 'import socket,sys; s=socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1])))' \
				"$p" 2>/dev/null || continue
		fi
		echo "$p"
		return 0
	done
	echo "pick_port: no free port found" >&2
	return 1
}

write_configs() {
	local host=${CEN_HOST:-127.0.0.1:$PORT}
	cat >"$LAB_CONF" <<EOF
[site]
code = LAB
store = $LAB_STORE
listen = ${LAB_LISTEN_HOST-127.0.0.1}:$PORT

[account CEN]
password-file = $PW_FILE
$LAB_EXTRA
EOF
	cat >"$CEN_CONF" <<EOF
[site]
code = CEN
store = $CEN_STORE

[address LAB lan]
type = lan
host = $host
password-file = $CEN_PW_FILE
$ADDR_EXTRA

[sender]
retry-delay = $SENDER_DELAY
retries = $SENDER_RETRIES
$SENDER_EXTRA
EOF
}

# wait_for_log FILE PATTERN SECONDS [MIN_COUNT]: 0 once PATTERN (ERE) has
# appeared at least MIN_COUNT times in FILE
wait_for_log() {
	local file=$1 pat=$2 secs=$3 min=${4:-1} i n
	for ((i = 0; i < secs * 20; i++)); do
		n=$(grep -Ec -- "$pat" "$file" 2>/dev/null)
		[ "${n:-0}" -ge "$min" ] && return 0
		sleep 0.05
	done
	return 1
}

count_log() {
	local n
	n=$(grep -Ec -- "$2" "$1" 2>/dev/null)
	echo "${n:-0}"
}

# start_serve: start `ferry serve --config $LAB_CONF`, stderr appended to
# $SERVE_LOG; wait for "receiving on". If the port was taken meanwhile,
# pick another one and rewrite the configs (unless KEEP_PORT=1).
start_serve() {
	local try
	for try in 1 2 3 4 5; do
		local before
		before=$(count_log "$SERVE_LOG" 'receiving on')
		"$FERRY" serve --config "$LAB_CONF" 2>>"$SERVE_LOG" &
		SERVE_PID=$!
		E2E_PIDS+=("$SERVE_PID")
		local i
		for ((i = 0; i < 600; i++)); do
			if [ "$(count_log "$SERVE_LOG" 'receiving on')" -gt "$before" ]; then
				return 0
			fi
			kill -0 "$SERVE_PID" 2>/dev/null || break
			sleep 0.05
		done
		kill -9 "$SERVE_PID" 2>/dev/null
		wait "$SERVE_PID" 2>/dev/null
		if grep -q 'Address already in use' "$SERVE_LOG" &&
			[ "${KEEP_PORT:-0}" != 1 ]; then
			PORT=$(pick_port)
			write_configs
			log "port taken, trying port $PORT"
			continue
		fi
		[ "${KEEP_PORT:-0}" = 1 ] && { sleep 1; continue; }
		break
	done
	echo "---- serve log"
	tail -n 20 "$SERVE_LOG"
	die "ferry serve did not start"
}

# stop_serve: SIGTERM and wait
stop_serve() {
	[ -n "$SERVE_PID" ] || return 0
	kill -TERM "$SERVE_PID" 2>/dev/null
	local i
	for ((i = 0; i < 100; i++)); do
		kill -0 "$SERVE_PID" 2>/dev/null || break
		sleep 0.05
	done
	local rc=0
	if kill -0 "$SERVE_PID" 2>/dev/null; then
		fail "ferry serve (pid $SERVE_PID) did not stop within 5 s of SIGTERM"
		kill -9 "$SERVE_PID" 2>/dev/null
		wait "$SERVE_PID" 2>/dev/null
	else
		# exit 0 on SIGTERM; else it died before (a crash, an
		# ASan abort: 134) or failed to stop cleanly (LeakSanitizer: 23)
		wait "$SERVE_PID" 2>/dev/null || rc=$?
		[ "$rc" = 0 ] || fail "ferry serve (pid $SERVE_PID) exited $rc, not 0, when stopped"
	fi
	SERVE_PID=
}

kill9_serve() {
	[ -n "$SERVE_PID" ] || return 0
	kill -9 "$SERVE_PID" 2>/dev/null
	wait "$SERVE_PID" 2>/dev/null
	SERVE_PID=
}

# expect_one_attempt ERR [JSON]: a send or resume where nothing is meant to
# fail got through on its first attempt (the configs allow retries, which
# would hide a failure): no "retry N of M" in its stderr, and attempts 1
# in its JSON when one is given (send's object, or resume's transfers).
expect_one_attempt() {
	local err=$1 json=${2:-} n
	if grep -Eq 'retry [0-9]+ of [0-9]+' "$err" 2>/dev/null; then
		fail "a retry was needed: $(grep -Em1 'retry [0-9]+ of' "$err")"
		return
	fi
	if [ -n "$json" ]; then
		n=$(json_get "$json" 'd["attempts"] if "attempts" in d else max(t["attempts"] for t in d["transfers"])')
		[ "$n" = 1 ] || { fail "attempts in $json: '$n', not 1"; return; }
	fi
	pass "one attempt was enough ($(basename "$err"))"
}

# run_ferry OUT ERR args...: run ferry with stdout and stderr to files;
# sets RC
run_ferry() {
	local out=$1 err=$2
	shift 2
	[ "${FERRY_E2E_VERBOSE:-0}" = 1 ] && log "ferry $*"
	"$FERRY" "$@" >"$out" 2>"$err"
	RC=$?
	return 0
}

# ---- JSON --------------------------------------------------------------------------

# json_ok FILE: the file is one JSON document
json_ok() {
	python3 -c 'import json,sys; json.load(sys.stdin)' <"$1" 2>/dev/null
}

# json_get FILE EXPR: print a Python expression over `d` (the document),
# e.g. json_get out.json 'd["segments_sent"]'. Booleans print as
# true/false; missing keys print nothing and return 1.
json_get() {
	python3 - "$1" "$2" <<'EOF'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
    v = eval(sys.argv[2], {"d": d})
except Exception as e:
    sys.stderr.write("json_get %s: %s\n" % (sys.argv[2], e))
    sys.exit(1)
if isinstance(v, bool):
    print("true" if v else "false")
elif v is None:
    print("null")
else:
    print(v)
EOF
}

# held_in NAME: segments_done of the receiver's partial entry for NAME
# ("direction":"in","state":"partial"); 0 if none
held_in() {
	local name=$1 out=$WORK/.status.$$.json
	"$FERRY" status --json --config "$LAB_CONF" >"$out" 2>/dev/null
	python3 - "$out" "$name" <<'EOF'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except Exception:
    print(0); sys.exit(0)
n = 0
for e in d:
    if e.get("direction") == "in" and e.get("state") == "partial" \
            and e.get("name") == sys.argv[2]:
        n = e.get("segments_done", 0)
print(n)
EOF
}

# stop_when_held NAME N PID: once the receiver holds N segments of NAME
# (at most 30 s), stop the sender PID with SIGTERM and wait for it
stop_when_held() {
	local i
	for ((i = 0; i < 300; i++)); do
		[ "$(held_in "$1")" -ge "$2" ] && break
		sleep 0.1
	done
	kill -TERM "$3"
	wait "$3"
}

# ---- trees ---------------------------------------------------------------------

# tree_listing DIR: type, mode, size (files), mtime (files), link target
# and path of everything under DIR, sorted. Directory sizes depend on the
# file system and are left out.
tree_listing() {
	(cd "$1" && find . -mindepth 1 \
		\( -type d -printf 'd %m - - %p\n' \) -o \
		\( -type l -printf 'l - - %l %p\n' \) -o \
		\( -type f -printf 'f %m %s@%T@ - %p\n' \) -o \
		\( -printf '%y %m %s - %p\n' \) | LC_ALL=C sort)
}

# compare_trees SRC DST "what" [EXCLUDE_NAME...]: diff -r of the bytes
# (symlinks compared as links) and of the listings
compare_trees() {
	local src=$1 dst=$2 what=$3
	shift 3
	local ex=() n
	for n in "$@"; do ex+=(-x "$n"); done
	if [ ! -d "$dst" ]; then
		fail "$what: '$dst' does not exist"
		return 1
	fi
	if diff -r --no-dereference "${ex[@]}" "$src" "$dst" >"$WORK/.diff" 2>&1; then
		pass "$what: contents identical (diff -r)"
	else
		fail "$what: contents differ (diff -r):"
		head -n 20 "$WORK/.diff"
	fi
	local pat='^$'
	for n in "$@"; do pat="$pat|/$n\$"; done
	tree_listing "$src" | grep -Ev -- "$pat" >"$WORK/.list.src"
	tree_listing "$dst" >"$WORK/.list.dst"
	if diff "$WORK/.list.src" "$WORK/.list.dst" >"$WORK/.diff" 2>&1; then
		pass "$what: types, modes, sizes, mtimes, symlinks and empty dirs identical ($(wc -l <"$WORK/.list.src") entries)"
	else
		fail "$what: metadata differs (< source, > received):"
		head -n 20 "$WORK/.diff"
	fi
}

# ---- test data ---------------------------------------------------------------------

# binary_data FILE BYTES: real binary data (shared libraries, programs),
# padded with random data if the system has too little
binary_data() {
	local f=$1 n=$2
	{
		find /usr/lib /usr/lib64 /usr/bin /usr/libexec -xdev -type f \
			-size +20k 2>/dev/null | LC_ALL=C sort | xargs -r cat 2>/dev/null
		head -c "$n" /dev/urandom
	} | head -c "$n" >"$f"
}

# ---- a TCP proxy (throttle, flip one byte) ---------------------------------------

write_proxy() {
	cp "$E2E_LIB_DIR/proxy.py" "$WORK/proxy.py"
}

# with_slower_links SCENARIO WHAT: run `SCENARIO RATE N` with the proxy's
# link at FERRY_E2E_RATE (default 16 MiB/s), and again at a quarter of the
# rate each time it returns 3 (the transfer finished before WHAT), at most
# 3 times: a kill that lands after the end proves nothing.
with_slower_links() {
	local scenario=$1 what=$2 n r
	local rate=${FERRY_E2E_RATE:-$((16 * 1024 * 1024))}
	for n in 1 2 3; do
		"$scenario" "$rate" "$n"
		r=$?
		[ "$r" = 3 ] || return 0
		rate=$((rate / 4))
	done
	fail "every attempt finished before $what, even at $((rate * 4)) B/s"
}

# via_proxy LOG ARGS...: the sender's address goes through a new proxy
# (start_proxy LOG ARGS), on a new port
via_proxy() {
	local plog=$1
	shift
	stop_proxy
	PROXY_PORT=
	start_proxy "$plog" "$@"
	CEN_HOST=127.0.0.1:$PROXY_PORT
	write_configs
}

# what the receiver logs when a message from CEN does not open
AUTH_FAIL="message authentication failed from CEN at 127.0.0.1:[0-9]+: session dropped"

# start_proxy LOG args...: start the proxy on a free port (PROXY_PORT,
# kept if already set) forwarding to $PORT; sets PROXY_PID
start_proxy() {
	local plog=$1
	shift
	[ -f "$WORK/proxy.py" ] || write_proxy
	local try
	for try in 1 2 3 4 5; do
		[ -n "${PROXY_PORT:-}" ] || PROXY_PORT=$(pick_port)
		local before
		before=$(count_log "$plog" 'proxy listening')
		python3 -u "$WORK/proxy.py" --listen "$PROXY_PORT" --target "$PORT" "$@" \
			>>"$plog" 2>&1 &
		PROXY_PID=$!
		E2E_PIDS+=("$PROXY_PID")
		if wait_for_log "$plog" 'proxy listening' 10 $((before + 1)); then
			return 0
		fi
		kill -9 "$PROXY_PID" 2>/dev/null
		wait "$PROXY_PID" 2>/dev/null
		[ "${KEEP_PORT:-0}" = 1 ] && { sleep 1; continue; }
		PROXY_PORT=
	done
	tail -n 5 "$plog"
	die "the test proxy did not start"
}

# start_link LOG RATE: another proxy to LAB's port, a link of its own
# limited to RATE bytes/s (for a send over several links); sets LINK_PORT
# and LINK_PID and leaves PROXY_PORT and PROXY_PID as they were
start_link() {
	local port=${PROXY_PORT:-} pid=${PROXY_PID:-}
	PROXY_PORT= PROXY_PID=
	start_proxy "$1" --rate "$2"
	LINK_PORT=$PROXY_PORT LINK_PID=$PROXY_PID
	PROXY_PORT=$port PROXY_PID=$pid
}

# lan_address NAME PORT [BANDWIDTH]: an [address LAB NAME] section of
# CEN's config for a lan link to 127.0.0.1:PORT
lan_address() {
	printf '\n[address LAB %s]\ntype = lan\nhost = 127.0.0.1:%s\npassword-file = %s\n' \
		"$1" "$2" "$CEN_PW_FILE"
	if [ -n "${3:-}" ]; then printf 'bandwidth = %s\n' "$3"; fi
}

# start_silent: a listener on loopback that takes connections and never
# says a word (a peer that hangs, a line that came up broken); its port
# in SILENT
start_silent() {
	SILENT=$(pick_port)
	python3 -c '
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(8)
print("listening", flush=True)
held = []
while True:
    held.append(s.accept())
' "$SILENT" >"$WORK/silent.log" 2>&1 &
	E2E_PIDS+=("$!")
	wait_for_log "$WORK/silent.log" listening 10 || die "the silent listener did not start"
}

stop_proxy() {
	[ -n "${PROXY_PID:-}" ] || return 0
	kill -9 "$PROXY_PID" 2>/dev/null
	wait "$PROXY_PID" 2>/dev/null
	PROXY_PID=
}

# ---- sessions on the receiver ----------------------------------------------------

# a receiving session ended (interrupted or complete)
SESSION_END='held, resumable|complete and verified|as another session completes package|having sent nothing'

# wait_session_end BEFORE SECONDS: wait until the serve log shows more
# than BEFORE session ends
wait_session_end() {
	wait_for_log "$SERVE_LOG" "$SESSION_END" "$2" $(($1 + 1))
}

# held_at_start NAME: "N held" from the serve log's last session start for NAME
held_at_start() {
	grep -E "package '$1' \(.*segments\): [0-9]+ held" "$SERVE_LOG" | tail -n 1 |
		sed -E 's/.*segments\): ([0-9]+) held.*/\1/'
}

# wait_held NAME MIN SECONDS PID: poll the receiver's status until NAME
# holds >= MIN segments; 0 when reached, 1 on timeout, 2 when PID exited
# first. HELD is the last value read.
wait_held() {
	local name=$1 min=$2 secs=$3 pid=$4 t_end
	t_end=$((SECONDS + secs))
	HELD=0
	while [ $SECONDS -lt $t_end ]; do
		kill -0 "$pid" 2>/dev/null || return 2
		HELD=$(held_in "$name")
		[ "$HELD" -ge "$min" ] && return 0
		sleep 0.1
	done
	return 1
}
