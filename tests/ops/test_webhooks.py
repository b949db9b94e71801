"""The webhook dispatcher against a real store and a real local HTTP receiver: retries with
backoff (Clock-driven), giving up, leases shared by two processes, lease takeover, clean
shutdown, and end to end from ``messages.deliver`` to one signed ``email.received`` POST."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from twisted.application.service import IService
from twisted.internet import reactor
from zope.interface.verify import verifyObject

from a3mail.background import BACKGROUND_SERVICES
from a3mail.ops.webhooks import BACKOFF, WebhookService
from a3mail.store.db import deferred
from a3mail.store.records import DeliveryStatus
from tests.store.helpers import aio, sleep
from tests.support.store import StoreTestCase
from tests.support.webhooks import (
    MESSAGE,
    Receiver,
    make_runtime,
    parse,
    wall_clock,
)

DOCS = Path(__file__).parents[2] / "docs" / "webhooks.md"


async def eventually(check: Any, timeout: float = 10.0, what: str = "") -> Any:
    """Await *check()* (a Deferred or coroutine of a value) until the value is true."""
    for _ in range(int(timeout / 0.02)):
        value = await check()
        if value:
            return value
        await sleep(0.02)
    raise AssertionError(f"not reached within {timeout} s: {what}")


class DispatcherTestCase(StoreTestCase):
    async def setUp(self) -> None:  # type: ignore[override]
        await super().setUp()
        self.receiver = await Receiver().start()
        self.addCleanup(self.receiver.stop)
        self.clock = wall_clock()
        self.alice = await self.make_account("alice@example.com")
        self.store.webhooks.allow_private_targets = True
        self.hook = await self.store.webhooks.create(
            url=self.receiver.url, events=["email.received", "email.sent"], secret="hook-secret-1"
        )

    def start_service(self, store=None, **settings) -> WebhookService:
        service = WebhookService(make_runtime(store or self.store, **settings), clock=self.clock)
        service.startService()
        self.addCleanup(service.stopService)
        return service

    def rows(self):
        return deferred(self.store.db.fetchall)(
            "SELECT * FROM webhook_deliveries ORDER BY id", None
        )

    async def delivery(self):
        [row] = await self.rows()
        return row

    async def timer_at(self, moment: float) -> None:
        """Wait until the dispatcher set a timer for *moment* on the clock."""

        async def scheduled():
            return any(abs(c.getTime() - moment) < 0.001 for c in self.clock.getDelayedCalls())

        await eventually(scheduled, what=f"a timer at {moment}")

    async def attempts(self, n: int):
        async def done():
            row = await self.delivery()
            return row if row["attempts"] == n and row["leased_by"] is None else None

        return await eventually(done, what=f"{n} attempts recorded")


class RetryTests(DispatcherTestCase):
    async def test_retries_with_backoff_until_success(self):
        self.receiver.codes = [500, 502]
        await self.store.webhooks.emit("email.sent", "q:1", {"user": "alice@example.com"})
        service = self.start_service()
        verifyObject(IService, service)
        await self.receiver.wait(1)
        start = self.clock.seconds()
        row = await self.attempts(1)
        self.assertEqual((row["status"], row["response_status"]), ("retrying", 500))
        self.assertEqual(row["next_attempt_at"].timestamp(), start + BACKOFF[0])
        await self.timer_at(start + BACKOFF[0])
        self.clock.advance(BACKOFF[0] - 1)
        self.assertEqual(len(self.receiver.requests), 1)
        self.clock.advance(1)
        await self.receiver.wait(2)
        await self.attempts(2)
        await self.timer_at(start + BACKOFF[0] + BACKOFF[1])
        self.clock.advance(BACKOFF[1])
        await self.receiver.wait(3)
        row = await self.attempts(3)
        self.assertEqual((row["status"], row["response_status"]), ("delivered", 200))
        bodies = {r.body for r in self.receiver.requests}
        self.assertEqual(bodies, {row["body"].encode()})  # the frozen body, every time
        ids = {r.headers["x-a3mail-delivery"] for r in self.receiver.requests}
        self.assertEqual(ids, {str(row["id"])})
        [delivery], _ = await self.store.webhooks.deliveries(self.hook.id)
        self.assertEqual(
            [(a.attempt, a.response_status) for a in delivery.attempt_log],
            [(1, 500), (2, 502), (3, 200)],
        )
        hook = await self.store.webhooks.get(self.hook.id)
        self.assertEqual(hook.failure_count, 0)
        self.assertEqual(hook.last_success_at.timestamp(), start + BACKOFF[0] + BACKOFF[1])

    async def test_gives_up_after_max_attempts(self):
        self.receiver.codes = [500] * 5
        await self.store.webhooks.emit("email.sent", "q:1", {})
        self.start_service(max_attempts=2)
        await self.receiver.wait(1)
        await self.attempts(1)
        await self.timer_at(self.clock.seconds() + BACKOFF[0])
        self.clock.advance(BACKOFF[0])
        await self.receiver.wait(2)
        row = await self.attempts(2)
        self.assertEqual((row["status"], row["last_error"]), ("failed", "HTTP 500"))
        self.clock.advance(86400)
        await sleep(0.1)
        self.assertEqual(len(self.receiver.requests), 2)
        self.assertEqual((await self.store.webhooks.get(self.hook.id)).failure_count, 2)

    async def test_a_refused_target_is_recorded_as_a_failed_attempt(self):
        await self.store.webhooks.emit("email.sent", "q:1", {})
        self.start_service(allow_private_targets=False)  # the receiver is on 127.0.0.1
        row = await self.attempts(1)
        self.assertEqual(row["status"], "retrying")
        self.assertEqual(row["last_error"], "refused: 127.0.0.1 is a loopback address")
        self.assertEqual(self.receiver.requests, [])


class SharingTests(DispatcherTestCase):
    async def test_two_processes_post_each_delivery_exactly_once(self):
        other = self.make_store()
        await other.open()
        self.addCleanup(other.close)
        self.start_service()
        self.start_service(store=other)
        for i in range(25):
            await self.store.webhooks.emit("email.sent", f"q:{i}", {"i": i})

        async def all_delivered():
            rows = await self.rows()
            return len(rows) == 25 and all(r["status"] == "delivered" for r in rows)

        await eventually(all_delivered, what="25 deliveries")
        ids = [r.headers["x-a3mail-delivery"] for r in self.receiver.requests]
        self.assertEqual(len(ids), 25)
        self.assertEqual(len(set(ids)), 25)
        workers = await deferred(self.store.db.fetchall)(
            "SELECT DISTINCT worker FROM webhook_attempts", None
        )
        self.assertLessEqual(len(workers), 2)

    async def test_a_dead_process_lease_is_taken_over_when_it_expires(self):
        await self.store.webhooks.emit("email.sent", "q:1", {})
        now = datetime.fromtimestamp(self.clock.seconds(), UTC)
        [leased] = await self.store.webhooks.lease("dead", now=now, lease_seconds=300, limit=1)
        service = self.start_service()
        await self.timer_at(now.timestamp() + 300)
        self.assertEqual(self.receiver.requests, [])
        self.clock.advance(300)
        await self.receiver.wait(1)
        row = await self.attempts(1)
        self.assertEqual((row["id"], row["status"]), (leased.id, "delivered"))
        [attempt] = await deferred(self.store.db.fetchall)("SELECT * FROM webhook_attempts", None)
        self.assertEqual(attempt["worker"], service.worker)

    async def test_stopping_gives_back_the_lease_of_a_post_in_flight(self):
        self.receiver.hang = True
        await self.store.webhooks.emit("email.sent", "q:1", {})
        service = self.start_service()
        await self.receiver.wait(1)
        self.assertEqual((await self.delivery())["leased_by"], service.worker)
        await service.stopService()
        row = await self.delivery()
        self.assertEqual((row["leased_by"], row["attempts"], row["status"]), (None, 0, "pending"))


class EndToEndTests(DispatcherTestCase):
    async def test_a_delivered_message_is_posted_once_signed(self):
        other = self.make_store()  # a second a3mail process with its own dispatcher
        await other.open()
        self.addCleanup(other.close)
        await aio(self.store.events.wait_connected(10))
        await aio(other.events.wait_connected(10))
        self.start_service()
        self.start_service(store=other)
        blob = await self.store.incoming(MESSAGE)
        [result] = await self.store.messages.deliver(
            blob, ["alice@example.com"], parsed=parse(MESSAGE)
        )
        self.assertEqual(result.status, DeliveryStatus.DELIVERED)
        await self.receiver.wait(1)
        await self.attempts(1)
        await sleep(0.2)  # time for a duplicate, if there were one
        [request] = self.receiver.requests
        body = json.loads(request.body)
        self.assertEqual(body["event"], "email.received")
        self.assertEqual(request.headers["x-a3mail-event"], "email.received")
        self.assertEqual(
            {k: body["data"][k] for k in ("user", "from", "subject", "size", "uid")},
            {
                "user": "alice@example.com",
                "from": "bob@remote.example",
                "subject": "Webhook test",
                "size": len(MESSAGE),
                "uid": result.uid,
            },
        )
        verify, signature = documented_verify(), request.headers["x-a3mail-signature"]
        self.assertTrue(verify("hook-secret-1", request.body, signature))
        self.assertFalse(verify("wrong-secret", request.body, signature))
        self.assertFalse(verify("hook-secret-1", request.body + b" ", signature))

    async def test_catch_up_at_start_posts_mail_nobody_heard(self):
        blob = await self.store.incoming(MESSAGE)
        await self.store.messages.deliver(blob, ["alice@example.com"], parsed=parse(MESSAGE))
        self.start_service()  # no dispatcher was running when the message arrived
        await self.receiver.wait(1)
        self.assertEqual(json.loads(self.receiver.requests[0].body)["event"], "email.received")

    def test_the_service_is_registered_as_a_background_service(self):
        self.assertIn("webhooks", BACKGROUND_SERVICES)
        service = BACKGROUND_SERVICES["webhooks"](make_runtime(self.store))
        self.assertIsInstance(service, WebhookService)
        self.assertTrue(self.store.webhooks.allow_private_targets)
        self.assertIs(service.clock, reactor)


def documented_verify() -> Any:
    """The ``verify`` function of the Python snippet in docs/webhooks.md."""
    text = DOCS.read_text()
    [code] = [c for c in re.findall(r"```python\n(.*?)```", text, re.S) if "def verify" in c]
    namespace: dict[str, Any] = {}
    exec(compile(code, str(DOCS), "exec"), namespace)  # noqa: S102
    return namespace["verify"]
