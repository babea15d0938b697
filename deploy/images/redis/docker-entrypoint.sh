#!/bin/sh
# What the official redis image's entrypoint does that docker-compose.yml relies on: options alone
# mean redis-server; as root, own /data and re-exec as the redis user (setpriv, from util-linux).
set -eu
case "${1:-}" in
    -* | *.conf) set -- redis-server "$@" ;;
esac
if [ "${1:-}" = redis-server ] && [ "$(id -u)" = 0 ]; then
    find . \! -user redis -exec chown redis '{}' +
    exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi
umask 0077 # the append-only file and dumps are readable by redis only
exec "$@"
