"""video-worker: a Postgres-backed background worker that assembles videos with FFmpeg."""

__version__ = "0.1.0"
