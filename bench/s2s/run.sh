#!/bin/bash
# make bench-s2s: federation benchmarks (issue 11), all on 127.0.0.1.
#
# 1. Throughput and latency between two servers over s2s with TLS, for each pair of PAIRS:
#      prosody-prosody  Prosody pa.localhost  <-> Prosody pb.localhost   (the baseline)
#      xedge-prosody    xedge   xa.localhost  <-> Prosody pb.localhost
#      xedge-xedge      xedge   xa.localhost  <-> xedge   xb.localhost
#    The first server of a pair gets the clients of the first half, the second those of the
#    second half, and build/xedge-bench (one process, one clock: --remote, --cross) sends
#    every message to a peer on the other server, so that every message crosses the s2s
#    streams between them (one per direction). Per pair, in this order:
#      prime    2 clients, one message each way: both s2s streams are up (and authenticated)
#               before anything is measured; the run stops here if a message is lost
#      closed   N_CHAT clients, closed loop (CHAT_WINDOW messages in flight per client), both
#               directions: the most messages per second the pair carries
#      oneway   the same with only the first server's clients sending (--one-way): every
#               message on one s2s stream
#      rate     N_CHAT clients, open loop at RATE messages/s in total, both directions:
#               latency at equal offered load
#    The servers run one at a time per pair, each pinned to its own CPU (A_CPU, B_CPU),
#    started fresh with their state in S2S_DIR; the load generator shares the CPUs.
# 2. Memory per idle outbound s2s stream (MEM=1), for xedge and for Prosody as the sender
#    (A). A serves MEM_LOCAL domains f1..fK.localhost, a second xedge (B) MEM_DOMAINS domains
#    m1..mN.localhost; a user of each fK sends one message to idle0@ each mN, and A opens one
#    outbound stream per (fK, mN) pair (xedge and Prosody both keep one per pair): K x N.
#    Stage 1, f1 to every m (every code path and the allocators warm), then A's RSS; stage 2,
#    f2..fK to every m, and once B has stored every message (so every stream is
#    authenticated) and the streams are idle (MEM_SETTLE_S), A's RSS again:
#    (after - before) / ((K - 1) x N). Two ways to open them (MEM_MODES): paced, one message
#    every MEM_PACE_S seconds, so that the streams open one after another as traffic opens
#    them; burst, all at once, every handshake at the same time (the allocator keeps the peak:
#    what a burst of new peers costs). Fresh servers for each. Prosody's Lua heap is
#    collected (collectgarbage) before each of its samples.
# Then summary.py prints the tables (and writes S2S_DIR/results/summary.md).
#
# Environment (all optional; the defaults are make bench-s2s's short run, ~4 minutes):
#   PAIRS          "prosody-prosody xedge-prosody xedge-xedge" (a subset, or none, is fine;
#                  the first one measured sets RATE when it is not given)
#   AUTH           dialback: self-signed certificates, XEP-0220 dialback (the default)
#                  ca: certificates from a test CA every server trusts, SASL EXTERNAL
#                  (XEP-0178) both ways; xedge with s2s.require_valid_certs
#   N_CHAT=200 CHAT_WINDOW=16 WARMUP_S=2 CHAT_S=8 DRAIN_S=10   chat sizes and seconds: 3,200
#                  messages in flight in the closed loops (at 800, xedge <-> xedge was bound by
#                  the round trip, its CPUs half idle); DRAIN_S bounds the wait for late ones
#   RATE           open loop, messages/s in total (empty: RATE_FRACTION=0.5 x the closed-loop
#                  rate of the first pair measured, so that every pair can carry it)
#   LOAD_THREADS=1 xedge-bench threads
#   LIMITS=lifted  xedge's per-session rate limits lifted, as in bench/compare; default: its
#                  defaults (1,000 stanzas/s and 1 MiB/s per stream, inbound s2s included)
#   MEM=1 MEM_LOCAL=8 MEM_DOMAINS=64 MEM_SETTLE_S=5 MEM_IMPLS="xedge prosody"
#   MEM_MODES=paced (or "paced burst") MEM_PACE_S=0.02
#   A_CPU=0 B_CPU=1 LOAD_CPU=   the CPUs of the first and second server, and of xedge-bench
#                  (empty: not pinned, it shares both); A_CPU= B_CPU= leaves them unpinned
#   S2S_DIR        state, logs and results (wiped at start): /tmp/xedge-bench-s2s
#   S2S_PORT_BASE  26200: per server a c2s port and an s2s port (xa +22/+69, xb +122/+169,
#                  pa +222/+269, pb +322/+369, the memory run's B +422/+469 and A +522/+569);
#                  all below net.ipv4.ip_local_port_range
#   S2S_DEADLINE   hard bound on the whole run in seconds (900)
#   XEDGE_BUILD    build directory (build): xedge, xedgectl, xedge-bench
#   BENCH_BIN      the load generator ($XEDGE_BUILD/xedge-bench)
# Every process the run starts is stopped by its pid when it ends, fails or is interrupted.
# The body is one { ... } block: bash parses it whole before running it.
{
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BENCH_TAG=s2s; . "$REPO/bench/compare/lib.sh"
PY=/usr/bin/python3
T_RUN=$(now)

RUN_COMMAND="make bench-s2s"
for v in BENCH_BIN PAIRS AUTH LIMITS N_CHAT CHAT_WINDOW WARMUP_S CHAT_S DRAIN_S RATE RATE_FRACTION LOAD_THREADS MEM \
	MEM_LOCAL MEM_DOMAINS MEM_SETTLE_S MEM_IMPLS MEM_MODES MEM_PACE_S A_CPU B_CPU LOAD_CPU S2S_DIR S2S_PORT_BASE S2S_DEADLINE; do
	[ -n "${!v+x}" ] || continue
	case "${!v}" in *[[:space:]]*|"") RUN_COMMAND="$RUN_COMMAND $v='${!v}'";;
		*) RUN_COMMAND="$RUN_COMMAND $v=${!v}";; esac
