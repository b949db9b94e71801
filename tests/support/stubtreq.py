"""Driving treq's StubTreq while request handlers wait on the real database."""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor, task
from twisted.internet.defer import Deferred


async def settle(stub: Any, d: Deferred[Any]) -> Any:
    """Flush *stub*'s in-memory connection until *d* fires, letting the reactor run the
    database calls in between; returns *d*'s result."""
    fired: list[bool] = []

    def note(result: Any) -> Any:
        fired.append(True)
        return result

    d.addBoth(note)
    for _ in range(20000):
        stub.flush()
        if fired:
            break
        await task.deferLater(reactor, 0.001, lambda: None)  # type: ignore[arg-type]
    return await d
