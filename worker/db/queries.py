"""Named SQL blocks: a `.sql` file beside the code that runs it, one statement per
`-- name --` header, parsed once at import into a dict (`QUERIES["claim"]`)."""

from __future__ import annotations

import re
from pathlib import Path

_BLOCK = re.compile(r"^-- ([a-z_]+) --$", re.MULTILINE)


def load(path: Path) -> dict[str, str]:
    """{name: statement} for every block in `path`; text before the first header is ignored."""
    text = path.read_text()
    parts = _BLOCK.split(text)
    # parts: [preamble, name1, body1, name2, body2, ...]
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}
