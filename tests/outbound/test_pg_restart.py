"""The queue runner keeps working across a PostgreSQL restart (a private server, stopped
and started with pg_ctl as in tests.store.test_pg_restart)."""

from __future__ import annotations

from twisted.internet import reactor
from twisted.trial import unittest

from a3mail.outbound.mx import MXFinder
from a3mail.outbound.runner import QueueRunner, RunnerSettings
from a3mail.smtp.dns import StaticResolver
from tests.outbound.support import MESSAGE, ScriptedFactory
from tests.store import test_pg_restart
from tests.store.helpers import in_thread, sleep, wait_for


class RunnerAcrossRestartTests(unittest.TestCase):
    timeout = 120
    # the private-server plumbing of the store's restart test
    _base = test_pg_restart.PostgresRestartTests
    setUp = _base.setUp
    pg_ctl = _base.pg_ctl
    stop_server = _base.stop_server
    start_server = _base.start_server
    running = _base.running
    stop_postgres_for_good = _base.stop_postgres_for_good
    open_store = _base.open_store

    async def test_runner_delivers_before_and_after_a_restart(self):
        store = await self.open_store()
        server = ScriptedFactory()
        port = reactor.listenTCP(0, server, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        finder = MXFinder(
            StaticResolver(), reactor, static={"example.net": [f"127.0.0.1:{port.getHost().port}"]}
        )
        runner = QueueRunner(
            store, reactor, finder, RunnerSettings(helo_name="out.test", poll_interval=0.2)
        )
        runner.startService()
        self.addCleanup(runner.stopService)

        async def send(n: int) -> None:
            blob = await store.incoming(MESSAGE.replace(b"Hi Bob", b"Hi Bob %d" % n))
            await store.queue.enqueue(blob, "", ["bob@example.net"], keep_source=False)

        await send(1)
        await wait_for(lambda: len(server.received) == 1, 10, "delivery before the restart")
        await in_thread(self.stop_server)
        await wait_for(lambda: runner.stats.lease_errors > 0, 10, "a lease round fails")
        await in_thread(self.start_server)
        for _ in range(50):  # the pool reconnects by itself
            try:
                await send(2)
                break
            except Exception:
                await sleep(0.2)
        await wait_for(lambda: len(server.received) == 2, 20, "delivery after the restart")
        self.assertIn(b"Hi Bob 2", server.received[1][2])
