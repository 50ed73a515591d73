"""The `error` a job's row shows: one sentence for the job's owner, nothing of the server's.

The row is read by whoever enqueued the job (on Supabase, an end user's browser), so it says
what failed, never where: no server paths, no FFmpeg stderr, no exception reprs. The detail
stays in the operator's log, where the runner logs the exception with its traceback.

The sentence comes from the error itself (`WorkerError.row_sentence`, see worker.errors):

- Our own errors are written for users: their message is the sentence.
- FFmpegError's message quotes FFmpeg's output, so it gives a sentence of its own instead.
- Anything else is a bug or an outage we did not foresee: a fixed sentence naming its kind.

Then, as a second line, absolute paths under the worker's home, the temporary directory and
the working directory are replaced by a mark, whichever message they slipped into (and an
OSError's `[Errno N] …: '<path>'` quoted in one of our messages is cut to its wording).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from worker.errors import UNEXPECTED, as_worker_error

__all__ = ["PATH_MARK", "UNEXPECTED", "row_error", "scrub_paths"]

PATH_MARK = "[worker path]"
# A root counts where a path starts (not inside a URL's path or a longer name) and runs to the
# next space, quote or separator; `/tmpfoo` is not under `/tmp`.
_AT_START = r"(?<![\w.~%/-])"
_REST = r"(?![^/\s'\":,;)])[^\s'\":,;)]*"


def row_error(exc: BaseException, home: Path | None = None) -> str:
    """The sentence `exc` gives for the row, with the worker's own paths scrubbed."""
    return scrub_paths(as_worker_error(exc).row_sentence(), home)


def scrub_paths(text: str, home: Path | None = None) -> str:
    """`text` with every absolute path under the worker's own directories replaced."""
    for root in _roots(home):
        text = re.sub(_AT_START + re.escape(root) + _REST, PATH_MARK, text)
    return _tidy(text)


def _tidy(text: str) -> str:
    """An OSError's text inside one of our messages, `[Errno 21] Is a directory: '…' -> '…'`,
    read as its plain wording once the paths are gone: `Is a directory`."""
    mark = re.escape(f"'{PATH_MARK}'")
    text = re.sub(rf"(?::\s*{mark})(?:\s*->\s*{mark})?", "", text)
    return re.sub(r"\[Errno -?\d+\]\s*", "", text)


def _roots(home: Path | None) -> list[str]:
    """The worker's directories, as given and with symlinks resolved, longest first; never `/`
    alone (that would eat every path-like word)."""
    found: set[str] = set()
    for place in (home, Path(tempfile.gettempdir()), _cwd(), Path(os.path.expanduser("~"))):
        if place is None:
            continue
        for spelling in (place.absolute(), place.resolve()):
            if len(spelling.parts) >= 2:
                found.add(str(spelling))
    return sorted(found, key=len, reverse=True)


def _cwd() -> Path | None:
    try:
        return Path.cwd()
    except OSError:  # the working directory was deleted
        return None
