#!/bin/bash
# make bench-ops: operations under load, on loopback, measured and asserted (docs/benchmarks.md, "Operations under load").
#
#   reload   xedge (embedded session server) with N_RELOAD sessions chatting at a modest rate
#            (xedge-bench -s chat --rate): three SIGHUPs during the run, one after a changed
#            limit, one after the certificate and key files were replaced by a new self-signed
#            pair, one unchanged. Asserts: no session dropped, no login failed, no message
#            lost, xedge_config_reloads_total{result="ok"} == 3, and a new STARTTLS handshake
#            after the swap shows the new certificate while the old sessions stay.
#   roll     HAProxy (TCP mode, /readyz health checks on the admin ports) in front of two edges
#            A and B sharing one xedge-sm; N_ROLL clients (bench/ops/roll.py: STARTTLS,
#            SCRAM-SHA-1, bind; reconnect on <see-other-host/>) through HAProxy; SIGTERM A with
#            drain.rate DRAIN_RATE and drain.redirect = HAProxy: B's logins per second (from
#            its /metrics) stay within DRAIN_RATE, every client ends up on B, none fails. Then
#            A restarts and N_BAL new logins (xedge-bench) split between A and B.
#   metrics  a login run and a chat run of xedge-bench against xedge with /metrics scraped
#            before and after each: the deltas of xedge_logins_total and of the message
#            counters equal what xedge-bench counted.
#
# Environment (all optional): PARTS ("reload roll metrics"), N_RELOAD (1000), HOLD_S (30),
# CHAT_RATE (0.2 messages/s per client in the reload run), N_ROLL (2000), DRAIN_RATE (200),
# N_BAL (400), ROLL_PROCS (2: roll.py processes), N_LOGIN (500), N_CHAT (200), CHAT_S (10), OPS_DIR (/tmp/xedge-bench-ops: state
# and results, wiped at start), OPS_PORT_BASE (24500: ports base+10 .. base+90), XEDGE_BUILD
# (build), OPS_DEADLINE (900 s: the whole run is stopped past it).
# Output: OPS_DIR/results/*.json and OPS_DIR/results/summary.md (also printed). Exit status 0
# when every assertion held, 1 otherwise.
{
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BENCH_TAG=ops; . "$REPO/bench/compare/lib.sh"
PY=/usr/bin/python3
T_RUN=$(now)

PARTS=${PARTS:-reload roll metrics}
N_RELOAD=${N_RELOAD:-1000}; HOLD_S=${HOLD_S:-30}; CHAT_RATE=${CHAT_RATE:-0.2}
N_ROLL=${N_ROLL:-2000}; DRAIN_RATE=${DRAIN_RATE:-200}; N_BAL=${N_BAL:-400}; ROLL_PROCS=${ROLL_PROCS:-2}
N_LOGIN=${N_LOGIN:-500}; N_CHAT=${N_CHAT:-200}; CHAT_S=${CHAT_S:-10}
OPS_DIR=${OPS_DIR:-/tmp/xedge-bench-ops}
PB=${OPS_PORT_BASE:-24500}
B=${XEDGE_BUILD:-$REPO/build}; [ -d "$B" ] && B=$(cd "$B" && pwd)
DEADLINE=${OPS_DEADLINE:-900}
RES=$OPS_DIR/results
DOMAIN=localhost; PASSWORD=pw
SECRET=ops-link-$$-$RANDOM
# Ports: edge "one" (reload, metrics) and edge A share base+10.., B base+20.., xedge-sm base+30,
# HAProxy base+40 (XMPP) and base+41 (stats), the admin listeners base+80 (one, A), base+81 (B),
# base+82 (xedge-sm).
P_ONE=$((PB + 10)); P_A=$((PB + 10)); P_B=$((PB + 20)); P_SM=$((PB + 30))
P_HA=$((PB + 40)); P_HASTAT=$((PB + 41)); P_ADM_A=$((PB + 80)); P_ADM_B=$((PB + 81)); P_ADM_SM=$((PB + 82))
# Users: reload bench0..N_RELOAD-1; metrics' login run and chat run the next N_LOGIN and N_CHAT
# (never an account an earlier chat run wrote to: no offline message crosses runs); roll
# bench0..N_ROLL-1 in its own database.
OFF_LOGIN=$N_RELOAD; OFF_CHAT=$((N_RELOAD + N_LOGIN))

for b in xedge xedge-sm xedgectl xedge-bench; do
	[ -x "$B/$b" ] || die "$B/$b is missing" "build first: make all"
done
for t in $PARTS; do
	case $t in reload|roll|metrics) ;; *) die "unknown part '$t'" "PARTS is a subset of: reload roll metrics";; esac
