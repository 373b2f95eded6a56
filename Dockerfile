# syntax=docker/dockerfile:1
# Two images from one lock (requirements/lock.txt; serving.txt and train.txt are cut from it at the
# same versions, every file checked against its hash):
#   serving (the default target): nginx in front of gunicorn + Flask over exported SavedModels.
#     make docker-build      make docker-run MODEL_DIR=runs/latest
#   train: `glue-tf` as the entrypoint, the image deploy/kubernetes/training's Job runs.
#     make docker-build-train

# --- build stage: a wheel of the package (no compilers or caches in the final images) ---
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY glue_tf ./glue_tf
COPY serving ./serving
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# --- train: KerasHub, tfds, TensorFlow; `glue-tf <command>` as a non-root user ---
FROM python:3.11-slim-bookworm AS train
COPY --from=build /wheels /wheels
COPY requirements/train.txt /tmp/train.txt
RUN pip install --no-cache-dir --require-hashes -r /tmp/train.txt \
    && pip install --no-cache-dir --no-deps /wheels/*.whl && rm -rf /wheels /tmp/train.txt \
    && groupadd --system --gid 10001 glue && useradd --system --uid 10001 --gid glue --no-create-home --shell /usr/sbin/nologin glue
ENV HOME=/tmp \
    KERAS_HOME=/tmp/keras \
    PYTHONUNBUFFERED=1 \
    TF_CPP_MIN_LOG_LEVEL=2
USER 10001:10001
ENTRYPOINT ["glue-tf"]
CMD ["--help"]

# --- serving: TensorFlow, tensorflow-text, Flask, gunicorn, the PostgreSQL client; no KerasHub, no tfds ---
# nginx (Debian's) buffers each request whole in front of gunicorn (deploy/nginx/glue-tf.conf):
# slow clients hold nginx's cheap connections, never gunicorn's threads.
FROM python:3.11-slim-bookworm AS serving
COPY --from=build /wheels /wheels
COPY requirements/serving.txt /tmp/serving.txt
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends nginx-light \
    && rm -rf /var/lib/apt/lists/* \
    && pip install --no-cache-dir --require-hashes -r /tmp/serving.txt \
    && pip install --no-cache-dir --no-deps /wheels/*.whl && rm -rf /wheels /tmp/serving.txt \
    && groupadd --system --gid 10001 glue && useradd --system --uid 10001 --gid glue --no-create-home --shell /usr/sbin/nologin glue \
    && mkdir -p /models /var/lib/glue-tf && chown 10001:10001 /var/lib/glue-tf
COPY serving/gunicorn.conf.py /etc/glue-tf/gunicorn.conf.py
COPY deploy/nginx/glue-tf.conf /etc/glue-tf/nginx.conf.template
COPY scripts/serve_deployed.py /usr/local/lib/glue-tf/serve_deployed.py
# PORT is nginx's, on every interface; gunicorn listens on 8081, where Prometheus scrapes /metrics
# from inside the cluster. Reachable from other hosts, the job endpoints need GLUE_TF_API_TOKEN:
# without one the container refuses to start unless GLUE_TF_ALLOW_ANONYMOUS_JOBS=1.
ENV GLUE_TF_MODEL_DIR=/models \
    GLUE_TF_STATE_DIR=/var/lib/glue-tf \
    GLUE_TF_XLA_CACHE=/var/lib/glue-tf/xla \
    GLUE_TF_WORKERS=2 \
    PORT=8080 \
    PYTHONUNBUFFERED=1 \
    TF_CPP_MIN_LOG_LEVEL=2
# Models are mounted read-only; job state, metrics, compiled XLA programs and the proxy's buffers go to
# the writable state volume.
VOLUME ["/models", "/var/lib/glue-tf"]
USER 10001:10001
EXPOSE 8080 8081
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8080'), timeout=4)"]
ENTRYPOINT ["python", "/usr/local/lib/glue-tf/serve_deployed.py", "--template", "/etc/glue-tf/nginx.conf.template", "--gunicorn-conf", "/etc/glue-tf/gunicorn.conf.py", "--gunicorn-bind", "0.0.0.0:8081"]
