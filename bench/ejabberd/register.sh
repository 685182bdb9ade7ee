#!/bin/bash
# Create accounts PREFIX{FIRST..FIRST+COUNT-1}@DOMAIN in the running benchmark ejabberd.
#   usage: register.sh PREFIX FIRST COUNT PASSWORD     (a "%d" in PASSWORD becomes the number)
#   env:   BENCH_TARGET_DIR BENCH_PORT BENCH_DOMAIN (as for start.sh)
# Method: one XEP-0227 file with precomputed SCRAM-SHA-1 keys (piefxis.py), loaded by one
# `ejabberdctl import_piefxis` (measured here: 10,000 accounts in ~6 s). The alternatives
# measured: `ejabberdctl register` ~1.5 s per account (an Erlang VM boots for each call),
# the HTTP admin API ~90/s, in-band registration ~20/s (one per connection) to ~75/s.
# The import is checked by logging in as the first and the last account (SCRAM-SHA-1 and
# PLAIN); if that fails, the accounts are created through the HTTP admin API instead.
# Prints one JSON line on stdout: {"method", "users", "seconds", "per_sec"}.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
BENCH_TAG=ejabberd; . "$HERE/../compare/lib.sh"
[ $# = 4 ] || die "usage: $0 PREFIX FIRST COUNT PASSWORD"
PREFIX=$1; FIRST=$2; COUNT=$3; PW=$4
D=${BENCH_TARGET_DIR:?BENCH_TARGET_DIR is not set}
PORT=${BENCH_PORT:-24422}; DOMAIN=${BENCH_DOMAIN:-localhost}
PY=/usr/bin/python3
t0=$(now)
f="$D/import-$PREFIX$FIRST.xml"
$PY "$HERE/piefxis.py" --out "$f" --domain "$DOMAIN" --prefix "$PREFIX" --first "$FIRST" \
	--count "$COUNT" --password "$PW" || die "piefxis.py failed"
chown ejabberd:ejabberd "$f"           # the import runs inside the VM, as 'ejabberd'
out=$(run_bounded 600 "$HERE/ctl.sh" import_piefxis "$f" 2>&1) || say "import_piefxis: $out"
rm -f "$f"
method="ejabberdctl import_piefxis (XEP-0227 file, SCRAM-SHA-1 keys)"
ok=1
last=$((FIRST + COUNT - 1))
for u in $FIRST $last; do
	p=${PW//%d/$u}
	$PY "$HERE/../compare/xmpp.py" login --port "$PORT" --domain "$DOMAIN" --user "$PREFIX$u" \
		--password "$p" --mech SCRAM-SHA-1 >/dev/null 2>&1 || ok=""
	$PY "$HERE/../compare/xmpp.py" login --port "$PORT" --domain "$DOMAIN" --user "$PREFIX$u" \
		--password "$p" --mech PLAIN >/dev/null 2>&1 || ok=""
done
if [ -z "$ok" ]; then
	say "the XEP-0227 import did not give working accounts: creating them through the HTTP admin API (slower)"
	method="HTTP admin API (mod_http_api /api/register)"
	$PY "$HERE/http_register.py" --port $((PORT + 58)) --domain "$DOMAIN" --prefix "$PREFIX" \
		--offset "$FIRST" --count "$COUNT" --password "$PW" --concurrency 4 >"$D/http_register.json" ||
		die "HTTP registration failed: $(cat "$D/http_register.json")" "read $D/logs/ejabberd.log"
fi
secs=$(elapsed $t0)
printf '{"method": "%s", "users": %d, "seconds": %s, "per_sec": %s}\n' "$method" \
	"$COUNT" "$secs" "$(awk -v n=$COUNT -v s=$secs 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')"
