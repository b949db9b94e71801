"""Group commit: concurrent deliveries share one batch, each with its own outcome."""

from __future__ import annotations

import psycopg
from twisted.internet.defer import Deferred, gatherResults

from a3mail.store.group_delivery import GroupDelivery
from a3mail.store.records import DeliveryStatus
from tests.store.helpers import aio, sleep
from tests.support.store import StoreTestCase


def message(n: int) -> bytes:
    return (
        f"From: a@example.net\r\nSubject: m{n}\r\nMessage-ID: <{n}@x>\r\n\r\nbody {n}\r\n".encode()
    )


class GroupDeliveryTests(StoreTestCase):
    async def setUp(self) -> None:  # type: ignore[override]
        await super().setUp()
        self.alice = await self.make_account("alice@example.com")
        self.bob = await self.make_account("bob@example.com")
        await self.make_account("carol@example.com")
        # one batch at a time: while the first runs, the next ones queue up together
        self.group = GroupDelivery(self.store.ctx, max_in_flight=1)

    async def blobs(self, count: int) -> list:
        """*count* incoming files, and a first one for :meth:`lead`."""
        return [await self.store.incoming(message(n)) for n in range(count + 1)]

    def lead(self, blob) -> Deferred:
        """Start a delivery to carol: its batch runs while the next deliveries queue."""
        return self.group.deliver(blob, ["carol@example.com"])

    def incoming_files(self) -> list[str]:
        return sorted(p.name for p in self.store.blobs.tmp_files())

    def account_files(self, account_id: int) -> list[str]:
        return list(self.store.blobs.account_files(account_id))

    async def test_concurrent_deliveries_share_one_transaction_each_with_its_own_result(self):
        leader, first, second = await self.blobs(2)
        results = await gatherResults(
            [
                self.lead(leader),
                self.group.deliver(first, ["alice@example.com"]),
                self.group.deliver(second, ["bob@example.com", "Alice@Example.com"]),
            ]
        )
        [_, [to_alice], [to_bob, to_alice_again]] = results
        self.assertEqual(self.group.batches, 2)
        self.assertEqual(
            (to_alice.status, to_alice.account_id), (DeliveryStatus.DELIVERED, self.alice.id)
        )
        self.assertEqual(to_alice.uid, 1)
        self.assertEqual(
            (to_bob.status, to_bob.account_id, to_bob.uid),
            (DeliveryStatus.DELIVERED, self.bob.id, 1),
        )
        self.assertEqual((to_alice_again.recipient, to_alice_again.uid), ("Alice@Example.com", 2))
        # one statement, one transaction: every row carries the same inserting transaction id
        rows = await self.sql(
            "SELECT DISTINCT xmin::text AS x FROM messages WHERE account_id <> ALL(%s)",
            ([r.account_id for r in results[0]],),
        )
        self.assertEqual(len(rows), 1)
        for result, data in ((to_alice, 1), (to_bob, 2), (to_alice_again, 2)):
            [info] = [
                i
                for i in await self.store.messages.list(result.account_id, result.mailbox_id)
                if i.uid == result.uid
            ]
            self.assertEqual(await self.store.messages.read(info), message(data))
            self.assertEqual(info.subject, "")  # no parse given: empty index columns
        self.assertEqual(self.incoming_files(), [])  # sources removed once linked

    async def test_a_message_the_statement_refuses_fails_alone(self):
        leader, good, bad = await self.blobs(2)
        self.lead(leader)
        ok = self.group.deliver(good, ["alice@example.com"], parsed={"subject": "fine"})
        # an index value PostgreSQL refuses (integer out of range) fails the batch statement
        refused = self.group.deliver(bad, ["alice@example.com"], parsed={"header_size": 2**40})
        [result] = await ok
        error = await self.assertFailure(refused, psycopg.Error)
        self.assertIn("out of range", str(error))
        self.assertEqual((result.status, result.uid), (DeliveryStatus.DELIVERED, 1))
        [info] = await self.store.messages.list(self.alice.id, result.mailbox_id)
        self.assertEqual(info.subject, "fine")
        self.assertEqual(len(self.account_files(self.alice.id)), 1)  # the refused link is gone
        self.assertEqual(self.incoming_files(), [])  # sources go once linked, before the commit
        account = await self.store.accounts.find("alice@example.com")
        self.assertEqual((account.message_count, account.used_bytes), (1, good.size))

    async def test_a_file_that_cannot_be_linked_fails_alone(self):
        leader, good, gone = await self.blobs(2)
        gone.path.unlink()
        self.lead(leader)
        ok = self.group.deliver(good, ["alice@example.com"])
        lost = self.group.deliver(gone, ["bob@example.com"])
        [result] = await ok
        await self.assertFailure(lost, FileNotFoundError)
        self.assertEqual(result.status, DeliveryStatus.DELIVERED)
        self.assertEqual(self.group.batches, 2)
        self.assertEqual(self.account_files(self.bob.id), [])

    async def test_per_recipient_outcomes_and_unwanted_links_removed(self):
        await self.store.accounts.set_quota("bob@example.com", 10)
        blob = await self.store.incoming(message(1))
        results = await self.group.deliver(
            blob, ["alice@example.com", "bob@example.com", "nobody@example.com"]
        )
        statuses = [r.status for r in results]
        expected = [DeliveryStatus.DELIVERED, DeliveryStatus.OVER_QUOTA, DeliveryStatus.UNKNOWN]
        self.assertEqual(statuses, expected)
        self.assertEqual(len(self.account_files(self.alice.id)), 1)
        self.assertEqual(self.account_files(self.bob.id), [])  # over quota: link removed

    async def test_keep_source_keeps_the_incoming_file(self):
        blob = await self.store.incoming(message(1))
        await self.group.deliver(blob, ["alice@example.com"], keep_source=True)
        self.assertEqual(self.incoming_files(), [blob.path.name])

    async def test_nothing_is_acknowledged_before_the_commit(self):
        blocker = await aio(self.store.db.connect_direct(autocommit=False))
        self.addCleanup(lambda: aio(blocker.close()))
        # hold alice's account row: the delivery statement must wait for it
        await aio(
            blocker.execute("SELECT 1 FROM accounts WHERE id = %s FOR UPDATE", (self.alice.id,))
        )
        blob = await self.store.incoming(message(1))
        pending = self.group.deliver(blob, ["alice@example.com"])

        waiting = False
        for _ in range(1000):  # up to ~10 s: the statement reaches the lock within ms
            waiting = bool(
                await self.sql(
                    "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND query LIKE %s",
                    ("%a3mail_add_message%",),
                )
            )
            if waiting:
                break
            await sleep(0.01)
        self.assertTrue(waiting, "the delivery statement never waited for the lock")
        self.assertFalse(pending.called)  # not acknowledged while the commit cannot happen
        self.assertEqual(await self.sql("SELECT id FROM messages"), [])
        await aio(blocker.rollback())
        [result] = await pending
        self.assertEqual(result.status, DeliveryStatus.DELIVERED)
        self.assertEqual(len(await self.sql("SELECT id FROM messages")), 1)
