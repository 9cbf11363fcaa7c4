# syntax=docker/dockerfile:1
# One image for every component: `betting line-provider`, `betting bet-maker`, `betting
# event-writer`, `betting bet-scorer`, `betting bet-writer`, `betting migrate`, `betting setup`,
# `betting probe` (see launcher/cli.py). There is no default component: the container's
# arguments name it, and without any it lists them (`betting --help`).
# No dev tooling: .dockerignore leaves launcher/local (`betting dev`, the tests' servers) out of
# the build context, and the project is installed without its `dev` extras.
# No HEALTHCHECK here: the image runs six different components, and Compose and Kubernetes
# define each one's own check.
# checkov:skip=CKV_DOCKER_2: one image runs six components; Compose and Kubernetes give each its own health check
# checkov:skip=CKV_DOCKER_7: FROM names the build argument BASE_IMAGE, whose default is tagged (python:3.11-slim); checkov does not resolve ARG

# The base of both stages: any Debian-like image with Python 3.11, `python3 -m venv`, groupadd
# and useradd. The default is the official slim image; without a registry, a Debian root
# filesystem made with debootstrap and `docker import`ed serves (`make image-test` does that).
ARG BASE_IMAGE=python:3.11-slim

# Builder: the pinned dependencies and the project in a virtualenv. Every dependency ships a
# manylinux wheel, so no compiler is needed here either. Both stages use the same base, so the
# virtualenv's interpreter path is the same in both.
FROM ${BASE_IMAGE} AS builder
# Extra pip options. Without a reachable index: "--no-index --find-links /wheelhouse", with
# the wheels downloaded beforehand into ./wheelhouse (git-ignored; absent, nothing is copied).
ARG PIP_OPTIONS=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python3 -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
# The wildcard matches nothing when there is no wheelhouse; constraints.txt keeps COPY valid.
COPY constraints.txt wheelhouse* /wheelhouse/
COPY betting/ betting/
COPY gateway/ gateway/
COPY functions/ functions/
COPY launcher/ launcher/
RUN /opt/venv/bin/pip install ${PIP_OPTIONS} -c constraints.txt .

# Final: the interpreter, the virtualenv and the application source; nothing else.
FROM ${BASE_IMAGE}
ARG UID=10001
# Home is /tmp: the root filesystem is read-only on Kubernetes, /tmp is a writable emptyDir.
RUN groupadd --gid ${UID} betting \
    && useradd --uid ${UID} --gid ${UID} --no-create-home --home-dir /tmp \
       --shell /usr/sbin/nologin betting
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY alembic.ini ./
COPY migrations/ migrations/
COPY betting/ betting/
COPY gateway/ gateway/
COPY functions/ functions/
COPY launcher/ launcher/
# /app/state is Quix Streams' default state directory (relative to the working directory);
# on Kubernetes it and /tmp are emptyDir volumes, because the root filesystem is read-only.
RUN python3 -m compileall -q /app && mkdir -p /app/state && chown ${UID}:${UID} /app/state
# /app comes before site-packages, so the code that runs is the code next to alembic.ini and
# migrations/ (`betting migrate` finds them relative to the package).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER ${UID}:${UID}
# The two servers' default ports (BETTING_LINE_PROVIDER_PORT, BETTING_BET_MAKER_PORT).
EXPOSE 8001 8002
ENTRYPOINT ["betting"]
CMD ["--help"]
