#!/bin/bash
# Install, build and run every test: the Criterion unit tests and the
# end-to-end tests on the normal build, then the whole suite again on an
# ASan+UBSan build (without the tests labelled slow, but with the short
# variants of test_ras and test_policy, e2e/test_*_short: tests/tests.cmake).
# Two at a time: the tests labelled "alongside" (test_ras, test_policy: they
# mostly wait on slow lines and the clock) beside the others, which still
# run one at a time (the lock "machine", tests/tests.cmake).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFERRY_TEST_HOOKS=ON >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j2
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DFERRY_SANITIZE=ON -DFERRY_TEST_HOOKS=ON >/dev/null
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	ctest --test-dir build-asan --output-on-failure -LE slow -j2