done
[[ " $PARTS " == *" roll "* ]] && { command -v haproxy >/dev/null || die "haproxy is missing" "apt-get install haproxy"; }
for p in $P_ONE $((P_ONE + 1)) $P_B $((P_B + 1)) $P_SM $P_HA $P_HASTAT $P_ADM_A $P_ADM_B $P_ADM_SM; do
	need_free_port $p "bench-ops"
done
exec 9>"$OPS_DIR.lock"
flock -n 9 || die "another bench-ops run holds $OPS_DIR.lock" "wait for it, or set OPS_DIR and OPS_PORT_BASE"

# ---- cleanup: everything started here, by pid ---------------------------------------------
PIDS=""             # "name:pid" of every process started and not yet stopped
FAILS=0
track() { PIDS="$PIDS $1:$2"; }
untrack() { PIDS=$(echo " $PIDS " | sed "s/ $1:[0-9]* / /; s/^ *//; s/ *$//"); }
pid_of() { local e; for e in $PIDS; do [ "${e%%:*}" = "$1" ] && echo "${e#*:}"; done; }
cleanup() {
	local rc=$? e
	trap - EXIT INT TERM
	for e in $PIDS; do stop_tree "${e#*:}" "${e%%:*}" 15; done
	say "finished in $(elapsed $T_RUN) s (exit status $rc)"
	exit $rc
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM
check() {           # check NAME OK(0|1) DETAIL : one assertion, recorded
	local ok=$2
	printf '{"check": "%s", "ok": %s, "detail": "%s"}\n' "$1" "$([ "$ok" = 1 ] && echo true || echo false)" \
		"$(echo "$3" | sed 's/"/\\"/g')" >>"$RES/checks.jsonl"
	if [ "$ok" = 1 ]; then say "ok: $1 ($3)"; else say "FAILED: $1 ($3)"; FAILS=$((FAILS + 1)); fi
}

rm -rf "$OPS_DIR"; mkdir -p "$RES" "$OPS_DIR/tls"
start_watchdog "$DEADLINE" "OPS_DEADLINE=$DEADLINE s"
track watchdog "$WATCHDOG"
"$REPO/bench/compare/cert.sh" "$OPS_DIR/tls" "$DOMAIN" || die "cannot make the certificate (openssl)"

# ---- helpers ----------------------------------------------------------------------------------
metrics_url() { echo "http://127.0.0.1:$1/metrics"; }
scrape() { $PY "$HERE/ops.py" scrape "$(metrics_url $1)" "$2"; }     # scrape ADMIN_PORT OUT.json
msum() {            # msum ADMIN_PORT NAME [LABEL=VALUE...] -> the value now
	local port=$1 f; shift
	f=$(mktemp "$OPS_DIR/scrape.XXXXXX")
	scrape $port "$f" 2>/dev/null && $PY "$HERE/ops.py" sum "$f" "$@"
	rm -f "$f"
}
wait_for() {        # wait_for SECONDS WHAT CMD... : until CMD succeeds
	local secs=$1 what=$2 t0; shift 2
	t0=$(date +%s)
	until "$@"; do
		[ $(( $(date +%s) - t0 )) -ge "$secs" ] && { say "no $what within $secs s"; return 1; }
		sleep 0.2
	done
}
ge() { local v; v=$(msum "$1" "$2" ${4:+"$4"}) && [ -n "$v" ] && awk -v v="$v" -v w="$3" 'BEGIN { exit !(v >= w) }'; }
eq() { local v; v=$(msum "$1" "$2" ${4:+"$4"}) && [ -n "$v" ] && awk -v v="$v" -v w="$3" 'BEGIN { exit !(v == w) }'; }
fingerprint_cert() { openssl x509 -noout -fingerprint -sha256 -in "$1" | cut -d= -f2; }
fingerprint_live() {     # the certificate a new STARTTLS handshake on PORT shows
	timeout 10 openssl s_client -starttls xmpp -xmpphost $DOMAIN -connect 127.0.0.1:$1 </dev/null 2>/dev/null |
		openssl x509 -noout -fingerprint -sha256 2>/dev/null | cut -d= -f2
}
jget() { $PY -c 'import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2:]:
    v = v[k]
print(json.dumps(v) if isinstance(v, (dict, list)) else v)' "$@"; }

# edge_yaml DIR C2S_PORT ADMIN_PORT MODE(embedded|external)
edge_yaml() {
	local d=$1 port=$2 admin=$3 mode=$4
	mkdir -p "$d"
	cat >"$d/xedge.yaml" <<EOF
# bench/ops: generated by bench/ops/run.sh
workers: 1
log_level: info
listeners:
  - type: c2s
    address: 127.0.0.1:$port
    backlog: 4096
  - type: c2s_tls
    address: 127.0.0.1:$((port + 1))
    backlog: 4096
domains:
  - name: $DOMAIN
    cert: $d/cert.pem
    key: $d/key.pem
tls:
  require: true
# Every client comes from 127.0.0.1 (HAProxy's side too): the per-IP limits are lifted.
limits:
  max_stanza_bytes: 262144
  max_connections: 18000
  max_connections_per_ip: 1000000
  connection_rate_per_ip: 1000000
  rate_stanzas: 1000000
  rate_bytes: 1073741824
timeouts:
  handshake: 10
  auth: 30
  idle: 600
admin:
  address: 127.0.0.1:$admin
drain:
  rate: $DRAIN_RATE
  grace: 60
  redirect: 127.0.0.1:$P_HA
EOF
	cp "$OPS_DIR/tls/cert.pem" "$OPS_DIR/tls/key.pem" "$d/"
	if [ $mode = embedded ]; then
		printf 'session_server:\n  database: %s/xedge.db\n  admin_socket: %s/admin.sock\n' "$d" "$d" >>"$d/xedge.yaml"
	else
		printf 'backend:\n  address: "127.0.0.1:%s"\n  secret: "%s"\n' $P_SM "$SECRET" >>"$d/xedge.yaml"
	fi
}

start_edge() {      # start_edge NAME DIR C2S_PORT ADMIN_PORT
	local name=$1 d=$2 port=$3 admin=$4 pid
	"$B/xedge" --check-config "$d/xedge.yaml" >/dev/null 2>"$d/check.err" ||
		die "xedge rejects $d/xedge.yaml: $(head -1 "$d/check.err")"
	"$B/xedge" -c "$d/xedge.yaml" >>"$d/xedge.log" 2>&1 </dev/null &
	pid=$!
	track $name $pid
	wait_port $port $pid 20 || die "$name did not listen on $port (log: $d/xedge.log)"
	wait_for 20 "$name ready (/readyz)" $PY "$HERE/ops.py" get "http://127.0.0.1:$admin/readyz" >/dev/null ||
		die "$name is not ready (log: $d/xedge.log)"
	say "$name: xedge pid $pid on 127.0.0.1:$port, admin 127.0.0.1:$admin"
}

provision() {       # provision SOCKET FIRST COUNT : bench<i>@localhost, password pw
	local t0=$(now)
	seq "$2" $(($2 + $3 - 1)) | awk -v d=$DOMAIN -v pw=$PASSWORD '{ print "bench" $1 "@" d, pw }' |
		xargs -P 2 -L 1 "$B/xedgectl" -s "$1" user add >/dev/null 2>"$OPS_DIR/provision.err" ||
		die "xedgectl user add failed: $(head -1 "$OPS_DIR/provision.err")"
	say "provisioned $3 accounts bench$2.. in $(elapsed $t0) s"
}

bench() {           # bench NAME PORT SECONDS ARGS... -> RES/NAME.json
	local name=$1 port=$2 bound=$3; shift 3
	taskset -c 1 "$B/xedge-bench" --host 127.0.0.1 --port $port --domain $DOMAIN --password $PASSWORD \
		--user-prefix bench --mech SCRAM-SHA-1 --scram-cache "$OPS_DIR/scram.cache" --timeout 30 \
		"$@" --json "$RES/$name.json" >"$RES/$name.log" 2>&1
}

# ---- one embedded xedge: the reload part and the metrics part ---------------------------------
ONE=$OPS_DIR/one
if [[ " $PARTS " == *" reload "* ]] || [[ " $PARTS " == *" metrics "* ]]; then
	edge_yaml "$ONE" $P_ONE $P_ADM_A embedded
	start_edge one "$ONE" $P_ONE $P_ADM_A
	provision "$ONE/admin.sock" 0 $((N_RELOAD + N_LOGIN + N_CHAT))
fi

# ---- reload: three SIGHUPs under N_RELOAD chatting sessions --------------------------------------
if [[ " $PARTS " == *" reload "* ]]; then
	say "---- reload: $N_RELOAD sessions, 3 SIGHUPs during ${HOLD_S} s of chat at $CHAT_RATE msg/s each ----"
	pid=$(pid_of one)
	fp_old=$(fingerprint_live $P_ONE)
	scrape $P_ADM_A "$RES/reload-before.json"
	bench reload $P_ONE $((HOLD_S + 120)) -s chat -n $N_RELOAD --concurrency 200 --login-time 60 \
		--rate $CHAT_RATE --warmup 2 --duration $HOLD_S --drain 5 &
	bpid=$!; track bench-reload $bpid
	wait_for 90 "$N_RELOAD sessions" eq $P_ADM_A xedge_sm_sessions $N_RELOAD || check "reload: all logged in" 0 "see $RES/reload.log"
	t_online=$(now)
	sessions_at=()
	# 1: a changed limit (max_stanza_bytes 262144 -> 131072; timeouts.idle 600 -> 900). A new
	# stream's 200,000-byte element is refused for want of authentication before, for its size after.
	sleep 4
	elem_before=$($PY "$HERE/ops.py" element-error $P_ONE 200000)
	sed -i 's/^  idle: 600/  idle: 900/; s/^  max_stanza_bytes: 262144/  max_stanza_bytes: 131072/' "$ONE/xedge.yaml"
	kill -HUP $pid
	wait_for 15 "reload 1" eq $P_ADM_A xedge_config_reloads_total 1 result=ok
	elem_after=$($PY "$HERE/ops.py" element-error $P_ONE 200000)
	sessions_at+=("$(msum $P_ADM_A xedge_sm_sessions)")
	# 2: a new self-signed certificate and key, written beside and renamed over the old files
	sleep 4
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
		-subj "/CN=$DOMAIN" -addext "subjectAltName=DNS:$DOMAIN" \
		-keyout "$ONE/key.pem.new" -out "$ONE/cert.pem.new" 2>/dev/null || die "openssl req failed"
	fp_new=$(fingerprint_cert "$ONE/cert.pem.new")
	mv "$ONE/key.pem.new" "$ONE/key.pem"; mv "$ONE/cert.pem.new" "$ONE/cert.pem"
	kill -HUP $pid
	wait_for 15 "reload 2" eq $P_ADM_A xedge_config_reloads_total 2 result=ok
	fp_live=$(fingerprint_live $P_ONE)
	sessions_at+=("$(msum $P_ADM_A xedge_sm_sessions)")
	# 3: the same file again
	sleep 4
	kill -HUP $pid
	wait_for 15 "reload 3" eq $P_ADM_A xedge_config_reloads_total 3 result=ok
	sessions_at+=("$(msum $P_ADM_A xedge_sm_sessions)")
	t_reloaded=$(elapsed $t_online)
	wait $bpid; untrack bench-reload
	scrape $P_ADM_A "$RES/reload-after.json"
	ok_reloads=$($PY "$HERE/ops.py" sum "$RES/reload-after.json" xedge_config_reloads_total result=ok)
	bad_reloads=$($PY "$HERE/ops.py" sum "$RES/reload-after.json" xedge_config_reloads_total result=failed)
	li=$(jget "$RES/reload.json" logins logged_in); dr=$(jget "$RES/reload.json" logins dropped)
	fl=$(jget "$RES/reload.json" logins failed); fc=$(jget "$RES/reload.json" failures)
	sent=$(jget "$RES/reload.json" messages sent_total); recv=$(jget "$RES/reload.json" messages received_total)
	lost=$(jget "$RES/reload.json" messages lost)
	cat >"$RES/reload-facts.json" <<EOF
{"clients": $N_RELOAD, "logged_in": $li, "dropped": $dr, "failed": $fl, "failures": $fc,
 "sent": $sent, "received": $recv, "lost": $lost, "reloads_ok": $ok_reloads, "reloads_failed": $bad_reloads,
 "sessions_after_each_reload": [${sessions_at[0]:-null}, ${sessions_at[1]:-null}, ${sessions_at[2]:-null}],
 "seconds_for_3_reloads": $t_reloaded, "fingerprint_before": "$fp_old", "fingerprint_new_file": "$fp_new",
 "fingerprint_after": "$fp_live", "element_200000_before": "$elem_before", "element_200000_after": "$elem_after"}
EOF
	check "reload: every client logged in" $([ "$li" = $N_RELOAD ] && echo 1 || echo 0) "logged_in $li of $N_RELOAD"
	check "reload: no session dropped" $([ "$dr" = 0 ] && echo 1 || echo 0) "dropped $dr"
	check "reload: no failure" $([ "$fl" = 0 ] && [ "$fc" = "{}" ] && echo 1 || echo 0) "failed $fl, failures $fc"
	check "reload: no message lost" $([ "$lost" = 0 ] && [ "$sent" = "$recv" ] && echo 1 || echo 0) "sent $sent, received $recv, lost $lost"
	check "reload: 3 reloads ok, none failed" $([ "$ok_reloads" = 3 ] && [ "$bad_reloads" = 0 ] && echo 1 || echo 0) "ok $ok_reloads, failed $bad_reloads"
	check "reload: sessions kept through each reload" \
		$([ "${sessions_at[*]}" = "$N_RELOAD $N_RELOAD $N_RELOAD" ] && echo 1 || echo 0) "xedge_sm_sessions ${sessions_at[*]}"
	check "reload: the changed limit applies to new streams" \
		$([ "$elem_before" != policy-violation ] && [ "$elem_after" = policy-violation ] && echo 1 || echo 0) \
		"a 200,000-byte element: $elem_before with max_stanza_bytes 262144, $elem_after with 131072"
	check "reload: a new handshake shows the new certificate" \
		$([ -n "$fp_new" ] && [ "$fp_live" = "$fp_new" ] && [ "$fp_old" != "$fp_new" ] && echo 1 || echo 0) \
		"before ${fp_old:0:17}.., new file ${fp_new:0:17}.., served ${fp_live:0:17}.."
	# The next part's runs must not meet this run's sessions.
	wait_for 30 "the reload run's sessions closed" eq $P_ADM_A xedge_sm_sessions 0
fi

# ---- metrics: xedge's counters against xedge-bench's --------------------------------------------
if [[ " $PARTS " == *" metrics "* ]]; then
	say "---- metrics: a login run ($N_LOGIN) and a chat run ($N_CHAT, ${CHAT_S} s) with /metrics before and after ----"
	wait_for 30 "no client connection" eq $P_ADM_A xedge_connections 0 listener=c2s
	for run in login chat; do
		scrape $P_ADM_A "$RES/metrics-$run-before.json"
		if [ $run = login ]; then
			bench metrics-$run $P_ONE 200 -s login -n $N_LOGIN --user-offset $OFF_LOGIN --concurrency 200 --login-time 90
		else
			bench metrics-$run $P_ONE 200 -s chat -n $N_CHAT --user-offset $OFF_CHAT --concurrency 200 --login-time 60 \
				--window 4 --warmup 2 --duration $CHAT_S --drain 3
		fi
		# Counted once the last stream is gone: its close may still be in the server.
		wait_for 30 "the $run run's connections closed" eq $P_ADM_A xedge_connections 0 listener=c2s
		scrape $P_ADM_A "$RES/metrics-$run-after.json"
		$PY "$HERE/ops.py" metrics-vs-bench "$RES/metrics-$run-before.json" "$RES/metrics-$run-after.json" \
			"$RES/metrics-$run.json" >"$RES/metrics-$run-facts.json"
		f=$RES/metrics-$run-facts.json
		check "metrics ($run): logins, messages in and out equal xedge-bench's" \
			$([ "$(jget $f agree)" = True ] && echo 1 || echo 0) \
			"logins $(jget $f logins_metrics) / $(jget $f logins_bench), in $(jget $f msg_in_metrics) / $(jget $f msg_sent_bench), out $(jget $f msg_out_metrics) / $(jget $f msg_received_bench)"
	done
fi
if [ -n "$(pid_of one)" ]; then
	stop_tree "$(pid_of one)" "xedge (one)" 30; untrack one
fi

# ---- roll: rolling restart of two edges behind HAProxy ---------------------------------------------
if [[ " $PARTS " == *" roll "* ]]; then
	say "---- roll: $N_ROLL clients through HAProxy on A and B; A drains at $DRAIN_RATE/s ----"
	SM=$OPS_DIR/sm; A=$OPS_DIR/a; BB=$OPS_DIR/b
	mkdir -p "$SM"
	cat >"$SM/xedge-sm.yaml" <<EOF
log_level: info
domains:
  - name: $DOMAIN
session_server:
  database: $SM/xedge.db
  admin_socket: $SM/admin.sock
  listen: "127.0.0.1:$P_SM"
  secret: "$SECRET"
admin:
  address: 127.0.0.1:$P_ADM_SM
EOF
	"$B/xedge-sm" -c "$SM/xedge-sm.yaml" >"$SM/xedge-sm.log" 2>&1 </dev/null &
	track sm $!
	wait_for 20 "xedge-sm admin socket" test -S "$SM/admin.sock" || die "xedge-sm did not start (log: $SM/xedge-sm.log)"
	provision "$SM/admin.sock" 0 $N_ROLL
	edge_yaml "$A" $P_A $P_ADM_A external
	edge_yaml "$BB" $P_B $P_ADM_B external
	start_edge A "$A" $P_A $P_ADM_A
	start_edge B "$BB" $P_B $P_ADM_B
	# HAProxy needs two descriptors per connection and cannot raise its limit past the hard one.
	ha_maxconn=$(( ($(ulimit -Hn) - 200) / 2 )); [ $ha_maxconn -gt 20000 ] && ha_maxconn=20000
	[ $ha_maxconn -gt $((N_ROLL + N_BAL + 100)) ] ||
		die "the descriptor limit ($(ulimit -Hn)) is too low for $N_ROLL clients through HAProxy" "raise ulimit -Hn"
	cat >"$OPS_DIR/haproxy.cfg" <<EOF
# bench/ops: generated by bench/ops/run.sh
global
    maxconn $ha_maxconn
defaults
    mode tcp
    timeout connect 2s
    timeout client 10m
    timeout server 10m
    retries 3
    option redispatch 1
frontend xmpp
    bind 127.0.0.1:$P_HA
    default_backend edges
backend edges
    balance roundrobin
    # An edge is ready while /readyz answers 200: draining (SIGTERM) makes it 503.
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 500ms fall 1 rise 2
    server A 127.0.0.1:$P_A check port $P_ADM_A
    server B 127.0.0.1:$P_B check port $P_ADM_B
frontend stats
    mode http
    bind 127.0.0.1:$P_HASTAT
    stats enable
    stats uri /stats
EOF
	haproxy -c -f "$OPS_DIR/haproxy.cfg" >"$OPS_DIR/haproxy-check.log" 2>&1 ||
		die "haproxy rejects its config: $(tail -2 "$OPS_DIR/haproxy-check.log")"
	haproxy -db -f "$OPS_DIR/haproxy.cfg" >"$OPS_DIR/haproxy.log" 2>&1 </dev/null &
	track haproxy $!
	wait_port $P_HA "$(pid_of haproxy)" 10 || die "HAProxy did not start: $(tail -1 "$OPS_DIR/haproxy.log")"
	ha_up() {       # ha_up SERVER -> 0 when HAProxy's stats show it UP
		$PY "$HERE/ops.py" get "http://127.0.0.1:$P_HASTAT/stats;csv" | awk -F, -v s=$1 '$1 == "edges" && $2 == s && $18 == "UP" { f = 1 } END { exit !f }'
	}
	both_up() { ha_up A && ha_up B; }
	wait_for 20 "HAProxy: A and B up" both_up ||
		die "HAProxy does not see both edges up (log: $OPS_DIR/haproxy.log)"
	# The clients in ROLL_PROCS processes (one Python thread each): together they can log in
	# faster than drain.rate, so that the rate B sees is the drain's, not the load generator's.
	roll_files=(); roll_status=()
	for k in $(seq 0 $((ROLL_PROCS - 1))); do
		first=$((k * N_ROLL / ROLL_PROCS)); cnt=$(( (k + 1) * N_ROLL / ROLL_PROCS - first ))
		$PY "$HERE/roll.py" --port $P_HA --clients $cnt --offset $first --connect-rate 200 --max-s 400 \
			--status "$OPS_DIR/roll-$k.status" --out "$RES/roll-clients-$k.json" >"$RES/roll-clients-$k.log" 2>&1 &
		track roll-$k $!
		roll_files+=("$RES/roll-clients-$k.json"); roll_status+=("$OPS_DIR/roll-$k.status")
	done
	online() {
		$PY "$HERE/ops.py" roll-merge "$OPS_DIR/roll.status" "${roll_status[@]}" 2>/dev/null &&
			[ "$(jget "$OPS_DIR/roll.status" online)" -ge "$1" ]
	}
	wait_for 120 "$N_ROLL clients online" online $N_ROLL || check "roll: all clients logged in" 0 "$(cat "$OPS_DIR/roll.status")"
	on_a=$(msum $P_ADM_A xedge_connections state=session); on_b=$(msum $P_ADM_B xedge_connections state=session)
	say "before the drain: $on_a sessions on A, $on_b on B"
	$PY "$HERE/ops.py" watch "$RES/roll-watch.jsonl" A=$(metrics_url $P_ADM_A) B=$(metrics_url $P_ADM_B) \
		--interval 1 --max-s 300 &
	track watch $!
	sleep 3
	scrape $P_ADM_B "$RES/roll-b-before.json"; scrape $P_ADM_SM "$RES/roll-sm-before.json"
	t_drain=$(date +%s.%N)
	kill -TERM "$(pid_of A)"
	say "SIGTERM to A ($on_a clients, drain.rate $DRAIN_RATE/s, redirect 127.0.0.1:$P_HA)"
	a_gone() { ! alive "$(pid_of A)"; }
	wait_for 120 "A exits" a_gone
	wait "$(pid_of A)"; a_rc=$?
	untrack A
	t_a_exit=$(date +%s.%N)
	wait_for 60 "$N_ROLL sessions on B" eq $P_ADM_B xedge_connections $N_ROLL state=session
	t_on_b=$(date +%s.%N)
	sleep 3
	st=$OPS_DIR/roll.status
	on_b_after=$(msum $P_ADM_B xedge_connections state=session)
	on_sm=$(msum $P_ADM_SM xedge_sm_sessions)
	scrape $P_ADM_B "$RES/roll-b-after.json"; scrape $P_ADM_SM "$RES/roll-sm-after.json"
	q() { $PY "$HERE/ops.py" quantiles "$RES/roll-$1-before.json" "$RES/roll-$1-after.json" $2; }
	lat="{\"b_login_duration\": $(q b xedge_login_duration_seconds), \"b_sm_rtt\": $(q b xedge_session_server_rtt_seconds), \"sm_store_job\": $(q sm xedge_sm_store_job_duration_seconds)}"
	# A again, on the same config: HAProxy brings it back when /readyz answers 200.
	start_edge A "$A" $P_A $P_ADM_A
	wait_for 20 "HAProxy: A up again" ha_up A
	t_a_back=$(date +%s.%N)
	sleep 2
	la0=$(msum $P_ADM_A xedge_logins_total); lb0=$(msum $P_ADM_B xedge_logins_total)
	bench roll-balance $P_HA 120 -s login -n $N_BAL --concurrency 50 --login-time 60
	la1=$(msum $P_ADM_A xedge_logins_total); lb1=$(msum $P_ADM_B xedge_logins_total)
	stop_tree "$(pid_of watch)" watch 5; untrack watch
	for k in $(seq 0 $((ROLL_PROCS - 1))); do kill -TERM "$(pid_of roll-$k)"; done
	for k in $(seq 0 $((ROLL_PROCS - 1))); do wait "$(pid_of roll-$k)"; untrack roll-$k; done
	$PY "$HERE/ops.py" roll-merge "$RES/roll-clients.json" "${roll_files[@]}" || die "no results from roll.py"
	$PY "$HERE/ops.py" rates "$RES/roll-watch.jsonl" B $(awk -v t=$t_drain 'BEGIN { printf "%.3f", t - 3 }') \
		$(awk -v t=$t_on_b 'BEGIN { printf "%.3f", t + 3 }') >"$RES/roll-rates.json"
	bal_a=$(awk -v a=$la0 -v b=$la1 'BEGIN { print b - a }'); bal_b=$(awk -v a=$lb0 -v b=$lb1 'BEGIN { print b - a }')
	maxr=$(jget "$RES/roll-rates.json" max)
	rc_fail=$(jget "$RES/roll-clients.json" failed); rc_fc=$(jget "$RES/roll-clients.json" failures)
	rc_red=$(jget "$RES/roll-clients.json" redirects); rc_drop=$(jget "$RES/roll-clients.json" drops)
	rc_shut=$(jget "$RES/roll-clients.json" shutdowns)
	bal_li=$(jget "$RES/roll-balance.json" logins logged_in); bal_fl=$(jget "$RES/roll-balance.json" logins failed)
	margin=$(awk -v r=$DRAIN_RATE 'BEGIN { m = r * 0.1; if (m < 10) m = 10; printf "%.0f", r + m }')
	cat >"$RES/roll-facts.json" <<EOF
{"clients": $N_ROLL, "drain_rate": $DRAIN_RATE, "on_a_before": $on_a, "on_b_before": $on_b,
 "on_b_after": $on_b_after, "a_exit_status": $a_rc, "drain_seconds": $(awk -v a=$t_drain -v b=$t_a_exit 'BEGIN { printf "%.1f", b - a }'),
 "all_on_b_seconds": $(awk -v a=$t_drain -v b=$t_on_b 'BEGIN { printf "%.1f", b - a }'),
 "b_login_rate_max": $maxr, "b_login_rate_bound": $margin, "b_login_rates": $(jget "$RES/roll-rates.json" series),
 "redirects": $rc_red, "shutdowns": $rc_shut, "drops": $rc_drop, "client_failures": $rc_fc,
 "sm_sessions_at_end": ${on_sm:-null}, "latency_during_drain": $lat, "roll_procs": $ROLL_PROCS,
 "balance_logins": $N_BAL, "balance_logged_in": $bal_li, "balance_failed": $bal_fl, "balance_on_a": $bal_a, "balance_on_b": $bal_b}
EOF
	check "roll: A exited 0 after draining" $([ "$a_rc" = 0 ] && echo 1 || echo 0) "exit status $a_rc"
	check "roll: every client on B" $([ "$on_b_after" = $N_ROLL ] && [ "$on_sm" = $N_ROLL ] && echo 1 || echo 0) \
		"$on_b_after sessions on B of $N_ROLL; xedge-sm holds $on_sm"
	check "roll: every client on A was redirected" $([ "$rc_red" = "$on_a" ] && [ "$rc_shut" = 0 ] && [ "$rc_drop" = 0 ] && echo 1 || echo 0) \
		"redirects $rc_red for $on_a on A, shutdowns $rc_shut, drops $rc_drop"
	check "roll: no login failed" $([ "$rc_fail" = 0 ] && echo 1 || echo 0) "failures $rc_fc"
	check "roll: B's login rate within drain.rate" $(awk -v m=$maxr -v b=$margin 'BEGIN { print (m <= b) ? 1 : 0 }') \
		"max $maxr/s, bound $margin/s (drain.rate $DRAIN_RATE + 10 %)"
	check "roll: new logins balance after A is back" \
		$(awk -v a=$bal_a -v b=$bal_b -v n=$N_BAL -v li=$bal_li 'BEGIN { print (li == n && a + b == n && a >= 0.4 * n && b >= 0.4 * n) ? 1 : 0 }') \
		"$bal_a on A, $bal_b on B of $N_BAL (logged in $bal_li)"
fi

# ---- summary ------------------------------------------------------------------------------------
$PY "$HERE/ops.py" summary "$RES" >"$RES/summary.md" || die "ops.py summary failed"
cat "$RES/summary.md"
[ $FAILS = 0 ] || { say "$FAILS check(s) failed: see $RES/checks.jsonl and the logs in $OPS_DIR"; exit 1; }
say "every check held; results in $RES"
exit 0
}
