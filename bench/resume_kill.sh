#!/bin/bash
# bench/resume_kill.sh — `ferry resume` right after a kill -9 of the
# sender: how many of ROUNDS resumes go on (their session accepted by the
# receiver) within WITHIN seconds. It runs tests/e2e/test_resume_kill.sh
# with more rounds: 320 MiB of random data over loopback to a local
# `ferry serve`, retry-delay 60s, other writes on the receiver's file
# system, the sender killed at a random moment 0.05-0.65 s into each
# session. See PERFORMANCE.md.
#
#   bash bench/resume_kill.sh
#
# Options (environment):
#   ROUNDS=50      kills that land mid-transfer
#   WITHIN=2       seconds a resume may take to be accepted
#   MIB=320        package size
#   NOISE=1        0: no other writes on the receiver's file system
#   FERRY=build/ferry
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
export FERRY=${FERRY:-$repo/build/ferry}
export FERRY_KILL_ROUNDS=${ROUNDS:-50}
export FERRY_KILL_WITHIN=${WITHIN:-2}
export FERRY_KILL_MIB=${MIB:-320}
export FERRY_KILL_NOISE=${NOISE:-1}
log=$(mktemp "${TMPDIR:-/tmp}/resume_kill.XXXXXX.log")
echo "ferry $(git -C "$repo" rev-parse --short HEAD 2>/dev/null), $(nproc) cores, $(uname -r); log: $log"
bash "$repo/tests/e2e/test_resume_kill.sh" >"$log" 2>&1
rc=$?
grep -E "^test_resume_kill: ([0-9]+ of [0-9]+ resumes|accepted after)" "$log"
grep -E "^FAIL" "$log"
exit $rc
