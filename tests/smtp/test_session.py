"""Session basics in memory: greeting, EHLO, simple commands, enhanced status codes,
bad input (NUL, 8-bit, control characters, overlong lines), and errors inside handlers."""

from __future__ import annotations

from a3mail.smtp import replies
from a3mail.store.db import StoreUnavailable
from tests.smtp.support import HOSTNAME, SmtpTestCase, parse_replies, simple_message


class GreetingTests(SmtpTestCase):
    overrides = {"smtp.max_errors": 100}

    async def test_greeting_and_ehlo(self):
        s = self.connect()
        self.assertEqual(s.transport.value(), f"220 {HOSTNAME} ESMTP a3mail\r\n".encode())
        ehlo = await s.command("EHLO client.example.com")
        self.assertEqual(ehlo.code, 250)
        self.assertEqual(ehlo.lines[0], f"{HOSTNAME} Hello client.example.com [192.0.2.1]")
        self.assertEqual(
            ehlo.lines[1:],
            [
                "PIPELINING",
                f"SIZE {self.config.limits.max_message_size}",
                "8BITMIME",
                "ENHANCEDSTATUSCODES",
                "SMTPUTF8",
                "CHUNKING",
                "STARTTLS",
            ],
        )

    async def test_no_starttls_on_tls_and_auth_offered(self):
        s = self.connect(tls=True)
        ehlo = await s.command("EHLO client.example.com")
        self.assertNotIn("STARTTLS", ehlo.lines)
        self.assertIn("AUTH PLAIN LOGIN", ehlo.lines)
        self.assertEqual((await s.command("STARTTLS")).code, 503)

    async def test_simple_commands(self):
        s = self.connect()
        expected = {
            "EHLO": (501, "5.5.4"),
            "MAIL FROM:<a@example.net>": (503, "5.5.1"),
            "HELO c.example": (250, ""),
            "NOOP": (250, "2.0.0"),
            "RSET": (250, "2.0.0"),
            "VRFY alice": (252, "2.5.0"),
            "VRFY": (501, "5.5.4"),
            "EXPN list": (502, "5.5.1"),
            "HELP": (214, "2.0.0"),
            "BDAT 0 LAST": (503, "5.5.1"),
            "FROBNICATE": (500, "5.5.2"),
            "RCPT TO:<a@example.com>": (503, "5.5.1"),
            "DATA": (503, "5.5.1"),
            "DATA now": (501, "5.5.4"),
            "STARTTLS now": (501, "5.5.4"),
            "noop": (250, "2.0.0"),
        }
        for command, (code, status) in expected.items():
            reply = await s.command(command)
            self.assertEqual((reply.code, reply.status), (code, status), command)
        reply = await s.command("QUIT")
        self.assertEqual((reply.code, reply.status), (221, "2.0.0"))
        self.assertTrue(s.closed)

    async def test_every_reply_carries_an_enhanced_status_code(self):
        """Except the greeting, the EHLO/HELO reply and the 3xx intermediates (RFC 2034)."""
        await self.user("alice@example.com")
        s = await self.greeted()
        script = (
            b"MAIL FROM:<a@example.net> SIZE=100\r\nRCPT TO:<alice@example.com>\r\n"
            b"RCPT TO:<nobody@example.com>\r\nRCPT TO:<x@remote.example>\r\nDATA\r\n"
            + simple_message()
            + b".\r\nVRFY x\r\nNOOP\r\nRSET\r\nFOO\r\nMAIL FROM:<bad\r\nQUIT\r\n"
        )
        out = await s.send(script)
        self.assertEqual(
            [r.code for r in out], [250, 250, 550, 554, 354, 250, 252, 250, 250, 500, 501, 221]
        )
        for reply in out:
            if reply.code != 354:
                self.assertRegex(reply.lines[-1], r"^\d\.\d{1,3}\.\d{1,3} ", reply)


