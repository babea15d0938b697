#!/usr/bin/env bash
# What the official postgres image's entrypoint does that docker-compose.yml relies on:
#   - as root: own $PGDATA and the socket directory, then re-exec as postgres (setpriv);
#   - on an empty $PGDATA: initdb (UTF-8, superuser $POSTGRES_USER with $POSTGRES_PASSWORD,
#     scram-sha-256 over TCP), create $POSTGRES_DB, run /docker-entrypoint-initdb.d/*.sh|*.sql
#     against it on a temporary server that listens on the Unix socket only, stop it;
#   - exec the server listening on every interface of the container.
set -Eeuo pipefail

if [ "${1:0:1}" = - ]; then set -- postgres "$@"; fi

if [ "$1" = postgres ] && [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown -R postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$BASH_SOURCE" "$@"
fi

init_database() {
    : "${POSTGRES_USER:=postgres}" "${POSTGRES_DB:=$POSTGRES_USER}"
    export POSTGRES_USER POSTGRES_DB
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        echo >&2 "postgres entrypoint: POSTGRES_PASSWORD is not set; the database would be open."
        exit 1
    fi
    initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
        --encoding=UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 \
        ${POSTGRES_INITDB_ARGS:-} >/dev/null
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"

    pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w start >/dev/null
    local psql=(psql -v ON_ERROR_STOP=1 --no-password --no-psqlrc --username "$POSTGRES_USER")
    if [ "$POSTGRES_DB" != postgres ]; then
        "${psql[@]}" --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
    fi
    local file
    for file in /docker-entrypoint-initdb.d/*; do
        case "$file" in
            *.sh) echo "postgres entrypoint: running $file"; . "$file" ;;
            *.sql) echo "postgres entrypoint: running $file"; "${psql[@]}" --dbname "$POSTGRES_DB" -f "$file" ;;
            *.sql.gz) echo "postgres entrypoint: running $file"; gunzip -c "$file" | "${psql[@]}" --dbname "$POSTGRES_DB" ;;
            *) ;;
        esac
    done
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    echo "postgres entrypoint: initialised $PGDATA"
}

if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
    init_database
fi
exec "$@"
