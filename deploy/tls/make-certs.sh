#!/bin/sh
# Makes the TLS certificates of a trainq cluster: a CA, and one server certificate that Redis and
# PostgreSQL both present. Never committed (.gitignore); docker-compose.tls.yml runs this on every
# start (the tls-certs service) and it keeps what it made before.
#
#   deploy/tls/make-certs.sh [DIR] [NAME_OR_IP...]
#
#   DIR          where to write (default: deploy/tls/certs next to this script)
#   NAME_OR_IP   the names and addresses other hosts reach the servers by (cluster.example.org,
#                10.0.0.5); also read from $TRAINQ_TLS_NAMES (comma or space separated). Always
#                included: redis, postgres (the compose service names), localhost, 127.0.0.1, ::1.
#
# Writes, and keeps on later runs:
#   DIR/ca.crt              the CA: give it to every worker host (TRAINQ_CA_FILE)
#   DIR/server.crt          the servers' certificate, signed by the CA
#   DIR/private/ca.key      the CA's key (0600, in a 0700 directory): signs new server certificates
#   DIR/private/server.key  the servers' key (0600)
# The server certificate is made again (by the same CA, so workers need nothing new) when the names
# asked for change; delete DIR to start over with a new CA.
set -eu

dir="${1:-$(dirname "$0")/certs}"
[ "$#" -gt 0 ] && shift
ca_days=3650
server_days=825 # the most a server certificate may last for clients that follow the CA/B rules

names="DNS:redis,DNS:postgres,DNS:localhost,IP:127.0.0.1,IP:::1"
for name in $(printf '%s' "${TRAINQ_TLS_NAMES:-}" | tr ',' ' ') "$@"; do
    case "$name" in
        *:*) names="$names,IP:$name" ;; # an IPv6 address
        *[!0-9.]*)
            case "$name" in
                '' | *[!A-Za-z0-9.-]* | -* | .*)
                    echo >&2 "make-certs: '$name' is not a host name or an IP address."
                    exit 64
                    ;;
                *) names="$names,DNS:$name" ;;
            esac
            ;;
        *.*.*.*) names="$names,IP:$name" ;; # an IPv4 address
        *)
            echo >&2 "make-certs: '$name' is not a host name or an IP address."
            exit 64
            ;;
    esac
done

# openssl's progress goes nowhere; its complaint, if any, to stderr.
quietly() {
    out="$("$@" 2>&1)" || {
        printf >&2 'make-certs: %s failed:\n%s\n' "$*" "$out"
        exit 1
    }
}

umask 077
mkdir -p "$dir/private"
chmod 755 "$dir" # ca.crt and server.crt are public; private/ stays 0700
chmod 700 "$dir/private"

if [ ! -s "$dir/ca.crt" ] || [ ! -s "$dir/private/ca.key" ]; then
    quietly openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$dir/private/ca.key" -out "$dir/ca.crt" -days "$ca_days" \
        -subj "/CN=trainq cluster CA" \
        -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
        -addext "keyUsage=critical,keyCertSign,cRLSign"
    rm -f "$dir/server.crt" # a new CA: the old server certificate is not signed by it
    echo "make-certs: made a new CA in $dir/ca.crt"
fi

if [ ! -s "$dir/server.crt" ] || [ ! -s "$dir/private/server.key" ] \
    || [ "$(cat "$dir/private/server.names" 2> /dev/null)" != "$names" ]; then
    extensions="$dir/private/server.ext"
    printf '%s\n' "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature,keyEncipherment" \
        "extendedKeyUsage=serverAuth" "subjectAltName=$names" > "$extensions"
    quietly openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$dir/private/server.key" -out "$dir/private/server.csr" \
        -subj "/CN=trainq cluster servers"
    quietly openssl x509 -req -in "$dir/private/server.csr" -CA "$dir/ca.crt" \
        -CAkey "$dir/private/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
        -days "$server_days" -extfile "$extensions" -out "$dir/server.crt"
    rm -f "$dir/private/server.csr" "$extensions"
    printf '%s' "$names" > "$dir/private/server.names"
    echo "make-certs: made $dir/server.crt for $names"
fi
chmod 644 "$dir/ca.crt" "$dir/server.crt"
chmod 600 "$dir/private/ca.key" "$dir/private/server.key"
