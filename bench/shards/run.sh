#!/bin/bash
# make bench-shards: chat throughput and the servers' CPU per delivered message as the session
# server is split into shards (issue 13; docs/benchmarks.md, "Shards").
#
# For each configuration of SHARD_CONFIGS, on loopback: an xedge with one edge worker and
#   1, 2, 4   that many embedded session-server shards (threads, linked by rings), or
#   procs2    two xedge-sm processes listed in backend.shards (TCP links, one database);
# N_CHAT accounts provisioned, then xedge-bench's chat scenario (closed loop, WINDOW messages in
# flight per client, each client writing to 8 random peers: with S shards about (S-1)/S of the
# messages cross shards, straight from thread to thread in one process, through the edge
# between processes). Recorded per run: messages/s received, the servers' CPU (xedge plus any
# xedge-sm, from xedge-bench's --pid samples over the steady seconds: no login in them) as
# CPU-seconds per 1,000 delivered messages, messages lost, and the share that crossed shards
# (counted by the shards, or by the edge that relayed them).
#
# Then the fault runs (KILL_RUNS, default "sm nosm"): procs2 again, chat open loop (KILL_RATE
# messages/s per client: a lost message holds no window slot, so the rate after the kill shows
# the recovery) for KILL_S seconds with XEP-0198 clients (xedge-bench --sm) or without; KILL_AT
# seconds into it one xedge-sm gets
# SIGKILL and is started again at once on the same database. Recorded: sessions lost (xedge-bench's
# dropped), messages lost and duplicated, sessions bound again without a login
# (xedge_session_rebinds_total), and the seconds the received rate stayed under 90 % of its
# level before the kill.
#
# KILL_RUNS may also hold "edge": two edges (distinct edge ids) behind HAProxy (PROXY protocol v2,
# health checks) in front of the two xedge-sm; EDGE_CLIENTS XEP-0198 clients (bench/shards/
# edgekill.py) chat at EDGE_RATE messages/s each through HAProxy; KILL_AT seconds in, one edge gets
# SIGKILL; its clients reconnect through HAProxy to the other edge and resume there (core/adopt.c).
# Recorded: clients resumed without a new login, messages lost (after the server acknowledged
# them: must be 0), duplicated, and the seconds from the kill to each resumption.
#
# Environment (all optional): SHARD_CONFIGS ("1 2 4 procs2"), N_CHAT (400), CHAT_S (15),
# WINDOW (4), KILL_RUNS ("sm nosm edge"), KILL_S (20), KILL_AT (8), KILL_RATE (10), EDGE_CLIENTS (200),
# EDGE_RATE (2), SHARDS_DIR (/tmp/xedge-bench-shards: wiped at start), SHARDS_PORT_BASE (24700),
# XEDGE_BUILD (build), SHARDS_DEADLINE (900 s).  Output: SHARDS_DIR/results/summary.md (printed)
# and one JSON per run.  Exit status 0 when every run lost no message.
{
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BENCH_TAG=shards; . "$REPO/bench/compare/lib.sh"
PY=/usr/bin/python3
T_RUN=$(now)

CONFIGS=${SHARD_CONFIGS:-1 2 4 procs2}
KILL_RUNS=${KILL_RUNS:-sm nosm edge}; EDGE_CLIENTS=${EDGE_CLIENTS:-200}; EDGE_RATE=${EDGE_RATE:-2}; KILL_S=${KILL_S:-20}; KILL_AT=${KILL_AT:-8}; KILL_RATE=${KILL_RATE:-10}
N_CHAT=${N_CHAT:-400}; CHAT_S=${CHAT_S:-15}; WINDOW=${WINDOW:-4}
DIR=${SHARDS_DIR:-/tmp/xedge-bench-shards}
PB=${SHARDS_PORT_BASE:-24700}
B=${XEDGE_BUILD:-$REPO/build}; [ -d "$B" ] && B=$(cd "$B" && pwd)
DEADLINE=${SHARDS_DEADLINE:-900}
RES=$DIR/results
DOMAIN=localhost; PASSWORD=pw; SECRET=shards-$$-$RANDOM
P_C2S=$((PB + 1)); P_ADM=$((PB + 2)); P_SM0=$((PB + 3)); P_SM1=$((PB + 4))
P_C2S1=$((PB + 5)); P_ADM1=$((PB + 6)); P_HA=$((PB + 7))

for b in xedge xedge-sm xedgectl xedge-bench; do
	[ -x "$B/$b" ] || die "$B/$b is missing" "build first: make all"
done
for c in $CONFIGS; do
	case $c in 1|2|4|8|procs2) ;; *) die "unknown configuration '$c'" "SHARD_CONFIGS takes 1 2 4 8 procs2";; esac
