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
    """A processor that replaces every known secret value in every string field of an event."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def mask(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def __call__(
        self, _logger: Any, _name: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        if self.secrets:
            for key, value in event.items():
                if isinstance(value, str):
                    event[key] = self.mask(value)
        return event


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
    return masker


def get_logger(name: str = "video-worker") -> Any:
    return structlog.get_logger(name)
