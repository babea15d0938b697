#!/usr/bin/env bash
# Builds every image docker-compose.yml needs on a machine that reaches no image registry (only a
# Debian mirror, and the Python package index from the host). See docs/cluster.md, "Without a
# registry".
#
#   bash deploy/offline-images.sh            # then: set -a; . deploy/offline-images.env; set +a
#
#   1. base      debootstrap --variant=minbase bookworm + docker import    TRAINQ_BASE_IMAGE
#   2. python    the base + Debian's python3 (3.11)                         TRAINQ_PYTHON_IMAGE
#   3. redis     stand-in for redis:7-bookworm (Debian's redis-server)      REDIS_IMAGE
#   4. postgres  stand-in for postgres:16-bookworm (Debian's PostgreSQL 15) POSTGRES_IMAGE
#   5. wheels    pip wheel of trainq's dependencies on the host, into wheelhouse/
#   6. trainq    the project's Dockerfile FROM (2), pip --no-index from (5)  TRAINQ_IMAGE
#
# Each image carries a label with the hash of its inputs; a step whose inputs did not change is
# skipped, so a second run takes seconds. FORCE=1 rebuilds everything. Prints the time per step.
set -euo pipefail
cd "$(dirname "$0")/.."

DOCKER="${DOCKER:-docker}"
SUITE=bookworm
TRAINQ_BASE_IMAGE="${TRAINQ_BASE_IMAGE:-trainq-local/debian:bookworm}"
TRAINQ_PYTHON_IMAGE="${TRAINQ_PYTHON_IMAGE:-trainq-local/python:3.11-bookworm}"
REDIS_IMAGE="${REDIS_IMAGE:-trainq-local/redis:7-bookworm}"
POSTGRES_IMAGE="${POSTGRES_IMAGE:-trainq-local/postgres:15-bookworm}"
TRAINQ_IMAGE="${TRAINQ_IMAGE:-trainq:latest}"
WHEELHOUSE=wheelhouse
LABEL=org.trainq.inputs
FORCE="${FORCE:-0}"

# The mirror apt already uses here (deb822 or one-line sources), unless DEBIAN_MIRROR says otherwise.
debian_mirror() {
    if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
    local found
    found="$(grep -rhoE '(URIs:|^deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list \
        /etc/apt/sources.list.d/ 2>/dev/null | grep -v security | head -n 1 | awk '{print $2}' || true)"
    echo "${found:-http://deb.debian.org/debian}"
}

# sha256 of the given files' names and contents, plus extra words (image ids, settings).
inputs_hash() {
    local words="$1"; shift
    { echo "$words"; find "$@" -type f ! -path '*/__pycache__/*' ! -name '*.py[cod]' -print0 \
        | sort -z | xargs -0 -r sha256sum; } | sha256sum | cut -c1-16
}

