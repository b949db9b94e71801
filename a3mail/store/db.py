"""The database layer: a psycopg 3 async pool and the one asyncio <-> Deferred bridge.

Everything above the store sees Deferreds.  Inside the store, code is plain asyncio
(``async def`` awaiting psycopg); :func:`deferred` turns such a coroutine function into one
that returns a :class:`~twisted.internet.defer.Deferred`.  This only works on Twisted's
asyncio reactor, which ``a3mail.tap`` installs (and the test suite runs under).
"""

from __future__ import annotations

import asyncio
import functools
import re
import time
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, ParamSpec, TypeVar

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from twisted.internet.defer import Deferred

from a3mail.logs import get_logger

P = ParamSpec("P")
T = TypeVar("T")

log = get_logger(__name__)

# Seconds after which an idle pooled connection is checked with a round trip before use.
RECHECK_AFTER = 5.0

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class StoreError(Exception):
    """Base class of errors the store reports to its callers (safe to show to a user)."""


class StoreUnavailable(StoreError):
    """The database cannot be reached right now: a temporary failure, try again later."""

    def __init__(self, reason: str = "database unavailable") -> None:
        super().__init__(f"temporary failure: {reason}")
        self.reason = reason


def deferred(fn: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Deferred[T]]:
    """Wrap an asyncio coroutine function so that calling it returns a Deferred.

    This is the single bridge from asyncio to Twisted in a3mail.
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Deferred[T]:
        return Deferred.fromFuture(asyncio.ensure_future(fn(*args, **kwargs)))

    return wrapper


def check_schema_name(schema: str) -> str:
    """Return *schema* if it is a plain lower-case identifier, else raise ValueError."""
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"invalid schema name {schema!r}")
    return schema


class Database:
    """A pool of connections to one PostgreSQL database (and one schema in it).

    ``acquire_timeout`` bounds how long an operation waits for a connection: while the
    database is down, operations fail after that time with :class:`StoreUnavailable`
    instead of hanging.  The pool reconnects by itself when the server comes back.
    """

    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 2,
        max_size: int = 10,
        acquire_timeout: float = 5.0,
        statement_timeout: float = 30.0,
        schema: str = "public",
        application_name: str = "a3mail",
    ) -> None:
        self.dsn = dsn
        self.schema = check_schema_name(schema)
        self.application_name = application_name
        self.acquire_timeout = acquire_timeout
        self.connect_kwargs: dict[str, Any] = {
            "application_name": application_name,
            "options": (
                f"-c search_path={self.schema} "
                f"-c statement_timeout={int(statement_timeout * 1000)} "
                "-c idle_in_transaction_session_timeout=60000"
            ),
            "connect_timeout": max(1, int(acquire_timeout)),
            # Single statements commit by themselves (one round trip); several statements
            # that belong together use transaction(), which sends BEGIN/COMMIT explicitly.
            "autocommit": True,
        }
        #: Called with (seconds, lost) after each pooled operation (metrics); None: nothing.
        self.on_operation: Callable[[float, bool], None] | None = None
        # When each pooled connection was last given back in good order (see _check).
        self._last_good: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()
        self.pool = AsyncConnectionPool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            kwargs=self.connect_kwargs,
            timeout=acquire_timeout,
            # Give up a failed reconnection quickly: the next request grows the pool again, so
            # service comes back within a second of the database instead of after a long backoff.
            reconnect_timeout=acquire_timeout,
            check=self._check,
            open=False,
            name=application_name,
        )

    async def open(self, wait: bool = True) -> None:
        """Open the pool; with *wait*, fail with StoreUnavailable unless it connects in time."""
        if wait:
            try:  # one direct attempt first, for a precise reason when it fails
                probe = await self.connect_direct()
            except (psycopg.Error, OSError) as e:
                reason = " ".join(line.strip() for line in str(e).splitlines() if line.strip())
                reason = reason[:300] or type(e).__name__
                raise StoreUnavailable(f"cannot connect to the database: {reason}") from e
            await probe.close()
        try:
            await self.pool.open(wait=wait, timeout=self.acquire_timeout)
        except PoolTimeout as e:
            await self.pool.close()
            raise StoreUnavailable("cannot connect to the database") from e

    async def close(self) -> None:
        """Close every connection of the pool."""
        await self.pool.close()

    async def connect_direct(self, autocommit: bool = True) -> AsyncConnection[Any]:
        """A connection outside the pool (for LISTEN and session locks)."""
        kwargs = {**self.connect_kwargs, "autocommit": autocommit}
        return await AsyncConnection.connect(self.dsn, **kwargs)

    async def _check(self, conn: AsyncConnection[Any]) -> None:
        """Pool check on checkout: a round trip only for a connection idle for a while.

        A connection used moments ago is almost surely alive; if it is not (the server
        restarted just now), that one operation fails with StoreUnavailable and the pool
        drops the broken connection.  Idle connections are checked before use.
        """
        last = self._last_good.get(conn)
        if last is None or time.monotonic() - last > RECHECK_AFTER:
            await AsyncConnectionPool.check_connection(conn)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        """A pooled autocommit connection: each statement commits by itself unless run
        inside ``conn.transaction()``."""
        started, lost = time.perf_counter(), False
        try:
            async with self.pool.connection() as conn:
                conn.row_factory = dict_row  # type: ignore[assignment]
                yield conn
                self._last_good[conn] = time.monotonic()
        except PoolTimeout as e:
            lost = True
            raise StoreUnavailable("no database connection available") from e
        except psycopg.OperationalError as e:
            lost = True
            log.warn("database operation failed: {error}", error=str(e).strip())
            raise StoreUnavailable("database connection lost") from e
        finally:
            if self.on_operation is not None:
                self.on_operation(time.perf_counter() - started, lost)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection[Any]]:
        """A pooled connection inside one transaction, committed on normal exit."""
        async with self.connection() as conn, conn.transaction():
            yield conn

    async def fetchall(self, query: str, params: Any = None) -> list[dict[str, Any]]:
        """Run one statement (committed by itself) and return every row."""
        async with self.connection() as conn:
            cur = await conn.execute(query, params)  # type: ignore[arg-type]
            return await cur.fetchall()  # type: ignore[return-value]

    async def fetchone(self, query: str, params: Any = None) -> dict[str, Any] | None:
        """Run one statement (committed by itself) and return the first row or None."""
        async with self.connection() as conn:
            cur = await conn.execute(query, params)  # type: ignore[arg-type]
            return await cur.fetchone()  # type: ignore[return-value]

    async def execute(self, query: str, params: Any = None) -> int:
        """Run one statement (committed by itself); return the affected row count."""
        async with self.connection() as conn:
            cur = await conn.execute(query, params)  # type: ignore[arg-type]
            return cur.rowcount

    def stats(self) -> dict[str, int]:
        """Pool figures (size, available, waiting, ...) for health checks and metrics."""
        return dict(self.pool.get_stats())