done

# ---- parameters --------------------------------------------------------------------------
XEDGE_BUILD=${XEDGE_BUILD:-$REPO/build}
[ -d "$XEDGE_BUILD" ] && XEDGE_BUILD=$(cd "$XEDGE_BUILD" && pwd)
BENCH_BIN=${BENCH_BIN:-$XEDGE_BUILD/xedge-bench}
PAIRS=${PAIRS-prosody-prosody xedge-prosody xedge-xedge}
AUTH=${AUTH:-dialback}
N_CHAT=${N_CHAT:-200}; CHAT_WINDOW=${CHAT_WINDOW:-16}
WARMUP_S=${WARMUP_S:-2}; CHAT_S=${CHAT_S:-8}; DRAIN_S=${DRAIN_S:-10}
RATE=${RATE:-}; RATE_FRACTION=${RATE_FRACTION:-0.5}
LOAD_THREADS=${LOAD_THREADS:-1}
LIMITS=${LIMITS:-lifted}
MEM=${MEM:-1}; MEM_DOMAINS=${MEM_DOMAINS:-64}; MEM_LOCAL=${MEM_LOCAL:-8}; MEM_SETTLE_S=${MEM_SETTLE_S:-5}
MEM_IMPLS=${MEM_IMPLS-xedge prosody}; MEM_MODES=${MEM_MODES-paced}; MEM_PACE_S=${MEM_PACE_S:-0.02}
A_CPU=${A_CPU-0}; B_CPU=${B_CPU-1}; LOAD_CPU=${LOAD_CPU-}
S2S_DIR=${S2S_DIR:-/tmp/xedge-bench-s2s}
PORT_BASE=${S2S_PORT_BASE:-26200}
DEADLINE=${S2S_DEADLINE:-900}
PASSWORD=pw; PREFIX=s; SECRET=bench-s2s-dialback-secret
RES=$S2S_DIR/results

case "$AUTH" in dialback|ca) ;; *) die "AUTH=$AUTH: dialback or ca";; esac
case "$LIMITS" in lifted|default) ;; *) die "LIMITS=$LIMITS: lifted or default";; esac
for v in N_CHAT CHAT_WINDOW MEM_DOMAINS MEM_LOCAL DEADLINE LOAD_THREADS; do
	[[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "$v=${!v}: a positive integer"
done
[ "$N_CHAT" -ge 2 ] || die "N_CHAT=$N_CHAT: at least 2 (one client per server)"
[ "$MEM_DOMAINS" -le 64 ] && [ "$MEM_LOCAL" -ge 2 ] && [ "$MEM_LOCAL" -le 64 ] ||
	die "MEM_DOMAINS=$MEM_DOMAINS MEM_LOCAL=$MEM_LOCAL: MEM_DOMAINS up to 64, MEM_LOCAL 2 to 64" \
	    "xedge serves 64 domains at most, and routes 64"
for p in $PAIRS; do
	case $p in prosody-prosody|xedge-prosody|xedge-xedge) ;;
		*) die "PAIRS: unknown pair '$p'" "use prosody-prosody, xedge-prosody, xedge-xedge";; esac
done
for i in $MEM_IMPLS; do case $i in xedge|prosody) ;; *) die "MEM_IMPLS: xedge or prosody, not '$i'";; esac; done
for i in $MEM_MODES; do case $i in paced|burst) ;; *) die "MEM_MODES: paced or burst, not '$i'";; esac; done

# Domains and their ports; the implementation serving each.
c2s_port() { case $1 in xa.localhost) echo $((PORT_BASE + 22));; xb.localhost) echo $((PORT_BASE + 122));;
	pa.localhost) echo $((PORT_BASE + 222));; pb.localhost) echo $((PORT_BASE + 322));;
	mem) echo $((PORT_BASE + 422));; memf) echo $((PORT_BASE + 522));; esac; }
