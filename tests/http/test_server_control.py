"""POST /api/v1/server/restart: 202 at once, then a graceful stop and a restart."""

from __future__ import annotations

from typing import Any

from twisted.internet import task

from a3mail.control import Control, restart_command
from tests.http.support import ApiTestCase


class StoppableClock(task.Clock):
    running = True
    stopped = 0

    def stop(self) -> None:
        self.stopped += 1


class RestartTests(ApiTestCase):
    def runtime(self) -> Any:
        runtime = self.live_runtime()
        self.reactor = runtime.reactor = StoppableClock()
        runtime.control = Control(runtime)
        self.finals: list[Any] = []
        runtime.control.at_exit = self.finals.append
        return runtime

    async def test_restart_answers_202_then_stops_and_re_executes(self):
        reply = await self.call("POST", "/api/v1/server/restart")
        self.assertEqual(reply.status, 202, reply.body)
        self.assertEqual(
            reply.json, {"status": "restarting", "drain_timeout": 30.0, "mode": "exec"}
        )
        self.assertEqual(self.reactor.stopped, 0)  # the answer goes out first
        self.reactor.advance(1)
        self.assertEqual(self.reactor.stopped, 1)  # twistd stops: the service drains
        self.assertEqual(self.finals, [("exec", restart_command())])
        [audit], _ = await self.store.audit.query(event_type="server.restart")
        self.assertEqual(audit.event_type, "server.restart")

    async def test_restart_needs_admin(self):
        reply = await self.call("POST", "/api/v1/server/restart", key="writer")
        self.assertError(reply, 403, "forbidden")
        self.reactor.advance(1)
        self.assertEqual((self.reactor.stopped, self.finals), (0, []))