# True when IMAGE exists and was built from inputs with hash HASH.
up_to_date() {
    [ "$FORCE" = 1 ] && return 1
    [ "$("$DOCKER" image inspect -f "{{ index .Config.Labels \"$LABEL\" }}" "$1" 2>/dev/null)" = "$2" ]
}

image_id() { "$DOCKER" image inspect -f '{{ .Id }}' "$1"; }

step() { # step NAME IMAGE HASH COMMAND...: runs COMMAND unless IMAGE is up to date; prints the time
    local name="$1" image="$2" hash="$3"; shift 3
    local start=$SECONDS
    if up_to_date "$image" "$hash"; then
        echo "offline-images: $name: $image is up to date ($hash)"
    else
        echo "offline-images: $name: building $image ($hash)"
        "$@"
    fi
    echo "offline-images: $name: $((SECONDS - start)) s"
}

build_base() {
    local root
    root="$(mktemp -d /var/tmp/trainq-debootstrap.XXXXXX)"
    if ! debootstrap --variant=minbase "$SUITE" "$root" "$MIRROR" >"$root.log" 2>&1; then
        tail -n 20 "$root.log" >&2
        rm -rf "$root" "$root.log"
        return 1
    fi
    # What the official debian:bookworm image also does: apt sources for the mirror and security,
    # no docs or caches, and no service starts during package installs.
    cat > "$root/etc/apt/sources.list" <<SOURCES
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb http://deb.debian.org/debian-security $SUITE-security main
SOURCES
    printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d" && chmod +x "$root/usr/sbin/policy-rc.d"
    printf 'path-exclude /usr/share/doc/*\npath-exclude /usr/share/man/*\npath-exclude /usr/share/locale/*\npath-include /usr/share/doc/*/copyright\n' \
        > "$root/etc/dpkg/dpkg.cfg.d/excludes"
    printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
        > "$root/etc/apt/apt.conf.d/90trainq-no-recommends"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* \
        "$root"/usr/share/man/* "$root"/usr/share/locale/*
    tar --numeric-owner -C "$root" -c . | "$DOCKER" import \
        --change "LABEL $LABEL=$base_hash" --change 'ENV LANG=C.UTF-8' --change 'CMD ["bash"]' \
        - "$TRAINQ_BASE_IMAGE" >/dev/null
    rm -rf "$root" "$root.log"
}

build_dir() { # build_dir IMAGE HASH DIR [docker build options]
    local image="$1" hash="$2" dir="$3"; shift 3
    "$DOCKER" build -q --force-rm --label "$LABEL=$hash" --build-arg "BASE_IMAGE=$TRAINQ_BASE_IMAGE" "$@" \
        -t "$image" "$dir" >/dev/null
}

build_wheels() {
    local requirements="$WHEELHOUSE/requirements.txt"
    python3 deploy/images/requirements.py pyproject.toml "${TRAINQ_EXTRAS:-flower}" > "$requirements.new"
    if [ "$FORCE" != 1 ] && cmp -s "$requirements.new" "$requirements" \
        && [ -f "$WHEELHOUSE/.complete" ]; then
        rm "$requirements.new"
        echo "offline-images: wheels: $WHEELHOUSE is up to date"
        return
    fi
    mv "$requirements.new" "$requirements"
    rm -f "$WHEELHOUSE"/*.whl "$WHEELHOUSE/.complete"
    # Wheels for the image's Python (Debian bookworm: CPython 3.11, glibc 2.36, x86_64); sdists
    # are built here on the host, so the image needs no compiler. setuptools and wheel build
    # trainq itself in the image (pip --no-build-isolation).
    pip_wheel -r "$requirements" "setuptools>=69" wheel
    # The host's Python may be another 3.11.x than the image's, and markers such as
    # python_full_version < "3.11.3" then pull in different packages: resolve once more with the
    # image's own pip, offline, and fetch whatever it finds missing.
    local attempt missing
    for attempt in 1 2 3 4 5; do
        if missing="$("$DOCKER" run --rm --network none -v "$PWD/$WHEELHOUSE:/wheelhouse:ro" \
            "$TRAINQ_PYTHON_IMAGE" sh -c 'python3 -m venv /tmp/venv && /tmp/venv/bin/pip install \
            -q --dry-run --no-index --find-links /wheelhouse -r /wheelhouse/requirements.txt \
            "setuptools>=69" wheel' 2>&1)"; then
            touch "$WHEELHOUSE/.complete"
            return
        fi
        missing="$(sed -n 's/.*No matching distribution found for \([^;]*\).*/\1/p' <<<"$missing")"
        [ -n "$missing" ] || { echo "offline-images: the image's pip rejects $WHEELHOUSE" >&2; return 1; }
        echo "offline-images: wheels: adding $missing for the image's Python (pass $attempt)"
        pip_wheel "$missing"
    done
    return 1
}

# pip wheel into the wheelhouse, without the host's notes about its own local indexes.
pip_wheel() {
    python3 -m pip wheel -q --wheel-dir "$WHEELHOUSE" "$@" 2>&1 | { grep -v ' is ignored: ' || true; }
    return "${PIPESTATUS[0]}"
}

MIRROR="$(debian_mirror)"
mkdir -p "$WHEELHOUSE"
total_start=$SECONDS

base_hash="$(inputs_hash "$SUITE minbase $MIRROR $(declare -f build_base)" /dev/null)"
step base "$TRAINQ_BASE_IMAGE" "$base_hash" build_base
base_id="$(image_id "$TRAINQ_BASE_IMAGE")"

hash="$(inputs_hash "$base_id" deploy/images/python)"
step python "$TRAINQ_PYTHON_IMAGE" "$hash" build_dir "$TRAINQ_PYTHON_IMAGE" "$hash" deploy/images/python
hash="$(inputs_hash "$base_id" deploy/images/redis)"
step redis "$REDIS_IMAGE" "$hash" build_dir "$REDIS_IMAGE" "$hash" deploy/images/redis
hash="$(inputs_hash "$base_id" deploy/images/postgres)"
step postgres "$POSTGRES_IMAGE" "$hash" build_dir "$POSTGRES_IMAGE" "$hash" deploy/images/postgres

start=$SECONDS
build_wheels
echo "offline-images: wheels: $((SECONDS - start)) s"

python_id="$(image_id "$TRAINQ_PYTHON_IMAGE")"
hash="$(inputs_hash "$python_id ${TRAINQ_EXTRAS:-flower}" Dockerfile .dockerignore pyproject.toml \
    README.md api_cli worker storage "$WHEELHOUSE/requirements.txt")"
step trainq "$TRAINQ_IMAGE" "$hash" build_dir "$TRAINQ_IMAGE" "$hash" . \
    --build-arg "PYTHON_IMAGE=$TRAINQ_PYTHON_IMAGE" --build-arg "TRAINQ_EXTRAS=${TRAINQ_EXTRAS:-flower}"

# The settings docker-compose.yml reads to use these images instead of the registry's.
cat > deploy/offline-images.env <<ENV
REDIS_IMAGE=$REDIS_IMAGE
POSTGRES_IMAGE=$POSTGRES_IMAGE
TRAINQ_IMAGE=$TRAINQ_IMAGE
ENV
echo "offline-images: done in $((SECONDS - total_start)) s; images:"
"$DOCKER" image ls --format '  {{.Repository}}:{{.Tag}}  {{.Size}}' \
    | grep -E "^  ($TRAINQ_BASE_IMAGE|$TRAINQ_PYTHON_IMAGE|$REDIS_IMAGE|$POSTGRES_IMAGE|$TRAINQ_IMAGE)\$|  " \
    | grep -F -e "$TRAINQ_BASE_IMAGE" -e "$TRAINQ_PYTHON_IMAGE" -e "$REDIS_IMAGE" -e "$POSTGRES_IMAGE" -e "$TRAINQ_IMAGE"