s2s_port() { echo $(( $(c2s_port "$1") + 47 )); }
impl_of() { case $1 in x*) echo xedge;; p*) echo prosody;; esac; }
declare -A IMPL     # server name -> xedge | prosody (set when it starts)
# Every server can reach every other domain of the run (only the running ones answer).
ROUTED="xa.localhost xb.localhost pa.localhost pb.localhost"
MEM_DOMS=$(seq -f "m%g.localhost" 1 "$MEM_DOMAINS" | tr '\n' ' ')
MEM_FROM=$(seq -f "f%g.localhost" 1 "$MEM_LOCAL" | tr '\n' ' ')
rel() { local s="$*"; echo "${s//$REPO\//}"; }
cpu_of() { [ -n "$1" ] && echo "taskset -c $1"; }

# ---- one run at a time; cleanup of everything we started ----------------------------------
mkdir -p "$(dirname "$S2S_DIR")"
exec 9>"$S2S_DIR.lock"
flock -n 9 || die "another bench-s2s run is using $S2S_DIR (it holds $S2S_DIR.lock)" \
	"wait for it to finish, or give this one its own S2S_DIR and S2S_PORT_BASE"
SERVERS=""          # "name:pid" of every server started and not yet stopped
CHILD=""            # the job in progress (xedge-bench, provisioning)
WATCHDOG=""
cleanup() {
	local rc=$? s
	trap - EXIT INT TERM
	[ -n "$CHILD" ] && stop_tree "$CHILD" "the job in progress" 10
	for s in $SERVERS; do
		say "stopping ${s%%:*}"
		stop_tree "${s##*:}" "${s%%:*}" 15 || say "WARNING: ${s%%:*} (pid ${s##*:}) is still running"
	done
	[ -n "$WATCHDOG" ] && stop_tree "$WATCHDOG" watchdog 2
	say "finished in $(elapsed $T_RUN) s (exit status $rc)"
	exit $rc
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM
start_watchdog "$DEADLINE" "S2S_DEADLINE=$DEADLINE s"

# ---- preflight ----------------------------------------------------------------------------
for b in "$XEDGE_BUILD/xedge" "$XEDGE_BUILD/xedgectl" "$BENCH_BIN"; do
	[ -x "$b" ] || die "$b is missing" "build first: make all"
done
if [[ "$PAIRS $MEM_IMPLS" == *prosody* ]]; then
	command -v prosody >/dev/null && command -v prosodyctl >/dev/null ||
		die "prosody is not installed" "run bench/compare/deps.sh as root, or PAIRS=xedge-xedge MEM_IMPLS=xedge"
fi
command -v openssl >/dev/null || die "openssl is missing" "apt-get install openssl"
read -r lo hi </proc/sys/net/ipv4/ip_local_port_range
for d in $ROUTED mem memf; do
	for p in $(c2s_port $d) $(s2s_port $d); do
		[ "$p" -lt "$lo" ] || die "port $p is inside net.ipv4.ip_local_port_range ($lo-$hi)" \
			"choose S2S_PORT_BASE so that S2S_PORT_BASE+570 < $lo"
		need_free_port "$p" "$d"
	done
done
rm -rf "$S2S_DIR"
mkdir -p "$RES" "$S2S_DIR/certs"
: >"$RES/commands.txt"
say "state and results in $S2S_DIR; $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- certificates ---------------------------------------------------------------------------
# ECDSA P-256 (as bench/compare/cert.sh). dialback: one self-signed certificate per domain;
# ca: a test CA, and per domain a certificate it signs with the XMPP SRV-ID and the
# xmppAddr (RFC 6120 §13.7.1.2) of the domain. The memory run's B has one certificate for all
# of m1..mN.localhost.
CERTS=$S2S_DIR/certs
ossl() { openssl "$@" 2>>"$CERTS/openssl.log" || die "openssl $1 failed" "see $CERTS/openssl.log"; }
if [ "$AUTH" = ca ]; then
	ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
		-subj "/CN=xedge bench-s2s test CA" -addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" -keyout "$CERTS/ca.key" -out "$CERTS/ca.crt"
fi
make_cert() {       # make_cert NAME DOMAIN...
	local name=$1 d san=""; shift
	for d in "$@"; do
		san="$san${san:+,}DNS:$d"
		[ "$AUTH" = ca ] && san="$san,otherName:1.3.6.1.5.5.7.8.7;IA5STRING:_xmpp-server.$d"
	done
	if [ "$AUTH" = ca ]; then
		ossl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$1" \
			-keyout "$CERTS/$name.key" -out "$CERTS/$name.csr"
		printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n' \
			"$san" >"$CERTS/$name.ext"
		ossl x509 -req -in "$CERTS/$name.csr" -CA "$CERTS/ca.crt" -CAkey "$CERTS/ca.key" \
			-CAcreateserial -days 2 -extfile "$CERTS/$name.ext" -out "$CERTS/$name.crt"
	else
		ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
			-subj "/CN=$1" -addext "subjectAltName=$san" \
			-keyout "$CERTS/$name.key" -out "$CERTS/$name.crt"
	fi
	chmod 644 "$CERTS/$name.key" "$CERTS/$name.crt"
}
for d in $ROUTED; do make_cert "$d" "$d"; done
[ "$MEM" = 1 ] && make_cert mem $MEM_DOMS && make_cert memf $MEM_FROM
CA_FILE=""; [ "$AUTH" = ca ] && CA_FILE=$CERTS/ca.crt

# ---- servers ----------------------------------------------------------------------------------
# start_xedge NAME CPU C2S_PORT S2S_PORT CERT DOMAIN... ; routes to every other domain of the run
start_xedge() {
	local name=$1 cpu=$2 c2s=$3 s2s=$4 cert=$5 d dir=$S2S_DIR/$1 pid t0; shift 5
	mkdir -p "$dir"
	{
		echo "# bench/s2s/run.sh: xedge '$name' (generated)"
		echo "workers: 1"
		echo "log_level: info"
		echo "listeners:"
		echo "  - {type: c2s, address: \"127.0.0.1:$c2s\", backlog: 4096}"
		echo "  - {type: s2s, address: \"127.0.0.1:$s2s\", backlog: 4096}"
		echo "domains:"
		for d in "$@"; do echo "  - {name: $d, cert: $CERTS/$cert.crt, key: $CERTS/$cert.key}"; done
		echo "tls:"
		echo "  require: true"
		[ -n "$CA_FILE" ] && echo "  ca_file: $CA_FILE"
		# The per-session abuse limits lifted, as in bench/compare (Prosody runs without
		# mod_limits), and the inbound s2s streams' own (s2s.rate_*) with them.
		if [ "$LIMITS" = lifted ]; then
			echo "limits: {max_stanza_bytes: 262144, max_connections: 18000, max_connections_per_ip: 1000000,"
			echo "         connection_rate_per_ip: 1000000, rate_stanzas: 1000000, rate_bytes: 1073741824}"
		fi
		echo "timeouts: {handshake: 10, auth: 30, idle: 600}"
		echo "s2s:"
		echo "  dialback_secret: $SECRET-$name"
		echo "  connect_timeout: 30"
		[ "$LIMITS" = lifted ] && echo "  rate_stanzas: 10000000" && echo "  rate_bytes: 1073741824"
		[ "$AUTH" = ca ] && echo "  require_valid_certs: true"
		echo "  routes:"
		for d in $ROUTE_DOMS; do
			case " $* " in *" $d "*) continue;; esac
			echo "    $d: 127.0.0.1:$(s2s_port "$(route_key $d)")"
		done
		echo "session_server:"
		echo "  database: $dir/xedge.db"
		echo "  admin_socket: $dir/admin.sock"
	} >"$dir/xedge.yaml"
	"$XEDGE_BUILD/xedge" --check-config "$dir/xedge.yaml" >/dev/null 2>"$dir/check.err" ||
		die "xedge rejects the generated config: $(head -1 "$dir/check.err")" "fix start_xedge in $(rel "$0")"
	t0=$(now)
	env $(env | sed -n 's/^\(XEDGE_[A-Z_]*\)=.*/-u \1/p' | grep -v XEDGE_BUILD) \
		$(cpu_of "$cpu") "$XEDGE_BUILD/xedge" -c "$dir/xedge.yaml" >"$dir/xedge.log" 2>&1 </dev/null &
	pid=$!
	SERVERS="$SERVERS $name:$pid"; IMPL[$name]=xedge
	echo $pid >"$dir/server.pid"
	wait_port "$c2s" $pid 20 && wait_port "$s2s" $pid 5 &&
		for i in $(seq 1 50); do [ -S "$dir/admin.sock" ] && break; sleep 0.1; done
	[ -S "$dir/admin.sock" ] || { tail -5 "$dir/xedge.log" >&2
		die "xedge '$name' did not come up within 20 s (log: $dir/xedge.log)"; }
	say "xedge '$name' ($*) pid $pid on 127.0.0.1:$c2s/$s2s (CPU $(affinity $pid)) ready in $(elapsed $t0) s"
}

