#!/bin/bash
# Stop the benchmark's xedge (SIGTERM: clients get <system-shutdown/>; SIGKILL after 15 s).
#   env: BENCH_TARGET_DIR
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
BENCH_TAG=xedge; . "$HERE/../lib.sh"
D=${BENCH_TARGET_DIR:?BENCH_TARGET_DIR is not set}
pid=$(cat "$D/wrapper.pid" 2>/dev/null) || exit 0
stop_tree "$pid" xedge 15 || die "xedge (pid $pid) is still running" "kill -9 $pid"
rm -f "$D/wrapper.pid" "$D/server.pid"
