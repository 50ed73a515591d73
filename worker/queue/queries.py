"""The queue's SQL, kept in queries.sql as named blocks (`-- name --`) and parsed once here."""

from __future__ import annotations

from pathlib import Path

from worker.db.queries import load

QUERIES = load(Path(__file__).with_name("queries.sql"))
