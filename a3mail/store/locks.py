"""Session locks held in PostgreSQL: e.g. one POP3 session per maildrop, across processes.

A lock is a PostgreSQL *session-level* advisory lock (``pg_try_advisory_lock(int, int)``)
taken on ONE dedicated connection per process, outside the pool.  PostgreSQL releases it
when that connection ends, so a process that dies (or loses its database connection)
drops every lock it held; no row has to be cleaned up.

The first key is a 32-bit namespace derived from the schema and the lock's scope (e.g.
``"pop3"``), so that several a3mail installations in one database, or several kinds of
lock, never collide; the second is the account id (reduced to 32 bits: accounts more than
2**32 apart would share a lock, which can only refuse a login, never allow two).

Session-level advisory locks are re-entrant within one PostgreSQL session, so this process
also remembers what it holds and refuses a second acquire itself.  While any lock is held
the connection is checked every ``keepalive`` seconds; if it is lost, the locks are gone
and every holder is told through the ``on_lost`` callback it gave, so it can end its
session instead of carrying on unlocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import AsyncConnection

from a3mail.logs import get_logger
from a3mail.store.db import Database, StoreUnavailable, deferred

log = get_logger(__name__)

LostCallback = Callable[[], None]

_HELD = (
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
    " AND granted AND classid = %s::int::oid AND objid = %s::int::oid AND objsubid = 2"
)


def _int32(value: int) -> int:
    """*value* reduced to a signed 32-bit integer (PostgreSQL's ``int``)."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def namespace_key(schema: str, scope: str) -> int:
    """The first advisory-lock key of a scope in a schema (a signed 32-bit integer)."""
    return _int32(zlib.crc32(f"a3mail:{schema}:{scope}".encode()))


class SessionLock:
    """One held lock.  ``release()`` gives it back; ``confirm()`` checks it is still held."""

    def __init__(self, locks: SessionLocks, scope: str, account_id: int) -> None:
        self.locks = locks
        self.scope = scope
        self.account_id = account_id

    @property
    def held(self) -> bool:
        """True until released or lost."""
        return self.locks.holds(self)

    @deferred
    async def release(self) -> None:
        """Give the lock back (a no-op if it was already released or lost)."""
        await self.locks.release(self)

    @deferred
    async def confirm(self) -> bool:
        """True if PostgreSQL still holds the lock for this process (checks the database)."""
        return await self.locks.confirm(self)


class SessionLocks:
    """The advisory locks of this process, on one dedicated database connection."""

    def __init__(self, db: Database, *, keepalive: float = 5.0) -> None:
        self.db = db
        self.keepalive = keepalive
        self._conn: AsyncConnection[Any] | None = None
        self._mutex = asyncio.Lock()
        self._held: dict[tuple[str, int], tuple[SessionLock, LostCallback]] = {}
        self._watch: asyncio.Task[None] | None = None

    def _keys(self, scope: str, account_id: int) -> tuple[int, int]:
        return namespace_key(self.db.schema, scope), _int32(account_id)

    def holds(self, lock: SessionLock) -> bool:
        """True if *lock* is currently held by this process."""
        entry = self._held.get((lock.scope, lock.account_id))
        return entry is not None and entry[0] is lock

    @property
    def held_count(self) -> int:
        """How many locks this process holds."""
        return len(self._held)

    @deferred
    async def acquire(
        self, scope: str, account_id: int, on_lost: LostCallback
    ) -> SessionLock | None:
        """Take the lock of *account_id* in *scope* without waiting.

        Returns the lock, or None if another session (in this or another process) holds
        it.  *on_lost* is called (once, with no arguments) if the lock is lost while held
        because the database connection went away.  Raises :class:`StoreUnavailable`
        when the database cannot be reached.
        """
        key = (scope, account_id)
        async with self._mutex:
            if key in self._held:
                return None
            row = None
            for attempt in range(2):  # once more on a fresh connection if it had died idle
                conn = await self._connection()
                try:
                    cur = await conn.execute(
                        "SELECT pg_try_advisory_lock(%s, %s)", self._keys(scope, account_id)
                    )
                    row = await cur.fetchone()
                    break
                except psycopg.Error as e:
                    await self._connection_lost(e)
                    if attempt:
                        raise StoreUnavailable("database connection lost") from e
            if not row or not row[0]:
                return None
            lock = SessionLock(self, scope, account_id)
            self._held[key] = (lock, on_lost)
            self._start_watch()
            return lock

    async def release(self, lock: SessionLock) -> None:
        """Give *lock* back (nothing happens if it is no longer held)."""
        async with self._mutex:
            if not self.holds(lock):
                return
            del self._held[(lock.scope, lock.account_id)]
            conn = self._conn
            if conn is None:
                return
            try:
                await conn.execute(
                    "SELECT pg_advisory_unlock(%s, %s)", self._keys(lock.scope, lock.account_id)
                )
            except psycopg.Error as e:
                # The connection is gone, and with it the lock; others lost theirs too.
                await self._connection_lost(e)

    async def confirm(self, lock: SessionLock) -> bool:
        """True if the database still shows *lock* held on this process's connection."""
        async with self._mutex:
            if not self.holds(lock) or self._conn is None:
                return False
            try:
                cur = await self._conn.execute(_HELD, self._keys(lock.scope, lock.account_id))
                row = await cur.fetchone()
            except psycopg.Error as e:
                await self._connection_lost(e)
                return False
            return bool(row and row[0])

    @deferred
    async def check(self) -> bool:
        """Check the connection now (as the keepalive does); False if it was lost."""
        return await self._check()

    async def _check(self) -> bool:
        async with self._mutex:
            if self._conn is None:
                return not self._held
            try:
                await self._conn.execute("SELECT 1")
            except psycopg.Error as e:
                await self._connection_lost(e)
                return False
            return True

    async def close(self) -> None:
        """Close the connection (releasing every lock); holders are told they lost them."""
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
        async with self._mutex:
            conn, self._conn = self._conn, None
            lost = self._forget_all()
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()
        _notify(lost)

    async def _connection(self) -> AsyncConnection[Any]:
        """The dedicated connection, opened on first use (or again after a loss)."""
        if self._conn is not None and not self._conn.closed:
            return self._conn
        try:
            self._conn = await asyncio.wait_for(
                self.db.connect_direct(autocommit=True), self.db.acquire_timeout
            )
        except (psycopg.Error, OSError, TimeoutError) as e:
            raise StoreUnavailable("cannot connect to the database") from e
        return self._conn

    async def _connection_lost(self, error: BaseException) -> None:
        """The connection failed: every lock is gone.  Called with the mutex held."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()
        lost = self._forget_all()
        if lost:
            log.warn(
                "session locks lost with their database connection ({count} held): {error}",
                count=len(lost),
                error=str(error).strip() or type(error).__name__,
            )
        # Tell the holders after this turn, outside the mutex, so they may call back in.
        asyncio.get_running_loop().call_soon(_notify, lost)

    def _forget_all(self) -> list[LostCallback]:
        callbacks = [on_lost for _, on_lost in self._held.values()]
        self._held.clear()
        return callbacks

    def _start_watch(self) -> None:
        if self._watch is None or self._watch.done():
            self._watch = asyncio.ensure_future(self._watch_connection())

    async def _watch_connection(self) -> None:
        """While locks are held, notice a lost connection within ``keepalive`` seconds."""
        while self._held:
            await asyncio.sleep(self.keepalive)
            if self._held:
                await self._check()


def _notify(callbacks: list[LostCallback]) -> None:
    for on_lost in callbacks:
        try:
            on_lost()
        except Exception:
            log.failure("a session-lock holder failed handling the loss of its lock")
