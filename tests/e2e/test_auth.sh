#!/bin/bash
# test_auth.sh - authentication and hostile peers: a wrong password and an
# unknown account are refused (exit 4) with clear messages on both sides;
# peers that speak garbage are refused and logged while a legitimate
# transfer at the same time succeeds; a sender that reaches something
# that is not ferry fails with a clear error instead of hanging; one
# account may not replace another's package of the same name (exit 4);
# 100 connections that never authenticate do not keep a sender out.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init test_auth

PKG=$WORK/src/pkg
mkdir -p "$PKG/sub"
binary_data "$PKG/sub/bin.dat" $((20 * 1024 * 1024))
head -c 100000 /dev/urandom >"$PKG/random.dat"
echo hello >"$PKG/hello.txt"
start_serve

# ---- wrong password -----------------------------------------------------------
printf 'not the password\n' >"$WORK/wrong.pw"
chmod 600 "$WORK/wrong.pw"
CEN_PW_FILE=$WORK/wrong.pw
SENDER_DELAY=300s write_configs # a retry after retry-delay could not pass
t0=$SECONDS
timeout 120 "$FERRY" send "$PKG" --to LAB --config "$CEN_CONF" >"$WORK/o1" 2>"$WORK/e1"
RC=$?
expect_rc 4 "$RC" "send with a wrong password"
expect_grep "sender's message names the account" "account.*CEN|CEN.*account" "$WORK/e1"
expect_grep "sender's message says authentication failed" \
	"authenticat|password|refused" "$WORK/e1"
[ $((SECONDS - t0)) -lt 60 ] && pass "a refused password is not retried (retry-delay 300 s)" ||
	fail "wrong password took $((SECONDS - t0)) s"
# one online guess: logged, and alike for a wrong password and an
# unknown account (nothing tells an attacker which accounts exist)
expect_grep "receiver logs the failed attempt" \
	"authentication failed for account 'CEN' \(unknown account or wrong password, or the handshake was altered on the way\)" "$SERVE_LOG"
if grep -q 'not the password' "$SERVE_LOG" "$WORK/e1"; then
	fail "a password appears in a log"
else
	pass "no password in the logs"
fi
[ ! -d "$LAB_STORE/partial" ] || [ -z "$(ls -A "$LAB_STORE/partial")" ] &&
	pass "nothing stored for a refused sender" ||
	fail "a refused sender left data in partial/"

# ---- unknown account ----------------------------------------------------------------
CEN_PW_FILE=$PW_FILE
ADDR_EXTRA="account = XYZ"
write_configs
timeout 60 "$FERRY" send "$PKG" --to LAB --config "$CEN_CONF" >"$WORK/o2" 2>"$WORK/e2"
RC=$?
expect_rc 4 "$RC" "send as an unknown account"
expect_grep "sender's message names the account XYZ" "XYZ" "$WORK/e2"
expect_grep "receiver logs the unknown account as it logs a wrong password" \
	"authentication failed for account 'XYZ' \(unknown account or wrong password, or the handshake was altered on the way\)" "$SERVE_LOG"
check "the sender hears the same for a wrong password and an unknown account" \
	test "$(grep -o 'receiver.*' "$WORK/e1" | sed 's/CEN/ACCT/g' | sort -u)" = \
	"$(grep -o 'receiver.*' "$WORK/e2" | sed 's/XYZ/ACCT/g' | sort -u)"
ADDR_EXTRA=
write_configs

# ---- garbage peers while a real transfer runs ----------------------------------------------
cat >"$WORK/garbage.py" <<'EOF'
import os, socket, struct, sys, threading, time
port = int(sys.argv[1])
def conn():
    return socket.create_connection(("127.0.0.1", port))
def random_slowly():          # 5000 random bytes, a little at a time
    s = conn()
    try:
        for _ in range(50):
            s.sendall(os.urandom(100)); time.sleep(0.04)
        time.sleep(3)
    except OSError:
        pass
    s.close()
def huge_claim():             # a HELLO header claiming 2 GiB
    s = conn()
    try:
        s.sendall(struct.pack("<II", 1, 0x80000000)); time.sleep(3)
    except OSError:
        pass
    s.close()
def stall():                  # a plausible header, then nothing
    s = conn()
    try:
        s.sendall(struct.pack("<II", 1, 60) + b"FERY"); time.sleep(8)
    except OSError:
        pass
    s.close()
def http():                   # a web client at the wrong port
    s = conn()
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"); time.sleep(3)
    except OSError:
        pass
    s.close()
ts = [threading.Thread(target=f) for f in (random_slowly, huge_claim, stall, http)]
for t in ts: t.start()
print("garbage started", flush=True)
for t in ts: t.join()
EOF
refused0=$(count_log "$SERVE_LOG" 'refused connection from')
if command -v nc >/dev/null; then
	head -c 5000 /dev/urandom | timeout 10 nc -q1 127.0.0.1 "$PORT" >/dev/null 2>&1
