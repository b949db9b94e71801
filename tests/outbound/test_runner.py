"""The queue runner against a scripted SMTP server on loopback and a real PostgreSQL store."""

from __future__ import annotations

import email
from email import policy

from twisted.internet import defer

from a3mail.store.db import deferred
from tests.outbound.support import MESSAGE, OutboundTestCase, ScriptedFactory, wait_until


class DeliveryTests(OutboundTestCase):
    async def test_delivers_streamed_message_then_removes_entry_and_file(self):
        server = ScriptedFactory()
        runner = self.make_runner(self.listen(server))
        await self.queue(recipients=("bob@example.net", "carol@example.net"))
        self.assertEqual(len(self.queue_files()), 1)
        self.assertEqual(await self.run_round(runner), 1)
        [(sender, recipients, body)] = server.received
        self.assertEqual(sender, b"alice@example.com")
        self.assertEqual(recipients, [b"bob@example.net", b"carol@example.net"])
        self.assertEqual(body, MESSAGE)  # dot-stuffed on the wire, unstuffed by the server
        self.assertIn(b"MAIL FROM:<alice@example.com> SIZE=%d" % len(MESSAGE), server.commands)
        self.assertEqual(await self.store.queue.list(), [])
        self.assertEqual(self.queue_files(), [])
        self.assertEqual(runner.stats.sent, 2)

    async def test_451_then_250_delivers_exactly_once(self):
        server = ScriptedFactory([b"451 4.3.0 try later", b"250 2.0.0 ok"])
        runner = self.make_runner(self.listen(server))
        [entry_id] = await self.queue()
        await self.run_round(runner)
        entry = await self.store.queue.get(entry_id)
        self.assertEqual((entry.state, entry.attempts), ("queued", 1))
        self.assertIn("4.3.0", entry.last_error)
        self.assertEqual(server.received, [])
        self.assertEqual(await self.run_round(runner), 0)  # not due yet
        await self.store.queue_admin.retry()
        await self.run_round(runner)
        self.assertEqual(len(server.received), 1)
        self.assertEqual(await self.store.queue.list(), [])
        self.assertEqual(await self.run_round(runner), 0)
        self.assertEqual(len(server.received), 1)

    async def test_partial_rcpt_failure_retries_only_the_deferred_recipient(self):
        server = ScriptedFactory()
        server.rcpt[b"later@example.net"] = b"450 4.2.0 mailbox busy"
        runner = self.make_runner(self.listen(server))
        await self.queue(recipients=("bob@example.net", "later@example.net"))
        await self.run_round(runner)
        self.assertEqual(server.received[0][1], [b"bob@example.net"])
        del server.rcpt[b"later@example.net"]
        await self.store.queue_admin.retry()
        await self.run_round(runner)
        self.assertEqual(server.received[1][1], [b"later@example.net"])
        self.assertEqual(len(server.received), 2)

    async def test_550_bounces_once_to_a_local_sender(self):
        await self.make_account("alice@example.com")
        server = ScriptedFactory()
        server.rcpt[b"bob@example.net"] = b"550 5.1.1 no such user"
        runner = self.make_runner(self.listen(server))
        await self.queue()
        await self.run_round(runner)
        self.assertEqual(await self.run_round(runner), 0)
        self.assertEqual(await self.store.queue.list(), [])
        rows = await self.sql(
            "SELECT m.blob_path FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id"
            " WHERE b.name = 'INBOX'"
        )
        self.assertEqual(len(rows), 1)
        data = (self.data_dir / rows[0]["blob_path"]).read_bytes()
        dsn = email.message_from_bytes(data, policy=policy.default)
        self.assertEqual(dsn.get_content_type(), "multipart/report")
        self.assertEqual(dsn.get_param("report-type"), "delivery-status")
        parts = [p.get_content_type() for p in dsn.iter_parts()]
        self.assertEqual(parts, ["text/plain", "message/delivery-status", "text/rfc822-headers"])
        self.assertIn(b"Final-Recipient: rfc822; bob@example.net", data)
        self.assertIn(b"Action: failed", data)
        self.assertIn(b"Status: 5.1.1", data)
        self.assertIn(b"Diagnostic-Code: smtp; 550 5.1.1 no such user", data)
        self.assertIn(b"Remote-MTA: dns; 127.0.0.1", data)
        self.assertIn(b"Subject: hello there", data)
        self.assertEqual(runner.stats.bounces, 1)

    async def test_550_to_a_remote_sender_queues_a_null_sender_bounce(self):
        server = ScriptedFactory()
        server.rcpt[b"bob@example.net"] = b"550 5.1.1 no such user"
        runner = self.make_runner(self.listen(server))
        await self.queue(sender="someone@example.net")
        await self.run_round(runner)
        [bounce] = await self.store.queue.list()
        self.assertEqual((bounce.sender, bounce.recipients), ("", ("someone@example.net",)))
        # the bounce itself fails: no bounce of a bounce
        server.rcpt[b"someone@example.net"] = b"550 5.1.1 gone"
        await self.run_round(runner)
        self.assertEqual(await self.store.queue.list(), [])
        self.assertEqual(runner.stats.bounces, 1)

    async def test_null_sender_gets_no_bounce(self):
        server = ScriptedFactory()
        server.rcpt[b"bob@example.net"] = b"550 5.1.1 no such user"
        runner = self.make_runner(self.listen(server))
        await self.queue(sender="")
        await self.run_round(runner)
        self.assertEqual(await self.store.queue.list(), [])
        self.assertEqual(await self.sql("SELECT id FROM messages"), [])
        self.assertEqual(runner.stats.bounces, 0)

    async def test_expired_entry_fails_with_4_4_7(self):
        server = ScriptedFactory([b"451 4.3.0 later"])
        runner = self.make_runner(self.listen(server), max_queue_lifetime=0.0)
        await self.queue(sender="")
        await self.run_round(runner)
        self.assertEqual(await self.store.queue.list(), [])
        self.assertEqual(runner.stats.failed, 1)

    async def test_delay_warning_is_sent_once(self):
        await self.make_account("alice@example.com")
        server = ScriptedFactory([b"451 4.3.0 later"])
        runner = self.make_runner(self.listen(server), delay_warning=0.0)
        await self.queue()
        await self.run_round(runner)
        await self.store.queue_admin.retry()
        await self.run_round(runner)
        rows = await self.sql("SELECT id FROM messages")
        self.assertEqual(len(rows), 1)
        self.assertEqual(runner.stats.delay_warnings, 1)

    async def test_unreachable_host_defers(self):
        server = ScriptedFactory()
        port = self.listen(server)
        runner = self.make_runner(port)
        runner.finder.static["example.net"] = ["127.0.0.1:1"]
        [entry_id] = await self.queue()
        await self.run_round(runner)
        entry = await self.store.queue.get(entry_id)
        self.assertEqual(entry.state, "queued")
        self.assertIn("4.4.1", entry.last_error)


