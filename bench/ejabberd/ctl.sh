#!/bin/bash
# ejabberdctl for the benchmark's ejabberd (any command: status, registered_users, stop ...).
#   env: BENCH_TARGET_DIR (rendered by start.sh)
D=${BENCH_TARGET_DIR:?BENCH_TARGET_DIR is not set}
exec /usr/sbin/ejabberdctl --config-dir "$D" --ctl-config "$D/ejabberdctl.cfg" \
	--config "$D/ejabberd.yml" --spool "$D/spool" --logs "$D/logs" "$@"