else
	python3 -c 'import os,socket,sys,time; s=socket.create_connection(("127.0.0.1", int(sys.argv[1]))); s.sendall(os.urandom(5000)); time.sleep(1)' \
		"$PORT" 2>/dev/null
fi
python3 "$WORK/garbage.py" "$PORT" >"$WORK/garbage.log" 2>&1 &
GPID=$!
E2E_PIDS+=("$GPID")
wait_for_log "$WORK/garbage.log" 'garbage started' 10 || fail "garbage client did not start"
timeout 120 "$FERRY" send "$PKG" --to LAB --config "$CEN_CONF" --json \
	>"$WORK/o3.json" 2>"$WORK/e3"
RC=$?
expect_rc 0 "$RC" "a legitimate send while garbage is being sent"
kill -0 "$GPID" 2>/dev/null && pass "the garbage connections were still open during the send" ||
	log "note: the garbage client had finished before the send did"
compare_trees "$PKG" "$LAB_STORE/packages/pkg" "package sent beside garbage"
wait_for_log "$SERVE_LOG" 'refused connection from' 15 $((refused0 + 3))
n=$(($(count_log "$SERVE_LOG" 'refused connection from') - refused0))
[ "$n" -ge 3 ] && pass "receiver refused and logged the garbage peers ($n so far)" ||
	fail "receiver logged $n refused garbage connections, expected >= 3"
expect_grep "the refusal says the peer sent garbage" \
	"refused connection from 127\.0\.0\.1:[0-9]+: .*(garbage|not speak ferry|HELLO)" "$SERVE_LOG"
kill -0 "$SERVE_PID" 2>/dev/null && pass "ferry serve survived the garbage" ||
	fail "ferry serve died"
kill -9 "$GPID" 2>/dev/null
wait "$GPID" 2>/dev/null

# ---- a sender reaching something that is not ferry -------------------------------------------
cat >"$WORK/notferry.py" <<'EOF'
import os, socket, sys, threading, time
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", int(sys.argv[1]))); ls.listen(8)
mode = sys.argv[2]
print("listening", flush=True)
def serve(c):
    try:
        if mode == "http":
            c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        else:
            c.sendall(os.urandom(5000))
        time.sleep(60)        # keep it open: the client must decide alone
    except OSError:
        pass
    c.close()
while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF
for mode in http random; do
	NPORT=$(pick_port)
	python3 "$WORK/notferry.py" "$NPORT" "$mode" >"$WORK/nf-$mode.log" 2>&1 &
	NPID=$!
	E2E_PIDS+=("$NPID")
	wait_for_log "$WORK/nf-$mode.log" listening 10 || fail "not-ferry listener did not start"
	CEN_HOST=127.0.0.1:$NPORT
	write_configs
	t0=$SECONDS
	timeout 30 "$FERRY" send "$PKG" --to LAB --name "nf-$mode" --config "$CEN_CONF" \
		>"$WORK/o4" 2>"$WORK/e4-$mode"
	RC=$?
	if [ "$RC" = 124 ]; then
		fail "sender talking to a non-ferry peer ($mode) hung (killed after 30 s)"
	elif [ "$RC" = 0 ]; then
		fail "sender talking to a non-ferry peer ($mode) exited 0"
	else
		pass "sender talking to a non-ferry peer ($mode) fails (exit $RC, $((SECONDS - t0)) s)"
	fi
	expect_grep "the error names the peer's address ($mode)" "127\.0\.0\.1:$NPORT" "$WORK/e4-$mode"
	expect_grep "the error says it is not a ferry peer ($mode)" \
		"not a ferry|does not speak ferry|handshake|protocol|exceeds" "$WORK/e4-$mode"
	kill -9 "$NPID" 2>/dev/null
	wait "$NPID" 2>/dev/null
done

# ---- a receiver that accepts anyone but cannot prove the password --------------------------
# It plays the handshake's receiver side without the key: CHALLENGE with a
# fresh nonce and a valid share (ristretto255's base point), then WELCOME
# with a confirmation it cannot make (random bytes).
# The sender must refuse it (exit 4) and send nothing after the handshake:
# no OFFER, no segment, no manifest.
cat >"$WORK/impostor.py" <<'EOF'
import os, socket, struct, sys
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", int(sys.argv[1]))); ls.listen(8)
out = open(sys.argv[2], "w")
print("listening", flush=True)
def recv_exact(c, n):
    b = b""
    while len(b) < n:
        d = c.recv(n - len(b))
        if not d:
            raise EOFError
        b += d
    return b
