"""The LISTEN/NOTIFY event bus."""

from __future__ import annotations

import json

import psycopg

from a3mail.store import events as ev
from a3mail.store.records import DeliveryStatus
from tests.store.helpers import aio, wait_for
from tests.support import pg
from tests.support.store import StoreTestCase

MESSAGE = b"From: bob@remote.example\r\nSubject: events\r\n\r\nHello.\r\n"


class Boom(Exception):
    pass


class EventBusTests(StoreTestCase):
    async def setUp(self) -> None:  # type: ignore[override]
        await super().setUp()
        self.alice = await self.make_account("alice@example.com")
        self.heard: list[ev.Event] = []
        self.store.events.subscribe(self.heard.append)
        await aio(self.store.events.wait_connected(10))

    async def deliver(self, store=None):
        store = store or self.store
        blob = await store.incoming(MESSAGE)
        [result] = await store.messages.deliver(blob, ["alice@example.com"])
        self.assertEqual(result.status, DeliveryStatus.DELIVERED)
        return result

    def added(self, heard, uid):
        return [e for e in heard if e.type == ev.MESSAGE_ADDED and e.data["uid"] == uid]

    async def publish(self, event_type: str, *, fail: bool = False, **data) -> None:
        """Publish an event inside a transaction of the store; with *fail*, roll it back."""

        async def run() -> None:
            async with self.store.db.transaction() as conn:
                await self.store.ctx.publish(conn, event_type, **data)
                if fail:
                    raise Boom()

        await aio(run())

    async def test_events_of_another_store_instance_are_heard(self):
        other = self.make_store()  # a second pool on the schema: another process's view
        await other.open(listen=False)
        self.addCleanup(other.close)
        result = await self.deliver(other)
        [event] = await wait_for(lambda: self.added(self.heard, result.uid), 10, "message.added")
        self.assertEqual(event.data["account_id"], self.alice.id)
        self.assertEqual(event.data["mailbox_id"], result.mailbox_id)
        self.assertIsInstance(event.data["modseq"], int)

    async def test_an_event_of_a_rolled_back_transaction_is_not_heard(self):
        with self.assertRaises(Boom):
            await self.publish("test.rolled_back", fail=True, n=1)
        await self.publish("test.committed", n=2)
        await wait_for(lambda: [e for e in self.heard if e.type == "test.committed"], 10)
        self.assertEqual([e.type for e in self.heard], ["test.committed"])
        self.assertEqual(self.heard[0].data, {"n": 2})

    async def test_a_failing_subscriber_does_not_stop_the_others(self):
        calls = []

        def failing(event):
            calls.append(event)
            raise Boom("subscriber bug")

        self.store.events.subscribe(failing)
        after: list[ev.Event] = []
        self.store.events.subscribe(after.append)
        first = await self.deliver()
        second = await self.deliver()
        await wait_for(lambda: self.added(after, second.uid), 10, "both events")
        self.assertTrue(self.added(after, first.uid))
        self.assertTrue(self.added(self.heard, first.uid) and self.added(self.heard, second.uid))
        self.assertEqual(len(calls), 2)
        self.assertEqual(len(self.flushLoggedErrors(Boom)), 2)
        self.assertTrue(self.store.events.connected)
        self.assertEqual(self.store.events.reconnects, 0)

    async def test_unsubscribe(self):
        gone: list[ev.Event] = []
        unsubscribe = self.store.events.subscribe(gone.append)
        first = await self.deliver()
        await wait_for(lambda: self.added(gone, first.uid), 10)
        unsubscribe()
        unsubscribe()  # harmless twice
        second = await self.deliver()
        await wait_for(lambda: self.added(self.heard, second.uid), 10)
        self.assertEqual([e.data["uid"] for e in gone], [first.uid])

    def test_a_huge_uid_list_is_trimmed(self):
        uids = list(range(1, 5001))
        payload = ev.encode(
            ev.EXPUNGED, {"account_id": 1, "mailbox_id": 2, "modseq": 3, "uids": uids}
        )
        self.assertLess(len(payload.encode()), 8000)
        self.assertEqual(
            json.loads(payload),
            {"type": ev.EXPUNGED, "account_id": 1, "mailbox_id": 2, "modseq": 3, "uids": None},
        )
        small = ev.encode(ev.EXPUNGED, {"mailbox_id": 2, "uids": [1, 2, 3]})
        self.assertEqual(json.loads(small)["uids"], [1, 2, 3])

    async def test_a_huge_uid_list_goes_through_notify_as_null(self):
        await self.publish(ev.FLAGS_CHANGED, mailbox_id=5, modseq=9, uids=list(range(1, 5001)))
        [event] = await wait_for(
            lambda: [e for e in self.heard if e.type == ev.FLAGS_CHANGED], 10, "flags.changed"
        )
        self.assertEqual(event.data, {"mailbox_id": 5, "modseq": 9, "uids": None})

    async def test_malformed_payloads_are_ignored(self):
        garbage = ["garbage", "", "{", '{"no_type": 1}', "[1, 2]", "[]", "null", "42", '"text"']
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            for payload in garbage:
                conn.execute("SELECT pg_notify(%s, %s)", (self.store.ctx.channel, payload))
        result = await self.deliver()
        await wait_for(lambda: self.added(self.heard, result.uid), 10, "the event after garbage")
        self.assertEqual([e.type for e in self.heard], [ev.MESSAGE_ADDED])
        self.assertTrue(self.store.events.connected)
        self.assertEqual(self.store.events.reconnects, 0)
        # ... and it keeps working.
        again = await self.deliver()
        await wait_for(lambda: self.added(self.heard, again.uid), 10)
