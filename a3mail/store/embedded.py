"""An embedded PostgreSQL server in the data directory, for running with no database configured.

The server binaries come from the ``pgserver`` package (PyPI).  pgserver also keeps the
bookkeeping we need: a server started for ``<data_dir>/pgdata`` is shared by every a3mail
process on that directory (the server and the ``a3mail`` admin command at the same time),
and it is stopped when the last of them lets go.  It listens on a Unix socket only.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any


class EmbeddedDatabaseError(Exception):
    """The embedded PostgreSQL could not be started; the message says why in one line."""


class EmbeddedPostgres:
    """Start (or join) the embedded server for a pgdata directory and stop it when done."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        self._server: Any = None

    @property
    def running(self) -> bool:
        """True between a successful :meth:`start` and :meth:`stop`."""
        return self._server is not None

    def start(self) -> str:
        """Start or join the server (blocking, a second or two on first use); return its DSN."""
        if self._server is None:
            self.pgdata.parent.mkdir(parents=True, exist_ok=True)
            # pgserver logs every command at INFO and warns about XDG_RUNTIME_DIR: keep quiet.
            logging.getLogger("pgserver").setLevel(logging.WARNING)
            os.environ.setdefault("XDG_RUNTIME_DIR", _runtime_dir())
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    import pgserver

                    self._server = pgserver.get_server(self.pgdata, cleanup_mode="stop")
            except Exception as e:  # pgserver raises bare subprocess/assertion errors
                raise EmbeddedDatabaseError(
                    f"embedded PostgreSQL in {self.pgdata} did not start: {_describe(e)}"
                    f" (see {self.pgdata / 'log'})"
                ) from e
        return str(self._server.get_uri())

    def stop(self) -> None:
        """Let go of the server; it is stopped if no other process on this data dir uses it."""
        server, self._server = self._server, None
        if server is not None:
            server.cleanup()

    def pid(self) -> int | None:
        """The postmaster's process id while running."""
        if self._server is None:
            return None
        return int(self._server.get_pid())


def _runtime_dir() -> str:
    path = Path("/tmp") / f"a3mail-runtime-{os.getuid()}"  # noqa: S108 - a per-user lock dir
    path.mkdir(mode=0o700, exist_ok=True)
    return str(path)


def _describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
