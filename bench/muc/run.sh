#!/bin/bash
# make bench-muc: group-chat (XEP-0045) fan-out, xedge against Prosody and ejabberd under the same
# load (issue 14; docs/benchmarks.md, "Group chat fan-out").
#
# Each target in TARGETS is started on loopback with its group-chat service on
# conference.localhost (bench/compare/xedge, bench/prosody, bench/ejabberd start scripts with
# BENCH_MUC set), pinned to SERVER_CPU, the load generator to LOAD_CPU; accounts are provisioned
# with the target's register.sh; then for each shape RxN of MUC_SHAPES (the server started again
# before each but the first, on the same state, so that each starts fresh) one xedge-bench run
# (-s muc): R rooms of N occupants, every occupant sending groupchat messages at a fixed rate
# (open loop) so that the room fan-out offers MUC_DELIVERIES deliveries per second in all
# (rate per occupant = MUC_DELIVERIES / (R * N * N)), the same for every server. Recorded per
# run (xedge-bench's JSON): deliveries per second, the server's CPU-seconds per 1,000 deliveries
# (its --pid over the measured window), p99 from a send to the last occupant's copy, the
# server's RSS growth per occupant over the joins, and the deliveries lost.
#
# Environment (all optional): TARGETS ("xedge prosody ejabberd"), MUC_SHAPES ("100x20 10x200"),
# MUC_DELIVERIES (20000), MUC_JOIN_RATE (200 joins/s, all clients together: see xedge-bench
# --join-rate), MUC_SETTLE (10 s before each memory sample), MUC_WARMUP (3), MUC_S (15), MUC_DRAIN (5), SERVER_CPU (0), LOAD_CPU (1),
# MUC_DIR (/tmp/xedge-bench-muc: wiped at start), MUC_PORT_BASE (24800: xedge +22, Prosody +122,
# ejabberd +222, each +1, ejabberd also +280 and +299), XEDGE_BUILD (build), MUC_DEADLINE (1500 s),
# MUC_NICE (-10 as root, 0 disables): as bench/compare, the run moves into a session of its own
# whose scheduler autogroup gets that nice value, so that other sessions' work on this shared
# machine takes less of the pinned CPUs (it is not excluded: see the load average in the report).
# Output: MUC_DIR/results/summary.md (printed; the command and the date in it) and one JSON and
# log per run. Exit status 0 when every run completed and lost nothing.
# The body is one { ... } block: editing this file during a run cannot break the run.
{
set -u
RUN_COMMAND="make bench-muc"
for v in TARGETS MUC_SHAPES MUC_DELIVERIES MUC_JOIN_RATE MUC_SETTLE MUC_WARMUP MUC_S MUC_DRAIN SERVER_CPU LOAD_CPU MUC_DIR \
	MUC_PORT_BASE MUC_DEADLINE MUC_NICE; do
	[ -n "${!v-}" ] && RUN_COMMAND="$RUN_COMMAND $v='${!v}'"
done
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BENCH_TAG=muc; . "$REPO/bench/compare/lib.sh"
NICE=${MUC_NICE:--10}; [ "$(id -u)" = 0 ] || NICE=0
if [ -z "${MUC_INNER:-}" ] && [ "$NICE" != 0 ] &&
   [ "$(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null)" = 1 ]; then
	# The inner run writes its pid to $ctl/pid; INT/TERM here are passed on to it.
	ctl=$(mktemp -d /tmp/xedge-bench-muc-run.XXXXXX)
	trap 'p=$(cat "$ctl/pid" 2>/dev/null) && kill -TERM "$p" 2>/dev/null' INT TERM
	MUC_INNER=$ctl setsid -w "$0" "$@" </dev/null &
	starter=$!
	while :; do wait $starter; rc=$?; alive $starter || break; done
	rm -rf "$ctl"
	exit $rc
fi
if [ -n "${MUC_INNER:-}" ]; then
	echo $$ >"$MUC_INNER/pid"
	echo "$NICE" >/proc/self/autogroup 2>/dev/null && say "own session, scheduler autogroup at nice $NICE" ||
		say "WARNING: could not set the scheduler autogroup's nice value"
fi
PY=/usr/bin/python3
T_RUN=$(now)

TARGETS=${TARGETS:-xedge prosody ejabberd}
SHAPES=${MUC_SHAPES:-100x20 10x200}
DELIVERIES=${MUC_DELIVERIES:-20000}; JOIN_RATE=${MUC_JOIN_RATE:-200}; SETTLE=${MUC_SETTLE:-10}
WARMUP=${MUC_WARMUP:-3}; DURATION=${MUC_S:-15}; DRAIN=${MUC_DRAIN:-5}
SERVER_CPU=${SERVER_CPU:-0}; LOAD_CPU=${LOAD_CPU:-1}
DIR=${MUC_DIR:-/tmp/xedge-bench-muc}
PB=${MUC_PORT_BASE:-24800}
B=${XEDGE_BUILD:-$REPO/build}; [ -d "$B" ] && B=$(cd "$B" && pwd)
DEADLINE=${MUC_DEADLINE:-1500}
RES=$DIR/results
DOMAIN=localhost; PASSWORD=pw; MUC=conference.$DOMAIN
SOURCES=127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4

port_of() { case $1 in xedge) echo $((PB + 22));; prosody) echo $((PB + 122));; ejabberd) echo $((PB + 222));; esac; }
dir_of() { case $1 in xedge) echo "$REPO/bench/compare/xedge";; *) echo "$REPO/bench/$1";; esac; }
tenv() {            # tenv TARGET CMD... : CMD with the target's environment (as bench/compare)
	local t=$1; shift
	BENCH_TARGET_DIR=$DIR/$t BENCH_PORT=$(port_of $t) BENCH_DOMAIN=$DOMAIN BENCH_MUC=$MUC \
	BENCH_CERT=$DIR/tls/cert.pem BENCH_KEY=$DIR/tls/key.pem BENCH_PEM=$DIR/tls/combined.pem \
	BENCH_CPU=$SERVER_CPU XEDGE_BUILD=$B BENCH_TAG=$t "$@"
}

