# syntax=docker/dockerfile:1
#
# One image for every stembot process (worker, web, telegram, discord, split, run); the
# command picks the process: `docker run IMAGE worker --queue separate`.
#
# CPU build (default):
#   docker build -t stembot:cpu .
# CUDA build (the GPU worker; the host needs the NVIDIA Container Toolkit):
#   docker build -t stembot:cuda \
#     --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 .
#
# The torch wheels bundle their CUDA runtime, so the runtime stays python:*-slim for both.
# Everything else comes from requirements.lock (`make lock`): pinned, with hashes, the same
# for both builds. PYTHON_VERSION is the minor version CI tests (the Makefile reads it here).
# Models: /models (the HF_HOME cache `stembot models pull` fills, or a local repo via
# STEMBOT_MODEL_REPO, e.g. random-weight ones from `stembot models demo DIR`).
# Uploads, stems and zips: /data (STEMBOT_STORAGE_DIR). Mount volumes on both.

ARG PYTHON_VERSION=3.11

# --- builder: a virtualenv with torch (from TORCH_INDEX) and the project -----------------
FROM python:${PYTHON_VERSION}-slim AS builder

# Which torch build: the CPU index by default, a CUDA index (cu126, cu128, ...) for GPUs.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG TORCH_SPEC=torch==2.13.0

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# torch first, from its own index (pyproject only asks for torch>=2.1, which this satisfies,
# so the project install below keeps this build instead of PyPI's default one). Its pin is
# TORCH_SPEC, a build arg hadolint cannot see through.
# hadolint ignore=DL3013
RUN python -m venv /opt/venv \
    && pip install --index-url "${TORCH_INDEX}" "${TORCH_SPEC}"

WORKDIR /src
# The locked dependencies (torch is not in the lock: the build above stays), then the project
# alone; pip check fails the build if the two disagree.
COPY requirements.lock ./
RUN pip install --no-deps --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY worker ./worker
COPY bots ./bots
COPY stembot ./stembot
RUN pip install --no-deps --no-build-isolation . \
    && pip check \
    && stembot --help > /dev/null

# --- runtime: slim Python, ffmpeg, the venv, a non-root user -----------------------------
FROM python:${PYTHON_VERSION}-slim AS runtime

# ffmpeg/ffprobe decode, probe and encode the audio.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*

# A fixed uid/gid so bind-mounted folders can be chowned to it on the host.
ARG UID=10001
ARG GID=10001
RUN groupadd --system --gid "${GID}" stembot \
    && useradd --system --uid "${UID}" --gid stembot --home-dir /home/stembot \
       --create-home --shell /usr/sbin/nologin stembot \
    && mkdir -p /data /models/hf /models/torch \
    && chown -R stembot:stembot /data /models

COPY --from=builder /opt/venv /opt/venv

# Named volumes mounted on /data and /models start as copies of these (owned) folders.
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HOME=/models/hf \
    TORCH_HOME=/models/torch \
    STEMBOT_STORAGE_DIR=/data \
    STEMBOT_WEB_HOST=0.0.0.0 \
    STEMBOT_WEB_PORT=8080

USER ${UID}:${GID}
# The working directory is where a mounted .env would be read from (compose passes env_file).
WORKDIR /home/stembot
VOLUME ["/data", "/models"]
EXPOSE 8080

# No HEALTHCHECK here: one image runs several processes (only `web` serves HTTP);
# docker-compose.yml sets a healthcheck per service.
ENTRYPOINT ["stembot"]
CMD ["--help"]
