"""structlog set-up: JSON lines in production, readable lines on a terminal, secrets masked.

The runner binds `job_id` (and the attempt) with contextvars at the start of each job's task,
so every line logged while that job runs carries them without being passed around.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog

MASK = "***"


class SecretMasker:
    """A processor that replaces every known secret value in every field of an event.

    Nested lists and dicts are walked; values of other types (an exception, a Path) are turned
    into the text the renderer would print, and masked, since the renderer would not mask them.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def mask(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def mask_value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.mask(value)
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, dict):
            return {k: self.mask_value(v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self.mask_value(v) for v in value]
        return self.mask(repr(value))

    def __call__(
        self, _logger: Any, _name: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        if self.secrets:
            for key, value in event.items():
                event[key] = self.mask_value(value)
        return event


class _FromStdlib(logging.Handler):
    """Lines that libraries log with the standard `logging` module (psycopg's pool, aiohttp's
    server), passed through the same processors, so they are masked and rendered like ours.
    Without it, Python's last-resort handler prints them raw to stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields: dict[str, Any] = {"logger": record.name, "message": record.getMessage()}
            if record.exc_info and record.exc_info[0] is not None:
                fields["exc_info"] = record.exc_info
            get_logger(record.name).log(record.levelno, "library_log", **fields)
        except Exception:
            self.handleError(record)


class _Stderr:
    """Whatever sys.stderr is at the time of each write (tests and daemons swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def configure(
    log_format: str = "auto",
    secrets: Iterable[str] = (),
    level: int = logging.INFO,
    stream: Any = None,
) -> SecretMasker:
    stream = stream or _Stderr()
    use_json = log_format == "json" or (log_format == "auto" and not stream.isatty())
    masker = SecretMasker(secrets)
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            masker,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    _route_stdlib(level)
    return masker


def _route_stdlib(level: int) -> None:
    """One `_FromStdlib` on the root logger (configure may run more than once), at WARNING or
    above: libraries' INFO lines are chatter."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _FromStdlib)]:
        root.removeHandler(handler)
    root.addHandler(_FromStdlib(max(level, logging.WARNING)))


def get_logger(name: str = "video-worker") -> Any:
    return structlog.get_logger(name)