# start_prosody NAME CPU C2S_PORT S2S_PORT CERT DOMAIN... ; routes as start_xedge's
start_prosody() {
	local name=$1 cpu=$2 c2s=$3 s2s=$4 cert=$5 dir=$S2S_DIR/$1 pid t0 routes="" r; shift 5
	mkdir -p "$dir/data" "$dir/certs"
	for r in $ROUTE_DOMS; do
		case " $* " in *" $r "*) continue;; esac
		routes="$routes $r=127.0.0.1:$(s2s_port "$(route_key $r)")"
	done
	t0=$(now)
	BENCH_PROSODY_DIR=$dir BENCH_PROSODY_PORT=$c2s BENCH_S2S_PORT=$s2s \
	BENCH_CERT=$CERTS/$cert.crt BENCH_KEY=$CERTS/$cert.key BENCH_DOMAIN="$*" BENCH_S2S_ROUTES="$routes" \
	BENCH_CA=$CA_FILE BENCH_PLUGINS=$HERE/plugins BENCH_LOGLEVEL=info \
		$(cpu_of "$cpu") prosody -F --config "$HERE/prosody.cfg.lua" >"$dir/console.log" 2>&1 </dev/null &
	pid=$!
	SERVERS="$SERVERS $name:$pid"; IMPL[$name]=prosody
	echo $pid >"$dir/server.pid"
	wait_port "$c2s" $pid 20 && wait_port "$s2s" $pid 5 &&
		for i in $(seq 1 50); do [ -S "$dir/admin.sock" ] && break; sleep 0.1; done
	[ -S "$dir/admin.sock" ] || { tail -5 "$dir/console.log" "$dir/prosody.log" >&2 2>/dev/null
		die "prosody '$name' did not come up within 20 s (logs: $dir/console.log, $dir/prosody.log)"; }
	say "prosody '$name' ($*) pid $pid on 127.0.0.1:$c2s/$s2s (CPU $(affinity $pid)) ready in $(elapsed $t0) s"
}

