#!/bin/sh
# Install what ferry needs to build and test, from Debian's packages.
set -e
PKGS="build-essential cmake pkg-config liburing-dev libzstd-dev libxxhash-dev
libsodium-dev libssl-dev libinih-dev libcriterion-dev iproute2 netcat-openbsd python3
rsync iperf3 zstd tar procps time"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
echo "installing:$missing"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
