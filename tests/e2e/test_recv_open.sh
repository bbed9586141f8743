#!/bin/bash
# test_recv_open.sh - a raw frame reaches its files as it arrives, and
# only as far as it opened.
#
# One 8 MiB segment goes as one whole raw frame through a proxy that
# carries 2 MiB/s. While the frame's last megabyte is still on the way,
# its first megabyte is in the file already: the receiver opens the
# payload part by part, on its workers, and writes what opened at once
# (what a killed receiver can lose is then only what was still in
# flight). With a byte of the payload flipped at 5 MiB, the session is
# dropped; the file holds the frame's first megabytes, and no byte from
# the altered chunk on (nothing is written before its chunk opened). With
# the line cut mid-frame, the receiver keeps the chunks that came and
# opened, and the resume sends only the rest of the frame.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init test_recv_open

MiB=$((1024 * 1024))
PKG=$WORK/src/pkg
mkdir -p "$PKG"
binary_data "$PKG/data.bin" $((8 * MiB))
SENDER_RETRIES=0
export FERRY_NO_STREAM=1 # a whole frame, whatever the line
write_proxy
start_serve

# watch_file PID: poll the partial copy of data.bin until its first MiB is
# the source's; say whether its last MiB was there yet ("early": it was
# not; "whole": it was; "never": PID ended first)
watch_file() {
	python3 - "$PKG/data.bin" "$LAB_STORE/partial" "$1" <<'EOF'
import glob, os, sys, time
src, partial, pid = sys.argv[1], sys.argv[2], int(sys.argv[3])
M = 1 << 20
with open(src, "rb") as f:
    first = f.read(M)
    f.seek(7 * M)
    last = f.read(M)
def alive():
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False
for _ in range(3000):
    for p in glob.glob(partial + "/*/tree/data.bin"):
        with open(p, "rb") as f:
            if f.read(M) != first:
                continue
            f.seek(7 * M)
            print("whole" if f.read(M) == last else "early")
            sys.exit(0)
    if not alive():
        break
    time.sleep(0.02)
print("never")
EOF
}

# ---- 1. written as it arrives
via_proxy "$WORK/p1.plog" --rate $((2 * MiB))
"$FERRY" send "$PKG" --to LAB --name pkg1 --level 0 --config "$CEN_CONF" \
	>"$WORK/s1.out" 2>"$WORK/s1.err" &
spid=$!
E2E_PIDS+=("$spid")
seen=$(watch_file "$spid")
rc=0
wait "$spid" || rc=$?
expect_rc 0 "$rc" "the send at 2 MiB/s"
check "the frame's first MiB was in its file before its last MiB arrived ($seen)" \
	[ "$seen" = early ]
compare_trees "$PKG" "$LAB_STORE/packages/pkg1" "package sent at 2 MiB/s"

# ---- 2. a chunk that does not open: nothing from it on is written
fails0=$(count_log "$SERVE_LOG" "$AUTH_FAIL")
via_proxy "$WORK/p2.plog" --rate $((2 * MiB)) --flip-payload 1:$((5 * MiB + 100))
rc=0
timeout 120 "$FERRY" send "$PKG" --to LAB --name pkg2 --level 0 \
	--config "$CEN_CONF" >"$WORK/s2.out" 2>"$WORK/s2.err" || rc=$?
expect_rc 1 "$rc" "the send whose payload was altered at 5 MiB"
expect_grep "the proxy flipped the byte" "flip" "$WORK/p2.plog"
wait_for_log "$SERVE_LOG" "$AUTH_FAIL" 10 $((fails0 + 1)) ||
	die "the receiver did not drop the altered session"
pass "the receiver dropped the session (message authentication failed)"
f=$(ls "$LAB_STORE"/partial/*/tree/data.bin 2>/dev/null | head -n 1)
check "the altered frame's file is there (what opened before the flip)" [ -n "$f" ]
check "its first 4 MiB are the source's (written as they opened)" \
	cmp -n $((4 * MiB)) "$PKG/data.bin" "$f"
check "no byte from the altered chunk on was written" \
	python3 -c "
import sys
with open('$f', 'rb') as g:
    g.seek(5 * (1 << 20))
    rest = g.read()
sys.exit(0 if rest.count(0) == len(rest) else 1)"

# ---- 3. the line cut mid-frame: what opened is kept, the resume sends
# only the rest, and the kept part (plaintext already) is written at once
# (the proxy passes the first 3 MiB of the connection and holds there)
via_proxy "$WORK/p3.plog" --rate $((2 * MiB)) --hold-at $((3 * MiB))
"$FERRY" send "$PKG" --to LAB --name pkg3 --level 0 --config "$CEN_CONF" \
	>"$WORK/s3.out" 2>"$WORK/s3.err" &
spid=$!
E2E_PIDS+=("$spid")
seen=$(watch_file "$spid")
[ "$seen" = early ] || die "the frame was not written as it came ($seen)"
wait_for_log "$WORK/p3.plog" "holding before" 30 || die "the proxy did not pass 3 MiB"
stop_proxy
rc=0
wait "$spid" || rc=$?
expect_rc 1 "$rc" "the send whose line was cut"
KEPT="kept [0-9]+ of the $((8 * MiB)) bytes of segment 0's frame"
wait_for_log "$SERVE_LOG" "$KEPT" 10 ||
	die "the receiver kept nothing of the frame that was cut"
kept=$(grep -oE "$KEPT" "$SERVE_LOG" | tail -n 1 | awk '{print $2}')
check "the receiver kept the whole chunks that came ($kept bytes, at least the MiB seen in the file)" \
	[ "$kept" -ge $MiB ]
CEN_HOST=
write_configs
run_ferry "$WORK/r3.json" "$WORK/r3.err" resume pkg3 --config "$CEN_CONF" --json
expect_rc 0 "$RC" "the resume after the cut"
expect_grep "the resume took only the rest of the frame" \
	"segment 0 resumes at byte $kept of $((8 * MiB))" "$SERVE_LOG"
compare_trees "$PKG" "$LAB_STORE/packages/pkg3" "package resumed after the cut"

e2e_finish
