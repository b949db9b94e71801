"""Security regression tests for the bugs of twisted.mail's ESMTP (TWISTED-MAIL-NOTES).

Each test runs the attack against the unpatched class (``tests.smtp.unpatched``: twisted's
ESMTP with an asynchronous recipient check, as any real server has) and asserts the bad
behaviour there, then runs it against a3mail's server and asserts it is fixed.  If Twisted
ever fixes a bug, the "unpatched" half fails and tells us so.
"""

from __future__ import annotations

import base64
import inspect

from twisted.mail import smtp

from tests.smtp.support import SmtpTestCase, simple_message
from tests.smtp.unpatched import MemoryDelivery, Unpatched

PIPELINED = (
    b"EHLO attacker.example\r\n"
    b"MAIL FROM:<bob@example.net>\r\n"
    b"RCPT TO:<alice@example.com>\r\n"
    b"RCPT TO:<carol@example.com>\r\n"
    b"DATA\r\n"
    b"Subject: pipelined\r\n\r\nline one\r\n"
    b"RSET\r\n"
    b"MAIL FROM:<body-line@example.net>\r\n"
    b".\r\n"
)


class RegressionTestCase(SmtpTestCase):
    def unpatched(self, known: set[str], failing: set[str] | None = None) -> Unpatched:
        twisted = Unpatched(MemoryDelivery(known, failing))
        self.addCleanup(twisted.close)
        return twisted

    async def accounts(self, *names: str) -> None:
        for name in names:
            await self.user(f"{name}@example.com")


class StartTLSInjectionTests(RegressionTestCase):
    INJECTION = b"STARTTLS\r\nMAIL FROM:<injected@example.org>\r\n"

    async def test_unpatched_runs_plaintext_sent_after_starttls(self):
        twisted = self.unpatched({"alice@example.com"})
        await twisted.send(b"EHLO c.example\r\n")
        codes = await twisted.send(self.INJECTION)
        self.assertEqual(codes, [220, 250])  # the injected MAIL FROM was accepted in TLS
        self.assertIn("injected@example.org", twisted.delivery.senders)

    async def test_plaintext_after_starttls_is_discarded(self):
        await self.accounts("alice")
        s = await self.greeted()
        replies = await s.send(self.INJECTION)
        self.assertEqual([r.code for r in replies], [220])
        self.assertEqual((await s.command("EHLO c.example")).code, 250)
        self.assertEqual((await s.command("RCPT TO:<alice@example.com>")).code, 503)  # no MAIL


class PipeliningTests(RegressionTestCase):
    async def test_unpatched_refuses_data_and_runs_the_body_as_commands(self):
        twisted = self.unpatched({"alice@example.com", "carol@example.com"})
        codes = await twisted.send(PIPELINED)
        self.assertIn(503, codes)  # DATA came before the asynchronous RCPT checks finished
        self.assertIn(b"Sender address accepted", twisted.transport.value())
        self.assertIn("body-line@example.net", twisted.delivery.senders)  # body lines executed
        self.assertEqual(twisted.delivery.messages, [])

    async def test_one_packet_transaction_is_delivered_once(self):
        await self.accounts("alice", "carol")
        s = self.connect()
        replies = await s.send(PIPELINED)
        self.assertEqual([r.code for r in replies], [250, 250, 250, 250, 354, 250])
        for name in ("alice", "carol"):
            [(_, data)] = await self.inbox(f"{name}@example.com")
            self.assertIn(b"\r\nRSET\r\nMAIL FROM:<body-line@example.net>\r\n", data)


class RefusedDataTests(RegressionTestCase):
    BLIND = (
        b"EHLO c.example\r\nMAIL FROM:<bob@example.net>\r\nRCPT TO:<ghost@example.com>\r\n"
        b"DATA\r\nSubject: x\r\n\r\nRSET\r\nMAIL FROM:<body-line@example.net>\r\n.\r\n"
    )

    async def test_unpatched_runs_the_body_of_a_refused_data(self):
        twisted = self.unpatched(set())
        await twisted.send(self.BLIND)
        self.assertIn("body-line@example.net", twisted.delivery.senders)

    async def test_the_body_of_a_refused_data_is_swallowed(self):
        s = self.connect()
        replies = await s.send(self.BLIND)
        self.assertEqual(
            [(r.code, r.status) for r in replies],
            [(250, ""), (250, "2.1.0"), (554, "5.7.1"), (554, "5.5.1"), (554, "5.5.0")],
        )
        self.assertEqual((await s.command("RSET")).code, 250)
        self.assertEqual((await s.command("MAIL FROM:<a@example.net>")).code, 250)


