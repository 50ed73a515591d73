"""An embedded Postgres for machines that have none: the pgserver wheel ships the binaries.

Used when DATABASE_URL is unset. The data lives under VIDEO_WORKER_HOME/pgdata; several
processes with the same home share one server, which stops when the last of them exits.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

_servers: dict[Path, Any] = {}


def embedded_url(home: Path) -> str:
    """Start (or join) the embedded server under `home` and return its connection URL."""
    pgdata = (home / "pgdata").resolve()
    if pgdata not in _servers:
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        logging.getLogger("pgserver").setLevel(logging.WARNING)
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            import pgserver

            _servers[pgdata] = pgserver.get_server(pgdata, cleanup_mode="stop")
    return str(_servers[pgdata].get_uri())


def resolve_database_url(database_url: str | None, home: Path) -> str:
    return database_url or embedded_url(home)
