"""GET /ready answers 503 while PostgreSQL is down and 200 again once it is back.

Uses a private embedded PostgreSQL (as tests/store/test_pg_restart.py), never the shared one.
"""

from __future__ import annotations

import time
from typing import Any

from treq.testing import StubTreq
from twisted.internet import reactor
from twisted.trial import unittest

from a3mail.config import load_config
from a3mail.http.ops import OpsResource
from a3mail.runtime import ListenerState, Runtime
from tests.store import test_pg_restart as restart
from tests.store.helpers import in_thread, sleep
from tests.support.stubtreq import settle


class ReadyAcrossRestartTests(unittest.TestCase):
    timeout = 120

    # The private server's set-up and control, borrowed (not inherited: that would run the
    # store's own restart test again).
    setUp = restart.PostgresRestartTests.setUp
    pg_ctl = restart.PostgresRestartTests.pg_ctl
    stop_server = restart.PostgresRestartTests.stop_server
    start_server = restart.PostgresRestartTests.start_server
    running = restart.PostgresRestartTests.running
    stop_postgres_for_good = restart.PostgresRestartTests.stop_postgres_for_good
    open_store = restart.PostgresRestartTests.open_store

    async def ready(self, stub: StubTreq) -> tuple[int, dict[str, Any]]:
        response = await settle(stub, stub.get("http://a3mail.test/ready"))
        body = await settle(stub, response.json())
        return response.code, body

    async def test_ready_follows_the_database(self):
        store = await self.open_store()
        config = load_config(None, data_dir=self.tmp / "data")
        runtime = Runtime(config, store, tls=None, reactor=reactor)  # type: ignore[arg-type]
        for name, description in config.listeners.items():
            runtime.listeners[name] = ListenerState(name, description, "listening")
        stub = StubTreq(OpsResource(runtime, reactor))

        code, body = await self.ready(stub)
        self.assertEqual((code, body["ready"]), (200, True), body)

        await in_thread(self.stop_server)
        started = time.monotonic()
        code, body = await self.ready(stub)
        self.assertLess(time.monotonic() - started, restart.OUTAGE_LIMIT)
        self.assertEqual(code, 503, body)
        self.assertIs(body["ready"], False)
        self.assertEqual(body["failing"], ["database"])
        self.assertFalse(body["services"]["database"])
        self.assertTrue(body["services"]["smtp"])

        await in_thread(self.start_server)
        restarted = time.monotonic()
        while True:
            code, body = await self.ready(stub)
            if code == 200:
                break
            self.assertLess(time.monotonic() - restarted, restart.RECOVERY_LIMIT, body)
            await sleep(0.2)
        self.assertIs(body["ready"], True)
        self.assertTrue(body["services"]["database"])
