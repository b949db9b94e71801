"""A child process for test_kill.py: runs a queue runner until it is killed.

Usage::

    python -m tests.outbound.runner_child DSN SCHEMA DATA_DIR PORT

It opens a Store on the schema and data directory and runs the outbound service with a
short lease (2 s), delivering example.net to 127.0.0.1:PORT.
"""

from __future__ import annotations

import sys

MAX_RUN_SECONDS = 60.0  # a safety net: the parent kills us long before


def main(argv: list[str]) -> None:
    from twisted.internet import asyncioreactor

    asyncioreactor.install()
    from pathlib import Path

    from twisted.internet import defer, reactor

    from a3mail.outbound.mx import MXFinder
    from a3mail.outbound.runner import QueueRunner, RunnerSettings
    from a3mail.smtp.dns import StaticResolver
    from a3mail.store import Database, Store

    dsn, schema, data_dir, port = argv
    store = Store(Database(dsn, min_size=1, max_size=2, schema=schema), Path(data_dir))

    async def run() -> None:
        await store.open(migrate=False)
        finder = MXFinder(StaticResolver(), reactor, static={"example.net": [f"127.0.0.1:{port}"]})
        settings = RunnerSettings(helo_name="child.test", poll_interval=0.1, lease_time=2.0)
        QueueRunner(store, reactor, finder, settings, worker="child").startService()
        print("started", flush=True)

    defer.Deferred.fromCoroutine(run())
    reactor.callLater(MAX_RUN_SECONDS, reactor.stop)  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main(sys.argv[1:])
