# trainq: the `trainq` CLI, the Celery worker and Flower, with Fashion-MNIST from Debian.
#
#   CPU image (default):  docker build -t trainq .
#   GPU image:            docker build --build-arg TRAINQ_EXTRAS=flower,gpu -t trainq-gpu .
#   Without a registry:   bash deploy/offline-images.sh (a Debian PYTHON_IMAGE, wheels from the host)
#
# docker-compose.yml builds both. The image holds no secrets: broker and database URLs, with their
# passwords, arrive at run time from the environment. .dockerignore admits only what pip needs.
#
# Two stages: `build` installs the virtual environment (from wheelhouse/ when it holds wheels, with
# no network, else from the package index) and strips it; the final stage copies only the
# environment, so no wheel, pip cache, header or build tool reaches the image.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE} AS build

# Optional dependency groups from pyproject.toml, comma-separated ("flower", "flower,gpu"). Without
# "gpu", TensorFlow comes as tensorflow-cpu (deploy/images/requirements.py).
ARG TRAINQ_EXTRAS=flower

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/trainq \
    PATH=/opt/trainq/bin:$PATH

# binutils' strip, for TensorFlow's shared libraries; this stage is thrown away.
RUN apt-get update \
    && apt-get install -y --no-install-recommends binutils \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv "$VIRTUAL_ENV"

# Dependencies first, listed from pyproject.toml alone, so that a source change does not
# reinstall TensorFlow. Then trim what training never loads: C/C++ headers (430 MB for TensorFlow,
# for compiling extensions), the static symbol tables of TensorFlow's libraries (200 MB; the
# dynamic symbols stay), libclang (62 MB, for TensorFlow's code generators), dependencies' test
# suites. setuptools and wheel, to build trainq's own wheel, go into a separate venv.
COPY pyproject.toml deploy/images/requirements.py /tmp/trainq/
COPY wheelhouse /tmp/wheelhouse
RUN python3 /tmp/trainq/requirements.py /tmp/trainq/pyproject.toml "$TRAINQ_EXTRAS" \
        > /tmp/trainq/requirements.txt \
    && if ls /tmp/wheelhouse/*.whl > /dev/null 2>&1; then \
        set -- --no-index --find-links /tmp/wheelhouse; fi \
    && pip install "$@" -r /tmp/trainq/requirements.txt \
    && python3 -m venv /opt/builder \
    && /opt/builder/bin/pip install "$@" "setuptools>=69" wheel \
    && pip uninstall -y -q libclang \
    && site="$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
    && rm -rf "$site/tensorflow/include" \
    && find "$VIRTUAL_ENV" -depth \( -name tests -o -name test \) -path '*/site-packages/*/*' \
        ! -path '*/tensorflow/*' ! -path '*/keras/*' -type d -exec rm -rf '{}' + \
    && find "$site/tensorflow" -name '*.so*' -type f -exec strip --strip-unneeded '{}' +

# trainq itself, as a wheel that the final stage installs (a source change rebuilds only this).
COPY . /tmp/trainq/src
RUN /opt/builder/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /tmp/dist /tmp/trainq/src

FROM ${PYTHON_IMAGE}

ARG TRAINQ_EXTRAS=flower

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/trainq \
    PATH=/opt/trainq/bin:$PATH

# Fashion-MNIST's gzipped IDX files, in /usr/share/datasets/fashion-mnist (Debian main, ~30 MB).
RUN apt-get update \
    && apt-get install -y --no-install-recommends dataset-fashion-mnist \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin

RUN groupadd --gid 10001 trainq \
    && useradd --uid 10001 --gid 10001 --create-home --home-dir /home/trainq \
        --shell /usr/sbin/nologin trainq

COPY --from=build /opt/trainq /opt/trainq
COPY --from=build /tmp/dist /tmp/dist
RUN pip install --no-cache-dir --disable-pip-version-check --no-deps --no-index /tmp/dist/*.whl \
    && rm -rf /tmp/dist

USER 10001:10001
WORKDIR /home/trainq
ENV TRAINQ_HOME=/home/trainq/.trainq \
    TRAINQ_DATA_DIR=/usr/share/datasets/fashion-mnist
RUN mkdir -p "$TRAINQ_HOME"

CMD ["trainq", "--help"]
