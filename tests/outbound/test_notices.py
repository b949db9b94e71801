"""Bounces are recorded with the attempt, so no crash can lose one (real PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

from a3mail.store.notices import NoticeDraft, NoticeRecipient
from a3mail.store.outbound import RecipientResult
from tests.outbound.support import OutboundTestCase, ScriptedFactory


def _draft(entry_id: int, sender: str = "alice@example.com") -> NoticeDraft:
    recipient = NoticeRecipient("bob@example.net", 550, "5.1.1 no such user", "127.0.0.1")
    return NoticeDraft(
        entry_id, "failed", sender, (recipient,), b"Subject: hi\r\n", datetime.now(UTC)
    )


class NoticeTests(OutboundTestCase):
    async def inbox_count(self) -> int:
        rows = await self.sql(
            "SELECT m.id FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id"
            " WHERE b.name = 'INBOX'"
        )
        return len(rows)

    async def test_a_bounce_recorded_but_never_sent_is_sent_by_the_next_runner(self):
        # The first runner records the 550 (with its notice) and dies before sending it.
        await self.make_account("alice@example.com")
        [entry_id] = await self.queue()
        await self.store.outbound.lease("dead", 10, 60.0)
        result = RecipientResult("bob@example.net", "failed", 550, "5.1.1 no such user")
        outcome = await self.store.outbound.record(
            entry_id, "dead", [result], None, notices=[_draft(entry_id)], notice_lease=0.0
        )
        self.assertEqual(len(outcome.notice_ids), 1)
        self.assertEqual(await self.store.queue.list(), [])
        self.assertEqual(await self.inbox_count(), 0)
        # Its lease (0 s) has expired: a new runner sends the bounce on its first poll.
        runner = self.make_runner(self.listen(ScriptedFactory()), worker="w2")
        self.assertEqual(await runner.notices.send_pending(), 1)
        self.assertEqual(await self.inbox_count(), 1)
        self.assertEqual(await self.store.notices.count(), 0)
        self.assertEqual(await runner.notices.send_pending(), 0)

    async def test_a_notice_held_by_a_live_runner_is_not_taken(self):
        [entry_id] = await self.queue()
        await self.store.outbound.lease("w1", 10, 60.0)
        result = RecipientResult("bob@example.net", "failed", 550, "5.1.1 no")
        await self.store.outbound.record(
            entry_id, "w1", [result], None, notices=[_draft(entry_id)], notice_lease=60.0
        )
        self.assertEqual(await self.store.notices.lease("w2", 10, 60.0), [])
        self.assertEqual(await self.store.notices.count(), 1)

    async def test_a_lost_lease_records_no_notice(self):
        [entry_id] = await self.queue()
        await self.store.outbound.lease("w1", 10, 60.0)
        result = RecipientResult("bob@example.net", "failed", 550, "5.1.1 no")
        outcome = await self.store.outbound.record(
            entry_id, "intruder", [result], None, notices=[_draft(entry_id)]
        )
        self.assertFalse(outcome.recorded)
        self.assertEqual(await self.store.notices.count(), 0)

    async def test_a_bounce_that_cannot_be_sent_is_kept_and_sent_later(self):
        # Writing the bounce fails once (a full disk): the notice stays for the next poll.
        await self.make_account("alice@example.com")
        server = ScriptedFactory()
        server.rcpt[b"bob@example.net"] = b"550 5.1.1 no such user"
        runner = self.make_runner(self.listen(server))
        await self.queue()
        real_incoming = self.store.incoming
        calls = []

        def failing_incoming(data: bytes):
            calls.append(data)
            raise OSError("disk full")

        self.store.incoming = failing_incoming
        await self.run_round(runner)
        self.assertEqual((runner.stats.bounces, await self.inbox_count()), (0, 0))
        self.assertEqual(await self.store.notices.count(), 1)
        self.store.incoming = real_incoming
        self.assertEqual(await runner.notices.send_pending(), 1)
        self.assertEqual(await self.inbox_count(), 1)
        self.assertEqual(len(calls), 1)

    async def test_delay_warning_marks_the_entry_in_the_same_transaction(self):
        await self.make_account("alice@example.com")
        server = ScriptedFactory([b"451 4.3.0 later"])
        runner = self.make_runner(self.listen(server), delay_warning=0.0)
        [entry_id] = await self.queue()
        await self.run_round(runner)
        rows = await self.sql("SELECT delay_warned FROM outbound_queue WHERE id = %s", (entry_id,))
        self.assertTrue(rows[0]["delay_warned"])
        self.assertEqual(runner.stats.delay_warnings, 1)
        self.assertEqual(await self.store.notices.count(), 0)

    def test_no_notice_to_the_null_sender(self):
        with self.assertRaises(ValueError):
            _draft(1, sender="")