done
for p in $P_C2S $P_ADM $P_SM0 $P_SM1 $P_C2S1 $P_ADM1 $P_HA; do need_free_port $p "bench-shards"; done
for k in $KILL_RUNS; do
	case $k in sm|nosm) ;; edge) command -v haproxy >/dev/null || die "haproxy is missing" "apt-get install haproxy";;
	*) die "unknown fault run '$k'" "KILL_RUNS takes sm nosm edge";; esac
done
exec 9>"$DIR.lock"
flock -n 9 || die "another bench-shards run holds $DIR.lock" "wait for it, or set SHARDS_DIR and SHARDS_PORT_BASE"
rm -rf "$DIR"; mkdir -p "$RES"
"$REPO/bench/compare/cert.sh" "$DIR/tls" $DOMAIN || die "cannot make a certificate"

PIDS=""
cleanup() {
	local rc=$? p
	trap - EXIT INT TERM
	for p in $PIDS; do stop_tree "$p" server 15; done
	say "finished in $(elapsed $T_RUN) s (exit status $rc)"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
start_watchdog $DEADLINE SHARDS_DEADLINE

ready() {           # ready PORT : the admin listener says ready
	local i
	for i in $(seq 1 200); do
		[ "$($PY -c "import urllib.request,sys
try: print(urllib.request.urlopen('http://127.0.0.1:$1/readyz', timeout=2).status)
except Exception: print(0)")" = 200 ] && return 0
		sleep 0.1
	done
	return 1
}

edge_yaml() {       # edge_yaml DIR BACKEND_YAML
	cat >"$1/xedge.yaml" <<EOF
# bench/shards: generated by bench/shards/run.sh
workers: 1
log_level: warn
listeners:
  - type: c2s
    address: 127.0.0.1:$P_C2S
domains:
  - name: $DOMAIN
    cert: $DIR/tls/cert.pem
    key: $DIR/tls/key.pem
limits:
  max_connections_per_ip: 1000000
  connection_rate_per_ip: 1000000
  rate_stanzas: 1000000
  rate_bytes: 1073741824
admin:
  address: 127.0.0.1:$P_ADM
$2
EOF
}

sm_yaml() {         # sm_yaml DIR I
	cat >"$1/sm$2.yaml" <<EOF
log_level: warn
domains:
  - name: $DOMAIN
backend:
  shards: ["127.0.0.1:$P_SM0", "127.0.0.1:$P_SM1"]
session_server:
  database: $1/xedge.db
  admin_socket: $1/sm$2.sock
  listen: "127.0.0.1:$((P_SM0 + $2))"
  secret: "$SECRET"
EOF
}

provision() {       # provision SOCKET [OTHER_SOCKET] : bench0..N_CHAT-1, on their owner
	local u
	for u in $(seq 0 $((N_CHAT - 1))); do
		"$B/xedgectl" -s "$1" user add bench$u@$DOMAIN $PASSWORD >/dev/null 2>&1 ||
			{ [ -n "${2:-}" ] && "$B/xedgectl" -s "$2" user add bench$u@$DOMAIN $PASSWORD >/dev/null; } ||
			die "cannot add bench$u"
	done
}

FAILS=0
for c in $CONFIGS; do
	d=$DIR/$c; mkdir -p "$d"; PIDS=""
	say "---- $c: provisioning $N_CHAT accounts ----"
	if [ $c = procs2 ]; then
		for i in 0 1; do
			sm_yaml "$d" $i
			"$B/xedge-sm" -c "$d/sm$i.yaml" >>"$d/sm$i.log" 2>&1 </dev/null &
			PIDS="$PIDS $!"
			wait_port $((P_SM0 + i)) $! 20 || die "xedge-sm $i did not listen (log: $d/sm$i.log)"
		done
		edge_yaml "$d" "backend:
  shards: [\"127.0.0.1:$P_SM0\", \"127.0.0.1:$P_SM1\"]
  secret: \"$SECRET\""
	else
		edge_yaml "$d" "shards: $c
session_server:
  database: $d/xedge.db
  admin_socket: $d/admin.sock"
	fi
	"$B/xedge" -c "$d/xedge.yaml" >>"$d/xedge.log" 2>&1 </dev/null &
	PIDS="$PIDS $!"
	ready $P_ADM || die "xedge is not ready (log: $d/xedge.log)"
	if [ $c = procs2 ]; then provision "$d/sm0.sock" "$d/sm1.sock"; else provision "$d/admin.sock"; fi
	pidargs=""; for p in $PIDS; do pidargs="$pidargs --pid $p"; done
	say "$c: chat, $N_CHAT clients, window $WINDOW, ${CHAT_S} s"
	before=$($PY "$HERE/summary.py" scrape "http://127.0.0.1:$P_ADM/metrics")
	cmdlog taskset -c 1 "$B/xedge-bench" -s chat -n $N_CHAT --concurrency 200 --window $WINDOW \
		--warmup 3 --duration $CHAT_S --drain 3 --mech SCRAM-SHA-1 $pidargs --json "$RES/$c.json"
	run_job taskset -c 1 "$B/xedge-bench" --host 127.0.0.1 --port $P_C2S --domain $DOMAIN \
		--password $PASSWORD -s chat -n $N_CHAT --concurrency 200 --window $WINDOW --warmup 3 \
		--duration $CHAT_S --drain 3 --mech SCRAM-SHA-1 --scram-cache "$DIR/scram.cache" $pidargs \
		--json "$RES/$c.json" >"$RES/$c.log" 2>&1 || { say "$c: xedge-bench failed ($RES/$c.log)"; FAILS=$((FAILS + 1)); }
	# Stanzas between shards: counted by the shards (threads) or by the edge relaying them (processes).
	after=$($PY "$HERE/summary.py" scrape "http://127.0.0.1:$P_ADM/metrics")
	echo "{\"config\": \"$c\", \"cross_before\": $before, \"cross_after\": $after}" >"$RES/$c.cross.json"
	for p in $PIDS; do stop_tree "$p" server 15; done
	PIDS=""
done

# ---- an edge killed under load: its clients resume on the other edge -----------------------------
edge_kill() {
	local d=$DIR/kill-edge e c2s adm
	mkdir -p "$d"; PIDS=""
	say "---- kill (edge): 2 edges behind HAProxy, 2 xedge-sm, $EDGE_CLIENTS XEP-0198 clients, SIGKILL of edge 0 at ${KILL_AT} s ----"
	for i in 0 1; do
		sm_yaml "$d" $i
		"$B/xedge-sm" -c "$d/sm$i.yaml" >>"$d/sm$i.log" 2>&1 </dev/null &
		PIDS="$PIDS $!"
		wait_port $((P_SM0 + i)) $! 20 || die "xedge-sm $i did not listen (log: $d/sm$i.log)"
	done
	for e in 0 1; do
		c2s=$P_C2S; adm=$P_ADM; [ $e = 1 ] && { c2s=$P_C2S1; adm=$P_ADM1; }
		edge_yaml "$d" "backend:
  shards: [\"127.0.0.1:$P_SM0\", \"127.0.0.1:$P_SM1\"]
  secret: \"$SECRET\"
stream_management:
  edge_id: edge$e"
		# Its own ports; its clients come through HAProxy (PROXY protocol v2).
		sed -i "s/address: 127.0.0.1:$P_C2S\$/address: 127.0.0.1:$c2s\n    proxy_protocol: true/; s/address: 127.0.0.1:$P_ADM\$/address: 127.0.0.1:$adm/; s/^log_level: warn/log_level: info/" "$d/xedge.yaml"
		mv "$d/xedge.yaml" "$d/xedge$e.yaml"
		"$B/xedge" -c "$d/xedge$e.yaml" >>"$d/xedge$e.log" 2>&1 </dev/null &
		eval EDGE$e=$!
		PIDS="$PIDS $!"
		ready $adm || die "edge $e is not ready (log: $d/xedge$e.log)"
	done
	cat >"$d/haproxy.cfg" <<EOF
# bench/shards: generated by bench/shards/run.sh
global
  maxconn 4096
  hard-stop-after 3s
defaults
  mode tcp
  timeout connect 5s
  timeout client 120s
  timeout server 120s
  retries 5
  option redispatch 1
frontend fe
  bind 127.0.0.1:$P_HA
  default_backend be
# Checked on the edges' /readyz (an edge without its session servers takes no clients).
backend be
  option httpchk GET /readyz
  default-server send-proxy-v2 check inter 200ms fall 1 rise 2
  server e0 127.0.0.1:$P_C2S check port $P_ADM
  server e1 127.0.0.1:$P_C2S1 check port $P_ADM1
EOF
	haproxy -c -f "$d/haproxy.cfg" >"$d/haproxy-check.log" 2>&1 || die "haproxy rejects its config ($d/haproxy-check.log)"
	haproxy -db -f "$d/haproxy.cfg" >"$d/haproxy.log" 2>&1 </dev/null &
	PIDS="$PIDS $!"
	wait_port $P_HA $! 10 || die "HAProxy did not start ($d/haproxy.log)"
	provision "$d/sm0.sock" "$d/sm1.sock"
	cmdlog taskset -c 1 $PY "$HERE/edgekill.py" --port $P_HA --clients $EDGE_CLIENTS --rate $EDGE_RATE \
		--duration $KILL_S --kill-at $KILL_AT --kill-pid "<edge 0>"
	taskset -c 1 $PY "$HERE/edgekill.py" --port $P_HA --domain $DOMAIN --password $PASSWORD \
		--clients $EDGE_CLIENTS --rate $EDGE_RATE --duration $KILL_S --kill-at $KILL_AT \
		--kill-pid $EDGE0 --out "$RES/kill-edge.json" >"$RES/kill-edge.log" 2>&1 ||
		{ say "kill (edge): edgekill.py failed or lost messages ($RES/kill-edge.log)"; FAILS=$((FAILS + 1)); }
	wait $EDGE0 2>/dev/null
	for p in $PIDS; do stop_tree "$p" server 15; done
	PIDS=""
}

# ---- a shard killed under load ------------------------------------------------------------------
for k in $KILL_RUNS; do
	[ $k = edge ] && { edge_kill; continue; }
	d=$DIR/kill-$k; mkdir -p "$d"; PIDS=""
	say "---- kill ($k): 2 xedge-sm, chat ${KILL_S} s, SIGKILL of xedge-sm 1 at ${KILL_AT} s ----"
	for i in 0 1; do
		sm_yaml "$d" $i
		"$B/xedge-sm" -c "$d/sm$i.yaml" >>"$d/sm$i.log" 2>&1 </dev/null &
		eval SM$i=$!
		PIDS="$PIDS $!"
		wait_port $((P_SM0 + i)) $! 20 || die "xedge-sm $i did not listen (log: $d/sm$i.log)"
	done
	edge_yaml "$d" "backend:
  shards: [\"127.0.0.1:$P_SM0\", \"127.0.0.1:$P_SM1\"]
  secret: \"$SECRET\""
	"$B/xedge" -c "$d/xedge.yaml" >>"$d/xedge.log" 2>&1 </dev/null &
	EDGE=$!; PIDS="$PIDS $EDGE"
	ready $P_ADM || die "xedge is not ready (log: $d/xedge.log)"
	provision "$d/sm0.sock" "$d/sm1.sock"
	smflag=""; [ $k = sm ] && smflag=--sm
	cmdlog taskset -c 1 "$B/xedge-bench" -s chat -n $N_CHAT --rate $KILL_RATE --warmup 2 \
		--duration $KILL_S --drain 5 $smflag "# SIGKILL of xedge-sm 1 at ${KILL_AT} s"
	taskset -c 1 "$B/xedge-bench" --host 127.0.0.1 --port $P_C2S --domain $DOMAIN \
		--password $PASSWORD -s chat -n $N_CHAT --concurrency 200 --rate $KILL_RATE --warmup 2 \
		--duration $KILL_S --drain 5 --timeout 60 --mech SCRAM-SHA-1 --scram-cache "$DIR/scram.cache" \
		$smflag --pid $EDGE --json "$RES/kill-$k.json" >"$RES/kill-$k.log" 2>&1 &
	BENCH=$!
	# The kill: KILL_AT seconds after the first progress line of the chat phase (5 s in).
	for i in $(seq 1 600); do grep -q "logins done\|chat " "$RES/kill-$k.log" 2>/dev/null && break; sleep 0.1; done
	sleep $KILL_AT
	kill -9 $SM1; wait $SM1 2>/dev/null
	T_KILL=$(now)
	"$B/xedge-sm" -c "$d/sm1.yaml" >>"$d/sm1.log" 2>&1 </dev/null &
	SM1=$!; PIDS="$PIDS $SM1"
	wait $BENCH || { say "kill ($k): xedge-bench failed ($RES/kill-$k.log)"; FAILS=$((FAILS + 1)); }
	$PY -c "import urllib.request, json
b = urllib.request.urlopen('http://127.0.0.1:$P_ADM/metrics', timeout=10).read().decode()
v = lambda name: int(sum(float(l.rsplit(' ', 1)[1]) for l in b.splitlines() if l.startswith(name)))
json.dump({'rebinds': v('xedge_session_rebinds_total'), 'bounced': v('xedge_shard_relay_failed_total')},
          open('$RES/kill-$k.edge.json', 'w'))"
	for p in $PIDS; do stop_tree "$p" server 15; done
	PIDS=""
done
$PY "$HERE/summary.py" report "$RES" $CONFIGS | tee "$RES/summary.md"
[ -n "$KILL_RUNS" ] && $PY "$HERE/summary.py" kills "$RES" $KILL_RUNS | tee -a "$RES/summary.md"
lost=$(grep -c "LOST" "$RES/summary.md")
[ $FAILS -eq 0 ] && [ "$lost" -eq 0 ]
exit $?
}
