"""POP3 sessions in memory (StringTransport + Clock) over a real store: the TRANSACTION
commands, QUIT's commit, pipelining, bad input, limits and timeouts."""

from __future__ import annotations

from a3mail.pop3 import replies
from a3mail.pop3 import server as server_module
from a3mail.pop3.server import State
from a3mail.store import StoreUnavailable
from a3mail.store.events import EXPUNGED
from tests.pop3.support import MESSAGE, Pop3TestCase, decode_multiline

BIG = b"Subject: big\r\n\r\n" + b"y" * 1000 + b"\r\n"


class ListingTests(Pop3TestCase):
    async def setUp(self) -> None:  # type: ignore[override]
        await super().setUp()
        self.uids = [await self.deliver(), await self.deliver(BIG)]
        self.proto, self.transport = await self.session()

    async def test_stat_counts_exact_stored_octets(self):
        out = await self.send(self.proto, b"STAT\r\n")
        self.assertEqual(out, b"+OK 2 %d\r\n" % (len(MESSAGE) + len(BIG)))

    async def test_list_all_and_one(self):
        out = await self.send(self.proto, b"LIST\r\n")
        self.assertEqual(
            out,
            b"+OK 2 messages (%d octets)\r\n1 %d\r\n2 %d\r\n.\r\n"
            % (len(MESSAGE) + len(BIG), len(MESSAGE), len(BIG)),
        )
        self.assertEqual(await self.send(self.proto, b"list 2\r\n"), b"+OK 2 %d\r\n" % len(BIG))

    async def test_uidl_is_uidvalidity_dot_uid(self):
        v = self.inbox.uidvalidity
        out = await self.send(self.proto, b"UIDL\r\n")
        self.assertEqual(
            out,
            b"+OK 2 messages (%d octets)\r\n1 %d.%d\r\n2 %d.%d\r\n.\r\n"
            % (len(MESSAGE) + len(BIG), v, self.uids[0], v, self.uids[1]),
        )
        self.assertEqual(
            await self.send(self.proto, b"UIDL 1\r\n"), b"+OK 1 %d.%d\r\n" % (v, self.uids[0])
        )

    async def test_bad_message_numbers(self):
        for command, reply in [
            (b"LIST 0", b"-ERR No such message."),
            (b"LIST 3", b"-ERR No such message."),
            (b"RETR 999", b"-ERR No such message."),
            (b"RETR abc", b"-ERR Wrong arguments."),
            (b"RETR -1", b"-ERR Wrong arguments."),
            (b"RETR", b"-ERR Wrong arguments."),
            (b"UIDL 1 2", b"-ERR Wrong arguments."),
        ]:
            self.proto.errors = 0
            self.assertEqual(
                await self.send(self.proto, command + b"\r\n"), reply + b"\r\n", command
            )
        self.assertEqual(self.proto.phase, State.TRANSACTION)
        self.assertEqual(await self.send(self.proto, b"NOOP\r\n"), b"+OK\r\n")

    async def test_snapshot_is_fixed_for_the_session(self):
        """Mail delivered after login shows up in the next session only (RFC 1939)."""
        await self.deliver()
        self.assertTrue((await self.send(self.proto, b"STAT\r\n")).startswith(b"+OK 2 "))
        self.assertEqual(await self.send(self.proto, b"RETR 3\r\n"), b"-ERR No such message.\r\n")
        await self.send(self.proto, b"QUIT\r\n")
        proto, _ = await self.session()
        self.assertTrue((await self.send(proto, b"STAT\r\n")).startswith(b"+OK 3 "))


