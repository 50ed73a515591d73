"""The queue's SQL, kept in queries.sql as named blocks (`-- name --`) and parsed once here."""

from __future__ import annotations

import re
from pathlib import Path

_BLOCK = re.compile(r"^-- ([a-z_]+) --$", re.MULTILINE)


def load(path: Path) -> dict[str, str]:
    text = path.read_text()
    parts = _BLOCK.split(text)
    # parts: [preamble, name1, body1, name2, body2, ...]
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


QUERIES = load(Path(__file__).with_name("queries.sql"))