# The domains a server gets s2s.routes (bench_s2s_routes) for: set before each start (xedge
# routes 64 domains at most). The memory run's B answers for all of m1..mN on one port.
ROUTE_DOMS=$ROUTED
route_key() { case $1 in m*.localhost) echo mem;; f*.localhost) echo memf;; *) echo "$1";; esac; }

stop_server() {     # stop_server NAME
	local s keep=""
	for s in $SERVERS; do
		if [ "${s%%:*}" = "$1" ]; then
			stop_tree "${s##*:}" "$1" 15 || die "$1 (pid ${s##*:}) is still running" "kill -9 ${s##*:}"
		else
			keep="$keep $s"
		fi
	done
	SERVERS=$keep
}
pid_of() { cat "$S2S_DIR/$1/server.pid"; }

# register NAME DOMAIN PREFIX FIRST COUNT [quiet]: accounts PREFIX<FIRST..>@DOMAIN on server
# NAME, with the bulk paths of bench/compare (xedgectl in parallel; Prosody's shell)
register() {
	local name=$1 d=$2 out=$S2S_DIR/$1/register.out
	[ "$5" -gt 0 ] || return 0
	if [ "${IMPL[$name]}" = prosody ]; then
		BENCH_TARGET_DIR=$S2S_DIR/$name BENCH_DOMAIN=$d BENCH_CERT=x BENCH_KEY=x BENCH_TAG=$name \
			run_job run_bounded 300 "$REPO/bench/prosody/register.sh" "$3" "$4" "$5" "$PASSWORD" >"$out" ||
			die "provisioning $5 accounts on prosody '$name' failed"
	else
		BENCH_TARGET_DIR=$S2S_DIR/$name BENCH_DOMAIN=$d XEDGE_BUILD=$XEDGE_BUILD BENCH_TAG=$name \
			run_job run_bounded 300 "$REPO/bench/compare/xedge/register.sh" "$3" "$4" "$5" "$PASSWORD" >"$out" ||
			die "provisioning $5 accounts on xedge '$name' failed"
	fi
	[ -n "${6:-}" ] || say "$name: $5 accounts $3$4..$3$(($4 + $5 - 1))@$d: $(tail -1 "$out")"
}

# cpu_s PID: user + system seconds of the process (all threads)
cpu_s() {
	awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' \
		/proc/"$1"/stat 2>/dev/null
}

# ---- part 1: pairs ------------------------------------------------------------------------------
# Users of a pair: prime s0 (A) s1 (B); each later run a fresh block of N_CHAT (the first half
# on A, the second on B), so no offline message of one run reaches another.
HALF_A=$(( (N_CHAT + 1) / 2 )); HALF_B=$((N_CHAT - HALF_A))
OFF_CLOSED=2; OFF_ONEWAY=$((OFF_CLOSED + N_CHAT)); OFF_RATE=$((OFF_ONEWAY + N_CHAT))

