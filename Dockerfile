# syntax=docker/dockerfile:1
# The glue-tf REST service: gunicorn + Flask over exported SavedModels.
# Build: make docker-build   Run: make docker-run MODEL_DIR=runs/latest

# --- build stage: a wheel of the service (no compilers or caches in the final image) ---
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY glue_tf ./glue_tf
COPY serving ./serving
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# --- runtime stage: TensorFlow, tensorflow-text, Flask, gunicorn; no KerasHub, no tfds ---
# The service's dependencies at the exact versions of requirements/lock.txt, the set `make install`
# installs and `make test` tests (as constraints: only what the service needs, not the training set).
FROM python:3.11-slim
COPY --from=build /wheels /wheels
COPY requirements/lock.txt /tmp/lock.txt
RUN pip install --no-cache-dir --constraint /tmp/lock.txt /wheels/*.whl && rm -rf /wheels /tmp/lock.txt \
    && groupadd --system --gid 10001 glue && useradd --system --uid 10001 --gid glue --no-create-home --shell /usr/sbin/nologin glue \
    && mkdir -p /models /var/lib/glue-tf && chown 10001:10001 /var/lib/glue-tf
COPY serving/gunicorn.conf.py /etc/glue-tf/gunicorn.conf.py
ENV GLUE_TF_MODEL_DIR=/models \
    GLUE_TF_STATE_DIR=/var/lib/glue-tf \
    GLUE_TF_XLA_CACHE=/var/lib/glue-tf/xla \
    GLUE_TF_WORKERS=2 \
    PORT=8080 \
    PYTHONUNBUFFERED=1 \
    TF_CPP_MIN_LOG_LEVEL=2
# Models are mounted read-only; job state, metrics and compiled XLA programs go to the writable state volume.
VOLUME ["/models", "/var/lib/glue-tf"]
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8080'), timeout=4)"]
ENTRYPOINT ["gunicorn", "-c", "/etc/glue-tf/gunicorn.conf.py"]
