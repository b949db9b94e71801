"""Installing Twisted's asyncio reactor, which the store's psycopg pool needs."""

from __future__ import annotations

import asyncio
import sys


class ReactorError(Exception):
    """Another reactor than asyncio is installed; the message says what to do."""


def install_asyncio_reactor() -> None:
    """Install the asyncio reactor, or check that it is the one already installed.

    Must run before anything imports ``twisted.internet.reactor``.  The event loop is
    made current first, or coroutines scheduled on it would never run.
    """
    if "twisted.internet.reactor" in sys.modules:
        from twisted.internet import reactor
        from twisted.internet.asyncioreactor import AsyncioSelectorReactor

        if not isinstance(reactor, AsyncioSelectorReactor):
            name = f"{type(reactor).__module__}.{type(reactor).__name__}"
            raise ReactorError(
                f"a3mail needs the asyncio reactor, but {name} is installed:"
                " run twistd without --reactor (or with --reactor=asyncio)"
            )
        return
    from twisted.internet import asyncioreactor

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    asyncioreactor.install(loop)
