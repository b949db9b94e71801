"""Each IMAP bug of twisted.mail 26.10 (../shared/TWISTED-MAIL-NOTES.md), shown on the
unpatched ``twisted.mail.imap4.IMAP4Server`` and shown fixed in a3mail's ``IMAPServer``.

Every test runs one scenario twice: first against Twisted's class over an in-memory
account (asserting the broken behaviour, so the test documents the bug and would notice
Twisted fixing it), then against ours over the real store.
"""

from __future__ import annotations

import os

from twisted.mail import imap4
from zope.interface import implementer

from tests.imap.support import ImapTestCase, tagged
from tests.imap.unpatched import MemoryAccount, settle, twisted_session

SIMPLE = (
    b"From: Bob <bob@remote.example>\r\n"
    b"To: alice@example.com\r\n"
    b"subject:   mixed CASE header, spaced\r\n"
    b"X-Folded: one\r\n"
    b"  two\r\n"
    b"\r\n"
    b"Hello world, the body.\r\n"
)
ONE_PART_MULTIPART = (
    b'Content-Type: multipart/mixed; boundary="XX"\r\n\r\n'
    b"--XX\r\nContent-Type: text/plain\r\n\r\nhi\r\n--XX--\r\n"
)
MULTIPART = (
    b"From: bob@remote.example\r\n"
    b"Subject: parts\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="XX"\r\n'
    b"\r\n"
    b"--XX\r\n"
    b"\r\n"
    b"no content-type here\r\n"
    b"--XX\r\n"
    b"Content-Type: text/plain; charset\r\n"
    b"\r\n"
    b"charset without a value\r\n"
    b"--XX--\r\n"
)


def twisted_inbox(*messages: bytes, **kwargs: object) -> tuple[object, object, MemoryAccount]:
    account = MemoryAccount(b"alice")
    account.addMailbox("INBOX")
    for raw in messages:
        account.mailboxes["INBOX"].add(raw)
    for key, value in kwargs.items():
        setattr(account, key, value)
    server, transport = twisted_session(account)
    return server, transport, account


def twisted_send(server: object, transport: object, data: bytes) -> bytes:
    transport.clear()  # type: ignore[attr-defined]
    server.dataReceived(data)  # type: ignore[attr-defined]
    out: bytes = transport.value()  # type: ignore[attr-defined]
    transport.clear()  # type: ignore[attr-defined]
    return out


