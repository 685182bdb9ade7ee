#!/bin/sh
# Install the Debian 12 packages xedge needs to build, run and test, if any is
# missing.  Safe to run again; does nothing when everything is present.
#   usage: deploy/debian-deps.sh [build|test|bench]
set -e
build="gcc make pkg-config liburing-dev libwolfssl-dev libjemalloc-dev libexpat1-dev \
libck-dev libyaml-dev libsqlite3-dev libpq-dev libc-ares-dev libjansson-dev openssl"
test="$build libcmocka-dev clang libclang-rt-14-dev python3-pytest python3-slixmpp python3-aiohttp libstrophe-dev \
prosody ejabberd haproxy nodejs tsung python3-aioxmpp profanity tmux python3-cryptography \
dnsmasq-base iproute2 util-linux biboumi ngircd python3-kubernetes postgresql"
# npm: its own Debian package, unless the installed nodejs bundles it (NodeSource).
command -v npm >/dev/null 2>&1 || test="$test npm"
bench="$build gnuplot-nox prosody ejabberd tsung haproxy"
case "${1:-build}" in
	build) pkgs=$build ;;
	test) pkgs=$test ;;
	bench) pkgs=$bench ;;
	*) echo "usage: $0 [build|test|bench]" >&2; exit 2 ;;
esac
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "missing Debian packages:$missing — run as root or: sudo apt-get install$missing" >&2
	exit 1
fi
echo "installing Debian packages:$missing"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
