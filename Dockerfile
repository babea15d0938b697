# trainq: the `trainq` CLI, the Celery worker and Flower, with Fashion-MNIST from Debian.
#
#   CPU image (default):  docker build -t trainq .
#   GPU image:            docker build --build-arg TRAINQ_EXTRAS=flower,gpu -t trainq-gpu .
#
# docker-compose.yml builds both. The image holds no secrets: broker and database URLs, with their
# passwords, arrive at run time from the environment. .dockerignore admits only what pip needs.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE}

# Optional dependency groups from pyproject.toml, comma-separated ("flower", "flower,gpu").
ARG TRAINQ_EXTRAS=flower

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/trainq \
    PATH=/opt/trainq/bin:$PATH

# Fashion-MNIST's gzipped IDX files, in /usr/share/datasets/fashion-mnist (Debian main, ~30 MB).
RUN apt-get update \
    && apt-get install -y --no-install-recommends dataset-fashion-mnist \
    && rm -rf /var/lib/apt/lists/*

RUN python -m venv "$VIRTUAL_ENV"

# Dependencies first, listed from pyproject.toml alone, so that a source change does not
# reinstall TensorFlow.
COPY pyproject.toml /tmp/trainq/pyproject.toml
RUN python -c 'import sys, tomllib; \
project = tomllib.load(open(sys.argv[1], "rb"))["project"]; \
extras = [name for name in sys.argv[2].split(",") if name]; \
optional = project.get("optional-dependencies", {}); \
print("\n".join(project["dependencies"] + [req for name in extras for req in optional[name]]))' \
        /tmp/trainq/pyproject.toml "$TRAINQ_EXTRAS" > /tmp/trainq/requirements.txt \
    && pip install -r /tmp/trainq/requirements.txt

COPY . /tmp/trainq/src
RUN pip install --no-deps /tmp/trainq/src \
    && rm -rf /tmp/trainq

RUN groupadd --gid 10001 trainq \
    && useradd --uid 10001 --gid 10001 --create-home --home-dir /home/trainq \
        --shell /usr/sbin/nologin trainq
USER 10001:10001
WORKDIR /home/trainq
ENV TRAINQ_HOME=/home/trainq/.trainq \
    TRAINQ_DATA_DIR=/usr/share/datasets/fashion-mnist
RUN mkdir -p "$TRAINQ_HOME"

CMD ["trainq", "--help"]