class BadInputTests(SmtpTestCase):
    overrides = {"smtp.max_errors": 100}

    async def test_nul_and_8bit_garbage_get_500_and_the_session_goes_on(self):
        s = await self.greeted()
        for line in (
            b"\x00\x00\x00",
            b"NO\x00OP",
            b"\xff\xfe\xfd",
            b"HELO \xc3\x28\x01",
            b"NOOP \x80\x81",
            b"\x1b[2J",
            b"MAIL FROM:<a@example.net>\x00",
        ):
            reply = await s.command(line)
            self.assertEqual((reply.code, reply.status), (500, "5.5.2"), line)
        self.assertEqual((await s.command("NOOP")).code, 250)
        self.assertFalse(s.closed)

    async def test_bare_lf_in_helo_cannot_inject_a_header(self):
        await self.user("alice@example.com")
        s = self.connect()
        reply = await s.command(b"EHLO evil\nX-Injected: yes")
        self.assertEqual(reply.code, 500)
        await s.command('EHLO evil(x)\\;<>"')
        await s.command("MAIL FROM:<a@example.net>")
        await s.command("RCPT TO:<alice@example.com>")
        self.assertEqual((await s.message(simple_message())).code, 250)
        [(_, data)] = await self.inbox("alice@example.com")
        head = data.split(b"\r\n\r\n")[0]
        self.assertIn(b"Received: from evil?x?????? ([192.0.2.1])", head)
        self.assertNotIn(b"X-Injected", data)

    async def test_overlong_command_line_is_500_and_the_session_stays_consistent(self):
        await self.user("alice@example.com")
        s = await self.greeted()
        await s.command("MAIL FROM:<a@example.net>")
        long_line = b"RCPT TO:<" + b"a" * 5000 + b"@example.com>\r\n"
        out = await s.send(long_line[:4500])
        self.assertEqual([(r.code, r.status) for r in out], [(500, "5.5.2")])
        self.assertEqual(await s.send(long_line[4500:]), [])  # the rest of it is dropped
        self.assertEqual((await s.command("RCPT TO:<alice@example.com>")).code, 250)
        self.assertEqual((await s.message(simple_message())).code, 250)

    async def test_a_long_line_split_at_cr_lf(self):
        s = await self.greeted()
        out = await s.send(b"X" * 5000 + b"\r")
        self.assertEqual([r.code for r in out], [500])
        self.assertEqual(await s.send(b"\nNOOP\r\n"), [parse_replies(b"250 2.0.0 OK\r\n")[0]])


class HandlerErrorTests(SmtpTestCase):
    async def test_an_unexpected_error_is_451_without_details(self):
        s = await self.greeted()

        async def broken(*args, **kwargs):
            raise RuntimeError("secret internal detail")

        self.patch(self.store.recipients, "check", broken)
        await s.command("MAIL FROM:<a@example.net>")
        reply = await s.command("RCPT TO:<alice@example.com>")
        self.assertEqual((reply.code, reply.status), (451, "4.3.0"))
        self.assertNotIn(b"secret", s.transport.value())
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual((await s.command("NOOP")).code, 250)

    async def test_store_unavailable_is_451(self):
        s = await self.greeted()

        async def down(*args, **kwargs):
            raise StoreUnavailable("database connection lost")

        self.patch(self.store.recipients, "check", down)
        await s.command("MAIL FROM:<a@example.net>")
        reply = await s.command("RCPT TO:<alice@example.com>")
        self.assertEqual((reply.code, reply.status), (451, "4.3.0"))
        self.assertEqual(reply.text, f"{replies.UNAVAILABLE.status} {replies.UNAVAILABLE.text}")

    async def test_delivery_failure_is_451_and_leaves_no_file(self):
        await self.user("alice@example.com")
        s = await self.greeted()

        def deliver(*args, **kwargs):
            raise StoreUnavailable("no database connection available")

        self.patch(self.store.group_delivery, "deliver", deliver)
        await s.command("MAIL FROM:<a@example.net>")
        await s.command("RCPT TO:<alice@example.com>")
        reply = await s.message(simple_message())
        self.assertEqual((reply.code, reply.status), (451, "4.3.0"))
        self.assertEqual(self.tmp_files(), [])
        self.assertEqual((await s.command("NOOP")).code, 250)