# bench_run PAIR RUN DA DB OFFSET CLIENTS OPTS...: xedge-bench with A = DA, B = DB
bench_run() {
	local pair=$1 run=$2 da=$3 db=$4 off=$5 n=$6 out=$RES/$1 pa pb ca0 cb0 t0 rc; shift 6
	mkdir -p "$out"
	pa=$(pid_of "$pair-a"); pb=$(pid_of "$pair-b")
	local cmd=($(cpu_of "$LOAD_CPU") "$BENCH_BIN" --host 127.0.0.1 --port "$(c2s_port $da)"
		--domain "$da" --remote "127.0.0.1:$(c2s_port $db):$db" --cross --threads "$LOAD_THREADS"
		--password "$PASSWORD" --user-prefix "$PREFIX" --user-offset "$off" --clients "$n"
		--mech SCRAM-SHA-1 --concurrency 100 --timeout 20 --login-time 60 --scenario chat
		--pid "$pa" --pid "$pb" "$@" --json "$out/$run.json")
	cmdlog "# $pair $run"
	cmdlog "$(rel "${cmd[*]}")"
	ca0=$(cpu_s "$pa"); cb0=$(cpu_s "$pb"); t0=$(now)
	run_job run_bounded 300 "${cmd[@]}" >"$out/$run.txt" 2>"$out/$run.err"
	rc=$?
	printf '{"a_cpu_s": %s, "b_cpu_s": %s, "wall_s": %s}\n' \
		"$(awk -v a="$ca0" -v b="$(cpu_s "$pa")" 'BEGIN { printf "%.2f", b - a }')" \
		"$(awk -v a="$cb0" -v b="$(cpu_s "$pb")" 'BEGIN { printf "%.2f", b - a }')" \
		"$(elapsed $t0)" >"$out/$run.cpu.json"
	[ $rc = 0 ] && [ -s "$out/$run.json" ] || { tail -5 "$out/$run.err" >&2
		die "xedge-bench ($pair $run) failed (exit status $rc)" "see $out/$run.txt and $out/$run.err"; }
	$PY "$HERE/summary.py" line "$out/$run.json" "$pair $run" >&2
}

pair_domains() {    # pair_domains PAIR -> "DA DB"
	case $1 in prosody-prosody) echo "pa.localhost pb.localhost";;
		xedge-prosody) echo "xa.localhost pb.localhost";;
		xedge-xedge) echo "xa.localhost xb.localhost";; esac
}

for pair in $PAIRS; do
	T_PAIR=$(now)
	read -r DA DB <<<"$(pair_domains $pair)"
	say "== $pair: $DA ($(impl_of $DA), CPU ${A_CPU:-any}) <-> $DB ($(impl_of $DB), CPU ${B_CPU:-any}), AUTH=$AUTH"
	for side in a b; do
		d=$DA; cpu=$A_CPU; [ $side = b ] && d=$DB && cpu=$B_CPU
		start_$(impl_of $d) "$pair-$side" "$cpu" "$(c2s_port $d)" "$(s2s_port $d)" "$d" "$d"
	done
	# A gets the first half of every block, B the second (xedge-bench --remote).
	register "$pair-a" "$DA" "$PREFIX" 0 1
	register "$pair-b" "$DB" "$PREFIX" 1 1
	for off in $OFF_CLOSED $OFF_ONEWAY $OFF_RATE; do
		register "$pair-a" "$DA" "$PREFIX" "$off" "$HALF_A"
		register "$pair-b" "$DB" "$PREFIX" $((off + HALF_A)) "$HALF_B"
	done
	# prime: one message each way opens (and authenticates) both streams; it must arrive.
	bench_run "$pair" prime "$DA" "$DB" 0 2 --window 1 --warmup 0 --duration 1 --drain 30
	$PY "$HERE/summary.py" check-prime "$RES/$pair/prime.json" ||
		die "$pair: the priming messages did not cross both ways" \
		    "read the servers' logs in $S2S_DIR/$pair-a and $S2S_DIR/$pair-b"
	bench_run "$pair" closed "$DA" "$DB" "$OFF_CLOSED" "$N_CHAT" --window "$CHAT_WINDOW" \
		--warmup "$WARMUP_S" --duration "$CHAT_S" --drain "$DRAIN_S"
	bench_run "$pair" oneway "$DA" "$DB" "$OFF_ONEWAY" "$N_CHAT" --one-way --window "$CHAT_WINDOW" \
		--warmup "$WARMUP_S" --duration "$CHAT_S" --drain "$DRAIN_S"
	if [ -z "$RATE" ]; then
		RATE=$($PY "$HERE/summary.py" rate "$RES/$pair/closed.json" "$RATE_FRACTION") ||
			die "cannot derive RATE from $RES/$pair/closed.json"
		RATE_FROM="$RATE_FRACTION x the closed-loop rate of $pair"
		say "open-loop rate for every pair: $RATE messages/s ($RATE_FROM)"
	fi
	bench_run "$pair" rate "$DA" "$DB" "$OFF_RATE" "$N_CHAT" \
		--rate "$(awk -v r="$RATE" -v n="$N_CHAT" 'BEGIN { printf "%.4f", r / n }')" \
		--warmup "$WARMUP_S" --duration "$CHAT_S" --drain "$DRAIN_S"
	# How the servers authenticated each other, from their logs.
	for side in a b; do
		cp "$S2S_DIR/$pair-$side/"*.log "$RES/$pair/" 2>/dev/null
		for f in "$S2S_DIR/$pair-$side/xedge.log" "$S2S_DIR/$pair-$side/prosody.log"; do
			[ -f "$f" ] || continue
			grep -h -o -E "outbound stream ready.*auth=(SASL EXTERNAL|[A-Za-z-]+)|inbound stream authenticated.*auth=[A-Za-z-]+|SASL EXTERNAL with [^ ]+ succeeded|Accepting SASL EXTERNAL identity from [^ ]+|(Incoming|Outgoing) s2s connection [^ ]+ complete|s2s(in|out)[0-9a-f]*.info.Stream encrypted .*" "$f" |
				sed -E "s/^/$side: /; s/ conn=[0-9]+//; s/\"//; s/s2s(in|out)[0-9a-f]+.info./s2s\1 /" |
				sort | uniq -c >>"$RES/$pair/auth.txt"
		done
	done
	stop_server "$pair-a"; stop_server "$pair-b"
	say "== $pair done in $(elapsed $T_PAIR) s"
