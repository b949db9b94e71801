"""A child process for tests/store/test_crash.py: delivers messages until it is killed.

Usage::

    python -m tests.support.crash_child DSN SCHEMA DATA_DIR APP_NAME PREFIX ADDRESS...

It opens a Store (fsync on, no migration, no event bus) on the schema and data directory,
then runs a few delivery loops concurrently.  After each ``deliver`` has reported
``DELIVERED`` for a recipient it prints ``<token> <address>`` on its own line and flushes,
so the parent knows exactly which deliveries were acknowledged.  The bytes of a message
and its recipients are a pure function of its token (:func:`message_for`), so the parent
can check the stored bytes without being told them.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Sequence

# Recipient patterns, as indexes into the address list.
_PATTERNS = ((0,), (1,), (2,), (0, 1), (0, 1, 2), (2, 0))
LOOPS = 3
MAX_RUN_SECONDS = 60.0  # a safety net: the parent kills us long before


def recipients_for(token: str, addresses: Sequence[str]) -> list[str]:
    """The recipients of the message named *token*."""
    digest = hashlib.sha256(token.encode()).digest()
    pattern = _PATTERNS[digest[0] % len(_PATTERNS)]
    return [addresses[i % len(addresses)] for i in pattern]


def message_for(token: str) -> bytes:
    """The exact bytes of the message named *token* (100 bytes to ~120 kB, CRLF lines)."""
    digest = hashlib.sha256(token.encode()).digest()
    lines = 1 + int.from_bytes(digest[1:3], "big") % 1500
    head = (
        f"From: crash@remote.example\r\nTo: undisclosed-recipients:;\r\n"
        f"Subject: crash test {token}\r\nX-Crash-Token: {token}\r\n\r\n"
    ).encode()
    seed = hashlib.sha256(digest).hexdigest()  # 64 characters
    body = b"".join(f"{token} {i:05d} {seed}\r\n".encode() for i in range(lines))
    return head + body


def main(argv: list[str]) -> None:
    from twisted.internet import asyncioreactor

    asyncioreactor.install()

    import os
    import traceback
    from pathlib import Path

    from twisted.internet import defer, task

    from a3mail.store import Database, Store
    from a3mail.store.records import DeliveryStatus

    dsn, schema, data_dir, app_name, prefix, *addresses = argv

    async def loop(store: Store, n: int) -> None:
        try:
            i = 0
            while True:
                token = f"{prefix}-{n}-{i}"
                i += 1
                recipients = recipients_for(token, addresses)
                blob = await store.incoming(message_for(token))
                results = await store.messages.deliver(blob, recipients)
                for result in results:
                    if result.status is not DeliveryStatus.DELIVERED:
                        raise RuntimeError(f"unexpected delivery result {result!r}")
                    sys.stdout.write(f"{token} {result.recipient}\n")
                sys.stdout.flush()
        except BaseException:
            traceback.print_exc()
            sys.stderr.flush()
            os._exit(3)

    async def run(reactor: object) -> None:
        db = Database(dsn, min_size=1, max_size=LOOPS + 1, schema=schema, application_name=app_name)
        store = Store(db, Path(data_dir), fsync=True)
        await store.open(migrate=False, listen=False)
        for n in range(LOOPS):
            defer.Deferred.fromCoroutine(loop(store, n))
        await task.deferLater(reactor, MAX_RUN_SECONDS, lambda: None)  # type: ignore[arg-type]
        os._exit(4)  # never reached when the parent kills us in time

    task.react(lambda reactor: defer.Deferred.fromCoroutine(run(reactor)))


if __name__ == "__main__":
    main(sys.argv[1:])
