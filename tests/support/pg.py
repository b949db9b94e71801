"""The PostgreSQL the test suite runs against.

``A3MAIL_TEST_DSN`` names an existing server; otherwise an embedded server (pgserver) is
started once per test run in ``A3MAIL_TEST_PGDATA`` (default: a directory under /tmp) and
shared by every process of the run.  Each test process uses its own schema, so parallel
runs never see each other's rows or events.

The test server's data is disposable: a run that finds no server running starts from an
empty data directory, so a server killed with the machine (a stopped session, a CI
snapshot) never costs a crash recovery, and the directory never grows run after run.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import psycopg
from psycopg import sql

from a3mail.store.embedded import EmbeddedPostgres, server_state

_server: EmbeddedPostgres | None = None
_dsn: str | None = None
_schemas: set[str] = set()


def test_pgdata() -> Path:
    """Where the embedded test server keeps its data."""
    default = Path("/tmp") / f"a3mail-test-pg-{os.getuid()}"
    return Path(os.environ.get("A3MAIL_TEST_PGDATA") or default)


def dsn() -> str:
    """The DSN of the test server (starting the embedded one on first use)."""
    global _server, _dsn
    if _dsn is None:
        env = os.environ.get("A3MAIL_TEST_DSN")
        if env:
            _dsn = env
        else:
            pgdata = test_pgdata() / "pgdata"
            if pgdata.exists() and server_state(pgdata) == "gone":
                shutil.rmtree(pgdata)
            _server = EmbeddedPostgres(pgdata)
            _dsn = _server.start()
    return _dsn


def fresh_schema(name: str) -> str:
    """Drop and create a schema for this worker process; returns its name."""
    schema = f"{name}_{os.getpid()}"
    with psycopg.connect(dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    _schemas.add(schema)
    return schema


def drop_schema(schema: str) -> None:
    """Remove a schema made by :func:`fresh_schema`."""
    with psycopg.connect(dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    _schemas.discard(schema)