# ---- preflight --------------------------------------------------------------------------
[ -x "$B/xedge-bench" ] || die "$B/xedge-bench is missing" "build first: make all"
NMAX=0
for s in $SHAPES; do
	[[ $s =~ ^[1-9][0-9]*x[1-9][0-9]*$ ]] || die "bad shape '$s'" "MUC_SHAPES takes ROOMSxSIZE words, e.g. 100x20"
	n=$(( ${s%x*} * ${s#*x} )); [ $n -gt $NMAX ] && NMAX=$n
done
for t in $TARGETS; do
	case $t in xedge|prosody|ejabberd) ;; *) die "unknown target '$t'" "TARGETS is a subset of: xedge prosody ejabberd";; esac
	for q in $(port_of $t) $(( $(port_of $t) + 1 )); do need_free_port $q "$t"; done
done
mkdir -p "$(dirname "$DIR")"
exec 9>"$DIR.lock"
flock -n 9 || die "another bench-muc run holds $DIR.lock" "wait for it, or set MUC_DIR and MUC_PORT_BASE"
rm -rf "$DIR"; mkdir -p "$RES"
"$REPO/bench/compare/cert.sh" "$DIR/tls" $DOMAIN >/dev/null || die "cannot make a certificate (openssl)"

RUNNING=""
cleanup() {
	local rc=$? t
	trap - EXIT INT TERM
	[ -n "${CHILD:-}" ] && stop_tree "$CHILD" "xedge-bench" 10
	for t in $RUNNING; do tenv $t "$(dir_of $t)/stop.sh" || true; done
	[ -n "${WATCHDOG:-}" ] && stop_tree "$WATCHDOG" watchdog 2
	say "finished in $(elapsed $T_RUN) s (exit status $rc)"
	exit $rc
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM
start_watchdog $DEADLINE MUC_DEADLINE

cat >"$RES/params.json" <<EOF
{"command": "$RUN_COMMAND", "date": "$(date -u '+%Y-%m-%d %H:%M UTC')", "targets": "$TARGETS",
 "shapes": "$SHAPES", "deliveries_per_s": $DELIVERIES, "join_rate": $JOIN_RATE, "warmup_s": $WARMUP, "measured_s": $DURATION,
 "drain_s": $DRAIN, "server_cpu": "$SERVER_CPU", "load_cpu": "$LOAD_CPU", "commit": "$(git -C "$REPO" rev-parse --short HEAD)",
 "cpus": $(nproc), "loadavg_before": "$(cut -d' ' -f1-3 /proc/loadavg)", "nice": $NICE}
EOF
say "targets: $TARGETS; shapes: $SHAPES; $DELIVERIES deliveries/s offered; servers on CPU $SERVER_CPU, load on CPU $LOAD_CPU; state in $DIR"

FAILS=0
for t in $TARGETS; do
	mkdir -p "$RES/$t"
	say "---- $t: start, provision $NMAX accounts ----"
	if ! tenv $t "$(dir_of $t)/start.sh" 2>&1 | tee -a "$RES/$t/start.log" >&2 || [ "${PIPESTATUS[0]}" != 0 ]; then
		say "ERROR: $t did not start (see $RES/$t/start.log)"; FAILS=$((FAILS + 1)); continue
	fi
	RUNNING="$RUNNING $t"
	spid=$(cat "$DIR/$t/server.pid")
	if ! run_job tenv $t "$(dir_of $t)/register.sh" bench 0 $NMAX $PASSWORD >"$RES/$t/provision.json"; then
		say "ERROR: $t: provisioning failed"; FAILS=$((FAILS + 1))
		tenv $t "$(dir_of $t)/stop.sh"; RUNNING=$(echo " $RUNNING " | sed "s/ $t / /"); continue
	fi
	first=1
	for s in $SHAPES; do
		rooms=${s%x*}; size=${s#*x}
		if [ -z "$first" ]; then
			# A fresh process for each shape (same state: the accounts stay), so that its
			# memory figures start from what a server that has run nothing holds.
			tenv $t "$(dir_of $t)/stop.sh"
			tenv $t "$(dir_of $t)/start.sh" 2>&1 | tee -a "$RES/$t/start.log" >&2
			[ "${PIPESTATUS[0]}" = 0 ] || { say "ERROR: $t did not start again"; FAILS=$((FAILS + 1)); break; }
			spid=$(cat "$DIR/$t/server.pid")
		fi
		first=""
		rate=$(awk -v d=$DELIVERIES -v r=$rooms -v n=$size 'BEGIN { printf "%.6g", d / (r * n * n) }')
		out=$RES/$t/$s
		cmd=(taskset -c $LOAD_CPU "$B/xedge-bench" --host 127.0.0.1 --port $(port_of $t) --domain $DOMAIN
			--muc-domain $MUC --password $PASSWORD --mech SCRAM-SHA-1 --scram-cache "$DIR/$t/scram.cache"
			--threads 1 --sources $SOURCES --concurrency 200 --timeout 60 --login-time 240
			-s muc --rooms $rooms --room-size $size --rate $rate --join-rate $JOIN_RATE --settle $SETTLE
			--warmup $WARMUP --duration $DURATION
			--drain $DRAIN --pid $spid --json "$out.json")
		echo "${cmd[*]}" | sed "s|$REPO/||g" >"$out.cmd"
		say "$t $s: $rooms rooms of $size, $rate messages/s per occupant"
		run_job timeout -k 10 $((240 + WARMUP + DURATION + DRAIN + 120)) "${cmd[@]}" >"$out.log" 2>&1 ||
			{ say "ERROR: $t $s: xedge-bench failed (exit $?; $out.log)"; FAILS=$((FAILS + 1)); }
		alive "$spid" || { say "ERROR: $t died during $s"; FAILS=$((FAILS + 1)); break; }
		[ -s "$out.json" ] && say "$t $s: $($PY "$HERE/summary.py" line "$out.json")"
	done
	tenv $t "$(dir_of $t)/stop.sh"
	RUNNING=$(echo " $RUNNING " | sed "s/ $t / /; s/^ *//; s/ *$//")
done
echo "\"$(cut -d' ' -f1-3 /proc/loadavg)\"" >"$RES/loadavg_after.json"
$PY "$HERE/summary.py" report "$RES" "$TARGETS" "$SHAPES" | tee "$RES/summary.md"
lost=$(grep -c "LOST" "$RES/summary.md")
[ $FAILS -eq 0 ] && [ "$lost" -eq 0 ]
exit $?
}