class LeaseTests(OutboundTestCase):
    async def test_two_runners_deliver_each_entry_exactly_once(self):
        n = 500
        server = ScriptedFactory()
        port = self.listen(server)
        other = self.make_store()
        await other.open()
        self.addCleanup(other.close)
        runners = [self.make_runner(port, worker="a"), self.make_runner(port, other, worker="b")]
        for i in range(n):
            await self.queue(recipients=(f"user{i}@example.net",))

        async def drain(runner):
            while True:
                items = await runner.store.outbound.lease(runner.worker, 10, 60)
                if not items:
                    return
                await defer.gatherResults(
                    [defer.Deferred.fromCoroutine(runner.deliver(i)) for i in items]
                )

        await defer.gatherResults([defer.Deferred.fromCoroutine(drain(r)) for r in runners])
        delivered = sorted(r[0] for _, r, _ in server.received)
        self.assertEqual(delivered, sorted(f"user{i}@example.net".encode() for i in range(n)))
        self.assertGreater(runners[0].stats.sent, 0)
        self.assertGreater(runners[1].stats.sent, 0)
        self.assertEqual(await self.store.queue.list(), [])
        self.assertEqual(self.queue_files(), [])

    async def test_dead_workers_lease_is_taken_over_after_expiry(self):
        server = ScriptedFactory()
        runner = self.make_runner(self.listen(server), worker="survivor")
        [entry_id] = await self.queue()
        # "dead" leased it (then its process died mid-delivery)
        [leased] = await self.store.outbound.lease("dead", 10, 0.2)
        self.assertEqual(leased.entry.state, "sending")
        self.assertEqual(await self.store.outbound.lease("survivor", 10, 60), [])
        await deferred(self.store.db.execute)(
            "UPDATE outbound_queue SET leased_until = now() - interval '1 second' WHERE id = %s",
            (entry_id,),
        )
        self.assertEqual(await self.run_round(runner), 1)
        self.assertEqual(len(server.received), 1)
        self.assertEqual(await self.store.queue.list(), [])
        # the dead worker's late result is not recorded
        outcome = await self.store.outbound.record(entry_id, "dead", [], None)
        self.assertFalse(outcome.recorded)


