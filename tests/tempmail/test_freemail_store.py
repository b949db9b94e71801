"""store.freemail and store.freemail_sent against the real PostgreSQL: users, mailbox
creation and its limit, ownership, pins and filters, forwards as aliases (and the trigger
removing them), the reaper, sent records following the queue, held and scheduled
entries, cancel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from twisted.internet.defer import Deferred, DeferredList

from a3mail.mime.parse import parse_message
from a3mail.store.freemail import FREEMAIL_OWNER
from a3mail.store.records import AlreadyExists, LimitExceeded, NotFound
from tests.support.store import StoreTestCase

NOW = datetime(2025, 1, 1, tzinfo=UTC)
FAR = datetime(2035, 1, 1, tzinfo=UTC)
MAIL = b"From: a@remote.example\r\nTo: b@remote.example\r\nSubject: hi\r\n\r\nbody\r\n"


class FreemailStoreTests(StoreTestCase):
    async def setUp(self) -> None:  # type: ignore[override]
        await super().setUp()
        await self.store.domains.add("temp.example")
        self.user = await self.store.freemail.add_user("alice", "hash", mailbox_limit=2)

    async def box(self, local: str, owner: int | None = None, limit: int | None = None, **kw):
        return await self.store.freemail.create_mailbox(
            f"{local}@temp.example", owner=owner, limit=limit, expires_at=kw.get("expires_at")
        )

    async def test_users(self):
        with self.assertRaises(AlreadyExists):
            await self.store.freemail.add_user("alice", "h")
        self.assertEqual((await self.store.freemail.user_by_name("alice")).id, self.user.id)
        updated = await self.store.freemail.update_user(
            self.user.id, can_send=True, mailbox_limit=5
        )
        self.assertEqual((updated.can_send, updated.mailbox_limit), (True, 5))
        with self.assertRaises(NotFound):
            await self.store.freemail.update_user(99999, can_send=True)
        with self.assertRaises(ValueError):
            await self.store.freemail.update_user(self.user.id, role="root")
        self.assertTrue(await self.store.freemail.delete_user(self.user.id))
        self.assertIsNone(await self.store.freemail.user(self.user.id))

    async def test_a_mailbox_is_an_account_with_folders_owned_by_its_creator(self):
        box = await self.box("one", owner=self.user.id, limit=2)
        account = await self.store.accounts.get(box.account_id)
        self.assertEqual(account.address, "one@temp.example")
        owned = await self.store.tempmail.owned(FREEMAIL_OWNER, box.account_id)
        self.assertEqual(owned.id, box.account_id)
        names = {m.name for m in await self.store.mailboxes.list(box.account_id)}
        self.assertTrue({"INBOX", "Sent"} <= names)
        self.assertEqual(
            await self.store.freemail.owned(self.user.id, [box.account_id, 99999]), {box.account_id}
        )

    async def test_the_limit_holds_even_for_concurrent_creations(self):
        outcomes = await DeferredList(
            [
                Deferred.fromCoroutine(self.box(f"c{n}", owner=self.user.id, limit=2))
                for n in range(5)
            ],
            consumeErrors=True,
        )
        results = [r if ok else r.value for ok, r in outcomes]
        refused = [r for r in results if isinstance(r, LimitExceeded)]
        self.assertEqual((len(results) - len(refused), len(refused)), (2, 3))
        self.assertEqual(await self.store.freemail.count(self.user.id), 2)

    async def test_taken_addresses_and_unknown_domains(self):
        await self.box("taken")
        with self.assertRaises(AlreadyExists):
            await self.box("taken")
        await self.store.accounts.add_alias("alias@temp.example", "x@remote.example")
        with self.assertRaises(AlreadyExists):
            await self.box("alias")
        with self.assertRaises(NotFound):
            await self.store.freemail.create_mailbox(
                "x@nowhere.example", owner=None, limit=None, expires_at=None
            )

    async def test_pins_are_per_viewer_and_come_first(self):
        a = await self.box("a", owner=self.user.id)
        b = await self.box("b", owner=self.user.id)
        self.assertTrue(await self.store.freemail.toggle_pin(self.user.id, a.account_id))
        mine = await self.store.freemail.mailboxes(self.user.id, limit=10)
        self.assertEqual([m.address for m in mine], [a.address, b.address])
        everyone = await self.store.freemail.mailboxes(None, limit=10)
        self.assertEqual([m.address for m in everyone], [b.address, a.address])
        with self.assertRaises(NotFound):
            await self.store.freemail.toggle_pin(self.user.id, 99999)

    async def test_a_forward_is_an_alias_that_goes_with_the_mailbox(self):
        box = await self.box("fwd")
        changed = await self.store.freemail.set_forward([box.account_id], "Out@Remote.example")
        self.assertEqual(changed, {box.account_id})
        self.assertEqual(await self.store.accounts.aliases(), [(box.address, "out@remote.example")])
        resolution = await self.store.accounts.resolve(box.address)
        self.assertEqual(
            (resolution.account_ids, resolution.external),
            ((box.account_id,), ("out@remote.example",)),
        )
        await self.store.accounts.delete(box.account_id)
        self.assertEqual(await self.store.accounts.aliases(), [])

    async def test_the_reaper_takes_expired_mailboxes_and_their_forward(self):
        expired = await self.box("old", expires_at=NOW - timedelta(hours=1))
        kept = await self.box("forever")
        await self.store.freemail.set_forward([expired.account_id], "x@remote.example")
        found = await self.store.tempmail.expired(NOW)
        self.assertEqual([a.id for a in found], [expired.account_id])
        await self.store.accounts.delete(expired.account_id)
        self.assertIsNone(await self.store.freemail.mailbox(account_id=expired.account_id))
        self.assertIsNotNone(await self.store.freemail.mailbox(account_id=kept.account_id))
        self.assertEqual(await self.store.accounts.aliases(), [])

    async def test_forwarded_mail_is_delivered_and_queued_through_the_smtp_checks(self):
        box = await self.box("both")
        other = await self.box("other")
        await self.store.freemail.set_forward([box.account_id], other.address)
        blob = await self.store.incoming(MAIL)
        results = await self.store.messages.deliver(blob, [box.address])
        self.assertEqual(results[0].status.name, "DELIVERED")
        for account in (box, other):
            self.assertEqual((await self.store.accounts.get(account.account_id)).message_count, 1)


class SentStoreTests(StoreTestCase):
    async def setUp(self) -> None:  # type: ignore[override]
        await super().setUp()
        await self.store.domains.add("temp.example")
        self.box = await self.store.freemail.create_mailbox(
            "s@temp.example", owner=None, limit=None, expires_at=None
        )

    async def queued(self, recipients=("a@one.example",), scheduled=None):
        blob = await self.store.incoming(MAIL)
        entries = await self.store.queue.enqueue(
            blob, self.box.address, list(recipients), not_before=FAR
        )
        await self.store.spool.discard(blob)
        held = await self.store.queue.get(entries[0])
        self.assertEqual(held.next_attempt_at, FAR)
        return await self.store.freemail_sent.record(
            account_id=self.box.account_id,
            from_addr=self.box.address,
            recipients=list(recipients),
            subject="hi",
            html="",
            text="body",
            entry_ids=entries,
            scheduled_at=scheduled,
        )

    async def test_recording_releases_the_held_entries(self):
        record = await self.queued()
        entry = await self.store.queue.get(record.queue_entry_ids[0])
        self.assertLess(entry.next_attempt_at, datetime.now(UTC) + timedelta(minutes=1))
        self.assertEqual(record.status, "queued")
        leased = await self.store.outbound.lease("w", 10, 60)
        self.assertEqual([e.entry.id for e in leased], list(record.queue_entry_ids))

    async def test_a_scheduled_send_waits(self):
        record = await self.queued(scheduled=FAR - timedelta(days=1))
        self.assertEqual(record.status, "scheduled")
        self.assertEqual(await self.store.outbound.lease("w", 10, 60), [])

    async def test_the_status_follows_every_entry(self):
        record = await self.queued(recipients=("a@one.example", "b@two.example"))
        first, second = record.queue_entry_ids
        await self.store.queue.finish(first, "sent")
        self.assertEqual((await self.store.freemail_sent.get(record.id)).status, "queued")
        await self.store.queue.finish(second, "bounced")
        self.assertEqual((await self.store.freemail_sent.get(record.id)).status, "bounced")
        self.assertEqual(await self.store.queue.list(), [])

    async def test_cancel_and_reschedule(self):
        record = await self.queued(scheduled=FAR - timedelta(days=1))
        later = FAR - timedelta(hours=1)
        self.assertTrue(await self.store.freemail_sent.reschedule(record.id, later))
        self.assertEqual(
            (await self.store.queue.get(record.queue_entry_ids[0])).next_attempt_at, later
        )
        self.assertTrue(await self.store.freemail_sent.cancel(record.id))
        self.assertEqual((await self.store.freemail_sent.get(record.id)).status, "canceled")
        self.assertEqual(await self.store.queue.list(), [])
        self.assertEqual(list((self.data_dir / "mail" / "queue").iterdir()), [])
        self.assertFalse(await self.store.freemail_sent.cancel(record.id))
        self.assertFalse(await self.store.freemail_sent.reschedule(record.id, later))

    async def test_entries_deleted_by_an_operator_cancel_the_send(self):
        record = await self.queued()
        self.assertEqual(await self.store.outbound.delete(list(record.queue_entry_ids)), 1)
        self.assertEqual((await self.store.freemail_sent.get(record.id)).status, "canceled")

    async def test_an_entry_being_sent_is_not_canceled(self):
        record = await self.queued()
        await self.store.outbound.lease("w", 10, 60)
        self.assertFalse(await self.store.freemail_sent.cancel(record.id))
        self.assertEqual(len(await self.store.queue.list()), 1)

    async def test_pages_and_delete(self):
        first = await self.queued()
        second = await self.queued()
        page = await self.store.freemail_sent.page(self.box.account_id, limit=1)
        self.assertEqual([r.id for r in page], [second.id])
        self.assertTrue(await self.store.freemail_sent.delete(first.id))
        self.assertIsNone(await self.store.freemail_sent.get(first.id))
        self.assertFalse(await self.store.freemail_sent.delete(first.id))

    async def test_message_lookups_by_global_id(self):
        blob = await self.store.incoming(MAIL)
        await self.store.messages.deliver(
            blob, [self.box.address], parse=lambda data: parse_message(data).to_json()
        )
        inbox = await self.store.summaries.mailbox(self.box.account_id, "INBOX")
        [stored] = await self.store.messages.list(self.box.account_id, inbox.id)
        info = await self.store.freemail_sent.message(stored.id)
        self.assertEqual((info.account_id, info.subject), (self.box.account_id, "hi"))
        self.assertIsNone(await self.store.freemail_sent.message(stored.id + 1000))
        [(listed, sender)] = await self.store.freemail_sent.messages([stored.id, 99999])
        self.assertEqual((listed.id, sender), (stored.id, "a@remote.example"))
