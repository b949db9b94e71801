"""Each POP3 bug of twisted.mail 26.10 (../shared/TWISTED-MAIL-NOTES.md), shown on the
unpatched ``twisted.mail.pop3.POP3`` and shown fixed in a3mail's ``POP3Server``.

Every test runs one scenario twice: first against Twisted's class (asserting the broken
behaviour, so the test documents the bug and would notice Twisted fixing it), then against
ours.  Where possible both run over the same maildrop (our ``Maildrop`` also provides
Twisted's ``IMailboxPOP3``).
"""

from __future__ import annotations

import io
import re
from typing import Any

from twisted.cred.credentials import IUsernameHashedPassword
from twisted.internet.defer import Deferred
from twisted.mail import pop3
from twisted.protocols import basic

from a3mail.pop3 import replies
from a3mail.pop3.mailbox import Maildrop
from a3mail.store import StoreUnavailable
from tests.pop3.support import MESSAGE, Pop3TestCase, SessionTransport, decode_multiline

KiB = 1024


def dot_line_message(offset: int, line_end: bytes) -> bytes:
    """A message whose line starting exactly at *offset* is a lone ``.``."""
    header = b"Subject: boundary" + line_end + line_end
    filler = b"x" * 30 + line_end
    body = header
    while len(body) + len(filler) <= offset:
        body += filler
    body += b"y" * (offset - len(body) - len(line_end)) + line_end
    assert len(body) == offset
    return body + b"." + line_end + b"after the dot line" + line_end


class LFMailbox(pop3.Mailbox):
    """Twisted's own mailbox shape: one message stored with LF line ends, as it expects."""

    def __init__(self, message: bytes) -> None:
        self.message = message

    def listMessages(self, i: Any = None) -> Any:
        return [len(self.message)] if i is None else len(self.message)

    def getMessage(self, i: int) -> io.BytesIO:
        return io.BytesIO(self.message)


def twisted_session(
    mbox: Any = None, cls: type[pop3.POP3] = pop3.POP3
) -> tuple[Any, SessionTransport]:
    """An unpatched Twisted POP3 session, already "logged in" to *mbox*."""
    proto = cls()
    proto.timeOut = None  # no timer on the global reactor
    proto.mbox = mbox
    transport = SessionTransport()
    transport.protocol = proto
    proto.makeConnection(transport)
    return proto, transport


