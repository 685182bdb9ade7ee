#!/bin/bash
# Stop the benchmark's ejabberd started by start.sh: 'ejabberdctl stop', then the recorded
# process tree (SIGTERM, SIGKILL after 15 s).
#   env: BENCH_TARGET_DIR
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
BENCH_TAG=ejabberd; . "$HERE/../compare/lib.sh"
D=${BENCH_TARGET_DIR:?BENCH_TARGET_DIR is not set}
wrapper=$(cat "$D/wrapper.pid" 2>/dev/null) || exit 0
if alive "$wrapper"; then
	timeout -k 2 15 "$HERE/ctl.sh" stop >/dev/null 2>&1
	for i in $(seq 1 100); do alive "$wrapper" || break; sleep 0.1; done
fi
stop_tree "$wrapper" ejabberd 15 || die "ejabberd (pid $wrapper) is still running" "kill -9 $(descendants $wrapper | tr '\n' ' ')"
rm -f "$D/wrapper.pid" "$D/server.pid"