class RetrieveTests(Pop3TestCase):
    async def test_retr_is_byte_exact(self):
        await self.deliver()
        proto, _ = await self.session()
        out = await self.send(proto, b"RETR 1\r\n")
        status, content, rest = decode_multiline(out)
        self.assertEqual(status, b"+OK %d octets" % len(MESSAGE))
        self.assertEqual(content, MESSAGE)
        self.assertEqual(rest, b"")
        self.assertIn(b"\r\n..starts with a dot\r\n..\r\n", out)

    async def test_top(self):
        await self.deliver()
        proto, _ = await self.session()
        status, content, _ = decode_multiline(await self.send(proto, b"TOP 1 1\r\n"))
        self.assertEqual(status, b"+OK Top of message follows.")
        self.assertEqual(content, MESSAGE.split(b"\r\n\r\n")[0] + b"\r\n\r\nFirst line.\r\n")
        _, content, _ = decode_multiline(await self.send(proto, b"TOP 1 0\r\n"))
        self.assertTrue(content.endswith(b"Subject: hello\r\n\r\n"))
        for bad in (b"TOP 1", b"TOP 1 x", b"TOP x 1", b"TOP 1 -1"):
            proto.errors = 0
            self.assertEqual(await self.send(proto, bad + b"\r\n"), b"-ERR Wrong arguments.\r\n")

    async def test_message_removed_meanwhile(self):
        """An IMAP session expunged it after our login: -ERR, and the session goes on."""
        uid = await self.deliver()
        proto, _ = await self.session()
        await self.store.messages.expunge(self.alice.id, self.inbox.id, [uid], only_deleted=False)
        self.assertEqual(
            await self.send(proto, b"RETR 1\r\n"), b"-ERR Message is no longer available.\r\n"
        )
        self.assertEqual(await self.send(proto, b"NOOP\r\n"), b"+OK\r\n")

    async def test_pipelined_commands_are_answered_in_order(self):
        await self.deliver()
        await self.deliver(BIG)
        proto, _ = await self.session()
        out = await self.send(proto, b"STAT\r\nRETR 2\r\nLIST 1\r\nRETR 1\r\nNOOP\r\n")
        first, rest = out.split(b"\r\n", 1)
        self.assertEqual(first, b"+OK 2 %d" % (len(MESSAGE) + len(BIG)))
        _, big, rest = decode_multiline(rest)
        self.assertEqual(big, BIG)
        listed, rest = rest.split(b"\r\n", 1)
        self.assertEqual(listed, b"+OK 1 %d" % len(MESSAGE))
        _, small, rest = decode_multiline(rest)
        self.assertEqual(small, MESSAGE)
        self.assertEqual(rest, b"+OK\r\n")

    async def test_slow_client_gets_the_message_chunk_by_chunk(self):
        """Flow control: while the client does not read, no more of the file is read."""
        big = b"Subject: large\r\n\r\n" + (b"z" * 98 + b"\r\n") * 3000  # ~300 KB
        await self.deliver(big)
        proto, transport = self.connect(pump=False)
        await self.login(proto)
        proto.dataReceived(b"RETR 1\r\nNOOP\r\n")
        self.assertIsNotNone(transport.producer)
        self.assertEqual(transport.value(), b"+OK %d octets\r\n" % len(big))
        transport.producer.resumeProducing()
        self.assertLess(len(transport.value()), 70_000)
        while transport.producer is not None:
            transport.producer.resumeProducing()
        await proto.when_idle()
        _, content, rest = decode_multiline(transport.value())
        self.assertEqual((content, rest), (big, b"+OK\r\n"))


