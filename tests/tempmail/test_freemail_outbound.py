"""Sends made through the freemail API really leave through a3mail's outbound queue: the
queue runner delivers them over a real socket to a scripted SMTP server, and the send's
status follows (delivered, failed); a scheduled send is not attempted before its time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from twisted.internet import reactor

from a3mail.outbound.mx import MXFinder
from a3mail.outbound.runner import QueueRunner, RunnerSettings
from a3mail.smtp.authres import StaticResolver
from tests.outbound.support import ScriptedFactory
from tests.tempmail.freemail_support import FreemailTestCase


class OutboundSendTests(FreemailTestCase):
    async def setUp(self) -> None:  # type: ignore[override]
        await super().setUp()
        self.sender = (await self.create("news"))["email"]
        self.server = ScriptedFactory()
        port = reactor.listenTCP(0, self.server, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        finder = MXFinder(
            StaticResolver(),
            reactor,
            timeout=5,
            static={"example.net": [f"127.0.0.1:{port.getHost().port}"]},
        )
        self.runner = QueueRunner(
            self.store,
            reactor,
            finder,
            RunnerSettings(helo_name="out.a3mail.test", connect_timeout=5),
            worker="freemail-test",
        )

    async def run_round(self) -> int:
        items = await self.store.outbound.lease(self.runner.worker, 100, 60)
        for item in items:
            await self.runner.deliver(item)
        return len(items)

    async def send(self, **fields: Any) -> str:
        body = {"from": self.sender, "to": "bob@example.net", "subject": "Launch", "text": "hi"}
        reply = await self.call("POST", "/api/send", json={**body, **fields})
        self.assertEqual(reply.status, 200, reply.body)
        return str(reply.json["id"])

    async def last_event(self, sent_id: str) -> str:
        return str((await self.call("GET", f"/api/send/{sent_id}")).json["last_event"])

    async def test_a_send_is_delivered_by_the_queue_runner(self):
        sent_id = await self.send()
        self.assertEqual(await self.run_round(), 1)
        [(sender, recipients, data)] = self.server.received
        self.assertEqual((sender, recipients), (self.sender.encode(), [b"bob@example.net"]))
        self.assertIn(b"Subject: Launch\r\n", data)
        self.assertIn(b"Message-ID: <", data)
        self.assertEqual(await self.last_event(sent_id), "delivered")
        self.assertEqual(await self.store.queue.list(), [])

    async def test_a_refused_send_is_failed(self):
        self.server.rcpt[b"bob@example.net"] = b"550 5.1.1 no such user"
        sent_id = await self.send()
        await self.run_round()
        self.assertEqual(self.server.received, [])
        self.assertEqual(await self.last_event(sent_id), "failed")

    async def test_a_scheduled_send_waits_for_its_time(self):
        # the queue runs on the database clock: bring the API's clock to it
        self.clock.advance(datetime.now(UTC).timestamp() - self.clock.seconds())
        self.cookies.clear()  # the sessions made before have expired
        when = datetime.now(UTC) + timedelta(days=2)
        sent_id = await self.send(scheduledAt=when.isoformat())
        self.assertEqual(await self.run_round(), 0)
        self.assertEqual(await self.last_event(sent_id), "scheduled")
        # two days pass: moved to a moment ago, the entry is due
        due = datetime.now(UTC) - timedelta(seconds=1)
        self.assertTrue(await self.store.freemail_sent.reschedule(int(sent_id), due))
        self.assertEqual(await self.run_round(), 1)
        self.assertEqual(await self.last_event(sent_id), "delivered")
