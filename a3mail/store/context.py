"""What every table-group module of the store shares: the database, the files, the channel."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import attrs
from psycopg import AsyncConnection

from a3mail.store import events
from a3mail.store.blobs import BlobStore
from a3mail.store.db import Database

T = TypeVar("T")


@attrs.frozen
class StoreContext:
    """The database pool, the maildir tree and the event channel of one store."""

    db: Database
    blobs: BlobStore
    channel: str
    #: Characters that separate an address's extension (``alice+news@``): "" for none.
    recipient_delimiter: str = "+"
    #: Called (in this process) after a committed change that may end an API key's validity.
    auth_observers: list[Callable[[], None]] = attrs.field(factory=list)

    def auth_changed(self) -> None:
        """Tell this process's key caches that a key or its account changed."""
        for observer in self.auth_observers:
            observer()

    async def in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking file work in a worker thread."""
        return await asyncio.to_thread(fn, *args)

    async def publish(self, conn: AsyncConnection[Any], event_type: str, **data: Any) -> None:
        """Announce a change when the current transaction commits."""
        await events.publish(conn, self.channel, event_type, **data)


async def fetchone(conn: AsyncConnection[Any], query: str, params: Any = None) -> Any:
    """Execute on *conn* and return the first row (a dict) or None."""
    cur = await conn.execute(query, params)  # type: ignore[arg-type]
    return await cur.fetchone()


async def fetchall(conn: AsyncConnection[Any], query: str, params: Any = None) -> list[Any]:
    """Execute on *conn* and return all rows (dicts)."""
    cur = await conn.execute(query, params)  # type: ignore[arg-type]
    return await cur.fetchall()
