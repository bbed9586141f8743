#!/bin/bash
# test_sealed.sh - a machine on the path (the proxy) can neither read nor
# change what ferry sends.
#
# After the handshake, the proxy flips one byte (of a raw frame's payload,
# of a compressed one, of a frame's record), drops one message, replays
# one, or splices in a message from another session. Each time the
# receiver drops the session with "message authentication failed from
# CEN at HOST: session dropped", nothing of the altered message is kept,
# and a resume through a clean path ends byte-identical (a segment stored
# from the altered message would not be sent again, and would show).
#
# A ferry that seals AES-256-GCM with libsodium alone and one that seals
# its bulk with OpenSSL understand each other, both ways.
#
# A capture of whole sessions (both directions) holds no 64-byte window
# of a package file, no file name and no password; two sends of the same
# package put different bytes on the wire. A handshake replayed from the
# capture is refused like a wrong password.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init test_sealed

PKG=$WORK/src/pkg
mkdir -p "$PKG/zz-confidential-dir"
# incompressible (raw frames: the dangerous case) and compressible text
head -c $((2 * 1024 * 1024 + 4321)) /dev/urandom >"$PKG/zz-confidential-dir/launch-codes.bin"
python3 - "$PKG/readme-classified.txt" <<'EOF'
import random, sys
r = random.Random(7)
words = ["ferry", "package", "segment", "receiver", "parcel", "courier",
         "journal", "manifest", "secret", "deploy", "binary", "library"]
with open(sys.argv[1], "w") as f:
    for i in range(40000):
        f.write(" ".join(r.choice(words) for _ in range(8)) + " %d\n" % i)
EOF
SENDER_EXTRA="segment-size = 1M"
SENDER_RETRIES=0
write_proxy
start_serve

direct() {
	stop_proxy
	CEN_HOST=
	write_configs
}

# tamper NAME WHAT LEVEL PROOF PROXY-ARGS...: the first connection is
# tampered with (PROOF: what the proxy logs when it did), the send fails
# and the receiver says why; the resume, direct, completes the package.
tamper() {
	local name=$1 what=$2 level=$3 proof=$4 fails0
	shift 4
	via_proxy "$WORK/$name.plog" "$@"
	fails0=$(count_log "$SERVE_LOG" "$AUTH_FAIL")
	timeout 120 "$FERRY" send "$PKG" --to LAB --name "$name" --level "$level" \
		--config "$CEN_CONF" >"$WORK/$name.out" 2>"$WORK/$name.err"
	local rc=$?
	expect_grep "$what: the proxy did it" "$proof" "$WORK/$name.plog"
	expect_rc 1 "$rc" "$what: the send"
	if wait_for_log "$SERVE_LOG" "$AUTH_FAIL" 10 $((fails0 + 1)); then
		pass "$what: the receiver dropped the session (message authentication failed)"
	else
		fail "$what: the receiver did not log the authentication failure"
		tail -n 5 "$SERVE_LOG"
	fi
	check "$what: the package is not complete at the receiver" \
		test ! -e "$LAB_STORE/packages/$name"
	direct
	run_ferry "$WORK/$name.r.json" "$WORK/$name.r.err" resume "$name" \
		--config "$CEN_CONF" --json
	expect_rc 0 "$RC" "$what: the resume through a clean path"
	compare_trees "$PKG" "$LAB_STORE/packages/$name" "$what: after the resume"
}

tamper raw "a byte flipped in a raw frame's payload" 0 \
	'flipped stream byte.*type 20' --flip-payload 2:5000
tamper zstd "a byte flipped in a compressed frame's payload" 3 \
	'flipped stream byte.*type 20' --flip-payload 1:100
tamper rec "a byte flipped in a frame's record" 0 \
	'flipped stream byte.*type 7' --flip-seg 2:20
tamper drop "a message dropped (a frame's payload)" 0 \
	'dropped message #5 type 20' --drop-msg 5
tamper replay "a message replayed (a frame's record)" 0 \
	'replayed message #4 type 7' --replay-msg 4
tamper replay2 "a message replayed (the manifest)" 0 \
	'replayed message #3 type 5' --replay-msg 3

# another session's message spliced in: the first connection (a whole,
# clean send) is recorded, the second gets its 4th message
via_proxy "$WORK/splice.plog" --splice 4
timeout 120 "$FERRY" send "$PKG" --to LAB --name splice-a --level 0 \
	--config "$CEN_CONF" >"$WORK/splice-a.out" 2>"$WORK/splice-a.err"
expect_rc 0 $? "splice: the first, clean session"
fails0=$(count_log "$SERVE_LOG" "$AUTH_FAIL")
timeout 120 "$FERRY" send "$PKG" --to LAB --name splice-b --level 0 \
	--config "$CEN_CONF" >"$WORK/splice-b.out" 2>"$WORK/splice-b.err"
expect_rc 1 $? "splice: the send with a message of another session"
expect_grep "splice: the proxy spliced it in" "conn 2: spliced in message #4" "$WORK/splice.plog"
wait_for_log "$SERVE_LOG" "$AUTH_FAIL" 10 $((fails0 + 1)) &&
	pass "splice: the receiver dropped the session" ||
	fail "splice: the receiver did not log the authentication failure"
direct
run_ferry "$WORK/splice.r.json" "$WORK/splice.r.err" resume splice-b --config "$CEN_CONF" --json
expect_rc 0 "$RC" "splice: the resume through a clean path"
compare_trees "$PKG" "$LAB_STORE/packages/splice-b" "splice: after the resume"

