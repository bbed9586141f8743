#!/bin/bash
# bench/mutants.sh - deliberate breakages that the suite must catch.
#
# For each mutant: copy the tree (the files git tracks, as they are in the
# work tree) to a scratch directory, apply one small change to the code
# (an exact text that must occur once), build it, run the tests that must
# catch it, and print "caught" (a test failed) or "SURVIVED" (all passed).
# Exit 0 only when every mutant was caught.
#
#   bash bench/mutants.sh              # all mutants
#   bash bench/mutants.sh journal-     # those whose name starts so
#
# Needs what tools/test.sh installs. Takes about a minute per mutant on
# a 2-core machine. Record the result in RELIABILITY.md.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
ONLY=${1:-}
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/ferry-mutants.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT

# mutant NAME FILE FIND REPLACE TESTS: FIND must occur once in FILE (\n
# and \t escapes allowed); TESTS is the ctest regex of the tests that must
# catch the change.
NAMES=() FILES=() FINDS=() REPLS=() TESTS=()
mutant() {
	NAMES+=("$1") FILES+=("$2") FINDS+=("$3") REPLS+=("$4") TESTS+=("$5")
}
mutant recv-ignores-hash codec/frame.c \
	'if (memcmp(h, want, FR_HASH_LEN) || memcmp(h, f->hash, FR_HASH_LEN))' \
	'if (0)' 'e2e/test_corrupt_wire$|unit/codec_frame$'
mutant journal-no-fdatasync engine/store/journal.c \
	'\tif (fdatasync(j->fd) < 0)\n\t\treturn -errno;\n\tfor (k = 0;' \
	'\tfor (k = 0;' 'e2e/test_durability$|unit/engine_journal$'
mutant data-no-sync-before-journal engine/store/syncer.c \
	'if (!err && syncfs(s->pkg->tree_fd) < 0)' 'if (0)' 'e2e/test_durability$'
mutant recv-accepts-wrong-password engine/core/net.c \
	'crypto_verify_32(body + 32, h.k.confirm_c) != 0' \
	'0' 'e2e/test_auth$|unit/engine_handshake$'
mutant verify-ignores-content engine/store/verify.c \
	'			if (!memcmp(h, m->segments[s].hash, FR_HASH_LEN))\n				continue;' \
	'			continue;' 'e2e/test_repair$|e2e/test_tree$|unit/engine_store$'
mutant resume-refused-while-old-session-drains engine/recv/serve.c \
	'		if (!wait_holder(rc, id, t0))' '		if (1)' 'e2e/test_resume_kill$'
mutant sender-skips-receiver-proof engine/core/net.c \
	'crypto_verify_32(body, h.k.confirm_s) != 0' '0' \
	'e2e/test_auth$|unit/engine_handshake$'
mutant open-accepts-anything engine/core/seal.c \
	'return r == 0 ? 0 : FR_E_SEALED;' 'return 0;' \
	'e2e/test_sealed$|unit/engine_seal$'
mutant evp-open-accepts-anything engine/core/seal.c \
	'\tsodium_memzero(buf, len); /* nothing unauthenticated is left */\n\treturn FR_E_SEALED;' \
	'\treturn 0;' 'e2e/test_sealed$|unit/engine_gcm$'
mutant evp-chunks-other-nonce engine/core/seal.c \
	'\t\tnonce(nb, 0, at / c);\n\t\tif (!g' '\t\tnonce(nb, 1, at / c);\n\t\tif (!g' \
	'e2e/test_sealed$|unit/engine_gcm$'

apply() { # apply FILE FIND REPLACE: exactly one occurrence, else fail
	python3 - "$1" "$2" "$3" <<'EOF'
import sys
path, find, repl = sys.argv[1], sys.argv[2], sys.argv[3]
find = find.encode().decode("unicode_escape")
repl = repl.encode().decode("unicode_escape")
s = open(path).read()
n = s.count(find)
if n != 1:
    print("mutant text found %d times in %s (want 1): %r" % (n, path, find))
    sys.exit(1)
open(path, "w").write(s.replace(find, repl))
EOF
}

caught=0 survived=0 broken=0
results=()
for i in "${!NAMES[@]}"; do
	name=${NAMES[$i]} file=${FILES[$i]} find=${FINDS[$i]} repl=${REPLS[$i]}
	tests=${TESTS[$i]}
	[ -n "$ONLY" ] && [[ $name != "$ONLY"* ]] && continue
	dir=$SCRATCH/$name
	mkdir -p "$dir"
	git ls-files -z | (cd "$ROOT" && xargs -0 tar cf -) | tar xf - -C "$dir"
	if ! apply "$dir/$file" "$find" "$repl"; then
		results+=("$name: BROKEN (the text to change is not in $file)")
		broken=$((broken + 1))
		continue
	fi
	echo "== $name: building"
	if ! (cmake -S "$dir" -B "$dir/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFERRY_TEST_HOOKS=ON >/dev/null &&
		cmake --build "$dir/build" -j"$(nproc)" >"$dir/build.log" 2>&1); then
		results+=("$name: BROKEN (does not build; $dir/build.log)")
		broken=$((broken + 1))
		continue
	fi
	echo "== $name: running $tests"
	if ctest --test-dir "$dir/build" -R "$tests" >"$dir/ctest.log" 2>&1; then
		results+=("$name: SURVIVED ($tests all passed)")
		survived=$((survived + 1))
	else
		failed=$(grep -E '^\s*[0-9]+ - ' "$dir/ctest.log" | sed -E 's/^\s*[0-9]+ - ([^ ]+).*/\1/' | tr '\n' ' ')
		results+=("$name: caught by $failed")
		caught=$((caught + 1))
	fi
	grep -q 'No tests were found' "$dir/ctest.log" &&
		results[-1]="$name: BROKEN (no test matched $tests)"
	rm -rf "$dir/build"
done

echo
echo "mutants on $(git rev-parse --short HEAD)$(git diff --quiet || echo '+changes'), $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ):"
printf '  %s\n' "${results[@]}"
echo "$caught caught, $survived survived, $broken broken"
[ "$survived" = 0 ] && [ "$broken" = 0 ]
