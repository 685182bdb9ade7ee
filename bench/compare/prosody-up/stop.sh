#!/bin/bash
# Stop xedge, then Prosody, started by bench/compare/prosody-up/start.sh (by their pids).
#   env: BENCH_TARGET_DIR
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
BENCH_TAG=prosody-up; . "$HERE/../lib.sh"
D=${BENCH_TARGET_DIR:?BENCH_TARGET_DIR is not set}
if xpid=$(cat "$D/edge.pid" 2>/dev/null); then
	stop_tree "$xpid" xedge 15 || die "xedge (pid $xpid) is still running" "kill -9 $xpid"
	rm -f "$D/edge.pid"
fi
pid=$(cat "$D/wrapper.pid" 2>/dev/null) || exit 0
stop_tree "$pid" prosody 15 || die "prosody (pid $pid) is still running" "kill -9 $pid"
rm -f "$D/wrapper.pid" "$D/server.pid" "$D/pids"
