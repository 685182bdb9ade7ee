#!/bin/bash
# Create accounts PREFIX{FIRST..FIRST+COUNT-1}@DOMAIN in the running benchmark Prosody.
#   usage: register.sh PREFIX FIRST COUNT PASSWORD     (a "%d" in PASSWORD becomes the number:
#          "pass%d" gives tsung's user1/pass1 ...)
#   env:   BENCH_TARGET_DIR BENCH_CERT BENCH_KEY BENCH_DOMAIN BENCH_PORT (as for start.sh)
# Method: a Lua loop inside the server through `prosodyctl shell` (mod_admin_shell on a Unix
# socket), 2,000 accounts per call: usermanager.create_user, i.e. exactly what
# `prosodyctl register` does (salted SCRAM-SHA-1 keys, PBKDF2 4096) without starting
# prosodyctl once per account. Measured here: ~730 accounts/s, against ~32 accounts/s for
# one `prosodyctl register` per account and ~30/s (one per connection) to ~400/s (several
# per connection) for in-band registration.
# Prints one JSON line on stdout: {"method", "users", "seconds", "per_sec"}.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
BENCH_TAG=prosody; . "$HERE/../compare/lib.sh"
[ $# = 4 ] || die "usage: $0 PREFIX FIRST COUNT PASSWORD"
PREFIX=$1; FIRST=$2; COUNT=$3; PW=$4
D=${BENCH_TARGET_DIR:?BENCH_TARGET_DIR is not set}
export BENCH_PROSODY_DIR=$D BENCH_PROSODY_PORT=${BENCH_PORT:-24322}
export BENCH_CERT=${BENCH_CERT:?} BENCH_KEY=${BENCH_KEY:?} BENCH_DOMAIN=${BENCH_DOMAIN:-localhost}
case "$PREFIX$PW" in *[\"\\]*) die "PREFIX and PASSWORD must not contain quotes or backslashes";; esac
t0=$(now)
CHUNK=2000
i=$FIRST; last=$((FIRST + COUNT - 1))
while [ $i -le $last ]; do
	j=$((i + CHUNK - 1)); [ $j -gt $last ] && j=$last
	code="> local um = require 'core.usermanager'; local n = 0;"
	code="$code for i = $i, $j do"
	code="$code local pw = (\"$PW\"):gsub('%%d', tostring(i));"
	code="$code if um.create_user(\"$PREFIX\" .. i, pw, \"$BENCH_DOMAIN\") then n = n + 1 end end;"
	code="$code return 'created ' .. n"
	out=$(run_bounded 300 prosodyctl --config "$HERE/prosody.cfg.lua" shell "$code" 2>&1)
	got=$(printf '%s\n' "$out" | sed -n 's/.*created \([0-9][0-9]*\).*/\1/p' | tail -1)
	if [ "${got:-0}" != $((j - i + 1)) ]; then
		printf '%s\n' "$out" | grep -v -i -E "unbound|luarocks|^\*|^$|obtained|Debian/Ubuntu|Source|Old DNS|More help" | tail -5 >&2
		die "prosodyctl shell created ${got:-0} of $((j - i + 1)) accounts ($PREFIX$i..$PREFIX$j)" \
		    "is Prosody running with mod_admin_shell? read $D/prosody.log"
	fi
	i=$((j + 1))
done
secs=$(elapsed $t0)
printf '{"method": "prosodyctl shell (Lua loop over usermanager.create_user)", "users": %d, "seconds": %s, "per_sec": %s}\n' \
	"$COUNT" "$secs" "$(awk -v n=$COUNT -v s=$secs 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')"