class DataLineLengthTests(RegressionTestCase):
    ATTACK = b"EHLO c.example\r\nMAIL FROM:<bob@example.net>\r\nRCPT TO:<alice@example.com>\r\n"
    LONG = b"Subject: long\r\n\r\n" + b"x" * 17000 + b"\r\n"
    INJECTED = b"MAIL FROM:<injected@example.org>\r\n"

    async def test_unpatched_leaves_data_mode_on_a_long_line(self):
        twisted = self.unpatched({"alice@example.com"})
        await twisted.send(self.ATTACK)
        await twisted.send(b"DATA\r\n")
        self.assertEqual(await twisted.send(self.LONG), [500])  # "Line too long"
        self.assertEqual(await twisted.send(self.INJECTED), [250])  # a body line run as MAIL
        self.assertIn("injected@example.org", twisted.delivery.senders)

    async def test_a_long_line_never_leaves_data_mode(self):
        await self.accounts("alice")
        s = self.connect()
        await s.send(self.ATTACK)
        await s.command("DATA")
        self.assertEqual(await s.send(self.LONG), [])
        self.assertEqual(await s.send(self.INJECTED), [])
        [reply] = await s.send(b".\r\n")
        self.assertEqual(reply.code, 552)


class SmugglingTests(RegressionTestCase):
    """Bare LF, ``\\n.\\n``, ``\\r.\\n``, ``\\n.\\r\\n`` must never end DATA.

    Twisted's line splitting by itself only ends DATA on CRLF.CRLF (TWISTED-MAIL-NOTES);
    but an attacker sends the whole transaction in one packet, and there (with an
    asynchronous recipient check) the unpatched class refuses DATA and runs the message
    content, smuggled commands included, as commands."""

    # ending -> how it is stored (a line starting with a dot is un-stuffed)
    SMUGGLE = {
        b"\n.\n": b"\n.\n",
        b"\r.\n": b"\r.\n",
        b"\n.\r\n": b"\n.\r\n",
        b"\r\n.\n": b"\r\n\n",
        b"\n.\r": b"\n.\r",
    }

    def attack(self, ending: bytes) -> bytes:
        return (
            b"EHLO c.example\r\nMAIL FROM:<bob@example.net>\r\nRCPT TO:<alice@example.com>\r\n"
            b"DATA\r\nSubject: first\r\n\r\nhello" + ending + b"MAIL FROM:<admin@example.com>\r\n"
            b"RCPT TO:<alice@example.com>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n.\r\n"
        )

    async def test_unpatched_executes_the_smuggled_transaction(self):
        twisted = self.unpatched({"alice@example.com"})
        codes = await twisted.send(self.attack(b"\n.\n"))
        self.assertIn(503, codes)
        # The smuggled RCPT (message content) was run as a command: two checks, not one.
        self.assertEqual(twisted.delivery.recipients, ["alice@example.com"] * 2)

    async def test_exactly_one_message_with_the_smuggled_lines_inside(self):
        await self.accounts("alice")
        for ending in self.SMUGGLE:
            s = self.connect()
            replies = await s.send(self.attack(ending))
            self.assertEqual([r.code for r in replies], [250, 250, 250, 354, 250], ending)
        messages = await self.inbox("alice@example.com")
        self.assertEqual(len(messages), len(self.SMUGGLE))
        for (info, data), stored in zip(messages, self.SMUGGLE.values()):
            self.assertEqual(info.subject, "first")
            self.assertIn(b"hello" + stored + b"MAIL FROM:<admin@example.com>\r\n", data)
            self.assertTrue(data.endswith(b"Subject: smuggled\r\n\r\nevil\r\n"))


