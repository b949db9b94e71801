"""The store's event bus over PostgreSQL LISTEN/NOTIFY.

Store operations publish events with :func:`publish` inside their transaction, so an
event is heard only once its change is committed, by every a3mail process on the
database.  :class:`EventBus` keeps one LISTEN connection, reconnects by itself after
losing it (LISTEN again), and tells subscribers with a ``bus.reconnected`` event that
they may have missed changes in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import attrs
import psycopg
from psycopg import AsyncConnection, sql

from a3mail.logs import get_logger
from a3mail.store.db import Database

log = get_logger(__name__)

# Event types.
MESSAGE_ADDED = "message.added"
FLAGS_CHANGED = "flags.changed"
EXPUNGED = "message.expunged"
MAILBOX_CREATED = "mailbox.created"
MAILBOX_RENAMED = "mailbox.renamed"
MAILBOX_DELETED = "mailbox.deleted"
BUS_RECONNECTED = "bus.reconnected"
AUTH_CHANGED = "auth.changed"  # sent by triggers on api_keys and accounts (migration 0011)

_MAX_PAYLOAD = 7000  # PostgreSQL refuses NOTIFY payloads of 8000 bytes or more
_LIST_FIELDS = ("uids",)


@attrs.frozen
class Event:
    """One change announced on the bus."""

    type: str
    data: dict[str, Any]


Subscriber = Callable[[Event], None]


def channel_for(schema: str) -> str:
    """The NOTIFY channel of a schema (tests use one schema per worker)."""
    return "a3mail_events" if schema == "public" else f"a3mail_events_{schema}"


def encode(event_type: str, data: dict[str, Any]) -> str:
    """The JSON payload of an event; long UID lists are dropped (``uids: null`` = resync)."""
    payload = json.dumps({"type": event_type, **data}, separators=(",", ":"), default=str)
    if len(payload.encode()) >= _MAX_PAYLOAD:
        trimmed = {k: (None if k in _LIST_FIELDS else v) for k, v in data.items()}
        payload = json.dumps({"type": event_type, **trimmed}, separators=(",", ":"), default=str)
    return payload


async def publish(conn: AsyncConnection[Any], channel: str, event_type: str, **data: Any) -> None:
    """Queue an event in the current transaction; it is delivered when it commits."""
    await conn.execute("SELECT pg_notify(%s, %s)", (channel, encode(event_type, data)))


class EventBus:
    """Listens on the store's channel and calls subscribers for each event."""

    def __init__(self, db: Database, channel: str, keepalive: float = 30.0) -> None:
        self.db = db
        self.channel = channel
        self.keepalive = keepalive
        self._subscribers: list[Subscriber] = []
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self.reconnects = 0

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call *callback* for every event; returns a function that unsubscribes."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    @property
    def connected(self) -> bool:
        """True while the LISTEN connection is up."""
        return self._connected.is_set()

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until LISTEN is in place (raises TimeoutError)."""
        await asyncio.wait_for(self._connected.wait(), timeout)

    def start(self) -> None:
        """Start listening in the background."""
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        """Stop listening and close the connection."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._connected.clear()

    def dispatch(self, event: Event) -> None:
        """Hand one event to every subscriber; a failing subscriber is logged, not fatal."""
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:
                log.failure("event subscriber {callback!r} failed", callback=callback)

    async def _run(self) -> None:
        delay = 0.2
        first = True
        while True:
            conn = None
            try:
                conn = await self.db.connect_direct(autocommit=True)
                await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                self._connected.set()
                delay = 0.2
                if not first:
                    self.reconnects += 1
                    log.info("event bus reconnected")
                    self.dispatch(Event(BUS_RECONNECTED, {}))
                first = False
                await self._listen(conn)
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, OSError) as e:
                if self._connected.is_set():
                    log.warn("event bus lost its connection: {error}", error=str(e).strip())
                self._connected.clear()
            finally:
                if conn is not None:
                    await _close_quietly(conn)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _listen(self, conn: AsyncConnection[Any]) -> None:
        while True:
            async for notify in conn.notifies(timeout=self.keepalive):
                event = _decode(notify.payload)
                if event is not None:
                    self.dispatch(event)
            await conn.execute("SELECT 1")  # notice a dead connection while idle


def _decode(payload: str) -> Event | None:
    try:
        data = json.loads(payload)
        event_type = data.pop("type")
    except (ValueError, KeyError, AttributeError, TypeError):  # TypeError: a JSON array
        log.warn("ignoring malformed event payload {payload!r}", payload=payload[:200])
        return None
    return Event(str(event_type), data)


async def _close_quietly(conn: AsyncConnection[Any]) -> None:
    with contextlib.suppress(Exception):  # the connection is already broken
        await conn.close()
