"""Small helpers shared by the store resilience tests (not a test module)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from twisted.internet import reactor, task
from twisted.internet.defer import Deferred

T = TypeVar("T")


def aio(coro: Coroutine[Any, Any, T]) -> Deferred[T]:
    """Run an asyncio coroutine (store internals) and return a Deferred of its result."""
    return Deferred.fromFuture(asyncio.ensure_future(coro))


def in_thread(fn: Callable[..., T], *args: Any) -> Deferred[T]:
    """Run blocking work (subprocesses, pg_ctl) off the reactor thread."""
    return aio(asyncio.to_thread(fn, *args))


def sleep(seconds: float) -> Deferred[None]:
    """A Deferred that fires after *seconds*."""
    return task.deferLater(reactor, seconds, lambda: None)  # type: ignore[arg-type]


async def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    """Poll *predicate* until it returns something true; fail after *timeout* seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {what}")
        await sleep(0.02)