# ---- OpenSSL's AES-256-GCM against libsodium's ------------------------------------------
# ferry seals AES-256-GCM's bulk with OpenSSL, the rest with libsodium;
# a ferry that seals all of it with libsodium (FERRY_SODIUM_GCM=1, as
# ferry did before) puts the same bytes on the wire: each understands the
# other, frames (raw and compressed) and streamed pieces, both ways.
gcm_send() { # gcm_send NAME LEVEL ENV...: sent direct, whole, identical
	local name=$1 level=$2
	shift 2
	env "$@" timeout 120 "$FERRY" send "$PKG" --to LAB --name "$name" \
		--level "$level" --config "$CEN_CONF" >"$WORK/$name.out" 2>"$WORK/$name.err"
	expect_rc 0 $? "$name: the send ($*)"
	compare_trees "$PKG" "$LAB_STORE/packages/$name" "$name"
}
if "$FERRY" --version | grep -q "AES-256-GCM here"; then
	gcm_send gcm-sodium-sender 0 FERRY_SODIUM_GCM=1
	gcm_send gcm-sodium-sender-z 3 FERRY_SODIUM_GCM=1 FERRY_FORCE_STREAM=1
	stop_serve
	FERRY_SODIUM_GCM=1 start_serve
	gcm_send gcm-sodium-receiver 0
	gcm_send gcm-sodium-receiver-z 3 FERRY_FORCE_STREAM=1
	stop_serve
	start_serve
else
	log "no AES-256-GCM here: OpenSSL against libsodium not tested"
fi

# ---- what a capture shows ------------------------------------------------------------
capture_send() { # capture_send N: send the package as 'cap', captured
	via_proxy "$WORK/cap$1.plog" --capture "$WORK/cap$1"
	timeout 120 "$FERRY" send "$PKG" --to LAB --name cap --level 0 \
		--config "$CEN_CONF" >"$WORK/cap$1.out" 2>"$WORK/cap$1.err"
	expect_rc 0 $? "captured send $1"
	compare_trees "$PKG" "$LAB_STORE/packages/cap" "captured send $1"
}
capture_send 1
# the same package again, to a receiver that has forgotten it
direct
stop_serve
rm -rf "$LAB_STORE"
start_serve
capture_send 2
direct

python3 - "$PKG" "$WORK/cap1" "$WORK/cap2" "$PW_FILE" >"$WORK/cap.out" 2>&1 <<'EOF'
import os, sys
pkg, cap1, cap2, pwfile = sys.argv[1:5]
caps = {}
for c in (cap1, cap2):
    for way in ("c2s", "s2c"):
        caps[c + "." + way] = open(c + "." + way, "rb").read()
bad = 0
# names and the password
password = open(pwfile, "rb").read().strip()
needles = [password, b"zz-confidential-dir", b"launch-codes", b"readme-classified"]
for name, data in caps.items():
    for n in needles:
        if n in data:
            print("FOUND %r in %s" % (n, name)); bad += 1
# every 64-byte window of every file, at every offset: keyed by its first
# 8 bytes, checked in full on a hit
files = []
for root, _, names in os.walk(pkg):
    for n in names:
        files.append(open(os.path.join(root, n), "rb").read())
keys = set()
for d in files:
    for i in range(0, len(d) - 63):
        keys.add(d[i:i + 8])
windows = 0
for name, data in caps.items():
    for i in range(0, len(data) - 63):
        if data[i:i + 8] in keys:
            w = data[i:i + 64]
            if any(w in d for d in files):
                print("FOUND a 64-byte window of a file in %s at %d" % (name, i))
                bad += 1
                break
    windows += max(0, len(data) - 63)
print("searched %d windows of the captures against %d of the files"
      % (windows, sum(max(0, len(d) - 63) for d in files)))
# two sends of the same package: other bytes
a, b = caps[cap1 + ".c2s"], caps[cap2 + ".c2s"]
same = sum(1 for x, y in zip(a, b) if x == y)
print("c2s: %d and %d bytes, %d equal at the same offset" % (len(a), len(b), same))
if same > min(len(a), len(b)) // 100:
    print("FOUND the two sends alike"); bad += 1
print("bad %d" % bad)
EOF
cat "$WORK/cap.out"
expect_grep "the captures hold no file name, no password, no 64-byte window of a file" \
	"^bad 0$" "$WORK/cap.out"
check "the captures are the size of the package (nothing skipped)" \
	test "$(stat -c %s "$WORK/cap1.c2s")" -gt $((2 * 1024 * 1024))

# ---- a handshake replayed from the capture -------------------------------------------
fails0=$(count_log "$SERVE_LOG" "authentication failed for account 'CEN'")
python3 - "$WORK/cap1.c2s" "$PORT" >"$WORK/replay.out" 2>&1 <<'EOF'
import socket, struct, sys
cap = open(sys.argv[1], "rb").read()
msgs, off = [], 0
for _ in range(2):               # HELLO and AUTH, as the real sender sent them
    t, n = struct.unpack("<II", cap[off:off + 8])
    msgs.append(cap[off:off + 8 + n]); off += 8 + n
s = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
s.settimeout(10)
def recv_msg():
    t, n = struct.unpack("<II", s.recv(8, socket.MSG_WAITALL))
    return t, s.recv(n, socket.MSG_WAITALL)
s.sendall(msgs[0])
print("challenge: type %d" % recv_msg()[0])
s.sendall(msgs[1])
t, body = recv_msg()
print("answer to the replayed AUTH: type %d %s" % (t, body[4:].decode(errors="replace")))
EOF
cat "$WORK/replay.out"
expect_grep "a replayed handshake is refused" \
	"answer to the replayed AUTH: type 11 authentication failed" "$WORK/replay.out"
wait_for_log "$SERVE_LOG" "authentication failed for account 'CEN'" 10 $((fails0 + 1)) &&
	pass "the receiver logs the replayed handshake as a failed attempt" ||
	fail "the receiver did not log the replayed handshake"

e2e_finish
