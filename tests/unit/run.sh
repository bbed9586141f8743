#!/bin/sh
# run.sh BINARY - run one Criterion unit-test binary for ctest. Criterion
# counts a skipped test (cr_skip_test) as passed and exits 0 even when
# every test skipped; here any skip turns a passing run into exit 77,
# which ctest shows as Skipped, and the skipped tests are listed with
# their reasons. A failure stays a failure.
bin=$1
tap=$(mktemp "${TMPDIR:-/tmp}/ferry-unit.XXXXXX") || exit 1
"$bin" --jobs 1 --tap="$tap"
rc=$?
skips=$(grep -c '# SKIP' "$tap")
if [ "$rc" = 0 ] && [ "$skips" -gt 0 ]; then
	grep '# SKIP' "$tap" | sed -E 's/^ok - ([^ ]+) +# SKIP (.*)$/SKIPPED: \1: \2/'
	echo "$(basename "$bin"): $skips test(s) skipped: reported as skipped"
	rc=77
fi
rm -f "$tap"
exit "$rc"
