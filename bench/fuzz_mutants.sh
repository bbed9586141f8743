#!/bin/bash
# bench/fuzz_mutants.sh - breakages of the decoders that the fuzz targets
# must find: the check that a target can fail. For each: copy the tree
# (the files git tracks, as they are in the work tree), remove one check
# (an exact text that must occur once), build that target with clang and
# -DFERRY_FUZZ=ON, fuzz it from its committed seeds for at most SECONDS,
# and print "caught" (a crash or sanitizer report) or "SURVIVED".
#
#   bash bench/fuzz_mutants.sh [SECONDS] [NAME-PREFIX]   (default 120 s)
#
# Results in RELIABILITY.md, "Fuzzing". Exit 0 only when all were caught.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SECS=${1:-120}
ONLY=${2:-}
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/ferry-fuzz-mutants.XXXXXX")
trap '[ -n "${KEEP:-}" ] || rm -rf "$SCRATCH"' EXIT

# name@file@find@replace@target (find must occur once in file)
MUTANTS=(
	"journal-index-unchecked@engine/store/journal.c@idx >= m->n_segments ||@0 && idx >= m->n_segments ||@journal"
	"have-partials-unbounded@engine/core/net.c@(len - base) / FR_PARTIAL_REC > FR_PARTIAL_MAX ||@@have"
	"frame-stored-unbounded@codec/frame.c@stored < 1 || stored > fr_seg_bound(raw)@stored < 1@frame"
	"ack-index-unchecked@engine/core/wire.c@if (out->index >= n_segments)@if (0)@ack"
	"volhdr-code-padding@codec/parcel.c@if (src[i])@if (0 && src[i])@vol_hdr"
	"piece-past-bound@engine/core/wire.c@len > 0 && len <= room@len > 0@segment"
	"open-accepts-forgery@engine/core/seal.c@return r == 0 ? 0 : FR_E_SEALED;@return 0;@sealed"
)
git ls-files -z | tar --null -T - -cf - | (mkdir -p "$SCRATCH/tree" && tar -xf - -C "$SCRATCH/tree")
cmake -S "$SCRATCH/tree" -B "$SCRATCH/build" -DCMAKE_C_COMPILER=clang \
	-DFERRY_FUZZ=ON -DFERRY_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null || exit 1
survived=0
for m in "${MUTANTS[@]}"; do
	IFS='@' read -r name file find repl target <<<"$m"
	case $name in "$ONLY"*) ;; *) continue ;; esac
	cp "$ROOT/$file" "$SCRATCH/tree/$file"
	if ! F="$find" R="$repl" python3 -c 'import os,sys
p = sys.argv[1]; s = open(p).read(); f = os.environ["F"]
sys.exit(s.count(f) != 1 or open(p, "w").write(s.replace(f, os.environ["R"])) < 0)' \
		"$SCRATCH/tree/$file"; then
		echo "$name: the text to break is not in $file once"
		survived=1
		continue
	fi
	if ! nice cmake --build "$SCRATCH/build" --target "fuzz_$target" >/dev/null 2>&1; then
		echo "$name: build failed"
		survived=1
		cp "$ROOT/$file" "$SCRATCH/tree/$file"
		continue
	fi
	mkdir -p "$SCRATCH/w/$name"
	start=$(date +%s)
	nice "$SCRATCH/build/fuzz_$target" -max_total_time="$SECS" -max_len=16384 \
		-artifact_prefix="$SCRATCH/w/$name/" "$SCRATCH/w/$name" \
		"$ROOT/tests/fuzz/corpus/$target" >"$SCRATCH/$name.log" 2>&1
	rc=$?
	if [ $rc -ne 0 ]; then
		echo "$name: caught by fuzz_$target in $(($(date +%s) - start)) s:" \
			"$(grep -m1 -oE 'AddressSanitizer: [A-Za-z-]+|runtime error: .*|deadly signal' "$SCRATCH/$name.log")"
	else
		echo "$name: SURVIVED $SECS s of fuzz_$target"
		survived=1
	fi
	cp "$ROOT/$file" "$SCRATCH/tree/$file"
done
exit $survived
