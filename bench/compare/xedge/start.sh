#!/bin/bash
# Start the benchmark's xedge (embedded session server) on loopback, pinned to one CPU, and wait
# until it serves XMPP.
#   env: BENCH_TARGET_DIR (state; created)  BENCH_PORT (c2s STARTTLS, default 24222; Direct TLS
#        +1)  BENCH_CERT BENCH_KEY  BENCH_DOMAIN (localhost)  BENCH_CPU (0)  BENCH_LOGLEVEL (warn)
#        XEDGE_BUILD (the build directory, default <repo>/build)
#        BENCH_ADMIN_PORT (set: an admin listener on 127.0.0.1:PORT for /metrics; unset: none,
#        for builds from before the admin listener)
#        BENCH_MUC (unset: no group chat; a domain: services.muc on it, for bench/muc)
# Writes BENCH_TARGET_DIR/xedge.yaml, server.pid.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
BENCH_TAG=xedge; . "$HERE/../lib.sh"
D=${BENCH_TARGET_DIR:?BENCH_TARGET_DIR is not set}
B=${XEDGE_BUILD:-$(cd "$HERE/../../.." && pwd)/build}
PORT=${BENCH_PORT:-24222}; CPU=${BENCH_CPU:-0}
[ -x "$B/xedge" ] || die "$B/xedge is missing" "build it: make all"
need_free_port $PORT "xedge c2s"; need_free_port $((PORT + 1)) "xedge c2s Direct TLS"
mkdir -p "$D"
sed -e "s|@DOMAIN@|${BENCH_DOMAIN:-localhost}|g; s|@PORT@|$PORT|g; s|@PORT_TLS@|$((PORT + 1))|g" \
    -e "s|@CERT@|${BENCH_CERT:?}|g; s|@KEY@|${BENCH_KEY:?}|g; s|@DIR@|$D|g" \
    -e "s|@LOGLEVEL@|${BENCH_LOGLEVEL:-warn}|g" "$HERE/xedge.yaml.in" >"$D/xedge.yaml"
if [ -n "${BENCH_ADMIN_PORT:-}" ]; then
	need_free_port $BENCH_ADMIN_PORT "xedge admin listener"
	printf '\n# /metrics, scraped before and after each run (bench/compare/run.sh)\nadmin:\n  address: 127.0.0.1:%s\n' \
		"$BENCH_ADMIN_PORT" >>"$D/xedge.yaml"
fi
if [ -n "${BENCH_MUC:-}" ]; then
	printf '\n# group chat (XEP-0045), for bench/muc\nservices:\n  muc:\n    domain: %s\n' \
		"$BENCH_MUC" >>"$D/xedge.yaml"
fi
"$B/xedge" --check-config "$D/xedge.yaml" >/dev/null 2>"$D/check.err" ||
	die "xedge rejects the generated config: $(head -1 "$D/check.err")" "fix bench/compare/xedge/xedge.yaml.in"
t0=$(now)
# env -u: a caller's XEDGE_* overrides must not change the measured configuration.
env $(env | sed -n 's/^\(XEDGE_[A-Z_]*\)=.*/-u \1/p' | grep -v XEDGE_BUILD) \
	taskset -c "$CPU" "$B/xedge" -c "$D/xedge.yaml" >"$D/xedge.log" 2>&1 </dev/null &
pid=$!
echo $pid >"$D/server.pid"; echo $pid >"$D/wrapper.pid"
ready=""
if wait_port $PORT $pid 20; then
	for i in $(seq 1 50); do [ -S "$D/admin.sock" ] && { ready=1; break; }; sleep 0.1; done
fi
if [ -z "$ready" ]; then
	tail -5 "$D/xedge.log" >&2
	stop_tree $pid xedge 5
	die "xedge did not listen on 127.0.0.1:$PORT (and its admin socket) within 20 s (log: $D/xedge.log)" \
	    "run it by hand: $B/xedge -c $D/xedge.yaml"
fi
say "xedge pid $pid on 127.0.0.1:$PORT (CPU $(affinity $pid)) ready in $(elapsed $t0) s"
