#!/bin/bash
# make bench-scale: one xedge-bench process holds N idle TLS sessions (issue 15, "scale of one
# generator"; docs/benchmarks.md, "One generator: 200,000 idle TLS sessions").
#
# Starts xedge on loopback with enough edge workers for N connections (limits.max_connections
# per worker, each worker's ring holding its sockets as direct descriptors), one session-server
# shard, limits per address lifted; provisions N accounts through the admin socket
# (bench/scale/provision.py: the SCRAM keys derived once, one salt for all: a benchmark's
# shortcut); runs xedge-bench with the shipped idle scenario (bench/scenarios/idle.yaml, its
# users, concurrency, timeout, barrier timeout and idle time set for this size) over Direct TLS
# from SOURCES source addresses 127.1.0.1, 127.1.0.2, ... (about 25,000 connections each: the
# ephemeral ports to one target from one address); every user logs in, waits at the barrier for
# all the others, holds for HOLD seconds, logs out.  Prints the generator's own memory per
# session (its JSON `generator` object: RSS and jemalloc's heap before the first connection and
# at the end of the hold), the server's (VmRSS growth over the sessions held) and the kernel's
# (TCP buffer pages of /proc/net/sockstat and the slab's growth: both ends of every connection),
# then stops everything.
#
# Before anything runs the free memory is checked: N is lowered to what fits in MemAvailable
# (about 32 KiB per session with both ends, kernel and handshakes in flight), saying so.
#
# Then a short chat run against the same server, each pinned to a CPU of its own (CHAT_N
# clients, one generator thread, open loop at CHAT_RATE messages/s in all, CHAT_S seconds): what
# one generator thread offers against what the server absorbs, and the CPU of each.
#
# Environment (all optional): N (200000), HOLD (30 s), CHAT_N (2000), CHAT_S (15),
# CHAT_RATE (200000),
# CONC (800 logins in progress: below
# xedge's limits.max_tls_handshakes of 1024), SCALE_DIR (/tmp/xedge-bench-scale: wiped at start),
# SCALE_PORT (25422: Direct TLS; +1 STARTTLS), SCALE_DEADLINE (1800 s: the whole run is stopped
# past it), XEDGE_BUILD (build).  Traffic stays on 127.0.0.0/8.
# Output: SCALE_DIR/results/summary.md (printed), bench.json, bench.log, the scenario file,
# xedge.log.  Exit status 0 when every session logged in and was held.
# The body is one { ... } block: editing this file during a run cannot break the run.
{
set -u
RUN_COMMAND="make bench-scale"
for v in N HOLD CONC CHAT_N CHAT_S CHAT_RATE SCALE_DIR SCALE_PORT SCALE_DEADLINE; do
	[ -n "${!v-}" ] && RUN_COMMAND="$RUN_COMMAND $v=${!v}"
done
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BENCH_TAG=scale; . "$REPO/bench/compare/lib.sh"
PY=/usr/bin/python3
T_RUN=$(now)

N=${N:-200000}; HOLD=${HOLD:-30}; CONC=${CONC:-800}
CHAT_N=${CHAT_N:-2000}; CHAT_S=${CHAT_S:-15}; CHAT_RATE=${CHAT_RATE:-200000}
DIR=${SCALE_DIR:-/tmp/xedge-bench-scale}
PORT=${SCALE_PORT:-25422}
DEADLINE=${SCALE_DEADLINE:-1800}
B=${XEDGE_BUILD:-$REPO/build}; [ -d "$B" ] && B=$(cd "$B" && pwd)
RES=$DIR/results
DOMAIN=localhost; PASSWORD=pw; PREFIX=scale
PER_WORKER=18000        # xedge's limits.max_connections (the 20,000-entry table per ring)
PER_SOURCE=25000        # connections per source address (~28,000 ephemeral ports)

# ---- preflight ------------------------------------------------------------------------------
[ -x "$B/xedge" ] && [ -x "$B/xedge-bench" ] || die "$B/xedge or $B/xedge-bench is missing" "build first: make all"
[[ $N =~ ^[1-9][0-9]*$ ]] || die "N must be a positive number (got '$N')"
need_free_port $PORT "xedge c2s Direct TLS"; need_free_port $((PORT + 1)) "xedge c2s"
# ~32 KiB per session: generator ~2, xedge ~3.5, the kernel's two sockets ~11, and headroom for
# the handshakes in flight and the allocators' slack; plus 1 GiB for the rest.
avail_kib=$(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo)
fits=$(( (avail_kib - 1048576) / 32 ))
N_ASKED=$N
if [ "$fits" -lt "$N" ]; then
	[ "$fits" -ge 1000 ] || die "not enough free memory ($((avail_kib / 1024)) MiB available)"
	N=$(( fits / 1000 * 1000 ))
	say "WARNING: $N_ASKED sessions would not fit in $((avail_kib / 1024)) MiB available: running $N"
fi
WORKERS=$(( (N * 115 / 100 + PER_WORKER - 1) / PER_WORKER ))   # 15 % for SO_REUSEPORT's spread
SOURCES_N=$(( (N + PER_SOURCE - 1) / PER_SOURCE ))
[ $SOURCES_N -le 64 ] || die "N=$N needs $SOURCES_N source addresses: xedge-bench takes 64"
SOURCES=$(seq -s, -f "127.1.0.%g" 1 $SOURCES_N)

mkdir -p "$(dirname "$DIR")"
exec 9>"$DIR.lock"
flock -n 9 || die "another bench-scale run holds $DIR.lock" "wait for it, or set SCALE_DIR and SCALE_PORT"
rm -rf "$DIR"; mkdir -p "$RES"
"$REPO/bench/compare/cert.sh" "$DIR/tls" $DOMAIN >/dev/null || die "cannot make a certificate (openssl)"

XPID=""; SAMPLER=""
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	[ -n "${CHILD:-}" ] && stop_tree "$CHILD" "xedge-bench" 10
	[ -n "$SAMPLER" ] && stop_tree "$SAMPLER" "sampler" 2
	[ -n "$XPID" ] && stop_tree "$XPID" "xedge" 30
	[ -n "${WATCHDOG:-}" ] && stop_tree "$WATCHDOG" watchdog 2
	say "finished in $(elapsed $T_RUN) s (exit status $rc)"
	exit $rc
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM
start_watchdog $DEADLINE SCALE_DEADLINE

# ---- xedge ----------------------------------------------------------------------------------
cat >"$DIR/xedge.yaml" <<EOF
# bench/scale/run.sh: $WORKERS edge workers for $N idle sessions (limits.max_connections each),
# one session-server shard; the per-address limits lifted (every client is on 127.1.0.x).
workers: $WORKERS
shards: 1
log_level: warn
listeners:
  - type: c2s_tls
    address: 127.0.0.1:$PORT
    backlog: 4096
  - type: c2s
    address: 127.0.0.1:$((PORT + 1))
    backlog: 4096
domains:
  - name: $DOMAIN
    cert: $DIR/tls/cert.pem
    key: $DIR/tls/key.pem
tls:
  require: true
limits:
  max_connections: $PER_WORKER
  max_connections_per_ip: 1000000
  connection_rate_per_ip: 1000000
  rate_stanzas: 1000000
  rate_bytes: 1073741824
timeouts:
  handshake: 60
  auth: 120
  idle: 900
  # a login waits this long for the one session-server thread: on a shared 2-core box it can
  # be starved for seconds (the default 2 s turned 503 of 200,000 logins into temporary errors)
  session_server: 30
session_server:
  database: $DIR/xedge.db
  admin_socket: $DIR/admin.sock
EOF
"$B/xedge" --check-config "$DIR/xedge.yaml" >/dev/null 2>"$DIR/check.err" ||
	die "xedge rejects the generated config: $(head -1 "$DIR/check.err")"
env $(env | sed -n 's/^\(XEDGE_[A-Z_]*\)=.*/-u \1/p' | grep -v XEDGE_BUILD) \
	"$B/xedge" -c "$DIR/xedge.yaml" >"$DIR/xedge.log" 2>&1 </dev/null &
XPID=$!
wait_port $PORT $XPID 30 || die "xedge did not listen on 127.0.0.1:$PORT (log: $DIR/xedge.log)"
for i in $(seq 1 100); do [ -S "$DIR/admin.sock" ] && break; sleep 0.1; done
[ -S "$DIR/admin.sock" ] || die "xedge has no admin socket (log: $DIR/xedge.log)"
say "xedge pid $XPID: $WORKERS workers on 127.0.0.1:$PORT (Direct TLS)"

say "provisioning $N accounts"
$PY "$HERE/provision.py" "$DIR/admin.sock" $PREFIX $N $PASSWORD $DOMAIN >"$RES/provision.json" ||
	die "provisioning failed"
say "provisioned: $(cat "$RES/provision.json")"

# ---- the run --------------------------------------------------------------------------------
SCN=$REPO/bench/scenarios/idle.yaml
SCN_VARS=(--var USERS=$N --var IDLE=${HOLD}s --var WAIT=30m)
"$B/xedge-bench" --check-scenario "$SCN" "${SCN_VARS[@]}" >/dev/null 2>"$RES/check-scenario.err" ||
	die "the scenario file is rejected: $(head -3 "$RES/check-scenario.err")"

# The kernel's memory for the sockets, every 2 s while the run goes on: TCP buffer pages
# (/proc/net/sockstat "mem") and the slab (/proc/meminfo Slab: the socket structures), both
# machine-wide (other processes' share is small beside 2 x N sockets).
kmem() { echo "$(date +%s) $(awk '/^TCP:/ { for (i = 1; i < NF; i++) if ($i == "mem") print $(i + 1) }' /proc/net/sockstat) $(awk '/^Slab:/ { print $2 }' /proc/meminfo)"; }
( while :; do kmem; sleep 2; done ) >"$RES/sockstat.txt" 2>/dev/null &
SAMPLER=$!
read -r _ tcp0 slab0 <<<"$(kmem)"
rss0=$(awk '/^VmRSS:/ { print $2 }' /proc/$XPID/status)
cmd=("$B/xedge-bench" -s "$SCN" "${SCN_VARS[@]}" --user-prefix $PREFIX --concurrency $CONC --timeout 60
     --tls direct --host 127.0.0.1 --port $PORT --sources "$SOURCES"
     --scram-cache "$DIR/scram.cache" --pid $XPID --json "$RES/bench.json")
echo "${cmd[*]}" | sed "s|$REPO/||g; s|$DIR|\$SCALE_DIR|g" >"$RES/command.txt"
say "xedge-bench: $N users over Direct TLS from $SOURCES_N source addresses, $CONC logins at once, hold ${HOLD} s"
run_job "${cmd[@]}" >"$RES/bench.log" 2>"$RES/bench.err"
brc=$?
stop_tree "$SAMPLER" sampler 2; SAMPLER=""
alive $XPID || die "xedge died during the run (log: $DIR/xedge.log)"
[ -s "$RES/bench.json" ] || die "xedge-bench wrote no JSON (exit $brc; $RES/bench.err)"

# Chat generation against the same server, each on a CPU of its own (xedge's threads on CPU 0,
# the generator on CPU 1): one generator thread, CHAT_N clients, open loop at CHAT_RATE
# messages/s in all — more than the server takes — for CHAT_S seconds: what the generator
# offers against what the server absorbs, and the CPU of each (--pid sampling).
taskset -a -p -c 0 $XPID >/dev/null || say "WARNING: cannot pin xedge to CPU 0"
rate=$(awk -v r=$CHAT_RATE -v n=$CHAT_N 'BEGIN { printf "%.4f", r / n }')
cmd=(taskset -c 1 "$B/xedge-bench" -s chat -n $CHAT_N --threads 1 --tls direct --host 127.0.0.1 --port $PORT
     --user-prefix $PREFIX --password $PASSWORD --mech SCRAM-SHA-256 --scram-cache "$DIR/scram.cache"
     --sources 127.1.0.1 --concurrency 200 --timeout 60 --rate $rate --warmup 3 --duration $CHAT_S
     --drain 5 --pid $XPID --json "$RES/chat.json")
echo "${cmd[*]}" | sed "s|$REPO/||g; s|$DIR|\$SCALE_DIR|g" >>"$RES/command.txt"
say "chat: $CHAT_N clients, one generator thread, $CHAT_RATE messages/s offered, $CHAT_S s"
run_job "${cmd[@]}" >"$RES/chat.log" 2>"$RES/chat.err" || say "ERROR: the chat run failed (exit $?; $RES/chat.err)"
cat >"$RES/params.json" <<EOF
{"command": "$RUN_COMMAND", "date": "$(date -u '+%Y-%m-%d %H:%M UTC')", "n_asked": $N_ASKED, "n": $N,
 "hold_s": $HOLD, "concurrency": $CONC, "workers": $WORKERS, "sources": $SOURCES_N, "bench_exit": $brc,
 "xedge_rss_before_kib": $rss0, "tcp_mem_pages_before": $tcp0, "slab_kib_before": $slab0, "page_size": $(getconf PAGESIZE),
 "commit": "$(git -C "$REPO" rev-parse --short HEAD)", "cpus": $(nproc),
 "mem_available_kib": $avail_kib, "loadavg_after": "$(cut -d' ' -f1-3 /proc/loadavg)"}
EOF
$PY "$HERE/summary.py" "$RES" | tee "$RES/summary.md"
[ $brc = 0 ] && $PY "$HERE/summary.py" --check "$RES"
exit $?
}