class PlaintextAuthTests(RegressionTestCase):
    async def test_unpatched_accepts_auth_over_plaintext(self):
        twisted = self.unpatched(set())
        await twisted.send(b"EHLO c.example\r\n")
        self.assertIn(b"AUTH PLAIN", twisted.transport.value())
        token = base64.b64encode(b"\0alice\0secret")
        self.assertEqual(await twisted.send(b"AUTH PLAIN " + token + b"\r\n"), [235])

    async def test_auth_over_plaintext_is_refused(self):
        await self.accounts("alice")
        s = self.connect("submission")
        ehlo = await s.command("EHLO c.example")
        self.assertNotIn("AUTH PLAIN LOGIN", ehlo.lines)
        reply = await s.login("alice@example.com")
        self.assertEqual((reply.code, reply.status), (538, "5.7.11"))


class GarbageTests(RegressionTestCase):
    GARBAGE = b"\xff\xfe\x00\x80 garbage\r\n"

    async def test_unpatched_crashes_on_8bit_commands(self):
        twisted = self.unpatched(set())
        self.assertRaises(UnicodeDecodeError, twisted.server.dataReceived, self.GARBAGE)

    async def test_garbage_gets_500_and_the_session_goes_on(self):
        s = self.connect()
        replies = await s.send(self.GARBAGE + b"NOOP\r\n")
        self.assertEqual([(r.code, r.status) for r in replies], [(500, "5.5.2"), (250, "2.0.0")])


class ReceivedHeaderTests(RegressionTestCase):
    def test_unpatched_received_header_is_broken(self):
        """Its lines are joined with a bare LF (smtp.py 896); on Python 3 it does not even
        get there: formatting the class name (a str) into bytes raises TypeError."""
        twisted = self.unpatched(set())
        twisted.server.delivery = None
        self.assertRaises(
            TypeError,
            smtp.SMTP.receivedHeader,
            twisted.server,
            (b"c.example", b"192.0.2.1"),
            smtp.Address(b"a@b.example"),
            [],
        )
        source = inspect.getsource(smtp.SMTP.receivedHeader)
        self.assertIn('b"\\n\\t"', source)

    async def test_trace_headers_end_in_crlf(self):
        await self.accounts("alice")
        s = await self.greeted()
        await s.command("MAIL FROM:<bob@example.net>")
        await s.command("RCPT TO:<alice@example.com>")
        await s.message(simple_message())
        [(_, data)] = await self.inbox("alice@example.com")
        head = data.split(b"\r\n\r\n")[0]
        self.assertIn(b"Received: from c", head)
        self.assertNotIn(b"\n", head.replace(b"\r\n", b""))
        self.assertNotIn(b"\r", head.replace(b"\r\n", b""))


class PerRecipientTests(RegressionTestCase):
    async def test_unpatched_fails_the_whole_message_for_one_recipient(self):
        twisted = self.unpatched({"alice@example.com", "full@example.com"}, {"full@example.com"})
        await twisted.send(
            b"EHLO c.example\r\nMAIL FROM:<bob@example.net>\r\n"
            b"RCPT TO:<alice@example.com>\r\nRCPT TO:<full@example.com>\r\n"
        )
        codes = await twisted.send(b"DATA\r\nSubject: x\r\n\r\nhi\r\n.\r\n")
        self.assertEqual(codes, [354, 550])  # refused for everyone...
        self.assertEqual([r for r, _ in twisted.delivery.messages], ["alice@example.com"])
        self.flushLoggedErrors(OSError)  # ...though alice has it: a retry duplicates it

    async def test_one_bad_recipient_does_not_fail_the_others(self):
        await self.accounts("alice", "full")
        blob = await self.store.incoming(b"Subject: filler\r\n\r\n" + b"f" * 500 + b"\r\n")
        await self.store.messages.deliver(blob, ["full@example.com"])
        await self.store.accounts.set_quota("full@example.com", 100)
        s = await self.greeted()
        await s.command("MAIL FROM:<bob@example.net>")
        self.assertEqual((await s.command("RCPT TO:<alice@example.com>")).code, 250)
        self.assertEqual((await s.command("RCPT TO:<full@example.com>")).code, 452)
        self.assertEqual((await s.command("RCPT TO:<ghost@example.com>")).code, 550)
        self.assertEqual((await s.message(simple_message())).code, 250)
        self.assertEqual(len(await self.inbox("alice@example.com")), 1)
