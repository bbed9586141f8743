#!/bin/bash
# bench/pipeline.sh - `ferry bench pipeline` against the tools a user
# would trust for the same numbers, on the same file, in the same run:
#   zstd -bL -i3 FILE      compression and decompression MB/s per core and
#                          the ratio, at levels 1 and 3 (MB = 10^6 B)
#   xxhsum -H2 -b -i3 FILE XXH3-128's rate on the file in memory (its "MB"
#                          is 2^20 bytes: converted here)
#   build/bench_zstd_loop  the shared libzstd that ferry links, in a plain
#                          loop over 8 MiB chunks: Debian's zstd command is
#                          linked with a static copy of its own, built
#                          otherwise, and runs slower than the library
#                          (PERFORMANCE.md)
# Each tool runs ROUNDS times, alternating with ferry; the best of each is
# compared (a busy 2-core machine only ever slows a run down).
#
#   bash bench/pipeline.sh            # 32 MiB of /usr/bin's binaries
#   FILE=/path/to/pkg bash bench/pipeline.sh
#
# The file should be at most 32 MiB: ferry measures its levels on a sample
# of that much, zstd -b on the whole file. Needs zstd and xxhsum (Debian:
# zstd, xxhash).
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
FERRY=${FERRY:-$repo/build/ferry}
LOOP=${LOOP:-$repo/build/bench_zstd_loop}
ROUNDS=${ROUNDS:-3}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ferry-bench-pipeline.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
command -v zstd >/dev/null || { echo "needs zstd" >&2; exit 1; }
command -v xxhsum >/dev/null || { echo "needs xxhsum (apt-get install xxhash)" >&2; exit 1; }

FILE=${FILE:-}
if [ -z "$FILE" ]; then
	FILE=$WORK/pkg.bin
	find /usr/bin -xdev -type f -size +20k 2>/dev/null | LC_ALL=C sort |
		xargs -r cat 2>/dev/null | head -c $((32 << 20)) >"$FILE"
fi
mkdir -p "$WORK/pkg"
ln "$FILE" "$WORK/pkg/$(basename "$FILE")" 2>/dev/null || cp "$FILE" "$WORK/pkg/"
printf '[site]\ncode = B\nstore = %s/store\n' "$WORK" >"$WORK/b.conf"

# zstd -b: "...-> N (xR), C MB/s, D MB/s" on its last line
zstd_b() {
	zstd -b"$1" -i3 "$FILE" 2>&1 | tr '\r' '\n' | grep -E 'MB/s, +[0-9.]+ MB/s' | tail -1 |
		sed -E 's/.*\(x([0-9.]+)\), +([0-9.]+) MB\/s, +([0-9.]+) MB\/s.*/\1 \2 \3/'
}
# xxhsum -b: "... it/s (R MB/s)" with MB = 2^20; printed here in 10^6
xxh_b() {
	xxhsum -H2 -b -i3 "$FILE" 2>&1 | tr '\r' '\n' | grep -E 'XXH128 .*MB/s' | tail -1 |
		sed -E 's/.*\( *([0-9.]+) MB\/s\).*/\1/' | awk '{ printf "%.1f\n", $1 * 1048576 / 1e6 }'
}
# ferry: level L's ratio, compress, decompress; and the hash
ferry_b() {
	"$FERRY" bench pipeline "$WORK/pkg" --level "$1" --json --no-progress \
		--config "$WORK/b.conf" 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin); l = d["levels"][0]
print("%.3f %.1f %.1f %.1f" % (l["ratio"], l["compress_mb_s_per_core"],
      l["decompress_mb_s_per_core"], d["hash_mb_s_per_core"]))'
}
best() { sort -g | tail -1; }

declare -A R
for ((i = 1; i <= ROUNDS; i++)); do
	for L in 1 3; do
		read -r zr zc zd <<<"$(zstd_b "$L")"
		read -r fr fc fd fh <<<"$(ferry_b "$L")"
		read -r lr lc ld <<<"$("$LOOP" "$L" "$FILE")"
		R[zr$L]=$zr R[fr$L]=$fr R[lr$L]=$lr
		R[zc$L]+="$zc " R[zd$L]+="$zd " R[fc$L]+="$fc " R[fd$L]+="$fd "
		R[lc$L]+="$lc " R[ld$L]+="$ld "
		R[fh]+="$fh "
	done
	R[xh]+="$(xxh_b) "
	echo "round $i done" >&2
done
pick() { tr ' ' '\n' <<<"${R[$1]}" | grep . | best; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

echo "file: $FILE ($(stat -c %s "$FILE") bytes); best of $ROUNDS rounds; $(nproc) cores"
printf '%-28s %9s %14s %8s %14s %8s\n' "measure" "ferry" "zstd -b/xxhsum" "ratio" \
	"libzstd loop" "ratio"
row() { # NAME FERRY REFERENCE [LOOP]
	printf '%-28s %9s %14s %8s' "$1" "$2" "$3" "$(ratio "$2" "$3")"
	[ -n "${4:-}" ] && printf ' %14s %8s' "$4" "$(ratio "$2" "$4")"
	printf '\n'
}
for L in 1 3; do
	row "level $L ratio" "${R[fr$L]}" "${R[zr$L]}" "${R[lr$L]}"
	row "level $L compress MB/s/core" "$(pick fc$L)" "$(pick zc$L)" "$(pick lc$L)"
	row "level $L decompress MB/s/core" "$(pick fd$L)" "$(pick zd$L)" "$(pick ld$L)"
done
row "XXH3-128 MB/s/core" "$(pick fh)" "$(pick xh)"
