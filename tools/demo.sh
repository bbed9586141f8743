#!/bin/bash
# Install, build, and run ferry's main job on an embedded example: site CEN
# sends a package (a tree of real files) to site LAB over loopback, and LAB
# verifies it. Everything lives in a temporary directory, removed at the end
# (keep it with FERRY_DEMO_KEEP=1).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFERRY_TEST_HOOKS=OFF >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
ferry=$PWD/build/ferry

work=$(mktemp -d /tmp/ferry-demo.XXXXXX)
cleanup() {
	[ -n "${serve_pid:-}" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
	[ -n "${FERRY_DEMO_KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

# The package: documentation and libraries from this machine, ~100 MB.
mkdir -p "$work/payload/lib" "$work/payload/doc"
cp -r /usr/share/doc/. "$work/payload/doc/" 2>/dev/null || true
# symlinks to elsewhere on this machine cannot be carried: keep only real files
find "$work/payload/doc" -type l -delete
find /usr/lib/x86_64-linux-gnu -maxdepth 1 -name '*.so*' -type f -size +1M |
	head -40 | xargs -r cp -t "$work/payload/lib/"
ln -s lib "$work/payload/libraries"

umask 077
# one password, held by both sites: LAB's [account CEN] and CEN's address
head -c 24 /dev/urandom | base64 >"$work/CEN-at-LAB.pw"
port=$((20000 + RANDOM % 20000))
cat >"$work/lab.conf" <<CONF
[site]
code   = LAB
store  = $work/lab
listen = 127.0.0.1:$port

[account CEN]                 ; CEN may send to LAB
password-file = $work/CEN-at-LAB.pw
CONF
cat >"$work/cen.conf" <<CONF
[site]
code  = CEN
store = $work/cen

[address LAB lan]             ; how CEN reaches LAB
type          = lan
host          = 127.0.0.1:$port
account       = CEN
password-file = $work/CEN-at-LAB.pw
priority      = 1
CONF

echo "== LAB: ferry serve --config lab.conf"
"$ferry" serve --config "$work/lab.conf" 2>"$work/serve.log" &
serve_pid=$!
for _ in $(seq 50); do grep -q "receiving on" "$work/serve.log" && break; sleep 0.1; done

echo "== CEN: ferry send payload --to LAB --config cen.conf"
"$ferry" send "$work/payload" --to LAB --config "$work/cen.conf"
echo
echo "== CEN: ferry status --config cen.conf"
"$ferry" status --config "$work/cen.conf"
echo
echo "== LAB: ferry verify payload --config lab.conf"
"$ferry" verify payload --config "$work/lab.conf"
echo
echo "== LAB's log"
cat "$work/serve.log"
echo
if diff -r "$work/payload" "$work/lab/packages/payload" >/dev/null; then
	echo "demo: the package at LAB is byte-identical to the source"
else
	echo "demo: FAILED: the trees differ" >&2
	exit 1
fi
