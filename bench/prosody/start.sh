#!/bin/bash
# Start the benchmark's Prosody on loopback, pinned to one CPU, and wait until it serves XMPP.
#   env: BENCH_TARGET_DIR (state; created)  BENCH_PORT (c2s STARTTLS, default 24322; Direct TLS +1)
#        BENCH_CERT BENCH_KEY (PEM)  BENCH_DOMAIN (localhost)  BENCH_CPU (0)  BENCH_LOGLEVEL (warn)
#        BENCH_MUC (unset: no group chat; a domain: mod_muc on it, for bench/muc)
# Writes BENCH_TARGET_DIR/server.pid (the Lua process: measured and stopped by pid).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
BENCH_TAG=prosody; . "$HERE/../compare/lib.sh"
D=${BENCH_TARGET_DIR:?BENCH_TARGET_DIR is not set}
export BENCH_PROSODY_DIR=$D BENCH_PROSODY_PORT=${BENCH_PORT:-24322}
export BENCH_CERT=${BENCH_CERT:?} BENCH_KEY=${BENCH_KEY:?} BENCH_DOMAIN=${BENCH_DOMAIN:-localhost}
export BENCH_LOGLEVEL=${BENCH_LOGLEVEL:-warn} BENCH_MUC=${BENCH_MUC:-}
CPU=${BENCH_CPU:-0}
command -v prosody >/dev/null || die "prosody is not installed" "run bench/compare/deps.sh as root"
need_free_port "$BENCH_PROSODY_PORT" "prosody c2s"
need_free_port $((BENCH_PROSODY_PORT + 1)) "prosody c2s Direct TLS"
mkdir -p "$D/data" "$D/certs"
t0=$(now)
# -F: foreground (no daemon), so the pid we record is Prosody itself.
taskset -c "$CPU" prosody -F --config "$HERE/prosody.cfg.lua" >"$D/console.log" 2>&1 </dev/null &
pid=$!
echo $pid >"$D/server.pid"; echo $pid >"$D/wrapper.pid"
if ! wait_port "$BENCH_PROSODY_PORT" $pid 20; then
	tail -5 "$D/console.log" "$D/prosody.log" >&2 2>/dev/null
	stop_tree $pid prosody 5
	die "prosody did not listen on 127.0.0.1:$BENCH_PROSODY_PORT within 20 s (log: $D/console.log)" \
	    "run it by hand to see why: BENCH_PROSODY_DIR=$D ... prosody -F --config $HERE/prosody.cfg.lua"
fi
say "prosody pid $pid on 127.0.0.1:$BENCH_PROSODY_PORT (CPU $(affinity $pid)) ready in $(elapsed $t0) s"
