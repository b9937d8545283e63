# syntax=docker/dockerfile:1
# Liaison's image: a venv built from the hashed lock (wheels only, so no compiler anywhere),
# static files collected at build time, run as an unprivileged user. See docs/operations.md.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# --- build: the venv and the collected static files ------------------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /venv
COPY requirements.lock /tmp/requirements.lock
RUN /venv/bin/pip install --require-hashes --only-binary=:all: --no-deps \
        -r /tmp/requirements.lock \
    && /venv/bin/pip check
WORKDIR /app
COPY . /app
# Static files and the compiled translation catalogues (.mo). Production settings need a secret
# key, hosts and a keyring to load: build-only values that never leave this step (neither
# command opens a database or uses a key).
RUN LIAISON_ENV=production \
    SECRET_KEY=build-only-collectstatic-build-only-collectstatic-build-only \
    ALLOWED_HOSTS=build.invalid \
    CSRF_TRUSTED_ORIGINS=https://build.invalid \
    DATABASE_URL=postgres://build@build.invalid/build \
    LIAISON_KEYRING='{"active":"build","keys":{"build":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}}' \
    LIAISON_VAR_DIR=/tmp/build-var \
    LIAISON_STATIC_ROOT=/app/staticfiles \
    sh -c '/venv/bin/python manage.py collectstatic --noinput --verbosity 0 \
           && /venv/bin/python manage.py compilecatalogues' \
    && /venv/bin/python -m compileall -q /app/config /app/liaison /app/docker

# --- runtime ---------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
# pg_dump/pg_restore for manage.py backup and restore_check: Debian bookworm's client is
# PostgreSQL 15, the server's major version in docker-compose.yml (pg_dump must not be older).
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client-15 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 liaison \
    && useradd --system --uid 10001 --gid liaison --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin liaison \
    && install -d -o liaison -g liaison -m 0750 /var/lib/liaison
COPY --from=build /venv /venv
COPY --from=build /app /app
ENV PATH=/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=config.settings \
    LIAISON_ENV=production \
    LIAISON_STATIC_ROOT=/app/staticfiles \
    LIAISON_VAR_DIR=/var/lib/liaison \
    PORT=8000
WORKDIR /app
USER liaison:liaison
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=6s --start-period=30s --retries=3 \
    CMD ["python", "/app/docker/healthcheck.py"]
ENTRYPOINT ["python", "/app/docker/entrypoint.py"]
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "--proxy-headers", \
     "--websocket-max-message-size", "65536", "--websocket-max-frame-size", "65536", \
     "config.asgi:application"]
