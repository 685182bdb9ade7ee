#!/bin/bash
# Start Prosody behind xedge (upstream mode) for bench/compare, both pinned to one CPU, and wait
# until xedge serves XMPP.
#   env: BENCH_TARGET_DIR (state; created)  BENCH_PORT (xedge's c2s STARTTLS, default 24352;
#        Direct TLS +1; Prosody's plaintext c2s +10)  BENCH_CERT BENCH_KEY  BENCH_DOMAIN
#        (localhost)  BENCH_CPU (0)  BENCH_LOGLEVEL (warn)  XEDGE_BUILD (<repo>/build)
# Prosody's config is bench/prosody/prosody.cfg.lua made a plaintext upstream (no "tls"
# module, so no STARTTLS offered; encryption not required; PLAIN allowed without TLS) and
# without its Direct TLS port; everything else (modules, storage, PBKDF2 count, Nagle off,
# backlog) is the same as when it runs alone. Its state is in BENCH_TARGET_DIR, as for
# bench/prosody, so bench/prosody/register.sh provisions it unchanged; xedge's is in
# BENCH_TARGET_DIR/edge.
# Both run on BENCH_CPU: the pair gets the same one core that Prosody alone gets.
# Writes BENCH_TARGET_DIR/server.pid (Prosody), edge.pid (xedge), pids (both, comma-separated:
# what the load generator samples), wrapper.pid (Prosody; stop.sh stops both).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
BENCH_TAG=prosody-up; . "$HERE/../lib.sh"
D=${BENCH_TARGET_DIR:?BENCH_TARGET_DIR is not set}
B=${XEDGE_BUILD:-$(cd "$HERE/../../.." && pwd)/build}
PORT=${BENCH_PORT:-24352}; UP_PORT=$((PORT + 10)); CPU=${BENCH_CPU:-0}
export BENCH_PROSODY_DIR=$D BENCH_PROSODY_PORT=$UP_PORT
export BENCH_CERT=${BENCH_CERT:?} BENCH_KEY=${BENCH_KEY:?} BENCH_DOMAIN=${BENCH_DOMAIN:-localhost}
export BENCH_LOGLEVEL=${BENCH_LOGLEVEL:-warn}
command -v prosody >/dev/null || die "prosody is not installed" "run bench/compare/deps.sh as root"
[ -x "$B/xedge" ] || die "$B/xedge is missing" "build it: make all"
for q in $PORT $((PORT + 1)) $UP_PORT; do need_free_port $q "prosody-up"; done
mkdir -p "$D/data" "$D/certs" "$D/edge"
src=$HERE/../../prosody/prosody.cfg.lua
sed -e 's/"tls"; //' \
    -e 's/^c2s_require_encryption = true/c2s_require_encryption = false/' \
    -e 's/^allow_unencrypted_plain_auth = false/allow_unencrypted_plain_auth = true/' \
    -e 's/^c2s_direct_tls_ports = .*/c2s_direct_tls_ports = {}/' "$src" >"$D/prosody.cfg.lua"
for want in 'c2s_require_encryption = false' 'allow_unencrypted_plain_auth = true' 'c2s_direct_tls_ports = {}'; do
	grep -qF "$want" "$D/prosody.cfg.lua" || die "could not make $src a plaintext upstream ($want)" "update the sed in $0"
done
grep -q '"tls"' "$D/prosody.cfg.lua" && die "could not remove mod_tls from $src" "update the sed in $0"
t0=$(now)
taskset -c "$CPU" prosody -F --config "$D/prosody.cfg.lua" >"$D/console.log" 2>&1 </dev/null &
ppid_=$!
echo $ppid_ >"$D/server.pid"; echo $ppid_ >"$D/wrapper.pid"
if ! wait_port "$UP_PORT" $ppid_ 20; then
	tail -5 "$D/console.log" "$D/prosody.log" >&2 2>/dev/null
	stop_tree $ppid_ prosody 5
	die "prosody did not listen on 127.0.0.1:$UP_PORT within 20 s (log: $D/console.log)"
fi
sed -e "s|@DOMAIN@|$BENCH_DOMAIN|g; s|@PORT@|$PORT|g; s|@PORT_TLS@|$((PORT + 1))|g" \
    -e "s|@CERT@|$BENCH_CERT|g; s|@KEY@|$BENCH_KEY|g; s|@UPSTREAM@|127.0.0.1:$UP_PORT|g" \
    -e "s|@LOGLEVEL@|$BENCH_LOGLEVEL|g" "$HERE/xedge.yaml.in" >"$D/edge/xedge.yaml"
if ! "$B/xedge" --check-config "$D/edge/xedge.yaml" >/dev/null 2>"$D/edge/check.err"; then
	stop_tree $ppid_ prosody 5
	die "xedge rejects the generated config: $(head -1 "$D/edge/check.err")" "fix $HERE/xedge.yaml.in"
fi
env $(env | sed -n 's/^\(XEDGE_[A-Z_]*\)=.*/-u \1/p' | grep -v XEDGE_BUILD) \
	taskset -c "$CPU" "$B/xedge" -c "$D/edge/xedge.yaml" >"$D/edge/xedge.log" 2>&1 </dev/null &
xpid=$!
echo $xpid >"$D/edge.pid"; echo "$xpid,$ppid_" >"$D/pids"
if ! wait_port $PORT $xpid 20; then
	tail -5 "$D/edge/xedge.log" >&2
	stop_tree $xpid xedge 5; stop_tree $ppid_ prosody 5
	die "xedge did not listen on 127.0.0.1:$PORT within 20 s (log: $D/edge/xedge.log)"
fi
say "prosody pid $ppid_ on 127.0.0.1:$UP_PORT (plaintext), behind xedge pid $xpid on 127.0.0.1:$PORT (CPU $(affinity $ppid_) and $(affinity $xpid)) ready in $(elapsed $t0) s"