class EventTests(OutboundTestCase):
    async def test_sent_deferred_bounced_go_to_webhooks_and_the_bus(self):
        await self.store.webhooks.create(
            url="https://hooks.example.com/mail",
            events=["email.sent", "email.deferred", "email.bounced"],
        )
        heard = []
        self.store.events.subscribe(heard.append)
        server = ScriptedFactory([b"451 4.3.0 later", b"250 2.0.0 ok"])
        server.rcpt[b"carol@example.net"] = b"550 5.1.1 unknown"
        runner = self.make_runner(self.listen(server))
        await self.queue(sender="", recipients=("bob@example.net", "carol@example.net"))
        await self.run_round(runner)
        await self.store.queue_admin.retry()
        await self.run_round(runner)
        rows = await self.sql("SELECT event, body FROM webhook_deliveries ORDER BY id")
        self.assertEqual(
            [r["event"] for r in rows], ["email.bounced", "email.deferred", "email.sent"]
        )
        self.assertIn('"to":["carol@example.net"]', rows[0]["body"])
        self.assertIn('"subject":"hello there"', rows[2]["body"])
        await wait_until(lambda: {"email.sent", "email.bounced"} <= {e.type for e in heard})

    async def test_events_belong_to_the_sender_account_not_the_catch_all(self):
        """An account's webhooks hear what its own address sent; mail from another address
        of the domain is not theirs because the domain's catch-all delivers to them."""
        await self.store.domains.add("example.com")
        owner = await self.store.accounts.add("owner@example.com")
        await self.store.accounts.add_alias("@example.com", "owner@example.com")
        await self.store.webhooks.create(
            url="https://hooks.example.com/mail", events=["email.sent"], account_id=owner.id
        )
        runner = self.make_runner(self.listen(ScriptedFactory()))
        await self.queue(sender="stranger@example.com")
        await self.queue(sender="owner+lists@example.com")
        await self.run_round(runner)
        rows = await self.sql("SELECT body FROM webhook_deliveries ORDER BY id")
        self.assertEqual(len(rows), 1, rows)
        self.assertIn('"user":"owner+lists@example.com"', rows[0]["body"])


class SessionFailureTests(OutboundTestCase):
    async def test_mail_from_550_fails_every_recipient(self):
        server = ScriptedFactory()
        server.mail_reply = b"550 5.7.1 sender refused"
        runner = self.make_runner(self.listen(server))
        await self.queue(sender="", recipients=("bob@example.net", "carol@example.net"))
        await self.run_round(runner)
        self.assertEqual(await self.store.queue.list(), [])
        self.assertEqual(runner.stats.failed, 2)

    async def test_message_over_the_servers_size_fails_without_mail_from(self):
        server = ScriptedFactory()
        server.size_limit = 10
        runner = self.make_runner(self.listen(server))
        await self.queue(sender="")
        await self.run_round(runner)
        self.assertEqual(runner.stats.failed, 1)
        self.assertFalse([c for c in server.commands if c.startswith(b"MAIL")])

    async def test_421_greeting_host_is_skipped_for_the_next(self):
        good = ScriptedFactory()
        good_port = self.listen(good)
        bad = ScriptedFactory()
        bad_port = self.listen(bad)
        bad.protocol = type(
            "Busy",
            (bad.protocol,),
            {
                "connectionMade": lambda p: (
                    p.sendLine(b"421 4.3.2 busy") or p.transport.loseConnection()
                )
            },
        )
        runner = self.make_runner(good_port)
        runner.finder.static["example.net"] = [f"127.0.0.1:{bad_port}", f"127.0.0.1:{good_port}"]
        await self.queue()
        await self.run_round(runner)
        self.assertEqual(len(good.received), 1)
        self.assertEqual(await self.store.queue.list(), [])


class ServiceTests(OutboundTestCase):
    async def test_stopping_aborts_a_stalled_delivery_and_records_it_deferred(self):
        server = ScriptedFactory([b""])  # never answers the end of data
        runner = self.make_runner(self.listen(server), poll_interval=3600)
        [entry_id] = await self.queue()
        runner.startService()
        await wait_until(lambda: server.data_ends == 1)
        await runner.stopService()
        entry = await self.store.queue.get(entry_id)
        self.assertEqual((entry.state, entry.attempts, entry.leased_by), ("queued", 1, None))
        self.assertIn("4.4.2", entry.last_error)
        self.assertEqual(server.received, [])