class DeleteTests(Pop3TestCase):
    async def setUp(self) -> None:  # type: ignore[override]
        await super().setUp()
        self.uids = [await self.deliver(), await self.deliver(BIG), await self.deliver()]
        self.proto, self.transport = await self.session()

    async def remaining(self) -> list[int]:
        return [m.uid for m in await self.store.messages.list(self.alice.id, self.inbox.id)]

    async def test_dele_marks_and_quit_commits_once(self):
        heard = []
        self.store.events.subscribe(heard.append)
        self.assertEqual(await self.send(self.proto, b"DELE 1\r\n"), b"+OK Message 1 deleted.\r\n")
        self.assertEqual(
            await self.send(self.proto, b"DELE 1\r\n"), b"-ERR Message is deleted.\r\n"
        )
        self.assertEqual(
            await self.send(self.proto, b"RETR 1\r\n"), b"-ERR Message is deleted.\r\n"
        )
        await self.send(self.proto, b"DELE 3\r\n")
        self.assertEqual(await self.send(self.proto, b"STAT\r\n"), b"+OK 1 %d\r\n" % len(BIG))
        self.assertEqual(
            await self.send(self.proto, b"LIST\r\n"),
            b"+OK 1 messages (%d octets)\r\n2 %d\r\n.\r\n" % (len(BIG), len(BIG)),
        )
        self.assertEqual(await self.remaining(), self.uids)  # nothing removed before QUIT
        self.assertEqual(
            await self.send(self.proto, b"QUIT\r\n"), b"+OK Bye, 2 messages deleted.\r\n"
        )
        self.assertFalse(self.transport.connected)
        self.assertEqual(await self.remaining(), [self.uids[1]])
        from tests.store.helpers import wait_for

        expunged = await wait_for(lambda: [e for e in heard if e.type == EXPUNGED], 10, "event")
        self.assertEqual(len(expunged), 1)  # ONE expunge for the session
        self.assertEqual(expunged[0].data["uids"], [self.uids[0], self.uids[2]])

    async def test_rset_undoes(self):
        await self.send(self.proto, b"DELE 1\r\nDELE 2\r\n")
        self.assertEqual(
            await self.send(self.proto, b"RSET\r\n"),
            b"+OK 3 messages (%d octets).\r\n" % (2 * len(MESSAGE) + len(BIG)),
        )
        self.assertEqual(await self.send(self.proto, b"QUIT\r\n"), b"+OK Bye.\r\n")
        self.assertEqual(await self.remaining(), self.uids)

    async def test_a_dropped_connection_commits_nothing(self):
        await self.send(self.proto, b"DELE 1\r\nDELE 2\r\n")
        self.transport.loseConnection()
        self.assertEqual(await self.remaining(), self.uids)
        proto, _ = await self.session()  # the lock was released
        self.assertTrue((await self.send(proto, b"STAT\r\n")).startswith(b"+OK 3 "))

    async def test_failed_commit_claims_nothing(self):
        def failing(*args, **kwargs):
            from twisted.internet.defer import fail

            return fail(StoreUnavailable())

        self.patch(self.store.messages, "expunge", failing)
        await self.send(self.proto, b"DELE 1\r\n")
        out = await self.send(self.proto, b"QUIT\r\n")
        self.assertEqual(out, replies.ERR_NOT_COMMITTED + b"\r\n")
        self.assertFalse(self.transport.connected)
        self.assertEqual(await self.remaining(), self.uids)
        self.flushLoggedErrors(StoreUnavailable)

    async def test_quit_answers_only_after_the_commit(self):
        from twisted.internet.defer import Deferred

        pending: Deferred[list[int]] = Deferred()
        real = self.store.messages.expunge
        calls = []

        def delayed(*args, **kwargs):
            calls.append((args, kwargs))
            return pending.addCallback(lambda _: real(*args, **kwargs))

        self.patch(self.store.messages, "expunge", delayed)
        await self.send(self.proto, b"DELE 2\r\n")
        self.proto.dataReceived(b"QUIT\r\n")
        from tests.store.helpers import wait_for

        await wait_for(lambda: calls, 10, "expunge called")
        self.assertEqual(self.transport.value(), b"")  # not before the commit
        self.assertEqual(calls[0][0], (self.alice.id, self.inbox.id, [self.uids[1]]))
        self.assertEqual(calls[0][1], {"only_deleted": False})
        pending.callback(None)
        await self.proto.when_idle()
        await wait_for(lambda: self.transport.value(), 10, "reply")
        self.assertEqual(self.transport.value(), b"+OK Bye, 1 messages deleted.\r\n")


