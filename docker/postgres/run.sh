#!/bin/bash
# Initialises the cluster on the first start (empty volume), then runs the server in the
# foreground on every interface of the container; clients authenticate with a password.
set -euo pipefail
if [[ ! -s $PGDATA/PG_VERSION ]]; then
  password_file=$(mktemp)
  printf '%s\n' "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}" >"$password_file"
  initdb --username="$POSTGRES_USER" --pwfile="$password_file" --auth-local=trust \
    --auth-host=scram-sha-256 --encoding=UTF8 >/dev/null
  rm -f "$password_file"
  printf 'host all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
  # Single-user mode: no server listens before the database exists.
  [[ $POSTGRES_DB == postgres ]] || echo "CREATE DATABASE \"$POSTGRES_DB\";" | postgres --single -D "$PGDATA" postgres >/dev/null
fi
exec postgres -c listen_addresses='*'
