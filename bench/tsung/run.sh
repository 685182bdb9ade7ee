#!/bin/bash
# Run the tsung side of the harness cross-check: chat.xml.in rendered for one target, tsung
# pinned to the load generator's CPU, no web GUI, no epmd, bounded in time; then summary.py
# turns its tsung.log into JSON.
#   env: PORT (c2s STARTTLS)  DOMAIN (localhost)  USERS (200)  RATE (msg/s per user, 5)
#        DURATION (s of chat per user, 60)  SIZE (body bytes, 64)  ARRIVAL_RATE (users/s, 100)
#        OUT (directory for the run; created)  CPU (1)  DIST_PORT (Erlang distribution, 24599)
# Prints the JSON summary on stdout (also OUT/tsung.json). Accounts user1..userUSERS with
# passwords pass1..passUSERS must exist.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
BENCH_TAG=tsung; . "$HERE/../compare/lib.sh"
PORT=${PORT:?PORT is not set}; DOMAIN=${DOMAIN:-localhost}; USERS=${USERS:-200}
RATE=${RATE:-5}; DURATION=${DURATION:-60}; SIZE=${SIZE:-64}; ARRIVAL_RATE=${ARRIVAL_RATE:-100}
OUT=${OUT:?OUT is not set}; CPU=${CPU:-1}; DIST_PORT=${DIST_PORT:-24599}
command -v tsung >/dev/null || die "tsung is not installed" "run bench/compare/deps.sh as root"
need_free_port $DIST_PORT "tsung's Erlang distribution (DIST_PORT)"
mkdir -p "$OUT/log"
# tsung's arrivals are random: give the phase twice the nominal time (maxnumber caps it).
read -r THINK MSGS ARRIVAL_S MAX_S < <(awk -v r=$RATE -v d=$DURATION -v u=$USERS -v a=$ARRIVAL_RATE 'BEGIN {
	arr = int(2 * u / a + 2)
	printf "%g %d %d %d\n", 1 / r, d * r, arr, arr + d + 40 }')
sed -e "s/@PORT@/$PORT/g; s/@DOMAIN@/$DOMAIN/g; s/@USERS@/$USERS/g; s/@ARRIVAL_RATE@/$ARRIVAL_RATE/g" \
    -e "s/@ARRIVAL_S@/$ARRIVAL_S/g; s/@MSGS@/$MSGS/g; s/@THINK@/$THINK/g" \
    -e "s/@SIZE@/$SIZE/g; s/@MAX_S@/$MAX_S/g" "$HERE/chat.xml.in" >"$OUT/chat.xml"
# Erlang: distribution on loopback at a fixed port and no epmd (nothing outlives the run),
# one scheduler (pinned to one CPU), statistics every 5 s instead of 10.
export ERL_FLAGS="-start_epmd false -erl_epmd_port $DIST_PORT -kernel inet_dist_use_interface {127,0,0,1} +S 1:1 -tsung_controller dumpstats_interval 5000"
export HOME=$OUT                       # tsung writes ~/.tsung
t0=$(now)
say "tsung: $USERS users x $RATE msg/s for $DURATION s against 127.0.0.1:$PORT (PLAIN over STARTTLS), CPU $CPU"
taskset -c "$CPU" timeout -k 5 $((MAX_S + 60)) tsung -n -i xb$PORT -f "$OUT/chat.xml" -l "$OUT/log" start \
	>"$OUT/tsung.out" 2>&1 &
tpid=$!
echo $tpid >"$OUT/tsung.pid"
wait $tpid; rc=$?
rm -f "$OUT/tsung.pid"
LOG=$(ls -d "$OUT"/log/*/ 2>/dev/null | tail -1); LOG=${LOG%/}
[ -n "$LOG" ] && [ -s "$LOG/tsung.log" ] ||
	die "tsung produced no tsung.log (rc $rc; see $OUT/tsung.out)" "run it by hand: HOME=$OUT tsung -n -f $OUT/chat.xml start"
say "tsung finished in $(elapsed $t0) s (rc $rc), log $LOG"
/usr/bin/python3 "$HERE/summary.py" --log "$LOG/tsung.log" --users $USERS --rate $RATE \
	--duration $DURATION --size $SIZE >"$OUT/tsung.json" || die "summary.py could not read $LOG/tsung.log"
cat "$OUT/tsung.json"
