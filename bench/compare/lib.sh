# Shared shell helpers for bench/compare and the per-target scripts (bench/prosody,
# bench/ejabberd, bench/compare/xedge). Source it; it defines functions only.
#
# Conventions: every message goes to stderr, prefixed with the phase ("[prosody] ...");
# fatal errors name what failed and what to do; processes are only ever signalled by the
# pid the harness recorded when it started them (and their descendants), never by name.

: "${BENCH_TAG:=bench}"

now() { date +%s.%N; }
# elapsed T0 -> seconds since T0 with one decimal
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
say() { printf '[%s] %s\n' "$BENCH_TAG" "$*" >&2; }
die() {
	printf '[%s] ERROR: %s\n' "$BENCH_TAG" "$1" >&2
	[ -n "${2:-}" ] && printf '[%s]   what to do: %s\n' "$BENCH_TAG" "$2" >&2
	exit 1
}

# start_watchdog SECONDS KNOB -> in the background, TERM this shell after SECONDS (saying
# that KNOB bounds the run); echoes nothing, sets WATCHDOG to its pid.  It checks every
# second that the run (its parent) is still there, so it never outlives the run nor
# signals a recycled pid.
start_watchdog() {
	local deadline_at=$(( $(date +%s) + $1 )) knob=$2
	# BASHPID is read before the loop: inside $(...) it would be the substitution's own pid.
	( me=$BASHPID
	  while [ "$(date +%s)" -lt $deadline_at ]; do
		sleep 1
		[ "$(ps -o ppid= -p $me | tr -d ' ')" = "$$" ] || exit 0
	  done
	  say "the run exceeded $knob: stopping it"
	  kill -TERM $$ ) </dev/null &
	WATCHDOG=$!
}

# run_job CMD... : run in the background and wait (so that INT/TERM are handled at once);
# the child's pid is in CHILD meanwhile
run_job() {
	"$@" &
	CHILD=$!
	wait $CHILD
	local rc=$?
	CHILD=""
	return $rc
}

# cmdlog CMD... : append the command line to $RES/commands.txt (the report's reproduction)
cmdlog() { echo "$*" >>"$RES/commands.txt"; }

# port_open PORT [HOST] -> 0 when something accepts on HOST:PORT (default 127.0.0.1)
port_open() { (exec 3<>"/dev/tcp/${2:-127.0.0.1}/$1") 2>/dev/null; }

# need_free_port PORT WHAT
need_free_port() {
	if port_open "$1"; then
		die "127.0.0.1:$1 ($2) is already in use" \
		    "stop whatever listens there (ss -ltnp 'sport = :$1'), or choose other ports: BENCH_PORT_BASE=NNNNN make bench-compare"
	fi
}

# wait_port PORT PID SECONDS -> 0 when the port accepts; 1 when PID died or time ran out
wait_port() {
	local port=$1 pid=$2 secs=$3 t0
	t0=$(date +%s)
	while :; do
		port_open "$port" && return 0
		alive "$pid" || return 1
		[ $(( $(date +%s) - t0 )) -ge "$secs" ] && return 1
		sleep 0.05
	done
}

# alive PID -> 0 when PID exists and is not a zombie (an exited child not yet reaped counts
# as gone: kill -0 would still succeed on it)
alive() {
	local st
	st=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' /proc/"$1"/status 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# descendants PID -> PID and all its descendants, parents first (from /proc, no pgrep)
descendants() {
	local p=$1 c
	echo "$p"
	for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do
		descendants "$c"
	done
}

# stop_tree PID WHAT [SECONDS] -> SIGTERM the process and its descendants, wait, then SIGKILL
# whatever is left. Returns 0 when nothing is left.
stop_tree() {
	local pid=$1 what=$2 secs=${3:-15} pids left t0
	[ -n "$pid" ] || return 0
	alive "$pid" || return 0
	pids=$(descendants "$pid" | tr '\n' ' ')
	kill -TERM $pids 2>/dev/null
	t0=$(date +%s)
	while :; do
		left=""
		for p in $pids; do alive "$p" && left="$left $p"; done
		[ -z "$left" ] && return 0
		[ $(( $(date +%s) - t0 )) -ge "$secs" ] && break
		sleep 0.1
	done
	say "$what did not exit within ${secs} s of SIGTERM: SIGKILL$left"
	kill -KILL $left 2>/dev/null
	sleep 0.2
	for p in $left; do alive "$p" && return 1; done
	return 0
}

# pin_tree PID CPU -> set the affinity of every thread of PID and its descendants to CPU
pin_tree() {
	local p
	for p in $(descendants "$1"); do
		taskset -a -p -c "$2" "$p" >/dev/null 2>&1 || true
	done
}

# renice_tree PID NICE -> set the nice value of every thread of PID and its descendants
# (setpriority works per thread on Linux, so each task id is reniced)
renice_tree() {
	local p t
	for p in $(descendants "$1"); do
		for t in /proc/"$p"/task/*; do
			renice -n "$2" -p "${t##*/}" >/dev/null 2>&1 || true
		done
	done
}

# nice_of PID -> the nice value of PID's main thread
nice_of() { awk '{ print $19 }' /proc/"$1"/stat 2>/dev/null; }

# affinity PID -> the union of the allowed-CPU lists of all threads of PID and descendants
affinity() {
	local p
	for p in $(descendants "$1"); do
		cat /proc/"$p"/task/*/status 2>/dev/null | awk '/^Cpus_allowed_list/ { print $2 }'
	done | sort -u | tr '\n' ' ' | sed 's/ $//'
}

# rss_kib PID -> VmRSS of PID in KiB
rss_kib() { awk '/^VmRSS/ { print $2 }' /proc/"$1"/status 2>/dev/null; }

# run_bounded SECONDS CMD... -> run with a hard time limit (SIGTERM, then SIGKILL 5 s later)
run_bounded() {
	local secs=$1; shift
	timeout -k 5 "$secs" "$@"
}
