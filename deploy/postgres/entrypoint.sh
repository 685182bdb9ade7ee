#!/bin/sh
# xedge-postgres: initialise the data directory once, then run PostgreSQL in
# the foreground (SIGTERM: a smart shutdown).  See the Dockerfile.
set -eu
PGBIN=/usr/lib/postgresql/15/bin
PGDATA=${PGDATA:-/var/lib/postgresql/data/pgdata}
USER_NAME=${POSTGRES_USER:-xedge}
: "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD (the xedge-pg Secret)}"
case $USER_NAME in *[!a-z0-9_]*|"") echo "POSTGRES_USER: lowercase letters, digits, _" >&2; exit 1;; esac
if [ ! -s "$PGDATA/PG_VERSION" ]; then
	mkdir -p "$PGDATA"
	chmod 0700 "$PGDATA"
	pwfile=$(mktemp)
	printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
	"$PGBIN/initdb" -D "$PGDATA" -U "$USER_NAME" --pwfile="$pwfile" --auth-local=scram-sha-256 \
		--auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
	rm -f "$pwfile"
	"$PGBIN/pg_ctl" -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
	PGPASSWORD=$POSTGRES_PASSWORD "$PGBIN/psql" -v ON_ERROR_STOP=1 -U "$USER_NAME" -d postgres \
		-c "CREATE DATABASE $USER_NAME OWNER $USER_NAME" >/dev/null
	"$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
	echo "host all all 0.0.0.0/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
	echo "host all all ::/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
fi
exec "$PGBIN/postgres" -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/run/postgresql
