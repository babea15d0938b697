#!/bin/sh
# Starts Redis with authentication on, without the password ever reaching a command line.
#
# Renders an ACL file from $REDIS_USER and $REDIS_PASSWORD (stored as a SHA-256 hash, so not even
# the file holds the password), appends `--aclfile` to the server's arguments, and hands over to
# the official image's docker-entrypoint.sh, which chowns /data and drops root for the redis user.
#
#   default user  off, no password, no keys, no commands: unauthenticated clients can do nothing.
#   $REDIS_USER   all keys and channels, every command except @dangerous (FLUSHALL, KEYS, CONFIG,
#                 DEBUG, SHUTDOWN, ACL, MONITOR, ...): enough for Celery, kombu and Flower.
#
# Why not `--requirepass` / `--user ... >password` on the command line: the password would show in
# `ps`, `docker inspect` (Cmd) and `docker compose config`, and requirepass only sets the default
# user's password instead of turning the default user off.
set -eu

acl_file="${REDIS_ACL_FILE:-/run/redis-acl/users.acl}"
user="${REDIS_USER:-trainq}"

if [ -z "${REDIS_PASSWORD:-}" ]; then
    echo >&2 "redis entrypoint: REDIS_PASSWORD is empty; set it in .env (see .env.example)."
    exit 64
fi
case "$user" in
    '' | default | *[!A-Za-z0-9_-]*)
        echo >&2 "redis entrypoint: REDIS_USER='$user' must be [A-Za-z0-9_-]+ and not 'default'."
        exit 64
        ;;
esac

password_sha256="$(printf '%s' "$REDIS_PASSWORD" | sha256sum | cut -d ' ' -f 1)"
unset REDIS_PASSWORD # keep it out of the server's environment; the healthcheck has its own copy

umask 077
mkdir -p "$(dirname "$acl_file")"
{
    echo "user default off resetpass resetkeys resetchannels -@all"
    echo "user $user on #$password_sha256 ~* &* +@all -@dangerous"
} > "$acl_file"
if [ "$(id -u)" = 0 ] && id redis > /dev/null 2>&1; then
    chown redis:redis "$(dirname "$acl_file")" "$acl_file"
fi

exec docker-entrypoint.sh "$@" --aclfile "$acl_file"
