"""Limits and timeouts, Clock-driven: command and data timeouts, connections per address,
errors before disconnect, data line length, back-pressure."""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred

from tests.smtp.support import SmtpTestCase, parse_replies, simple_message


class TimeoutTests(SmtpTestCase):
    overrides = {"smtp.command_timeout": 60, "smtp.data_timeout": 120}

    async def test_command_timeout_is_421_4_4_2(self):
        s = await self.greeted()
        self.clock.advance(59)
        self.assertEqual((await s.command("NOOP")).code, 250)  # activity resets the timer
        self.clock.advance(59)
        self.assertFalse(s.closed)
        self.clock.advance(2)
        [reply] = parse_replies(s.new_output())
        self.assertEqual((reply.code, reply.status), (421, "4.4.2"))
        self.assertTrue(s.closed)

    async def test_data_timeout_drops_the_partial_message(self):
        await self.user("alice@example.com")
        s = await self.greeted()
        await s.command("MAIL FROM:<a@example.net>")
        await s.command("RCPT TO:<alice@example.com>")
        await s.command("DATA")
        await s.send(b"Subject: slow\r\n\r\npart one\r\n")
        self.assertEqual(self.tmp_files(), [])  # small: in memory (a3mail.smtp.spill)
        self.clock.advance(100)  # longer than the command timeout, shorter than the data one
        self.assertFalse(s.closed)
        self.clock.advance(21)
        [reply] = parse_replies(s.new_output())
        self.assertEqual((reply.code, reply.status), (421, "4.4.2"))
        self.assertTrue(s.closed)
        self.assertEqual(self.tmp_files(), [])
        self.assertEqual(await self.inbox("alice@example.com"), [])

    async def test_a_client_disconnecting_in_data_leaves_no_file(self):
        await self.user("alice@example.com")
        s = await self.greeted()
        await s.command("MAIL FROM:<a@example.net>")
        await s.command("RCPT TO:<alice@example.com>")
        await s.command("DATA")
        await s.send(b"Subject: cut\r\n\r\npart")
        s.protocol.connectionLost(None)
        self.assertEqual(self.tmp_files(), [])


class ConnectionLimitTests(SmtpTestCase):
    overrides = {"smtp.max_connections_per_ip": 2}

    async def test_connections_per_address(self):
        factory = self.factory()
        first = self.connect(factory=factory)
        self.connect(factory=factory)
        refused = factory.buildProtocol(IPv4Address("TCP", "192.0.2.1", 40001))
        from twisted.internet.testing import StringTransport

        transport = StringTransport()
        refused.makeConnection(transport)
        [reply] = parse_replies(transport.value())
        self.assertEqual((reply.code, reply.status), (421, "4.7.0"))
        self.assertTrue(transport.disconnecting)
        other = self.connect(factory=factory, peer="192.0.2.2")  # another address is fine
        self.assertFalse(other.closed)
        first.protocol.connectionLost(None)
        again = self.connect(factory=factory)
        self.assertEqual((await again.command("NOOP")).code, 250)
        self.assertEqual(self.stats.connections_refused, 1)


class ErrorLimitTests(SmtpTestCase):
    overrides = {"smtp.max_errors": 3}

    async def test_too_many_errors_is_421_4_7_0_and_close(self):
        s = await self.greeted()
        out = await s.send(b"FOO\r\nNOOP\r\nBAR\r\nBAZ\r\nNOOP\r\nNOOP\r\n")
        self.assertEqual([r.code for r in out], [500, 250, 500, 500, 421])
        self.assertEqual(out[-1].status, "4.7.0")
        self.assertTrue(s.closed)


class DataLineTests(SmtpTestCase):
    async def test_overlong_data_line_never_leaves_data_mode(self):
        await self.user("alice@example.com")
        s = await self.greeted()
        await s.command("MAIL FROM:<a@example.net>")
        await s.command("RCPT TO:<alice@example.com>")
        await s.command("DATA")
        body = (
            b"Subject: long\r\n\r\n" + b"L" * 20000 + b"\r\n"
            b"MAIL FROM:<injected@example.org>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n"
            b"injected\r\n"
        )
        self.assertEqual(await s.send(body), [])  # still in DATA: nothing answered
        [reply] = await s.send(b".\r\n")
        self.assertEqual((reply.code, reply.status), (552, "5.5.2"))
        self.assertEqual(await self.inbox("alice@example.com"), [])
        self.assertEqual(self.tmp_files(), [])
        await s.command("MAIL FROM:<a@example.net>")
        await s.command("RCPT TO:<alice@example.com>")
        self.assertEqual((await s.message(simple_message())).code, 250)

    async def test_998_octet_lines_are_fine(self):
        await self.user("alice@example.com")
        s = await self.greeted()
        await s.command("MAIL FROM:<a@example.net>")
        await s.command("RCPT TO:<alice@example.com>")
        line = b"x" * 998
        self.assertEqual((await s.message(b"Subject: ok\r\n\r\n" + line + b"\r\n")).code, 250)
        [(_, data)] = await self.inbox("alice@example.com")
        self.assertTrue(data.endswith(b"\r\n\r\n" + line + b"\r\n"))


class BackPressureTests(SmtpTestCase):
    async def test_reading_pauses_while_a_delivery_holds_the_pipeline(self):
        await self.user("alice@example.com")
        s = await self.greeted()
        held: Deferred = Deferred()
        real = self.store.group_delivery.deliver

        def slow(*args, **kwargs):
            return held.addCallback(lambda _: real(*args, **kwargs))

        self.patch(self.store.group_delivery, "deliver", slow)
        await s.command("MAIL FROM:<a@example.net>")
        await s.command("RCPT TO:<alice@example.com>")
        await s.command("DATA")
        s.protocol.dataReceived(simple_message() + b".\r\n")
        for _ in range(3):
            s.protocol.dataReceived(b"NOOP\r\n" * 30000)
        self.assertTrue(s.transport.paused)
        self.assertEqual(s.new_output(), b"")
        held.callback(None)
        await s.settle()
        out = parse_replies(s.new_output())
        self.assertEqual([r.code for r in out[:2]], [250, 250])
        self.assertEqual(len(out), 90001)
        self.assertFalse(s.transport.paused)