def recv_msg(c):
    t, n = struct.unpack("<II", recv_exact(c, 8))
    return t, recv_exact(c, n)
while True:
    c, _ = ls.accept()
    c.settimeout(20)
    try:
        t, _ = recv_msg(c)                                      # HELLO
        point = bytes.fromhex("e2f2ae0a6abc4e71a884a961c500515f"
                              "58e30b6aa582dd8db6a65945e08d2d76")
        c.sendall(struct.pack("<II", 2, 69) + os.urandom(32) + b"\x02" + point
                  + b"\x03LAB")                                # CHALLENGE
        t, _ = recv_msg(c)                                      # AUTH
        out.write("handshake %d\n" % t); out.flush()
        c.sendall(struct.pack("<II", 4, 32) + os.urandom(32))   # WELCOME, forged
        while True:                                             # what comes next
            t, body = recv_msg(c)
            out.write("after-welcome type %d len %d\n" % (t, len(body))); out.flush()
    except (EOFError, OSError, struct.error):
        pass
    c.close()
EOF
IPORT=$(pick_port)
python3 "$WORK/impostor.py" "$IPORT" "$WORK/impostor.out" >"$WORK/impostor.log" 2>&1 &
IPID=$!
E2E_PIDS+=("$IPID")
wait_for_log "$WORK/impostor.log" listening 10 || fail "the impostor did not start"
CEN_HOST=127.0.0.1:$IPORT
write_configs
timeout 60 "$FERRY" send "$PKG" --to LAB --name impostor --config "$CEN_CONF" \
	>"$WORK/o5" 2>"$WORK/e5"
expect_rc 4 $? "a sender whose receiver cannot prove the password"
expect_grep "the sender says the receiver could not prove the password" \
	"could not prove|authentication" "$WORK/e5"
check "the impostor got as far as the sender's proof" grep -q '^handshake 3' "$WORK/impostor.out"
check "the sender sent nothing but an error after the forged WELCOME" \
	bash -c "! grep '^after-welcome' '$WORK/impostor.out' | grep -v 'type 11 '"
kill -9 "$IPID" 2>/dev/null
wait "$IPID" 2>/dev/null
CEN_HOST=
write_configs

# ---- an address whose host leads to another site ------------------------------
# XYZ's receiver takes account CEN with the same password; CEN's address of
# LAB was given XYZ's host by mistake. The send must not deliver to XYZ:
# the receiver names its site in the handshake, and the sender, meaning
# LAB, leaves before it proves anything (exit 4, the address named).
XPORT=$(pick_port)
cat >"$WORK/xyz.conf" <<EOF
[site]
code = XYZ
store = $WORK/xyz
listen = 127.0.0.1:$XPORT

[account CEN]
password-file = $PW_FILE
EOF
"$FERRY" serve --config "$WORK/xyz.conf" 2>"$WORK/xyz.log" &
XPID=$!
E2E_PIDS+=("$XPID")
wait_for_log "$WORK/xyz.log" "receiving on" 10 || fail "XYZ's receiver did not start"
CEN_HOST=127.0.0.1:$XPORT
write_configs
timeout 60 "$FERRY" send "$PKG" --to LAB --name astray --config "$CEN_CONF" \
	>"$WORK/o6" 2>"$WORK/e6"
expect_rc 4 $? "a send whose LAB address leads to XYZ's receiver"
expect_grep "the sender names the address and both sites" \
	"\\[address LAB lan\\] host 127.0.0.1:$XPORT leads to another site: the receiver there is site XYZ's, not LAB's" "$WORK/e6"
check "XYZ holds nothing of it" bash -c "! ls '$WORK/xyz/packages/astray' 2>/dev/null && ! grep -q astray '$WORK/xyz.log'"
check "the send was not retried" [ "$(grep -c 'leads to another site' "$WORK/e6")" = 1 ]
kill "$XPID" 2>/dev/null
wait "$XPID" 2>/dev/null
CEN_HOST=
write_configs

# ---- a sender of the previous protocol ---------------------------------------------------
# ferry before sealed sessions spoke protocol 1: it is refused, told to
# upgrade, and nothing falls back to cleartext
python3 - "$PORT" >"$WORK/old.out" 2>&1 <<'EOF'
import os, socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(10)
body = struct.pack("<IHBB", 0x59524546, 1, 3, 0) + b"CEN" + os.urandom(32)
s.sendall(struct.pack("<II", 1, len(body)) + body)
t, n = struct.unpack("<II", s.recv(8, socket.MSG_WAITALL))
text = s.recv(n, socket.MSG_WAITALL)[4:].decode(errors="replace")
print("type %d: %s" % (t, text))
EOF
expect_grep "a protocol-1 sender gets ERROR telling it to upgrade" \
	"type 11: .*protocol version 1 not supported.*upgrade" "$WORK/old.out"
