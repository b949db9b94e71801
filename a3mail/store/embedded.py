"""An embedded PostgreSQL server in the data directory, for running with no database configured.

The server binaries come from the ``pgserver`` package (PyPI).  pgserver also keeps the
bookkeeping we need: a server started for ``<data_dir>/pgdata`` is shared by every a3mail
process on that directory (the server and the ``a3mail`` admin command at the same time),
and it is stopped when the last of them lets go.  It listens on a Unix socket only.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any

#: How long to wait for a server that pg_ctl left starting.  After an unclean stop
#: PostgreSQL syncs the data directory and replays WAL before it accepts connections,
#: which can take far longer than pgserver's own ten-second pg_ctl timeout.
DEFAULT_START_TIMEOUT = 300.0
#: How long a server with no live postmaster counts as still launching, not dead.
GONE_GRACE = 3.0


class EmbeddedDatabaseError(Exception):
    """The embedded PostgreSQL could not be started; the message says why in one line."""


class EmbeddedPostgres:
    """Start (or join) the embedded server for a pgdata directory and stop it when done."""

    def __init__(self, pgdata: Path, start_timeout: float = DEFAULT_START_TIMEOUT) -> None:
        self.pgdata = pgdata
        self.start_timeout = start_timeout
        self._server: Any = None

    @property
    def running(self) -> bool:
        """True between a successful :meth:`start` and :meth:`stop`."""
        return self._server is not None

    def start(self) -> str:
        """Start or join the server (blocking); return its DSN.

        A fresh data directory takes a second or two.  A server still recovering from an
        unclean stop is waited for up to :attr:`start_timeout` seconds.
        """
        if self._server is None:
            self.pgdata.parent.mkdir(parents=True, exist_ok=True)
            pgserver = import_pgserver()
            _forget_dead_users(pgserver, self.pgdata)
            try:
                self._server = self._get_server(pgserver)
            except subprocess.TimeoutExpired:
                # pg_ctl gave up, the postmaster did not: it is recovering.  Wait for it.
                self._wait_until_ready()
                try:
                    self._server = self._get_server(pgserver)
                except subprocess.TimeoutExpired as e:
                    raise self._error("pg_ctl timed out twice") from e
        return str(self._server.get_uri())

    def _get_server(self, pgserver: Any) -> Any:
        """pgserver.get_server, raising TimeoutExpired or EmbeddedDatabaseError."""
        try:
            return pgserver.get_server(self.pgdata, cleanup_mode="stop")
        except subprocess.TimeoutExpired:
            self._forget(pgserver)
            raise
        except Exception as e:  # pgserver raises bare subprocess/assertion errors
            self._forget(pgserver)
            if isinstance(e.__context__, subprocess.TimeoutExpired):
                raise e.__context__ from None  # failed reading the log for its timeout message
            raise self._error(_describe(e)) from e

    def _forget(self, pgserver: Any) -> None:
        # pgserver registers its handle before starting the server and hands the same
        # (broken) handle to every later get_server call: drop it so a retry really retries.
        pgserver.PostgresServer._instances.pop(self.pgdata.expanduser().resolve(), None)

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        gone_since: float | None = None
        while time.monotonic() < deadline:
            state = server_state(self.pgdata)
            if state == "ready":
                return
            if state == "gone":
                # The postmaster writes its pid file a moment after pg_ctl launches it.
                gone_since = gone_since or time.monotonic()
                if time.monotonic() - gone_since > GONE_GRACE:
                    raise self._error("the server stopped while starting")
            else:
                gone_since = None
            time.sleep(0.2)
        raise self._error(f"not ready after {self.start_timeout:.0f} s")

    def _error(self, reason: str) -> EmbeddedDatabaseError:
        return EmbeddedDatabaseError(
            f"embedded PostgreSQL in {self.pgdata} did not start: {reason}"
            f" (see {self.pgdata / 'log'})"
        )

    def stop(self) -> None:
        """Let go of the server; it is stopped if no other process on this data dir uses it."""
        server, self._server = self._server, None
        if server is not None:
            _forget_dead_users(import_pgserver(), self.pgdata)
            server.cleanup()

    def pid(self) -> int | None:
        """The postmaster's process id while running."""
        if self._server is None:
            return None
        return int(self._server.get_pid())


def server_state(pgdata: Path) -> str:
    """The state of the server for a pgdata directory: 'ready', 'starting' or 'gone'."""
    try:
        info = import_pgserver().utils.PostmasterInfo.read_from_pgdata(pgdata)
    except (AssertionError, ValueError):
        return "starting"  # caught the pid file half written
    except OSError:
        return "gone"
    if info is None or not info.is_running() or not _is_postgres(info.process):
        return "gone"
    return "ready" if info.status == "ready" else "starting"


def _is_postgres(process: Any) -> bool:
    """False when a stale pid file names a process that is not a PostgreSQL server.

    A data directory copied or snapshotted with its server running keeps the old pid,
    which on another boot may belong to anything.
    """
    import psutil

    try:
        return "postgres" in process.name()
    except psutil.Error:
        return False


def _forget_dead_users(pgserver: Any, pgdata: Path) -> None:
    """Drop processes that died without letting go (SIGKILL, a crash) from pgserver's list.

    pgserver stops the server when the last process on its list lets go; a dead process
    left on the list would keep it running after every live user has gone.
    """
    import psutil

    with pgserver.PostgresServer._lock:
        users = pgserver.utils.DiskList(pgdata / ".handle_pids.json")
        try:
            pids = users.get()
        except ValueError:  # a torn write: start the list again with the live ones
            pids = []
        alive = [pid for pid in pids if psutil.pid_exists(pid)]
        if alive != pids:
            users.put(alive)


def import_pgserver() -> Any:
    """The pgserver module, imported with its lock directory and logging set up first.

    pgserver picks its inter-process lock path when it is imported, from XDG_RUNTIME_DIR:
    every a3mail process must import it the same way to share the lock.
    """
    # pgserver logs every command at INFO and warns about XDG_RUNTIME_DIR: keep quiet.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    os.environ.setdefault("XDG_RUNTIME_DIR", _runtime_dir())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver
        import pgserver.utils

    return pgserver


def _runtime_dir() -> str:
    path = Path("/tmp") / f"a3mail-runtime-{os.getuid()}"  # noqa: S108 - a per-user lock dir
    path.mkdir(mode=0o700, exist_ok=True)
    return str(path)


def _describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
