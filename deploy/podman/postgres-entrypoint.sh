#!/bin/sh
# What the official postgres image's entrypoint does, for the services stand-in: on an empty data
# directory, initdb with POSTGRES_USER as the superuser (password POSTGRES_PASSWORD) and create
# POSTGRES_DB, accept password logins from other hosts; then run the server as the postgres user.
set -eu
PGDATA="${PGDATA:-/var/lib/postgresql/data}"
mkdir -p "$PGDATA" /run/postgresql
chown -R postgres:postgres "$PGDATA" /run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  printf '%s\n' "$POSTGRES_PASSWORD" >/tmp/pwfile
  chown postgres /tmp/pwfile
  runuser -u postgres -- initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile=/tmp/pwfile --auth=scram-sha-256 >/dev/null
  rm -f /tmp/pwfile
  echo "CREATE DATABASE \"$POSTGRES_DB\";" | runuser -u postgres -- postgres --single -D "$PGDATA" postgres >/dev/null
  # Other containers connect over the compose network, with the password.
  echo 'host all all all scram-sha-256' >>"$PGDATA/pg_hba.conf"
fi
exec runuser -u postgres -- postgres -D "$PGDATA" -p "${PGPORT:-5432}" -c listen_addresses='*'
