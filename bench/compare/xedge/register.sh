#!/bin/bash
# Create accounts PREFIX{FIRST..FIRST+COUNT-1}@DOMAIN in the running benchmark xedge.
#   usage: register.sh PREFIX FIRST COUNT PASSWORD     (a "%d" in PASSWORD becomes the number)
#   env:   BENCH_TARGET_DIR BENCH_DOMAIN XEDGE_BUILD (as for start.sh)  BENCH_JOBS (4)
# Method: `xedgectl -s ADMIN_SOCKET user add JID PASSWORD`, BENCH_JOBS at a time (xargs -P).
# Each call derives the SCRAM-SHA-1 and SCRAM-SHA-256 keys (PBKDF2 4096) itself: ~10 ms of
# CPU, so this runs at ~115 accounts/s on two cores.
# Prints one JSON line on stdout: {"method", "users", "seconds", "per_sec"}.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
BENCH_TAG=xedge; . "$HERE/../lib.sh"
[ $# = 4 ] || die "usage: $0 PREFIX FIRST COUNT PASSWORD"
PREFIX=$1; FIRST=$2; COUNT=$3; PW=$4
D=${BENCH_TARGET_DIR:?BENCH_TARGET_DIR is not set}
B=${XEDGE_BUILD:-$(cd "$HERE/../../.." && pwd)/build}
DOMAIN=${BENCH_DOMAIN:-localhost}; JOBS=${BENCH_JOBS:-4}
[ -x "$B/xedgectl" ] || die "$B/xedgectl is missing" "build it: make all"
case "$PREFIX$PW" in *[[:space:]]*) die "PREFIX and PASSWORD must not contain spaces";; esac
[ -S "$D/admin.sock" ] || die "no admin socket $D/admin.sock: is xedge running?" "start it: bench/compare/xedge/start.sh"
t0=$(now)
errs="$D/register.err"
# One "JID PASSWORD" line per account; xargs appends both words to the command (-L 1) and
# exits 123 when any call failed (the messages are in $errs).
seq "$FIRST" $((FIRST + COUNT - 1)) |
	awk -v p="$PREFIX" -v pw="$PW" -v d="$DOMAIN" '{ w = pw; gsub(/%d/, $1, w); print p $1 "@" d, w }' |
	xargs -P "$JOBS" -L 1 "$B/xedgectl" -s "$D/admin.sock" user add >/dev/null 2>"$errs"
rc=$?
if [ $rc != 0 ]; then
	head -3 "$errs" >&2
	die "xedgectl user add failed for some of the $COUNT accounts (xargs rc $rc)" "read $errs and $D/xedge.log"
fi
secs=$(elapsed $t0)
printf '{"method": "xedgectl user add (xargs -P %d)", "users": %d, "seconds": %s, "per_sec": %s}\n' \
	"$JOBS" "$COUNT" "$secs" "$(awk -v n=$COUNT -v s=$secs 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')"