expect_grep "the receiver logs the old sender and the upgrade" \
	"protocol version 1 not supported.*upgrade ferry at the sending site" "$SERVE_LOG"

# ---- an address that reaches something else ------------------------------------
# (a web server on the port): the error says the peer is not ferry, and
# what it sent, not a message size
WEB=$(pick_port)
python3 - "$WEB" >"$WORK/web.out" 2>&1 <<'EOF' &
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(4)
print("listening", flush=True)
c, _ = s.accept()
c.recv(4096)
c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
c.close()
EOF
E2E_PIDS+=($!)
wait_for_log "$WORK/web.out" listening 10 || fail "the web server did not start"
sed -e "s|^host = .*|host = 127.0.0.1:$WEB|" -e "s|^retries = .*|retries = 0|" \
	"$CEN_CONF" >"$WORK/web.conf"
run_ferry "$WORK/web.json" "$WORK/web.err" send "$PKG" --to LAB --name web \
	--config "$WORK/web.conf"
expect_rc 1 "$RC" "a send to an address where a web server answers"
expect_grep "... says the peer is not ferry, and what it sent" \
	"handshake with LAB \(127\.0\.0\.1:$WEB\) failed: the peer does not speak ferry's protocol \(it sent \"HTTP/1\.1\.\.\.\"" \
	"$WORK/web.err"

# ---- strangers holding connections open do not keep a site out ---------------------
# 100 connections that never authenticate (more than the 64 handshakes the
# receiver waits for at once), then a real send: the oldest strangers are
# ended, the send goes through at once
python3 - "$PORT" >"$WORK/idle.out" 2>&1 <<'EOF' &
import socket, sys, time
s = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(100)]
print("open", len(s), flush=True)
time.sleep(20)
EOF
idle=$!
E2E_PIDS+=("$idle")
wait_for_log "$WORK/idle.out" "open 100" 10 || fail "the idle connections were not opened"
mkdir -p "$WORK/src/cen-idle"
echo idle >"$WORK/src/cen-idle/f"
sed -e "s|^retries = .*|retries = 0|" "$CEN_CONF" >"$WORK/idle.conf"
t0=$SECONDS
run_ferry "$WORK/idle.json" "$WORK/idle.err" send "$WORK/src/cen-idle" --to LAB \
	--config "$WORK/idle.conf"
expect_rc 0 "$RC" "a send while 100 strangers hold connections open (no retry)"
check "... at once ($((SECONDS - t0)) s)" [ $((SECONDS - t0)) -lt 10 ]
expect_grep "the receiver says it ended the oldest stranger" \
	"ended the connection from 127\.0\.0\.1:[0-9]+: it had not authenticated" "$SERVE_LOG"
kill "$idle" 2>/dev/null

# ---- another account's package name --------------------------------------------
# accounts share the site's package names: one may not replace another's
stop_serve
printf 'the password of XYZ\n' >"$WORK/xyz.pw"
chmod 600 "$WORK/xyz.pw"
LAB_EXTRA="[account XYZ]
password-file = $WORK/xyz.pw"
write_configs
start_serve
mkdir -p "$WORK/src/cen-own" "$WORK/src/xyz-own"
echo "CEN's" >"$WORK/src/cen-own/f"
echo "XYZ's" >"$WORK/src/xyz-own/f"
run_ferry "$WORK/own1.out" "$WORK/own1.err" send "$WORK/src/cen-own" --to LAB \
	--name owned --config "$CEN_CONF"
expect_rc 0 "$RC" "CEN sends 'owned'"
sed -e "s|^password-file = .*|password-file = $WORK/xyz.pw\naccount = XYZ|" \
	"$CEN_CONF" >"$WORK/xyz.conf"
run_ferry "$WORK/own2.out" "$WORK/own2.err" send "$WORK/src/xyz-own" --to LAB \
	--name owned --config "$WORK/xyz.conf"
expect_rc 4 "$RC" "XYZ sending a package named as CEN's (refused)"
expect_grep "... the refusal names the owner and says what to do" \
	"package 'owned' here is account CEN's: account XYZ may not replace it \(send it under another name, --name\)" \
	"$WORK/own2.err"
check "... CEN's package is untouched" [ "$(cat "$LAB_STORE/packages/owned/f")" = "CEN's" ]
echo "CEN's, v2" >"$WORK/src/cen-own/f"
run_ferry "$WORK/own3.out" "$WORK/own3.err" send "$WORK/src/cen-own" --to LAB \
	--name owned --config "$CEN_CONF"
expect_rc 0 "$RC" "CEN replaces its own 'owned'"
check "... with its new version" [ "$(cat "$LAB_STORE/packages/owned/f")" = "CEN's, v2" ]

e2e_finish
