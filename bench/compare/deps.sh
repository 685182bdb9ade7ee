#!/bin/sh
# Install the Debian 12 packages `make bench-compare` needs, if any is missing:
# the two servers compared with (Prosody, ejabberd), tsung (the cross-check),
# gnuplot-nox (the plots), util-linux (taskset), procps, bc, openssl.
# Safe to run again; does nothing when everything is present.
#   usage: bench/compare/deps.sh [--check]   (--check: only report what is missing)
set -e
pkgs="prosody ejabberd tsung gnuplot-nox util-linux procps openssl python3"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "${1:-}" = --check ]; then
	echo "missing Debian packages:$missing" >&2
	exit 1
fi
if [ "$(id -u)" != 0 ]; then
	echo "bench-compare: missing Debian packages:$missing" >&2
	echo "  run as root, or: sudo apt-get install$missing" >&2
	exit 1
fi
echo "bench-compare: installing Debian packages:$missing"
apt-get update -qq
# The packages' own services must not start: the harness runs its own instances
# on private ports. policy-rc.d 101 forbids invoke-rc.d starts during this install.
prc=/usr/sbin/policy-rc.d
own=""
if [ ! -e $prc ]; then printf '#!/bin/sh\nexit 101\n' > $prc; chmod 755 $prc; own=1; fi
rc=0
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null || rc=$?
[ -n "$own" ] && rm -f $prc
[ $rc = 0 ] || { echo "bench-compare: apt-get install failed (rc $rc)" >&2; exit $rc; }
# If the packages' services are running anyway (systemd), stop them: they would
# take CPU from the measurement (ports 5222/5269/5280 are not ours but are loopback-wide).
for s in prosody ejabberd; do
	if command -v systemctl >/dev/null 2>&1 && systemctl is-active -q $s 2>/dev/null; then
		systemctl stop $s 2>/dev/null || true
		systemctl disable $s 2>/dev/null || true
	fi
done
