#!/bin/sh
# Gives a server (redis or postgres) its own copy of the TLS key, then starts the image's entrypoint.
#
#   server-entrypoint.sh USER COMMAND [ARG...]       (as root; docker-compose.tls.yml)
#
# Redis and PostgreSQL read the key as their own user, and PostgreSQL refuses a key that others
# may read. The user ids differ between images (official and deploy/offline-images.sh stand-ins),
# so the key made by make-certs.sh (root's, 0600) is copied to a tmpfs owned by USER, mode 0600,
# with the certificate and the CA beside it, in /run/trainq-tls.
set -eu

user="$1"
shift
src="${TRAINQ_TLS_DIR:-/tls}"
dst=/run/trainq-tls
for file in "$src/ca.crt" "$src/server.crt" "$src/private/server.key"; do
    if [ ! -s "$file" ]; then
        echo >&2 "server-entrypoint: $file is missing: run deploy/tls/make-certs.sh (the tls-certs service does)."
        exit 66
    fi
done
group="$(id -gn "$user")"
install -d -m 700 -o "$user" -g "$group" "$dst"
install -m 644 -o "$user" -g "$group" "$src/ca.crt" "$src/server.crt" "$dst/"
install -m 600 -o "$user" -g "$group" "$src/private/server.key" "$dst/server.key"
exec "$@"