class TwistedRegressionTests(ImapTestCase):
    async def ours(self, *messages: bytes, select: str | None = "INBOX") -> object:
        for raw in messages:
            await self.deliver(raw)
        return await self.session(select=select)

    async def test_pipelined_commands_with_deferred_backend(self):
        """SELECT answering through a Deferred, then FETCH in the same packet: Twisted
        runs the FETCH before the SELECT finished and answers BAD."""
        server, transport, _ = twisted_inbox(SIMPLE, slow_select=True)
        server.dataReceived(b"a SELECT INBOX\r\nb FETCH 1 (UID)\r\n")
        await settle()
        out = transport.value()
        self.assertIn(b"b BAD", out)
        self.assertNotIn(b"* 1 FETCH", out)

        proto = await self.ours(SIMPLE, select=None)
        out = await self.send(proto, b"a SELECT INBOX\r\nb FETCH 1 (UID)\r\n")
        self.assertIn(b"* 1 FETCH (UID 1)\r\nb OK FETCH completed", out)

    async def test_starttls_command_injection(self):
        """Plaintext pipelined after STARTTLS is executed inside the TLS session."""
        server, transport = twisted_session(logged_in=False)
        out = twisted_send(server, transport, b"a STARTTLS\r\nb CAPABILITY\r\n")
        self.assertIn(b"b OK", out)

        proto, _ = self.connect(peer="192.0.2.1")
        out = await self.send(proto, b"a STARTTLS\r\nb CAPABILITY\r\n")
        self.assertEqual(out, b"a OK Begin TLS negotiation now\r\n")

    async def test_partial_fetch(self):
        """``BODY[]<0.10>`` returns the whole message labelled ``<0.10>``."""
        server, transport, _ = twisted_inbox(SIMPLE)
        twisted_send(server, transport, b"a SELECT INBOX\r\n")
        out = twisted_send(server, transport, b"b FETCH 1 BODY.PEEK[]<0.10>\r\n")
        self.assertRegex(out, rb"BODY\[\]<0\.10> \{1[0-9][0-9]\}")  # the whole message

        proto = await self.ours(SIMPLE)
        out = await self.send(proto, b"b FETCH 1 BODY.PEEK[]<0.10>\r\n")
        self.assertIn(b"BODY[]<0> {10}\r\n" + SIMPLE[:10] + b")", out)

    async def test_body_without_peek_sets_seen(self):
        server, transport, _ = twisted_inbox(SIMPLE)
        twisted_send(server, transport, b"a SELECT INBOX\r\n")
        twisted_send(server, transport, b"b FETCH 1 BODY[]\r\n")
        out = twisted_send(server, transport, b"c FETCH 1 FLAGS\r\n")
        self.assertIn(b"FLAGS ()", out)

        proto = await self.ours(SIMPLE)
        await self.send(proto, b"b FETCH 1 BODY[]\r\n")
        out = await self.send(proto, b"c FETCH 1 FLAGS\r\n")
        self.assertIn(b"FLAGS (\\Seen)", out)

    async def test_append_without_flag_list(self):
        """imaplib's default APPEND form (no flags) fails with BAD."""
        server, transport, _ = twisted_inbox()
        out = twisted_send(server, transport, b"a APPEND INBOX {%d}\r\n" % len(SIMPLE))
        out = twisted_send(server, transport, SIMPLE + b"\r\n")
        self.assertIn(b"a BAD", out)
        self.flushLoggedErrors(TypeError)

        proto = await self.ours(select=None)
        await self.send(proto, b"a APPEND INBOX {%d}\r\n" % len(SIMPLE))
        out = await self.send(proto, SIMPLE + b"\r\n")
        self.assertIn(b"a OK [APPENDUID ", out)

    async def test_append_and_copy_to_missing_mailbox(self):
        """BAD from a str/bytes TypeError instead of ``NO [TRYCREATE]``."""
        server, transport, _ = twisted_inbox(SIMPLE)
        twisted_send(server, transport, b"a SELECT INBOX\r\nj APPEND Nope (\\Seen) {3}\r\n")
        out = twisted_send(server, transport, b"abc\r\n")
        self.assertIn(b"j BAD", out)
        out = twisted_send(server, transport, b"k COPY 1 Nope\r\n")
        self.assertIn(b"k BAD Server error", out)
        self.flushLoggedErrors(TypeError)

        proto = await self.ours(SIMPLE)
        out = await self.send(proto, b"j APPEND Nope (\\Seen) {3}\r\nabc\r\nk COPY 1 Nope\r\n")
        self.assertEqual(tagged(out, b"j"), b"NO [TRYCREATE] No such mailbox")
        self.assertEqual(tagged(out, b"k"), b"NO [TRYCREATE] No such mailbox")

    async def test_search_keys(self):
        """FROM/SUBJECT/HEADER raise, SINCE fails, KEYWORD never matches, TEXT ignores the
        header, and an empty result has no ``* SEARCH`` line."""
        server, transport, _ = twisted_inbox(SIMPLE)
        twisted_send(server, transport, b"a SELECT INBOX\r\nb STORE 1 +FLAGS ($Work)\r\n")
        for key in (b"SUBJECT mixed", b"FROM bob", b"HEADER X-Folded one", b"SINCE 1-Jan-2000"):
            out = twisted_send(server, transport, b"c SEARCH " + key + b"\r\n")
            self.assertIn(b"c BAD SEARCH failed", out)
        out = twisted_send(server, transport, b"d SEARCH KEYWORD $Work\r\n")
        self.assertEqual(out, b"d OK SEARCH completed\r\n")  # no match, though it is set
        out = twisted_send(server, transport, b"e SEARCH DELETED\r\n")
        self.assertEqual(out, b"e OK SEARCH completed\r\n")
        self.flushLoggedErrors(TypeError)

        proto = await self.ours(SIMPLE)
        await self.send(proto, b"b STORE 1 +FLAGS ($Work)\r\n")
        for key in (
            b"SUBJECT mixed",
            b"FROM bob",
            b"HEADER X-Folded one",
            b"SINCE 1-Jan-2000",
            b"KEYWORD $Work",
            b"TEXT remote.example",
            b"TEXT body",
        ):
            out = await self.send(proto, b"c SEARCH " + key + b"\r\n")
            self.assertEqual(out, b"* SEARCH 1\r\nc OK SEARCH completed\r\n", key)
        out = await self.send(proto, b"e SEARCH DELETED\r\n")
        self.assertEqual(out, b"* SEARCH\r\ne OK SEARCH completed\r\n")

    async def test_bodystructure(self):
        """Parameter values lower-cased; a part without Content-Type is all NIL; a
        ``charset`` without a value raises while sending and drops the connection."""
        server, transport, _ = twisted_inbox(SIMPLE, MULTIPART, SIMPLE)
        twisted_send(server, transport, b"a SELECT INBOX\r\n")
        out = twisted_send(server, transport, b"b FETCH 1 BODYSTRUCTURE\r\n")
        self.assertIn(b"(BODYSTRUCTURE (NIL NIL NIL NIL NIL NIL ", out)  # no Content-Type
        structure = imap4.getBodyStructure(MemoryMessageFor(ONE_PART_MULTIPART), extended=True)
        self.assertEqual(structure[2], ["boundary", "xx"])
        out = twisted_send(server, transport, b"c FETCH 1:3 (UID BODYSTRUCTURE)\r\n")
        self.assertNotIn(b"* 3 FETCH", out)  # the hostile message stops the FETCH
        self.assertNotIn(b"c OK", out)
        self.flushLoggedErrors(ValueError)

        proto = await self.ours(SIMPLE, MULTIPART, SIMPLE)
        out = await self.send(proto, b"b FETCH 1 BODYSTRUCTURE\r\n")
        self.assertIn(b'(bodystructure ("text" "plain" ', out.lower())
        out = await self.send(proto, b"c FETCH 1:3 (UID BODYSTRUCTURE)\r\n")
        self.assertIn(b'"XX")', out)  # the value keeps its case
        self.assertIn(b"* 3 FETCH (UID 3 ", out)
        self.assertEqual(tagged(out, b"c"), b"OK FETCH completed")
        # From the parse cached at delivery: no file read needed.
        inbox = await self.store.mailboxes.get(self.alice.id, "INBOX")
        info = (await self.store.messages.list(self.alice.id, inbox.id))[0]
        os.unlink(self.store.blobs.path(info.blob_path))
        out = await self.send(proto, b"c FETCH 1 (BODYSTRUCTURE ENVELOPE)\r\n")
        self.assertEqual(tagged(out, b"c"), b"OK FETCH completed")

    async def test_body_header_is_byte_exact(self):
        server, transport, _ = twisted_inbox(SIMPLE)
        twisted_send(server, transport, b"a SELECT INBOX\r\n")
        out = twisted_send(server, transport, b"b FETCH 1 BODY.PEEK[HEADER]\r\n")
        header = SIMPLE.split(b"\r\n\r\n")[0] + b"\r\n\r\n"
        self.assertNotIn(header, out)
        self.assertIn(b"Subject: ", out)

        proto = await self.ours(SIMPLE)
        out = await self.send(proto, b"b FETCH 1 BODY.PEEK[HEADER]\r\n")
        self.assertIn(b"BODY[HEADER] {%d}\r\n%s)" % (len(header), header), out)

    async def test_idle_ends_only_on_done(self):
        server, transport, _ = twisted_inbox()
        twisted_send(server, transport, b"a SELECT INBOX\r\ni IDLE\r\n")
        out = twisted_send(server, transport, b"x NOOP\r\n")
        self.assertIn(b"i OK IDLE terminated", out)

        proto = await self.ours()
        await self.send(proto, b"i IDLE\r\n")
        out = await self.send(proto, b"x NOOP\r\n")
        self.assertEqual(out, b"* BAD Expected DONE\r\n")
        out = await self.send(proto, b"DONE\r\n")
        self.assertEqual(out, b"i OK IDLE terminated\r\n")

    async def test_select_responses(self):
        """No UIDNEXT, PERMANENTFLAGS or UNSEEN from Twisted's SELECT."""
        server, transport, _ = twisted_inbox(SIMPLE)
        out = twisted_send(server, transport, b"a SELECT INBOX\r\n")
        for code in (b"UIDNEXT", b"PERMANENTFLAGS", b"UNSEEN"):
            self.assertNotIn(code, out)

        proto = await self.ours(SIMPLE, select=None)
        out = await self.send(proto, b"a SELECT INBOX\r\n")
        for code in (b"[UIDNEXT 2]", b"[PERMANENTFLAGS (", b"[UNSEEN 1]"):
            self.assertIn(code, out)

    async def test_expunge_by_another_session(self):
        """The listener interface has no expunge: another session's numbers go stale."""
        server, transport, account = twisted_inbox(SIMPLE, SIMPLE)
        other, other_transport = twisted_session(account)
        twisted_send(server, transport, b"a SELECT INBOX\r\n")
        twisted_send(other, other_transport, b"a SELECT INBOX\r\nb STORE 1 +FLAGS (\\Deleted)\r\n")
        twisted_send(other, other_transport, b"c EXPUNGE\r\n")
        out = twisted_send(server, transport, b"d NOOP\r\n")
        self.assertNotIn(b"EXPUNGE", out)  # the client still believes in 2 messages

        from tests.imap.test_updates import wait_for

        await self.deliver(SIMPLE)
        await self.deliver(SIMPLE)
        proto = await self.session()
        other_proto = await self.session()
        await self.send(other_proto, b"b STORE 1 +FLAGS (\\Deleted)\r\nc EXPUNGE\r\n")
        await wait_for(lambda: bool(proto.selected and proto.selected.has_pending))
        out = await self.send(proto, b"d NOOP\r\n")
        self.assertIn(b"* 1 EXPUNGE\r\n", out)

    async def test_namespace_slots(self):
        """Twisted puts the shared namespaces in the "other users" slot too."""
        account = NamespacedAccount(b"alice")
        server, transport = twisted_session(account)
        out = twisted_send(server, transport, b"a NAMESPACE\r\n")
        self.assertIn(b'* NAMESPACE (("" "/")) (("Public/" "/")) (("Public/" "/"))', out)

        proto = await self.ours(select=None)
        out = await self.send(proto, b"a NAMESPACE\r\n")
        self.assertIn(b'* NAMESPACE (("" "/")) NIL NIL\r\n', out)

    async def test_append_literal_size_limit(self):
        server, transport, _ = twisted_inbox()
        out = twisted_send(server, transport, b"a APPEND INBOX {4294967296}\r\n")
        self.assertIn(b"+ Ready for 4294967296 octets", out)

        proto = await self.ours(select=None)
        out = await self.send(proto, b"a APPEND INBOX {4294967296}\r\n")
        self.assertEqual(out, b"a NO [TOOBIG] Literal too large\r\n")

    async def test_exception_text_reaches_the_client(self):
        server, transport, _ = twisted_inbox(SIMPLE)
        twisted_send(server, transport, b"a SELECT INBOX\r\n")
        out = twisted_send(server, transport, b"b SEARCH SUBJECT x\r\n")
        self.assertIn(b"must be str, not bytes", out)
        self.flushLoggedErrors(TypeError)

        proto = await self.ours(SIMPLE)

        def broken(*args: object, **kwargs: object) -> None:
            raise TypeError("must be str, not bytes")

        self.patch(self.store.search, "search", broken)
        out = await self.send(proto, b"b SEARCH SUBJECT x\r\n")
        self.assertEqual(
            out, b"b NO [SERVERBUG] Internal error; the administrator has been told\r\n"
        )
        self.flushLoggedErrors(TypeError)


def MemoryMessageFor(raw: bytes) -> object:
    from tests.imap.unpatched import MemoryMessage

    return MemoryMessage(raw, 1)


@implementer(imap4.INamespacePresenter)
class NamespacedAccount(MemoryAccount):
    """An account with personal, other users' and shared namespaces."""

    def getPersonalNamespaces(self) -> list[list[str]]:
        return [["", "/"]]

    def getUserNamespaces(self) -> list[list[str]]:
        return [["#users/", "/"]]

    def getSharedNamespaces(self) -> list[list[str]]:
        return [["Public/", "/"]]
