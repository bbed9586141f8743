#!/bin/bash
# test_durability.sh - the receiver's order "data durable, then journal
# record durable, then ACK", observed call by call. A kill -9 never loses
# the page cache, so no kill test notices a missing sync: here the receiver
# runs under an LD_PRELOAD shim (tests/shim/synclog.c, built for tests
# only) that logs every syncfs/fsync/fdatasync, every write to a journal
# and every send on a socket with the thread that made it, and the log is
# checked:
#   - a journal record is written only after a sync of the data by the
#     same thread since its last journal sync (syncfs of the tree);
#   - no ACK (a send by the journaling thread) leaves while a journal
#     record it wrote is not yet fdatasync'd;
#   - every segment of the package was journaled, and ACKs did leave from
#     the journaling thread (so the rules above were really exercised).
# Removing the syncer's syncfs or the journal's fdatasync fails this test
# (bench/mutants.sh checks that it does).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init test_durability

SHIM=${SYNCLOG_SHIM:-$(dirname "$FERRY")/libferry_synclog.so}
[ -f "$SHIM" ] || skip "the test shim $SHIM is not built"

SEGS=32
SENDER_EXTRA="segment-size = 64K"
write_configs
SRC=$WORK/src
mkdir -p "$SRC/d"
head -c $((SEGS * 64 * 1024 - 5000)) /dev/urandom >"$SRC/d/blob"
echo small >"$SRC/small"

check_log() { # check_log LOG SEGMENTS
	python3 - "$1" "$2" <<'EOF'
import sys
path, segs = sys.argv[1], int(sys.argv[2])
HDR = 32   # journal header; records are 32 bytes each after it
synced = {}    # tid -> a data sync since the thread's last journal sync
pending = {}   # tid -> a journal record written and not yet synced
acks = {}      # tid -> sends after a journal sync
records = 0
bad = []
for n, line in enumerate(open(path), 1):
    f = line.split()
    tid, ev = f[0], f[1]
    if ev in ("SYNCFS", "FSYNC", "FDATASYNC"):
        synced[tid] = True
    elif ev in ("JFSYNC", "JFDATASYNC"):
        pending[tid] = False
        synced[tid] = False
    elif ev == "JWRITE":
        off, length = int(f[3]), int(f[4])
        if off < HDR:
            continue               # the journal's header, at creation
        if not synced.get(tid):
            bad.append("line %d: a journal record written before the data "
                       "was synced: %s" % (n, line.strip()))
        pending[tid] = True
        records += length // 32
    elif ev == "SEND":
        if pending.get(tid):
            bad.append("line %d: a send (ACK) while a journal record was not "
                       "yet durable: %s" % (n, line.strip()))
        if tid in pending:
            acks[tid] = acks.get(tid, 0) + 1
for b in bad[:5]:
    print(b)
print("records=%d acks=%d violations=%d" % (records, sum(acks.values()), len(bad)))
sys.exit(0 if not bad and records == segs and sum(acks.values()) >= 1 else 1)
EOF
}

LD_PRELOAD=$SHIM SYNCLOG=$WORK/sync.log \
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 start_serve
run_ferry "$WORK/s.json" "$WORK/s.err" send "$SRC" --to LAB --name dur \
	--config "$CEN_CONF" --json
expect_rc 0 "$RC" "send through a receiver under the sync log"
n=$(json_get "$WORK/s.json" 'd["segments"]')
check "the package has $SEGS segments ($n)" [ "$n" = "$SEGS" ]
check "the sync log was written" test -s "$WORK/sync.log"
out=$(check_log "$WORK/sync.log" "$SEGS")
log "sync log: $out"
check "data synced before each journal record, journal synced before each ACK, all $SEGS segments journaled ($out)" \
	check_log "$WORK/sync.log" "$SEGS"
compare_trees "$SRC" "$LAB_STORE/packages/dur" "the package"

e2e_finish
