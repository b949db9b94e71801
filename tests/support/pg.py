"""The PostgreSQL the test suite runs against.

``A3MAIL_TEST_DSN`` names an existing server; otherwise an embedded server (pgserver) is
started once per test run in ``A3MAIL_TEST_PGDATA`` (default: a directory under /tmp) and
shared by every trial worker.  Each worker process uses its own schema, so parallel
workers never see each other's rows or events.
"""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
from psycopg import sql

from a3mail.store.embedded import EmbeddedPostgres

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
            _server = EmbeddedPostgres(test_pgdata() / "pgdata")
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