class BadInputTests(Pop3TestCase):
    async def test_unknown_and_out_of_state_commands(self):
        proto, _ = self.connect()
        self.assertEqual(await self.send(proto, b"FOO bar\r\n"), b"-ERR Unknown command.\r\n")
        self.assertEqual(
            await self.send(proto, b"STAT\r\n"), b"-ERR Command not valid in this state.\r\n"
        )
        self.assertEqual(await self.send(proto, b"APOP alice x\r\n"), b"-ERR Unknown command.\r\n")
        self.assertEqual(await self.send(proto, b"\x00\xff\r\n"), b"-ERR Unknown command.\r\n")
        self.assertEqual(await self.send(proto, b"\r\n"), b"-ERR Unknown command.\r\n")
        await self.login(proto)
        proto.errors = 0
        self.assertEqual(
            await self.send(proto, b"USER bob\r\n"), b"-ERR Command not valid in this state.\r\n"
        )
        self.assertEqual(
            await self.send(proto, b"STLS\r\n"), b"-ERR Command not valid in this state.\r\n"
        )

    async def test_overlong_line_gets_an_error_and_the_session_goes_on(self):
        proto, transport = self.connect()
        limit = self.settings.max_line_length
        out = await self.send(proto, b"NOOP " + b"x" * limit + b"\r\nCAPA\r\n")
        self.assertTrue(
            out.startswith(b"-ERR Line too long.\r\n+OK Capability list follows.\r\n"), out
        )
        # Sent in pieces, never buffered past the limit.
        for _ in range(5):
            proto.dataReceived(b"y" * limit)
        self.assertLessEqual(len(proto._queue._partial), limit + 1)
        self.assertEqual(
            await self.send(proto, b"\r\nQUIT\r\n"), b"-ERR Line too long.\r\n+OK Bye.\r\n"
        )
        self.assertFalse(transport.connected)

    async def test_line_at_the_limit_is_accepted(self):
        proto, _ = self.connect()
        line = b"USER " + b"a" * (self.settings.max_line_length - 5)
        proto.secure = True
        self.assertEqual(await self.send(proto, line + b"\r\n"), b"+OK Send the password.\r\n")

    async def test_too_many_errors_disconnects(self):
        proto, transport = self.connect()
        out = await self.send(proto, b"BAD\r\n" * (self.settings.max_errors + 3))
        self.assertEqual(
            out,
            b"-ERR Unknown command.\r\n" * self.settings.max_errors
            + b"-ERR Too many errors, closing connection.\r\n",
        )
        self.assertFalse(transport.connected)

    async def test_arguments_where_none_are_allowed(self):
        proto, _ = await self.session()
        for command in (b"STAT x", b"NOOP x", b"RSET 1", b"CAPA x"):
            proto.errors = 0
            self.assertEqual(
                await self.send(proto, command + b"\r\n"), b"-ERR Wrong arguments.\r\n"
            )

    async def test_many_pipelined_lines_pause_reading(self):
        proto, transport = await self.session()
        states = []
        pause = transport.pauseProducing
        transport.pauseProducing = lambda: (states.append(len(proto._queue)), pause())  # type: ignore[method-assign]
        proto.dataReceived(b"NOOP\r\n" * (server_module.MAX_QUEUED_LINES + 10))
        await proto.when_idle()
        self.assertEqual(states, [server_module.MAX_QUEUED_LINES + 10])
        self.assertEqual(transport.value().count(b"+OK\r\n"), server_module.MAX_QUEUED_LINES + 10)
        self.assertEqual(transport.producerState, "producing")  # resumed once drained

    async def test_reading_resumes_when_a_long_pipeline_ends_with_quit(self):
        """A TLS connection cannot finish closing while its reading is paused."""
        proto, transport = await self.session()
        proto.dataReceived(b"NOOP\r\n" * server_module.MAX_QUEUED_LINES + b"QUIT\r\n")
        await proto.when_idle()
        self.assertTrue(transport.value().endswith(b"+OK\r\n+OK Bye.\r\n"))
        self.assertFalse(transport.connected)
        self.assertEqual(transport.producerState, "producing")


class TimeoutTests(Pop3TestCase):
    async def test_idle_session_is_closed_without_committing(self):
        uid = await self.deliver()
        proto, transport = await self.session()
        await self.send(proto, b"DELE 1\r\n")
        self.clock.advance(self.settings.idle_timeout - 1)
        self.assertTrue(transport.connected)
        await self.send(proto, b"NOOP\r\n")  # activity resets the timer
        self.clock.advance(self.settings.idle_timeout - 1)
        self.assertTrue(transport.connected)
        self.clock.advance(2)
        self.assertEqual(transport.value(), b"-ERR Disconnected for inactivity.\r\n")
        self.assertFalse(transport.connected)
        self.assertEqual(
            [m.uid for m in await self.store.messages.list(self.alice.id, self.inbox.id)], [uid]
        )
        self.assertIsNone(proto.lock)

    async def test_unauthenticated_session_times_out_too(self):
        _, transport = self.connect()
        self.clock.advance(self.settings.idle_timeout + 1)
        self.assertFalse(transport.connected)
