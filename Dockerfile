# syntax=docker/dockerfile:1
# video-worker: one replica of the worker. Runs as a non-root user under tini, so SIGTERM
# reaches the worker (which hands unfinished jobs back) and FFmpeg children are reaped.
#
# FFmpeg comes from the imageio-ffmpeg wheel (a static FFmpeg 9 build with libx264, zimg
# and friends), the same binary the tests run on, instead of Debian's older package; it is
# linked onto PATH for operators who want to run it by hand. PyAV's wheel carries FFmpeg's
# libraries too: the probe child reads headers and packets through them in-process, under its
# rlimits, which the command-line binary cannot do packet by packet. Two builds, two jobs.

FROM python:3.12-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIDEO_WORKER_HOME=/var/lib/video-worker \
    LOG_FORMAT=json \
    PORT=3001

# tini as PID 1; ca-certificates for HTTPS downloads and uploads; Debian's Noto fonts, so
# `serif` and the many Noto families cover every script too (the pip dependencies already give
# `sans` every script the contract names, emoji included: Debian's only emoji font is the colour
# one, which libass cannot draw).
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini ca-certificates \
       fonts-noto-core fonts-noto-cjk \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# Dependencies first, exactly as locked (every version pinned, every file's hash checked), so
# two builds a week apart install the same bytes and a code change does not reinstall them.
# The lock holds production's only: no test tools and no embedded Postgres (pgserver, which
# `pip install .` would add for development), so the image must be given DATABASE_URL.
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock

# Then the code, and sql/: the build copies its migrations into the package (worker/migrations/).
COPY pyproject.toml README.md ./
COPY worker ./worker
COPY sql ./sql
RUN pip install --no-deps . \
    && ln -s "$(python -c 'import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())')" /usr/local/bin/ffmpeg \
    && useradd --system --user-group --uid 10001 --home-dir /var/lib/video-worker --create-home worker

USER 10001
EXPOSE 3001

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '3001'), timeout=4)"]

ENTRYPOINT ["/usr/bin/tini", "--"]
# The daemon never changes the schema: migrations are a step of their own, as the schema's owner
# (`docker run IMAGE video-worker migrate` with MIGRATE_DATABASE_URL or DATABASE_URL; Render's
# preDeployCommand; the Kubernetes init container), so DATABASE_URL can be a least-privilege role.
CMD ["video-worker", "run", "--no-migrate"]
