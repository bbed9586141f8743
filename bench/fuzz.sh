#!/bin/bash
# bench/fuzz.sh — run the libFuzzer targets (tests/fuzz/fuzz_<name>.c):
# builds ferry with clang, -DFERRY_FUZZ=ON (-fsanitize=fuzzer,address,
# undefined) in its own build directory, then runs each target for the
# given time, starting from its committed seeds (tests/fuzz/corpus/<name>/)
# and keeping what it finds new in a work directory. Prints per target the
# executions, their rate, the inputs found and any crash (kept as
# WORK/crashes/<name>/crash-*, a file to replay with
# build/fuzz_replay_<name> FILE). See RELIABILITY.md, "Fuzzing".
#
#   bash bench/fuzz.sh [SECONDS] [TARGET...]       (default 60 s, every target)
#   bash bench/fuzz.sh --merge [SECONDS] [TARGET...]
#
# --merge: afterwards, merge the inputs that add coverage into the
# committed corpus (libFuzzer -merge=1), else the corpus is only read.
# Options (environment):
#   BUILD=build-fuzz        the build directory
#   WORK=$BUILD/work        new inputs (WORK/<name>/) and crashes
#   NICE=10                 niceness of the fuzzer processes
#   MAX_LEN=16384           the largest input tried (libFuzzer's default,
#                           4096, is too small for 65 HAVE records)
#   FUZZ_ARGS=              more libFuzzer flags (e.g. -only_ascii=1)
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
merge=0
if [ "${1:-}" = "--merge" ]; then
	merge=1
	shift
fi
secs=${1:-60}
shift || true
case $secs in
'' | *[!0-9]*)
	echo "usage: bench/fuzz.sh [--merge] [SECONDS] [TARGET...]" >&2
	exit 2
	;;
esac
build=${BUILD:-$repo/build-fuzz}
work=${WORK:-$build/work}
corpus=$repo/tests/fuzz/corpus

cmake -S "$repo" -B "$build" -DCMAKE_C_COMPILER=clang -DFERRY_FUZZ=ON \
	-DFERRY_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null || exit 1
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
	# the list in tests/fuzz/fuzz.cmake, in its order
	mapfile -t targets < <(sed -n '/^set(FERRY_FUZZ_TARGETS/,/^)/p' \
		"$repo/tests/fuzz/fuzz.cmake" | sed -n 's/^  \([a-z_0-9]*\).*/\1/p')
fi
nice -n "${NICE:-10}" cmake --build "$build" -j"$(nproc)" \
	--target $(printf 'fuzz_%s ' "${targets[@]}") >/dev/null || exit 1

echo "ferry $(git -C "$repo" rev-parse --short HEAD 2>/dev/null), $(nproc) cores," \
	"$(uname -r), $(clang --version | head -1); ${secs} s per target; work: $work"
printf '%-12s %12s %10s %8s %8s  %s\n' target executions exec/s seeds found result
crashed=0
for t in "${targets[@]}"; do
	mkdir -p "$work/$t" "$work/crashes/$t"
	log=$work/$t.log
	before=$(ls "$work/$t" | wc -l)
	# new inputs go into the first directory, the work one; the
	# committed seeds are read only
	nice -n "${NICE:-10}" "$build/fuzz_$t" -max_total_time="$secs" \
		-print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
		-max_len="${MAX_LEN:-16384}" \
		-artifact_prefix="$work/crashes/$t/" ${FUZZ_ARGS:-} \
		"$work/$t" "$corpus/$t" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
	found=$(($(ls "$work/$t" | wc -l) - before))
	seeds=$(ls "$corpus/$t" | wc -l)
	result=ok
	if [ $rc -ne 0 ]; then
		crashed=1
		result="CRASH (exit $rc): $(ls "$work/crashes/$t" | head -3 | tr '\n' ' ')"
		result+=" $(grep -m1 -E 'ERROR: |runtime error|deadly signal' "$log")"
	fi
	printf '%-12s %12s %10s %8s %8s  %s\n' "$t" "${execs:-?}" "${rate:-?}" \
		"$seeds" "$found" "$result"
	if [ $merge = 1 ]; then
		nice -n "${NICE:-10}" "$build/fuzz_$t" -merge=1 "$corpus/$t" \
			"$work/$t" >>"$log" 2>&1 ||
			echo "$t: merge into $corpus/$t failed (see $log)"
	fi
done
echo "logs: $work/<target>.log"
exit $crashed
