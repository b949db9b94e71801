"""A test case base class with a fresh, migrated store on the test PostgreSQL."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from twisted.internet import reactor
from twisted.trial import unittest

from a3mail.store import Database, Store
from a3mail.store.db import deferred
from tests.support import pg

_migrated_schema: str | None = None
_TABLES = (
    "custom_metrics",
    "freemail_sent",
    "freemail_user_mailboxes",
    "freemail_mailboxes",
    "freemail_users",
    "webhook_attempts",
    "webhook_deliveries",
    "webhooks",
    "http_rate_limits",
    "ip_blocks",
    "security_settings",
    "outbound_notices",
    "outbound_queue",
    "outbound_messages",
    "audit_log",
    "api_keys",
    "expunged",
    "messages",
    "mailboxes",
    "aliases",
    "accounts",
    "domains",
)


def require_asyncio_reactor() -> None:
    """Fail clearly when the suite is run without ``--reactor=asyncio``."""
    from twisted.internet.asyncioreactor import AsyncioSelectorReactor

    if not isinstance(reactor, AsyncioSelectorReactor):
        raise RuntimeError("store tests need the asyncio reactor: run trial --reactor=asyncio")


def _worker_schema() -> str:
    """This process's schema, migrated once and emptied before each test."""
    global _migrated_schema
    if _migrated_schema is None:
        _migrated_schema = pg.fresh_schema("t")
    return _migrated_schema


def truncate(schema: str) -> None:
    """Empty every table of a migrated schema (fast, keeps the schema)."""
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        exists = conn.execute(
            "SELECT count(*) FROM information_schema.tables"
            " WHERE table_schema = %s AND table_name = 'schema_version'",
            (schema,),
        ).fetchone()
        if exists and exists[0]:
            conn.execute(
                sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(
                    sql.SQL(", ").join(sql.Identifier(schema, t) for t in _TABLES)
                )
            )


class StoreTestCase(unittest.TestCase):
    """Gives each test ``self.store``: open, migrated, empty, with a temporary data dir."""

    pool_size = 4
    fsync = True

    async def setUp(self) -> None:  # type: ignore[override]
        require_asyncio_reactor()
        self.schema = _worker_schema()
        truncate(self.schema)
        self.data_dir = Path(self.mktemp()).absolute()
        self.data_dir.mkdir(parents=True)
        self.store = self.make_store()
        await self.store.open()
        self.addCleanup(self.store.close)

    def make_store(self, **kwargs: Any) -> Store:
        """Another Store on the same schema and data dir (e.g. a second process's view)."""
        db = Database(
            pg.dsn(),
            min_size=1,
            max_size=kwargs.pop("pool_size", self.pool_size),
            schema=self.schema,
            application_name=kwargs.pop("application_name", f"a3mail-test:{os.getpid()}"),
            acquire_timeout=kwargs.pop("acquire_timeout", 5.0),
        )
        return Store(db, kwargs.pop("data_dir", self.data_dir), fsync=self.fsync)

    def sql(self, query: str, params: Any = None) -> Any:
        """Run one query on the store's pool (bridged to a Deferred); returns all rows."""
        return deferred(self.store.db.fetchall)(query, params)

    async def make_account(self, address: str = "alice@example.com", **kwargs: Any) -> Any:
        """Create the domain (if needed) and an account."""
        domain = address.rpartition("@")[2]
        from a3mail.store.records import AlreadyExists

        with contextlib.suppress(AlreadyExists):
            await self.store.domains.add(domain)
        return await self.store.accounts.add(address, **kwargs)
