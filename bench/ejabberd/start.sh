#!/bin/bash
# Start the benchmark's ejabberd on loopback, the whole Erlang VM pinned to one CPU, and wait
# until it serves XMPP.
#   env: BENCH_TARGET_DIR (state; created)  BENCH_PORT (c2s STARTTLS, default 24422; Direct
#        TLS +1, HTTP admin API +58, Erlang distribution +77)  BENCH_PEM (certificate + key)
#        BENCH_DOMAIN (localhost)  BENCH_CPU (0)  BENCH_LOGLEVEL (warning)
#        BENCH_MUC (unset: no group chat; a domain: mod_muc on it, for bench/muc)
# Writes BENCH_TARGET_DIR/server.pid (beam.smp: measured) and wrapper.pid (the tree's root).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
BENCH_TAG=ejabberd; . "$HERE/../compare/lib.sh"
D=${BENCH_TARGET_DIR:?BENCH_TARGET_DIR is not set}
PORT=${BENCH_PORT:-24422}; PEM=${BENCH_PEM:?BENCH_PEM is not set}
DOMAIN=${BENCH_DOMAIN:-localhost}; CPU=${BENCH_CPU:-0}
HTTP_PORT=$((PORT + 58)); DIST_PORT=$((PORT + 77))
[ -x /usr/sbin/ejabberdctl ] || die "ejabberd is not installed" "run bench/compare/deps.sh as root"
id ejabberd >/dev/null 2>&1 || die "no 'ejabberd' system user (ejabberdctl runs the VM as it)" \
	"reinstall the Debian package: apt-get install --reinstall ejabberd"
for p in $PORT $((PORT + 1)) $HTTP_PORT $DIST_PORT; do need_free_port $p "ejabberd"; done
mkdir -p "$D/spool" "$D/logs"
sub="s|@DOMAIN@|$DOMAIN|g; s|@PORT@|$PORT|g; s|@PORT_TLS@|$((PORT + 1))|g; s|@HTTP_PORT@|$HTTP_PORT|g"
sub="$sub; s|@PEM@|$PEM|g; s|@LOGLEVEL@|${BENCH_LOGLEVEL:-warning}|g; s|@DIR@|$D|g"
sub="$sub; s|@NODE@|xedgebench$PORT@localhost|g; s|@DIST_PORT@|$DIST_PORT|g; s|@HERE@|$HERE|g"
sed "$sub" "$HERE/ejabberd.yml.in" >"$D/ejabberd.yml"
if [ -n "${BENCH_MUC:-}" ]; then
	# Group chat for bench/muc only (modules: is the file's last section): ejabberd's mod_muc
	# with its defaults (rooms locked until configured), except that any user may create a
	# room and a room may hold 1,000 occupants (default 200, the largest room bench/muc uses).
	cat >>"$D/ejabberd.yml" <<EOF
  mod_muc:
    host: "$BENCH_MUC"
    access: all
    access_create: all
    access_persistent: all
    max_users: 1000
EOF
fi
sed "$sub" "$HERE/ejabberdctl.cfg.in" >"$D/ejabberdctl.cfg"
cp "$HERE/inetrc" "$D/inetrc"
chown -R ejabberd:ejabberd "$D"      # ejabberdctl su's to 'ejabberd' when run as root
t0=$(now)
# taskset is inherited by su, sh, erl and beam.smp (and its helpers); pin_tree below makes it
# explicit for every thread once the VM is up.
taskset -c "$CPU" "$HERE/ctl.sh" foreground >"$D/logs/console.log" 2>&1 </dev/null &
wrapper=$!
echo $wrapper >"$D/wrapper.pid"
if ! wait_port "$PORT" $wrapper 60; then
	tail -15 "$D/logs/console.log" "$D/logs/ejabberd.log" >&2 2>/dev/null
	stop_tree $wrapper ejabberd 10
	die "ejabberd did not listen on 127.0.0.1:$PORT within 60 s (logs: $D/logs/)" \
	    "read $D/logs/ejabberd.log; run it by hand: BENCH_TARGET_DIR=$D $HERE/ctl.sh foreground"
fi
beam=""
for p in $(descendants $wrapper); do
	[ "$(cat /proc/$p/comm 2>/dev/null)" = beam.smp ] && beam=$p
done
[ -n "$beam" ] || { stop_tree $wrapper ejabberd 10; die "ejabberd listens but no beam.smp process under pid $wrapper"; }
echo $beam >"$D/server.pid"
nofile=$(awk '/^Max open files/ { print $4 }' /proc/$beam/limits)
pin_tree $wrapper "$CPU"
# Wait until the HTTP API answers too (the listeners start in order; provisioning needs it).
for i in $(seq 1 100); do port_open $HTTP_PORT && break; sleep 0.1; done
say "ejabberd beam pid $beam on 127.0.0.1:$PORT (CPU $(affinity $wrapper), $nofile descriptors) ready in $(elapsed $t0) s"