done
echo "${RATE:-} ${RATE_FROM:-given as RATE}" >"$RES/rate.txt"

# ---- part 2: memory per idle outbound s2s stream -------------------------------------------------
# rss_median PID: the median VmRSS (KiB) of 5 samples 0.5 s apart
rss_median() {
	local i
	for i in 1 2 3 4 5; do rss_kib "$1"; sleep 0.5; done | sort -n | sed -n 3p
}
# wait_stored N: B stored N messages (offline storage, read from its database): B accepts
# stanzas only on authenticated streams, so each message stored is one of A's streams up.
# (B's log cannot tell: it rate-limits repeated lines.)
wait_stored() {
	local want=$1 t0 n
	t0=$(date +%s)
	while :; do
		n=$($PY -c 'import sqlite3, sys
c = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True, timeout=5)
print(c.execute("SELECT count(*) FROM offline").fetchone()[0])' "$S2S_DIR/mem/xedge.db" 2>/dev/null)
		[ "${n:-0}" -ge "$want" ] && return 0
		[ $(( $(date +%s) - t0 )) -ge 120 ] && { say "B stored ${n:-0} of $want messages within 120 s"; return 1; }
		sleep 0.2
	done
}
prosody_gc() {      # prosody_gc NAME: a full collection of Prosody's Lua heap; prints its KiB
	BENCH_PROSODY_DIR=$S2S_DIR/$1 BENCH_PROSODY_PORT=1 BENCH_S2S_PORT=1 BENCH_CERT=x BENCH_KEY=x \
	BENCH_DOMAIN=x BENCH_PLUGINS=$HERE/plugins \
		run_bounded 60 prosodyctl --config "$HERE/prosody.cfg.lua" shell \
		"> collectgarbage('collect'); collectgarbage('collect'); return 'gc ' .. collectgarbage('count')" 2>&1 |
		sed -n 's/.*gc \([0-9.]*\).*/\1/p' | tail -1
}
# fan FROM_DOMAIN FANOUT_ARGS...: fan0@FROM_DOMAIN sends one message to idle0@ each domain given
fan() {
	local from=$1; shift
	run_bounded 120 $PY "$HERE/fanout.py" --port "$(c2s_port memf)" --domain "$from" --user fan0 \
		--password "$PASSWORD" --to idle0 "$@" >/dev/null
}
# fan_all PACE FROM...: fan from each FROM to every m*.localhost; PACE > 0: one domain after
# another, each pacing its messages (one handshake at a time); 0: all at once
fan_all() {
	local pace=$1 d rc=0 pids=""; shift
	for d in "$@"; do
		if [ "$pace" != 0 ]; then
			fan "$d" --pace "$pace" $MEM_DOMS || return 1
		else
			fan "$d" $MEM_DOMS &
			pids="$pids $!"
		fi
	done
	for d in $pids; do wait "$d" || rc=1; done
	return $rc
}
# A's MEM_LOCAL domains f1..fK each send to B's MEM_DOMAINS domains m1..mN: one outbound stream
# per (local, remote) pair (xedge and Prosody both keep one per pair), K x N in all.
# Stage 1 (f1 -> every m): every code path and the allocators warm, then the baseline;
# stage 2 (f2..fK -> every m): the streams measured.
if [ "$MEM" = 1 ]; then
	T_MEM=$(now)
	mkdir -p "$RES/mem"
	n_meas=$(( (MEM_LOCAL - 1) * MEM_DOMAINS ))
	for impl in $MEM_IMPLS; do
	for mode in $MEM_MODES; do
		say "== memory per idle outbound s2s stream: $impl serving $MEM_LOCAL domains -> xedge serving $MEM_DOMAINS, $mode"
		rm -rf "$S2S_DIR/mem" "$S2S_DIR/mem-a"   # fresh servers, fresh accounts
		ROUTE_DOMS=$MEM_FROM   # B reaches A (dialback verification)
		start_xedge mem "$B_CPU" "$(c2s_port mem)" "$(s2s_port mem)" mem $MEM_DOMS
		ROUTE_DOMS=$MEM_DOMS   # A reaches every m*.localhost at B
		start_$impl mem-a "$A_CPU" "$(c2s_port memf)" "$(s2s_port memf)" memf $MEM_FROM
		ROUTE_DOMS=$ROUTED
		for d in $MEM_FROM; do register mem-a "$d" fan 0 1 quiet; done
		for d in $MEM_DOMS; do register mem "$d" idle 0 1 quiet; done
		apid=$(pid_of mem-a)
		pace=0; [ $mode = paced ] && pace=$MEM_PACE_S
		first=${MEM_FROM%% *}; rest=${MEM_FROM#* }
		# Stage 1; its login first sends 16 MiB of whitespace, so that xedge's receive buffer
		# pool (512 x 16 KiB per worker, resident as traffic flows) is resident already.
		run_job fan "$first" --warm-bytes 16777216 --pace "$pace" $MEM_DOMS ||
			die "fanout.py from $first failed"
		wait_stored "$MEM_DOMAINS" || die "$impl: the messages from $first did not all reach B"
		sleep "$MEM_SETTLE_S"
		gc0=""; [ $impl = prosody ] && gc0=$(prosody_gc mem-a)
		rss0=$(rss_median "$apid")
		t0=$(now)
		run_job fan_all "$pace" $rest || die "fanout.py (stage 2) failed"
		wait_stored $((MEM_LOCAL * MEM_DOMAINS)) || die "$impl: not every message reached B"
		open_s=$(elapsed $t0)
		sleep "$MEM_SETTLE_S"
		gc1=""; [ $impl = prosody ] && gc1=$(prosody_gc mem-a)
		rss1=$(rss_median "$apid")
		# A's TCP connections to B's s2s port: its outbound streams, all still open.
		nconn=$(ss -Htn state established "( dport = :$(s2s_port mem) )" | wc -l)
		printf '{"impl": "%s", "mode": "%s", "pace_s": %s, "local_domains": %d, "remote_domains": %d, "streams": %d, "measured_streams": %d, "open_s": %s, "rss0_kib": %s, "rss1_kib": %s, "established": %d, "lua_kib_before": "%s", "lua_kib_after": "%s", "settle_s": %s}\n' \
			$impl $mode "$pace" "$MEM_LOCAL" "$MEM_DOMAINS" $((MEM_LOCAL * MEM_DOMAINS)) "$n_meas" \
			"$open_s" "$rss0" "$rss1" "$nconn" "$gc0" "$gc1" "$MEM_SETTLE_S" >"$RES/mem/$impl-$mode.json"
		cmdlog "# memory $impl $mode: fanout.py from each of $MEM_FROM to idle0@ each of m1..m$MEM_DOMAINS.localhost, --pace $pace"
		say "$impl, $mode: RSS $rss0 -> $rss1 KiB for $n_meas more streams, opened in $open_s s ($nconn established to B)"
		for f in "$S2S_DIR/mem-a/"*.log; do cp "$f" "$RES/mem/$impl-$mode-$(basename "$f")"; done
		stop_server mem-a; stop_server mem
	done
	done
	say "== memory done in $(elapsed $T_MEM) s"
fi

# ---- summary -------------------------------------------------------------------------------------
# xedge's per-stream structures, from the build's debug information (-g).
if command -v gdb >/dev/null; then
	types=("struct conn" "struct s2s_out" "struct s2s_conn" "struct tls_layer" "struct tls"
	       "struct tls13" "struct resolve_target")
	args=(); for t in "${types[@]}"; do args+=(-ex "p sizeof($t)"); done
	run_bounded 60 gdb -batch -nx "${args[@]}" "$XEDGE_BUILD/xedge" 2>/dev/null |
		sed -n 's/^\$[0-9]* = //p' | paste <(printf '%s\n' "${types[@]}") - |
		awk -F'\t' '{ printf "%-22s %5s bytes\n", $1, $2 }' >"$RES/sizes.txt"
fi
{
	echo "command: $RUN_COMMAND"
	echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), took $(elapsed $T_RUN) s"
	echo "machine: $(nproc) x $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(uname -r)"
	echo "auth: $AUTH; xedge's limits: $LIMITS"
	echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "pinning: A on CPU ${A_CPU:-any}, B on CPU ${B_CPU:-any}, xedge-bench on CPU ${LOAD_CPU:-any}"
	echo "xedge: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null)$(git -C "$REPO" diff --quiet HEAD 2>/dev/null || echo ' (modified)')"
	echo "prosody: $(dpkg-query -W -f '${Version}' prosody 2>/dev/null)"
} >"$RES/run.txt"
$PY "$HERE/summary.py" report "$RES" >"$RES/summary.md" || die "summary.py report failed"
cat "$RES/summary.md"
say "results: $RES (summary.md, one JSON per run, commands.txt, servers' logs)"
exit 0
}
