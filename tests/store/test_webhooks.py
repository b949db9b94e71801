"""Webhooks in the store: the registry, the idempotent fan-out, leases and attempts."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from psycopg import errors
from twisted.internet import defer
from twisted.trial import unittest

from a3mail.store import Database
from a3mail.store import migrate as migrations
from a3mail.store import webhooks as webhooks_module
from a3mail.store.db import deferred
from a3mail.store.records import DeliveryStatus, LimitExceeded, NotFound
from a3mail.store.webhook_events import WEBHOOK_QUEUED, event_id
from a3mail.store.webhook_targets import TargetRefused
from a3mail.store.webhooks import AttemptOutcome, backoff_delay
from tests.store.helpers import aio, wait_for
from tests.support import pg
from tests.support.store import StoreTestCase, require_asyncio_reactor
from tests.support.webhooks import MESSAGE, parse

URL = "https://hooks.example.net/a3mail"
BACKOFF = (30.0, 120.0, 600.0)


class WebhookStoreTestCase(StoreTestCase):
    async def setUp(self) -> None:  # type: ignore[override]
        await super().setUp()
        self.hooks = self.store.webhooks
        self.alice = await self.make_account("alice@example.com")
        self.bob = await self.make_account("bob@example.com")

    async def deliver(self, to: str = "alice@example.com", store=None, **kwargs):
        store = store or self.store
        blob = await store.incoming(MESSAGE)
        [result] = await store.messages.deliver(blob, [to], parsed=parse(MESSAGE), **kwargs)
        self.assertEqual(result.status, DeliveryStatus.DELIVERED)
        return result

    def key(self, result):
        return (result.account_id, result.mailbox_id, result.uid)

    def execute(self, query: str, params=None):
        return deferred(self.store.db.execute)(query, params)

    async def rows(self, query: str = "SELECT * FROM webhook_deliveries ORDER BY id", *args):
        return await self.sql(query, args or None)


class Migration0004Tests(unittest.TestCase):
    async def setUp(self) -> None:  # type: ignore[override]
        require_asyncio_reactor()
        self.schema = pg.fresh_schema("mig4")
        self.addCleanup(pg.drop_schema, self.schema)
        self.db = Database(pg.dsn(), min_size=1, max_size=2, schema=self.schema)
        await aio(self.db.open())
        self.addCleanup(lambda: aio(self.db.close()))

    async def test_0004_creates_the_webhook_tables_with_their_constraints(self):
        applied = await aio(migrations.migrate(self.db))
        self.assertIn((4, "webhooks"), [(m.version, m.name) for m in applied])
        rows = await aio(
            self.db.fetchall(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (self.schema,),
            )
        )
        self.assertLessEqual(
            {"webhooks", "webhook_deliveries", "webhook_attempts"}, {r["table_name"] for r in rows}
        )
        insert = "INSERT INTO webhooks (url, events, secret) VALUES (%s, %s, %s) RETURNING id"
        for bad in [("", ["email.sent"], "s"), ("https://x", [], "s"), ("https://x", ["x"], "s")]:
            with self.assertRaises(errors.CheckViolation):
                await aio(self.db.fetchall(insert, bad))
        [hook] = await aio(self.db.fetchall(insert, ("https://x", ["email.sent"], "s")))
        delivery = (
            "INSERT INTO webhook_deliveries (webhook_id, event, event_key, event_id, body)"
            " VALUES (%s, 'email.sent', 'k', gen_random_uuid(), '{}') ON CONFLICT DO NOTHING"
        )
        self.assertEqual(await aio(self.db.execute(delivery, (hook["id"],))), 1)
        self.assertEqual(await aio(self.db.execute(delivery, (hook["id"],))), 0)  # unique key
        with self.assertRaises(errors.CheckViolation):
            await aio(self.db.execute("UPDATE webhook_deliveries SET status = 'lost'"))
        await aio(self.db.execute("DELETE FROM webhooks"))
        self.assertEqual(await aio(self.db.fetchall("SELECT * FROM webhook_deliveries")), [])


class RegistryTests(WebhookStoreTestCase):
    async def test_create_returns_the_secret_once(self):
        hook = await self.hooks.create(url=URL, events=["email.received"], secret="s3cret-value")
        self.assertEqual(hook.secret, "s3cret-value")
        self.assertEqual((hook.url, hook.events, hook.account_id), (URL, ("email.received",), None))
        self.assertTrue(hook.enabled)
        self.assertEqual(
            (hook.failure_count, hook.last_success_at, hook.last_failure_at), (0, None, None)
        )
        self.assertIsNone((await self.hooks.get(hook.id)).secret)
        self.assertEqual([h.secret for h in await self.hooks.list()], [None])
        self.assertNotIn("s3cret", repr(hook))

    async def test_a_secret_is_generated_when_none_is_given(self):
        one = await self.hooks.create(url=URL, events=["email.sent"])
        two = await self.hooks.create(url=URL, events=["email.sent"])
        self.assertGreaterEqual(len(one.secret), 40)
        self.assertNotEqual(one.secret, two.secret)
        [row] = await self.sql("SELECT secret FROM webhooks WHERE id = %s", (one.id,))
        self.assertEqual(row["secret"], one.secret)  # kept: the dispatcher signs with it

    async def test_events_are_validated_and_deduplicated(self):
        hook = await self.hooks.create(
            url=URL, events=["email.sent", "email.bounced", "email.sent", "email.deferred"]
        )
        self.assertEqual(hook.events, ("email.sent", "email.bounced", "email.deferred"))
        with self.assertRaises(ValueError) as caught:
            await self.hooks.create(url=URL, events=["email.received", "email.opened"])
        self.assertIn("'email.opened'", str(caught.exception))
        for bad in ([], "email.sent", None):
            with self.assertRaises(ValueError):
                await self.hooks.create(url=URL, events=bad)

    async def test_urls_are_validated(self):
        refused = [
            "ftp://hooks.example.net/",
            "https://user:pw@hooks.example.net/",
            "https://hooks.example.net/" + "x" * 2048,
            "https:///path",
            "https://hooks.example.net/#frag",
            "http://127.0.0.1:8080/",
            "http://10.1.2.3/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
            "http://[fd00::5]/",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://localhost:9000/",
            "not a url",
        ]
        for url in refused:
            with self.assertRaises(TargetRefused, msg=url):
                await self.hooks.create(url=url, events=["email.sent"])
        self.assertEqual(await self.hooks.list(), [])
        self.hooks.allow_private_targets = True
        hook = await self.hooks.create(url="http://127.0.0.1:8080/x", events=["email.sent"])
        self.assertEqual(hook.url, "http://127.0.0.1:8080/x")

    async def test_secret_and_description_are_bounded(self):
        for secret in ("short", "x" * 257, "tab\there!"):
            with self.assertRaises(ValueError):
                await self.hooks.create(url=URL, events=["email.sent"], secret=secret)
        with self.assertRaises(ValueError):
            await self.hooks.create(url=URL, events=["email.sent"], description="d" * 501)

    async def test_unknown_account_is_not_found(self):
        with self.assertRaises(NotFound):
            await self.hooks.create(url=URL, events=["email.sent"], account_id=999_999)

    async def test_webhooks_per_owner_are_limited(self):
        self.patch(webhooks_module, "MAX_WEBHOOKS_PER_OWNER", 2)
        for _ in range(2):
            await self.hooks.create(url=URL, events=["email.sent"], account_id=self.alice.id)
        with self.assertRaises(LimitExceeded):
            await self.hooks.create(url=URL, events=["email.sent"], account_id=self.alice.id)
        await self.hooks.create(url=URL, events=["email.sent"])  # another owner: the admins

    async def test_list_filters_by_account_and_delete_removes(self):
        admin = await self.hooks.create(url=URL, events=["email.sent"], description="ops")
        mine = await self.hooks.create(url=URL, events=["email.sent"], account_id=self.alice.id)
        self.assertEqual([h.id for h in await self.hooks.list()], [admin.id, mine.id])
        self.assertEqual([h.id for h in await self.hooks.list(self.alice.id)], [mine.id])
        self.assertEqual(await self.hooks.list(self.bob.id), [])
        self.assertEqual((await self.hooks.get(admin.id)).description, "ops")
        await self.hooks.emit("email.sent", "q:1", {"n": 1}, account_id=self.alice.id)
        self.assertEqual(len(await self.rows()), 2)
        deleted = await self.hooks.delete(admin.id)
        self.assertEqual((deleted.id, deleted.secret), (admin.id, None))
        with self.assertRaises(NotFound):
            await self.hooks.get(admin.id)
        with self.assertRaises(NotFound):
            await self.hooks.delete(admin.id)
        with self.assertRaises(NotFound):
            await self.hooks.deliveries(admin.id)
        self.assertEqual(
            [r["webhook_id"] for r in await self.rows()], [mine.id]
        )  # the deleted webhook's delivery went with it

    async def test_an_account_removed_takes_its_webhooks(self):
        await self.hooks.create(url=URL, events=["email.sent"], account_id=self.bob.id)
        await self.execute("DELETE FROM accounts WHERE id = %s", (self.bob.id,))
        self.assertEqual(await self.hooks.list(), [])


class FanOutTests(WebhookStoreTestCase):
    async def test_a_delivered_message_is_queued_once_per_subscribed_webhook(self):
        admin = await self.hooks.create(url=URL, events=["email.received"])
        alices = await self.hooks.create(
            url=URL, events=["email.received"], account_id=self.alice.id
        )
        await self.hooks.create(url=URL, events=["email.received"], account_id=self.bob.id)
        await self.hooks.create(url=URL, events=["email.sent"])
        result = await self.deliver()
        self.assertEqual(await self.hooks.fan_out_messages([self.key(result)]), 2)
        rows = await self.rows()
        self.assertEqual([r["webhook_id"] for r in rows], [admin.id, alices.id])
        self.assertEqual({r["status"] for r in rows}, {"pending"})
        self.assertEqual(rows[0]["body"], rows[1]["body"])
        body = json.loads(rows[0]["body"])
        inbox = await self.store.mailboxes.get(self.alice.id, "INBOX")
        key = f"message:{self.alice.id}:{inbox.id}:{result.uid}:{inbox.uidvalidity}"
        self.assertEqual(rows[0]["event_key"], key)
        self.assertEqual(body["id"], str(event_id("email.received", key)))
        self.assertEqual(str(rows[0]["event_id"]), body["id"])
        self.assertEqual(body["event"], "email.received")
        self.assertRegex(body["timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual(
            body["data"],
            {
                "user": "alice@example.com",
                "user_id": self.alice.id,
                "mailbox": "INBOX",
                "uid": result.uid,
                "uidvalidity": inbox.uidvalidity,
                "message_id": "<wh-1@remote.example>",
                "from": "bob@remote.example",
                "to": ["alice@example.com", "carol@example.com"],
                "cc": ["dave@example.com"],
                "subject": "Webhook test",
                "date": "2025-01-15T10:30:00Z",
                "size": len(MESSAGE),
                "has_attachments": False,
                "verification_code": "493817",
                "preview": body["data"]["preview"],
            },
        )
        self.assertIn("493817", body["data"]["preview"])

    async def test_fan_out_is_idempotent_across_processes(self):
        await self.hooks.create(url=URL, events=["email.received"])
        results = [await self.deliver() for _ in range(5)]
        keys = [self.key(r) for r in results]
        other = self.make_store()  # a second pool: another a3mail process
        await other.open(listen=False)
        self.addCleanup(other.close)
        counts = await defer.gatherResults(
            [
                self.hooks.fan_out_messages(keys),
                other.webhooks.fan_out_messages(reversed(keys)),
                self.hooks.fan_out_messages(keys[:2]),
            ]
        )
        self.assertEqual(sum(counts), 5)
        self.assertEqual(len(await self.rows()), 5)
        self.assertEqual(await other.webhooks.fan_out_messages(keys), 0)

    async def test_queueing_announces_webhook_queued_on_the_bus(self):
        heard = []
        self.store.events.subscribe(heard.append)
        await aio(self.store.events.wait_connected(10))
        await self.hooks.create(url=URL, events=["email.received"])
        await self.hooks.fan_out_messages([self.key(await self.deliver())])
        [event] = await wait_for(lambda: [e for e in heard if e.type == WEBHOOK_QUEUED])
        self.assertEqual(event.data, {"count": 1})

    async def test_only_deliveries_to_inbox_or_junk_count(self):
        await self.hooks.create(url=URL, events=["email.received"])
        await self.store.mailboxes.create(self.alice.id, "Projects")  # Junk, Sent: default
        keys = []
        for box in ("Junk", "Sent", "Projects"):
            keys.append(self.key(await self.deliver(mailbox=box)))
        sent_box, uid = await self.store.messages.append(
            self.alice.id, "INBOX", await self.store.incoming(MESSAGE), parsed=parse(MESSAGE)
        )
        keys.append((self.alice.id, sent_box.id, uid))  # an IMAP APPEND to INBOX
        inbox = await self.store.mailboxes.get(self.alice.id, "INBOX")
        projects = await self.store.mailboxes.get(self.alice.id, "Projects")
        copied = await self.store.messages.copy(self.alice.id, projects.id, [keys[2][2]], "INBOX")
        keys.append((self.alice.id, inbox.id, copied.dest_uids[0]))  # a copy into INBOX
        self.assertEqual(keys[2][1], projects.id)
        self.assertEqual(await self.hooks.fan_out_messages(keys), 1)
        [row] = await self.rows()
        self.assertEqual(json.loads(row["body"])["data"]["mailbox"], "Junk")

    async def test_disabled_webhooks_and_later_webhooks_get_nothing(self):
        off = await self.hooks.create(url=URL, events=["email.received"])
        await self.execute("UPDATE webhooks SET enabled = false WHERE id = %s", (off.id,))
        result = await self.deliver()
        await self.hooks.create(url=URL, events=["email.received"])  # created after the mail
        self.assertEqual(await self.hooks.fan_out_messages([self.key(result)]), 0)
        self.assertEqual(await self.hooks.catch_up(3600), 0)
        await self.execute("UPDATE webhooks SET enabled = true")  # the control: now it counts
        self.assertEqual(await self.hooks.fan_out_messages([self.key(result)]), 1)

    async def test_catch_up_queues_what_no_process_fanned_out(self):
        hook = await self.hooks.create(url=URL, events=["email.received"])
        heard = [await self.deliver() for _ in range(3)]
        await self.hooks.fan_out_messages([self.key(heard[0])])
        self.assertEqual(await self.hooks.catch_up(3600, batch=1), 2)
        self.assertEqual(await self.hooks.catch_up(3600), 0)
        rows = await self.rows()
        self.assertEqual(len({r["event_key"] for r in rows}), 3)
        self.assertEqual({r["webhook_id"] for r in rows}, {hook.id})
        await self.execute("UPDATE messages SET created_at = now() - interval '2 hours'")
        await self.execute("DELETE FROM webhook_deliveries")
        self.assertEqual(await self.hooks.catch_up(3600), 0)  # outside the window

    async def test_catch_up_without_webhooks_does_nothing(self):
        await self.deliver()
        self.assertEqual(await self.hooks.catch_up(3600), 0)


class EmitTests(WebhookStoreTestCase):
    async def test_emit_queues_for_admin_and_owner_webhooks_once(self):
        admin = await self.hooks.create(url=URL, events=["email.sent", "email.bounced"])
        alices = await self.hooks.create(url=URL, events=["email.sent"], account_id=self.alice.id)
        await self.hooks.create(url=URL, events=["email.sent"], account_id=self.bob.id)
        data = {"user": "alice@example.com", "to": ["x@remote.example"], "subject": "Hi"}
        moment = datetime(2025, 1, 15, 10, 30, tzinfo=UTC)
        sent = await self.hooks.emit(
            "email.sent", "queue:7:sent", data, account_id=self.alice.id, timestamp=moment
        )
        self.assertEqual(sent, 2)
        again = await self.hooks.emit(
            "email.sent", "queue:7:sent", {"other": 1}, account_id=self.alice.id
        )
        self.assertEqual(again, 0)
        rows = await self.rows()
        self.assertEqual([r["webhook_id"] for r in rows], [admin.id, alices.id])
        self.assertEqual(
            json.loads(rows[0]["body"]),
            {
                "id": str(event_id("email.sent", "queue:7:sent")),
                "event": "email.sent",
                "timestamp": "2025-01-15T10:30:00Z",
                "data": data,
            },
        )
        self.assertEqual(await self.hooks.emit("email.bounced", "queue:7:bounced", {}), 1)
        self.assertEqual(await self.hooks.emit("email.deferred", "queue:7:deferred", {}), 0)

    async def test_emit_validates(self):
        with self.assertRaises(ValueError) as caught:
            await self.hooks.emit("email.exploded", "k", {})
        self.assertIn("email.exploded", str(caught.exception))
        for key in ("", "k" * 501):
            with self.assertRaises(ValueError):
                await self.hooks.emit("email.sent", key, {})


class LeaseTests(WebhookStoreTestCase):
    async def setUp(self) -> None:  # type: ignore[override]
        await super().setUp()
        self.hook = await self.hooks.create(url=URL, events=["email.sent"], secret="sign-me-please")
        self.now = datetime.now(UTC)

    async def queue(self, n: int) -> None:
        for i in range(n):
            await self.hooks.emit("email.sent", f"q:{i}", {"i": i})
        [row] = await self.sql("SELECT max(next_attempt_at) AS due FROM webhook_deliveries")
        self.now = row["due"]

    def ok(self, status: int = 200, error: str | None = None) -> AttemptOutcome:
        return AttemptOutcome(self.now, 0.25, response_status=status, error=error)

    async def record(self, delivery_id, worker, outcome, now=None, max_attempts=3):
        return await self.hooks.record_attempt(
            delivery_id,
            worker,
            outcome,
            now=now or self.now,
            max_attempts=max_attempts,
            backoff=BACKOFF,
        )

    async def test_a_lease_carries_what_the_dispatcher_needs(self):
        await self.queue(1)
        [due] = await self.hooks.lease("w1", now=self.now, lease_seconds=60, limit=10)
        [row] = await self.rows()
        self.assertEqual((due.id, due.webhook_id, due.url), (row["id"], self.hook.id, URL))
        self.assertEqual((due.secret, due.event, due.attempts), ("sign-me-please", "email.sent", 0))
        self.assertEqual(due.body, row["body"].encode())
        self.assertEqual(uuid.UUID(due.event_id), row["event_id"])
        self.assertEqual(row["leased_by"], "w1")
        self.assertEqual(row["leased_until"], self.now + timedelta(seconds=60))

    async def test_two_dispatchers_never_lease_the_same_delivery(self):
        await self.queue(30)
        other = self.make_store()
        await other.open(listen=False)
        self.addCleanup(other.close)
        batches = await defer.gatherResults(
            [
                store.webhooks.lease(worker, now=self.now, lease_seconds=60, limit=7)
                for store, worker in [(self.store, "a"), (other, "b")] * 3
            ]
        )
        ids = [d.id for batch in batches for d in batch]
        self.assertEqual(len(ids), len(set(ids)))
        self.assertEqual(len(ids), 30)
        rows = await self.rows()
        self.assertEqual({r["leased_by"] for r in rows}, {"a", "b"})
        self.assertEqual(await self.hooks.lease("c", now=self.now, lease_seconds=60, limit=50), [])

    async def test_an_expired_lease_is_taken_over(self):
        await self.queue(1)
        [first] = await self.hooks.lease("dead", now=self.now, lease_seconds=60, limit=1)
        later = self.now + timedelta(seconds=59)
        self.assertEqual(await self.hooks.lease("b", now=later, lease_seconds=60, limit=1), [])
        self.assertEqual(await self.hooks.next_due(), self.now + timedelta(seconds=60))
        later = self.now + timedelta(seconds=61)
        [taken] = await self.hooks.lease("b", now=later, lease_seconds=60, limit=1)
        self.assertEqual(taken.id, first.id)
        self.assertIsNone(await self.record(first.id, "dead", self.ok()))  # too late
        self.assertEqual(await self.record(taken.id, "b", self.ok(), now=later), "delivered")
        [row] = await self.rows()
        self.assertEqual((row["attempts"], row["leased_by"], row["delivered_at"]), (1, None, later))

    async def test_failures_back_off_then_give_up(self):
        await self.queue(1)
        statuses = []
        now = self.now
        for attempt in range(3):
            [due] = await self.hooks.lease("w", now=now, lease_seconds=60, limit=1)
            self.assertEqual(due.attempts, attempt)
            outcome = self.ok(500) if attempt != 1 else self.ok(None, "connection refused")
            statuses.append(await self.record(due.id, "w", outcome, now=now))
            [row] = await self.rows()
            if attempt < 2:
                delay = timedelta(seconds=BACKOFF[attempt])
                self.assertEqual(row["next_attempt_at"], now + delay)
                self.assertEqual(
                    await self.hooks.lease(
                        "w", now=now + delay - timedelta(seconds=1), lease_seconds=60, limit=1
                    ),
                    [],
                )
                now += delay
        self.assertEqual(statuses, ["retrying", "retrying", "failed"])
        self.assertIsNone(await self.hooks.next_due())
        self.assertEqual(
            await self.hooks.lease("w", now=now + timedelta(days=9), lease_seconds=60, limit=1), []
        )
        [delivery], total = await self.hooks.deliveries(self.hook.id)
        self.assertEqual(total, 1)
        self.assertEqual(
            (delivery.status, delivery.attempts, delivery.response_status), ("failed", 3, 500)
        )
        self.assertEqual(delivery.last_error, "HTTP 500")
        self.assertEqual(
            [(a.attempt, a.response_status, a.error, a.duration_ms) for a in delivery.attempt_log],
            [
                (1, 500, "HTTP 500", 250),
                (2, None, "connection refused", 250),
                (3, 500, "HTTP 500", 250),
            ],
        )
        hook = await self.hooks.get(self.hook.id)
        self.assertEqual(
            (hook.failure_count, hook.last_failure_at, hook.last_success_at), (3, now, None)
        )

    async def test_success_resets_the_failure_count(self):
        await self.queue(2)
        first, second = await self.hooks.lease("w", now=self.now, lease_seconds=60, limit=2)
        await self.record(first.id, "w", self.ok(503))
        later = self.now + timedelta(seconds=5)
        self.assertEqual(await self.record(second.id, "w", self.ok(204), now=later), "delivered")
        hook = await self.hooks.get(self.hook.id)
        self.assertEqual(
            (hook.failure_count, hook.last_success_at, hook.last_failure_at), (0, later, self.now)
        )
        page, total = await self.hooks.deliveries(self.hook.id)
        self.assertEqual(
            [(d.id, d.status) for d in page], [(second.id, "delivered"), (first.id, "retrying")]
        )
        self.assertEqual((page[0].delivered_at, page[0].last_error, total), (later, None, 2))

    async def test_deliveries_are_paged_newest_first(self):
        await self.queue(5)
        page, total = await self.hooks.deliveries(self.hook.id, limit=2, offset=1)
        all_rows = await self.rows()
        self.assertEqual(total, 5)
        self.assertEqual([d.id for d in page], [all_rows[3]["id"], all_rows[2]["id"]])
        self.assertEqual({d.status for d in page}, {"pending"})
        self.assertEqual(page[0].attempt_log, ())
        with self.assertRaises(ValueError):
            await self.hooks.deliveries(self.hook.id, limit=-1)

    async def test_disabled_webhooks_are_not_leased_and_release_gives_back(self):
        await self.queue(2)
        leased = await self.hooks.lease("w", now=self.now, lease_seconds=60, limit=1)
        await self.hooks.release([d.id for d in leased], "other")  # not theirs: unchanged
        self.assertEqual(
            len(await self.hooks.lease("x", now=self.now, lease_seconds=60, limit=5)), 1
        )
        await self.hooks.release([d.id for d in leased], "w")
        self.assertEqual(
            [d.id for d in await self.hooks.lease("y", now=self.now, lease_seconds=60, limit=5)],
            [leased[0].id],
        )
        await self.execute("UPDATE webhook_deliveries SET leased_until = NULL, leased_by = NULL")
        await self.execute("UPDATE webhooks SET enabled = false")
        self.assertEqual(await self.hooks.lease("w", now=self.now, lease_seconds=60, limit=5), [])
        self.assertIsNone(await self.hooks.next_due())

    async def test_prune_removes_old_finished_deliveries(self):
        await self.queue(3)
        a, b, _ = await self.hooks.lease("w", now=self.now, lease_seconds=60, limit=3)
        await self.record(a.id, "w", self.ok(200))
        await self.record(b.id, "w", self.ok(500), max_attempts=1)
        self.assertEqual(await self.hooks.prune(3600), 0)
        await self.execute("UPDATE webhook_deliveries SET created_at = now() - interval '2 hours'")
        self.assertEqual(await self.hooks.prune(3600), 2)
        self.assertEqual([r["status"] for r in await self.rows()], ["pending"])
        self.assertEqual(await self.sql("SELECT * FROM webhook_attempts"), [])

    def test_backoff_schedule_repeats_its_last_step(self):
        self.assertEqual([backoff_delay(n, BACKOFF) for n in range(1, 6)], [30, 120, 600, 600, 600])
