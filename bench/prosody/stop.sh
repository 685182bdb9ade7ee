#!/bin/bash
# Stop the benchmark's Prosody started by start.sh (by its recorded pid).
#   env: BENCH_TARGET_DIR
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
BENCH_TAG=prosody; . "$HERE/../compare/lib.sh"
D=${BENCH_TARGET_DIR:?BENCH_TARGET_DIR is not set}
pid=$(cat "$D/wrapper.pid" 2>/dev/null) || exit 0
stop_tree "$pid" prosody 15 || die "prosody (pid $pid) is still running" "kill -9 $pid"
rm -f "$D/wrapper.pid" "$D/server.pid"
