"""The queue's SQL, kept in queries.sql as named blocks (`-- name --`) and parsed once here.

A block may include another whole block as `{{name}}` (static SQL text, never values), so a
statement made of two others, such as complete-and-claim, does not repeat them.
"""

from __future__ import annotations

import re
from pathlib import Path

_BLOCK = re.compile(r"^-- ([a-z_]+) --$", re.MULTILINE)
_INCLUDE = re.compile(r"\{\{([a-z_]+)\}\}")


def load(path: Path) -> dict[str, str]:
    text = path.read_text()
    parts = _BLOCK.split(text)
    # parts: [preamble, name1, body1, name2, body2, ...]
    blocks = {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}
    return {
        name: _INCLUDE.sub(lambda m: _statement(blocks[m.group(1)]), body)
        for name, body in blocks.items()
    }


def _statement(block: str) -> str:
    """A block as it can stand inside another: no comment lines, no final semicolon."""
    lines = [line for line in block.splitlines() if not line.lstrip().startswith("--")]
    return "\n".join(lines).strip().rstrip(";")


QUERIES = load(Path(__file__).with_name("queries.sql"))