class TwistedRegressionTests(Pop3TestCase):
    async def maildrop(self) -> Maildrop:
        return await Maildrop.load(self.store, self.alice.id)

    async def test_dot_line_on_a_16_kib_chunk_boundary(self):
        """Twisted stuffs each 16 KiB chunk on its own (transformChunk): a ``.`` line that
        starts a chunk is not stuffed, the client takes it for the end of the message and
        reads the rest of the message as protocol responses."""
        self.assertEqual(basic.FileSender.CHUNK_SIZE, 16 * KiB)
        lf_message = dot_line_message(16 * KiB, b"\n")  # Twisted's expected storage
        proto, transport = twisted_session(LFMailbox(lf_message))
        transport.clear()
        proto.dataReceived(b"RETR 1\r\n")
        _, content, rest = decode_multiline(transport.value())
        self.assertEqual(content, lf_message[: 16 * KiB].replace(b"\n", b"\r\n"))  # cut there
        self.assertTrue(rest.startswith(b"after the dot line\r\n"))  # "protocol" for the client

        crlf_message = dot_line_message(16 * KiB, b"\r\n")  # the same message as we store it
        await self.deliver(crlf_message)
        ours, _ = await self.session()
        _, content, rest = decode_multiline(await self.send(ours, b"RETR 1\r\n"))
        self.assertEqual((content, rest), (crlf_message, b""))

    async def test_crlf_storage_comes_out_as_cr_cr_lf(self):
        """Twisted assumes LF storage and turns every LF into CRLF: stored CRLF becomes
        ``\\r\\r\\n``.  Same maildrop, same message, both classes."""
        await self.deliver(MESSAGE)
        proto, transport = twisted_session(await self.maildrop())
        transport.clear()
        proto.dataReceived(b"RETR 1\r\n")
        self.assertIn(b"\r\r\n", transport.value())

        ours, _ = await self.session()
        out = await self.send(ours, b"RETR 1\r\n")
        self.assertNotIn(b"\r\r\n", out)
        self.assertEqual(decode_multiline(out)[1], MESSAGE)

    async def test_dele_is_unchecked(self):
        """Twisted's DELE does ``int(arg)`` and ``mbox.deleteMessage`` unchecked: a bad
        argument or a second DELE raises out of dataReceived (the connection is dropped)."""
        await self.deliver()
        proto, _ = twisted_session(await self.maildrop())
        self.assertRaises(TypeError, proto.dataReceived, b"DELE abc\r\n")
        proto, transport = twisted_session(await self.maildrop())
        proto.dataReceived(b"DELE 1\r\n")
        self.assertRaises(TypeError, proto.dataReceived, b"DELE 1\r\n")
        self.flushLoggedErrors(ValueError)

        ours, transport = await self.session()
        out = await self.send(ours, b"DELE abc\r\nDELE 1\r\nDELE 1\r\nDELE 9\r\nNOOP\r\n")
        self.assertEqual(
            out,
            b"-ERR Wrong arguments.\r\n+OK Message 1 deleted.\r\n-ERR Message is deleted.\r\n"
            b"-ERR No such message.\r\n+OK\r\n",
        )
        self.assertTrue(transport.connected)

    async def test_quit_claims_success_before_and_regardless_of_the_commit(self):
        """Twisted's QUIT calls ``mbox.sync()``, ignores its Deferred and answers +OK at
        once: the client is told its messages are deleted before (and even if never)."""
        await self.deliver()
        commit: Deferred[list[int]] = Deferred()
        maildrop = await self.maildrop()
        maildrop.commit = lambda: commit  # type: ignore[method-assign]
        proto, transport = twisted_session(maildrop)
        transport.clear()
        proto.dataReceived(b"DELE 1\r\nQUIT\r\n")
        self.assertEqual(transport.value(), b"+OK \r\n+OK \r\n")  # before the commit ran
        commit.errback(StoreUnavailable())  # ... and the failure goes unnoticed
        commit.addErrback(lambda _: None)

        def failing_expunge(*args: Any, **kwargs: Any) -> Deferred[list[int]]:
            failed: Deferred[list[int]] = Deferred()
            failed.errback(StoreUnavailable())
            return failed

        self.patch(self.store.messages, "expunge", failing_expunge)
        ours, transport = await self.session()
        out = await self.send(ours, b"DELE 1\r\nQUIT\r\n")
        self.assertEqual(out, b"+OK Message 1 deleted.\r\n" + replies.ERR_NOT_COMMITTED + b"\r\n")
        self.flushLoggedErrors(StoreUnavailable)

    async def test_capa_lists_joke_capabilities_and_no_stls(self):
        proto, transport = twisted_session()
        transport.clear()
        proto.dataReceived(b"CAPA\r\n")
        caps = transport.value().split(b"\r\n")
        for joke in (b"CELERITY", b"AUSPEX", b"POTENCE"):
            self.assertIn(joke, caps)
        self.assertNotIn(b"STLS", caps)
        transport.clear()
        proto.dataReceived(b"STLS\r\n")
        self.assertTrue(transport.value().startswith(b"-ERR bad protocol or server: POP3Error"))
        self.assertEqual(transport.tls_started, [])
        self.flushLoggedErrors(pop3.POP3Error)

        ours, transport = self.connect("192.0.2.1")
        caps = (await self.send(ours, b"CAPA\r\n")).split(b"\r\n")
        self.assertEqual(
            caps[1:-2],
            [
                b"TOP",
                b"UIDL",
                b"STLS",
                b"RESP-CODES",
                b"AUTH-RESP-CODE",
                b"PIPELINING",
                b"IMPLEMENTATION a3mail",
            ],
        )
        self.assertEqual(await self.send(ours, b"STLS\r\n"), b"+OK Begin TLS negotiation now.\r\n")
        self.assertEqual(len(transport.tls_started), 1)

    async def test_apop_is_offered_but_needs_plaintext_passwords(self):
        """Twisted's greeting carries an APOP timestamp and it accepts APOP, whose digest
        can only be checked against a plaintext password; a3mail stores argon2id hashes, so
        it offers no APOP: no timestamp, no command, no hashed-password checker."""
        proto, transport = twisted_session()
        self.assertRegex(transport.value(), rb"^\+OK <[^>]+>\r\n$")
        transport.clear()
        proto.dataReceived(b"APOP alice 0123456789abcdef0123456789abcdef\r\n")
        self.assertEqual(transport.value(), b"-ERR Authentication failed\r\n")  # a command

        ours = self.factory.buildProtocol(None)
        ours_transport = SessionTransport()
        ours.makeConnection(ours_transport)
        self.assertNotIn(b"<", ours_transport.value())
        self.assertEqual(
            await self.send(ours, b"APOP alice 0123\r\n"), b"-ERR Unknown command.\r\n"
        )
        self.assertNotIn(IUsernameHashedPassword, self.factory.checker.credentialInterfaces)

    async def test_plaintext_after_stls_is_not_run_in_tls(self):
        """STARTTLS command injection.  Twisted's POP3 has no STLS; adding one the obvious
        way on its line receiver runs a command pipelined after STLS, in the same packet
        (so sent in plaintext), as if it came over TLS.  Ours drops it."""

        class NaiveSTLS(pop3.POP3):
            AUTH_CMDS = [*pop3.POP3.AUTH_CMDS, b"STLS"]

            def do_STLS(self) -> None:
                self.successResponse(b"Begin TLS")
                self.transport.startTLS(object())
                self.tls_at = len(self.transport.value())

        proto, transport = twisted_session(cls=NaiveSTLS)
        proto.dataReceived(b"STLS\r\nCAPA\r\n")
        self.assertEqual(len(transport.tls_started), 1)
        self.assertIn(b"CELERITY", transport.value()[proto.tls_at :])  # CAPA ran "in TLS"

        ours, transport = self.connect("192.0.2.1")
        self.assertEqual(
            await self.send(ours, b"STLS\r\nCAPA\r\n"), b"+OK Begin TLS negotiation now.\r\n"
        )

    async def test_overlong_line_drops_the_connection_and_errors_leak_exception_names(self):
        proto, transport = twisted_session()
        proto.dataReceived(b"NOOP " + b"x" * 17000 + b"\r\n")
        self.assertFalse(transport.connected)
        proto, transport = twisted_session()
        transport.clear()
        proto.dataReceived(b"FOO\r\n")
        self.assertTrue(re.search(rb"POP3Error", transport.value()))
        self.flushLoggedErrors()

        ours, transport = self.connect()
        out = await self.send(ours, b"NOOP " + b"x" * 17000 + b"\r\nFOO\r\n")
        self.assertEqual(out, b"-ERR Line too long.\r\n-ERR Unknown command.\r\n")
        self.assertTrue(transport.connected)
