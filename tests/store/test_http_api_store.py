"""Store functions of the admin API (migration 0003): rate-limit counters, statistics,
message summaries and headers, queue administration."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from a3mail.mime import parse_message
from a3mail.store.records import NotFound
from a3mail.store.summaries import SUMMARY_FIELDS
from tests.support.store import StoreTestCase

MESSAGE = (
    b"From: Ann <ann@example.org>\r\nTo: Alice <alice@example.com>, bob@example.net\r\n"
    b"Subject: Hi\r\nDate: Mon, 15 Jan 2024 10:30:00 +0000\r\n\r\nHello\r\n"
)


def parse(data: bytes) -> dict:
    return parse_message(data).to_json()


class MigrationTests(StoreTestCase):
    async def test_0003_tables_and_indexes(self):
        [table] = await self.sql(
            "SELECT count(*) AS n FROM information_schema.tables"
            " WHERE table_schema = current_schema() AND table_name = 'http_rate_limits'"
        )
        self.assertEqual(table["n"], 1)
        rows = await self.sql(
            "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
            " AND indexname = ANY(%s)",
            (["audit_log_actor_idx", "messages_created_idx", "http_rate_limits_window_idx"],),
        )
        self.assertEqual(len(rows), 3)


class RateLimitCounterTests(StoreTestCase):
    async def test_add_returns_totals_and_watched_buckets(self):
        counters = self.store.ratelimits
        self.assertEqual(await counters.add(100, {"a": 2, "b": 1}), {"a": 2, "b": 1})
        self.assertEqual(await counters.add(100, {"a": 3}, watch=["b", "c"]), {"a": 5, "b": 1})
        self.assertEqual(await counters.read(100, "a"), 5)
        self.assertEqual(await counters.read(200, "a"), 0)
        self.assertEqual(await counters.add(100, {}), {})
        await counters.add(200, {"a": 1})
        self.assertEqual(await counters.prune(200), 2)
        self.assertEqual(await counters.read(200, "a"), 1)


class StatsTests(StoreTestCase):
    async def test_server_totals_and_user_activity(self):
        alice = await self.make_account("alice@example.com")
        await self.make_account("bob@example.com")
        blob = await self.store.incoming(MESSAGE)
        await self.store.messages.deliver(blob, ["alice@example.com"], parse=parse)
        midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        totals = await self.store.stats.server(midnight)
        self.assertEqual(
            (totals.users_total, totals.domains_total, totals.messages_total), (2, 1, 1)
        )
        self.assertEqual((totals.messages_today, totals.storage_used), (1, len(MESSAGE)))
        tomorrow = midnight + timedelta(days=1)
        self.assertEqual((await self.store.stats.server(tomorrow)).messages_today, 0)
        activity = await self.store.stats.user_activity(alice.id, alice.address, midnight)
        self.assertEqual(activity.messages_today, 1)
        self.assertIsNotNone(activity.last_message_at)
        self.assertIsNone(activity.last_login)

    async def test_last_logins(self):
        await self.store.audit.record("auth.success", actor="a@example.com")
        await self.store.audit.record("auth.failure", actor="b@example.com", success=False)
        logins = await self.store.stats.last_logins(["a@example.com", "b@example.com"])
        self.assertEqual(list(logins), ["a@example.com"])
        self.assertEqual(await self.store.stats.last_logins([]), {})


class SummaryTests(StoreTestCase):
    async def test_page_with_addresses_in_one_query(self):
        alice = await self.make_account("alice@example.com")
        for _ in range(3):
            blob = await self.store.incoming(MESSAGE)
            await self.store.messages.deliver(blob, ["alice@example.com"], parse=parse)
        inbox = await self.store.summaries.mailbox(alice.id, "INBOX")
        await self.store.messages.store_flags(alice.id, inbox.id, [3], "+", ["\\Seen", "$Junk"])
        box, text = await self.store.summaries.page(alice.id, "inbox", limit=2, offset=0)
        page = json.loads(text)
        self.assertEqual((box.name, box.message_count), ("INBOX", 3))
        self.assertEqual([m["uid"] for m in page], [3, 2])
        self.assertEqual(list(page[0]), list(SUMMARY_FIELDS))
        self.assertEqual(page[0]["from"], "ann@example.org")
        self.assertEqual(page[0]["to"], ["alice@example.com", "bob@example.net"])
        self.assertEqual(page[0]["date"], "2024-01-15T10:30:00Z")
        self.assertRegex(page[0]["received_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual(page[0]["subject"], "Hi")
        self.assertEqual(page[0]["size"], len(MESSAGE))
        self.assertEqual(page[0]["flags"], ["\\Seen", "$Junk"])
        self.assertEqual((page[1]["flags"], page[1]["has_attachments"]), ([], False))
        _, oldest = await self.store.summaries.page(
            alice.id, "INBOX", limit=2, offset=2, newest_first=False
        )
        self.assertEqual([m["uid"] for m in json.loads(oldest)], [3])
        box, empty = await self.store.summaries.page(alice.id, "Sent", limit=5)
        self.assertEqual((box.name, json.loads(empty)), ("Sent", []))

    async def test_missing_mailbox_or_account(self):
        alice = await self.make_account("alice@example.com")
        with self.assertRaises(NotFound):
            await self.store.summaries.page(alice.id, "Nope", limit=5)
        with self.assertRaises(NotFound):
            await self.store.summaries.page(alice.id + 100, "INBOX", limit=5)

    async def test_header_is_the_stored_header_block(self):
        alice = await self.make_account("alice@example.com")
        blob = await self.store.incoming(MESSAGE)
        await self.store.messages.deliver(blob, ["alice@example.com"], parse=parse)
        box = await self.store.summaries.mailbox(alice.id, "INBOX")
        [info] = await self.store.messages.list(alice.id, box.id)
        header = await self.store.summaries.header(info)
        self.assertEqual(header, MESSAGE[: MESSAGE.index(b"\r\n\r\n") + 4])

    async def test_header_without_a_recorded_size_stops_at_the_blank_line(self):
        alice = await self.make_account("alice@example.com")
        blob = await self.store.incoming(MESSAGE)
        await self.store.messages.deliver(blob, ["alice@example.com"])  # no parse: size 0
        box = await self.store.summaries.mailbox(alice.id, "INBOX")
        [info] = await self.store.messages.list(alice.id, box.id)
        self.assertEqual(info.header_size, 0)
        header = await self.store.summaries.header(info)
        self.assertTrue(header.endswith(b"\r\n\r\n"))
        self.assertNotIn(b"Hello", header)


class QueueAdminTests(StoreTestCase):
    async def enqueue(self, *recipients: str) -> list[int]:
        blob = await self.store.incoming(b"Subject: x\r\n\r\nbody\r\n")
        return await self.store.queue.enqueue(blob, "a@example.com", list(recipients))

    async def test_purge_keeps_messages_with_open_entries(self):
        one, two = await self.enqueue("x@one.example", "y@two.example")
        await self.store.queue.finish(one, "failed", "550 no")
        result = await self.store.queue_admin.purge("bounce")
        self.assertEqual((result.removed, result.skipped), (1, 0))
        entry = await self.store.queue.get(two)  # the other domain's entry and file remain
        self.assertTrue((self.data_dir / entry.blob_path).exists())
        await self.store.queue_admin.purge("outgoing")
        self.assertFalse((self.data_dir / entry.blob_path).exists())
        self.assertEqual((await self.store.queue_admin.summary()).total, 0)

    async def test_entries_listing_totals(self):
        for n in range(3):
            await self.enqueue(f"x@d{n}.example")
        entries, total = await self.store.queue_admin.entries(queue="outgoing", limit=2)
        self.assertEqual((len(entries), total), (2, 3))
        entries, total = await self.store.queue_admin.entries(queue="outgoing", limit=2, offset=5)
        self.assertEqual((entries, total), ([], 3))
        entries, total = await self.store.queue_admin.entries(queue="incoming")
        self.assertEqual((entries, total), ([], 0))


class KeyAuthenticationTests(StoreTestCase):
    """store.keys.authenticate in one statement (the HTTP API calls it for every request)."""

    async def test_records_the_use_at_most_once_a_minute(self):
        from a3mail.auth import apikeys

        new = apikeys.generate()
        await self.store.keys.create(
            key_id=new.key_id,
            key_hash=new.key_hash,
            secret_hash=new.secret_hash,
            key_prefix=new.key_prefix,
            account_id=None,
            permissions=["read"],
        )
        key = await self.store.keys.authenticate(new.secret_hash)
        self.assertEqual(key.key_id, new.key_id)
        [first] = await self.sql("SELECT last_used_at FROM api_keys")
        self.assertIsNotNone(first["last_used_at"])
        await self.store.keys.authenticate(new.key_hash)
        [second] = await self.sql("SELECT last_used_at FROM api_keys")
        self.assertEqual(second["last_used_at"], first["last_used_at"])
        self.assertIsNone(await self.store.keys.authenticate(b"\0" * 32))
        await self.store.keys.revoke(new.key_id)
        self.assertIsNone(await self.store.keys.authenticate(new.key_hash))
