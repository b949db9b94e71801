"""In-memory IMAP sessions over a real store: greeting, capabilities, authentication,
framing inside a session, pipelining and error handling."""

from __future__ import annotations

import base64

from a3mail.imap.server import IMAPServer
from a3mail.imap.states import State
from tests.imap.support import MESSAGE, PASSWORD, ImapTestCase, tagged


def plain(user: str = "alice@example.com", password: str = PASSWORD) -> bytes:
    return base64.b64encode(f"\0{user}\0{password}".encode())


class GreetingAndCapabilityTests(ImapTestCase):
    async def test_plaintext_capabilities(self):
        proto, _ = self.connect(peer="192.0.2.1")
        out = await self.send(proto, b"a CAPABILITY\r\n")
        caps = out.split(b"\r\n")[0].split()
        for cap in (
            b"IMAP4rev1",
            b"STARTTLS",
            b"LOGINDISABLED",
            b"IDLE",
            b"UIDPLUS",
            b"MOVE",
            b"LITERAL+",
            b"CONDSTORE",
            b"SPECIAL-USE",
            b"QUOTA",
            b"NAMESPACE",
        ):
            self.assertIn(cap, caps)
        self.assertNotIn(b"AUTH=PLAIN", caps)
        self.assertEqual(tagged(out, b"a"), b"OK CAPABILITY completed")

    async def test_tls_capabilities(self):
        proto, _ = self.connect()
        proto.secure = True
        out = await self.send(proto, b"a CAPABILITY\r\n")
        self.assertIn(b"AUTH=PLAIN AUTH=LOGIN", out)
        self.assertNotIn(b"STARTTLS", out)
        self.assertNotIn(b"LOGINDISABLED", out)

    async def test_loopback_plaintext_when_configured(self):
        proto, _ = self.connect(factory=self.make_factory(allow_plaintext_loopback=True))
        out = await self.send(proto, f'a LOGIN alice@example.com "{PASSWORD}"\r\n'.encode())
        self.assertTrue(tagged(out, b"a").startswith(b"OK [CAPABILITY "))

    async def test_remote_plaintext_refused_even_when_configured(self):
        proto, _ = self.connect(
            peer="192.0.2.1", factory=self.make_factory(allow_plaintext_loopback=True)
        )
        out = await self.send(proto, f'a LOGIN alice@example.com "{PASSWORD}"\r\n'.encode())
        self.assertEqual(tagged(out, b"a"), b"NO [PRIVACYREQUIRED] Use STARTTLS first")


class AuthenticationTests(ImapTestCase):
    async def test_login_and_wrong_password(self):
        proto, _ = self.connect()
        proto.secure = True
        out = await self.send(proto, b"a LOGIN alice@example.com wrong\r\n")
        self.assertEqual(tagged(out, b"a"), b"NO [AUTHENTICATIONFAILED] Authentication failed")
        rows = await self.sql("SELECT event_type, success FROM audit_log ORDER BY id")
        self.assertEqual([(r["event_type"], r["success"]) for r in rows], [("auth.failure", False)])
        out = await self.send(proto, f'b LOGIN alice@example.com "{PASSWORD}"\r\n'.encode())
        self.assertIn(b"b OK [CAPABILITY", out)
        self.assertIs(proto.phase, State.AUTHENTICATED)

    async def test_authenticate_plain_with_initial_response(self):
        proto, _ = self.connect()
        proto.secure = True
        out = await self.send(proto, b"a AUTHENTICATE PLAIN " + plain() + b"\r\n")
        self.assertTrue(tagged(out, b"a").startswith(b"OK"), out)

    async def test_authenticate_plain_with_continuation(self):
        proto, _ = self.connect()
        proto.secure = True
        out = await self.send(proto, b"a AUTHENTICATE PLAIN\r\n")
        self.assertEqual(out, b"+ \r\n")
        out = await self.send(proto, plain() + b"\r\n")
        self.assertTrue(tagged(out, b"a").startswith(b"OK"), out)

    async def test_authenticate_login(self):
        proto, _ = self.connect()
        proto.secure = True
        out = await self.send(proto, b"a AUTHENTICATE LOGIN\r\n")
        self.assertEqual(out, b"+ " + base64.b64encode(b"Username:") + b"\r\n")
        out = await self.send(proto, base64.b64encode(b"alice@example.com") + b"\r\n")
        self.assertEqual(out, b"+ " + base64.b64encode(b"Password:") + b"\r\n")
        out = await self.send(proto, base64.b64encode(PASSWORD.encode()) + b"\r\n")
        self.assertTrue(tagged(out, b"a").startswith(b"OK"), out)

    async def test_authenticate_cancel_and_bad_base64(self):
        proto, _ = self.connect()
        proto.secure = True
        await self.send(proto, b"a AUTHENTICATE PLAIN\r\n")
        out = await self.send(proto, b"*\r\n")
        self.assertEqual(tagged(out, b"a"), b"BAD Authentication cancelled")
        out = await self.send(proto, b"b AUTHENTICATE PLAIN !!!\r\n")
        self.assertTrue(tagged(out, b"b").startswith(b"BAD"))
        self.assertIs(proto.phase, State.NOT_AUTHENTICATED)

    async def test_commands_need_authentication(self):
        proto, _ = self.connect()
        out = await self.send(proto, b"a SELECT INBOX\r\nb FETCH 1 FLAGS\r\n")
        self.assertEqual(tagged(out, b"a"), b"BAD Command not valid in this state")
        self.assertEqual(tagged(out, b"b"), b"BAD Command not valid in this state")

    async def test_starttls_discards_pipelined_plaintext(self):
        proto, transport = self.connect(peer="192.0.2.1")
        out = await self.send(proto, b"a STARTTLS\r\nb LOGIN alice@example.com x\r\n")
        self.assertEqual(out, b"a OK Begin TLS negotiation now\r\n")
        self.assertEqual(transport.tls_started, [self.tls])
        self.assertTrue(proto.secure)
        out = await self.send(proto, b"c CAPABILITY\r\n")
        self.assertNotIn(b"STARTTLS", out)


class FramingInSessionTests(ImapTestCase):
    async def test_unknown_command_and_bad_syntax_keep_the_session(self):
        proto, _ = self.connect()
        out = await self.send(proto, b'a FROB\r\nb ID ("name"\r\nc NOOP\r\n')
        self.assertEqual(tagged(out, b"a"), b"BAD Unknown command")
        self.assertEqual(tagged(out, b"b"), b"BAD unbalanced parentheses")
        self.assertEqual(tagged(out, b"c"), b"OK NOOP completed")

    async def test_four_gigabyte_literal(self):
        proto = await self.session()
        out = await self.send(proto, b"a APPEND INBOX {4294967296}\r\nb NOOP\r\n")
        self.assertEqual(tagged(out, b"a"), b"NO [TOOBIG] Literal too large")
        self.assertEqual(tagged(out, b"b"), b"OK NOOP completed")
        self.assertNotIn(b"+ ", out)

    async def test_literal_continuation_and_literal_plus(self):
        proto, _ = self.connect()
        proto.secure = True
        out = await self.send(proto, b"a LOGIN {17}\r\n")
        self.assertEqual(out, b"+ Ready for literal data\r\n")
        out = await self.send(
            proto, b"alice@example.com {%d+}\r\n%s\r\n" % (len(PASSWORD), PASSWORD.encode())
        )
        self.assertTrue(tagged(out, b"a").startswith(b"OK"), out)

    async def test_line_too_long(self):
        proto = await self.session()
        out = await self.send(proto, b"a FETCH 1 " + b"x" * 5000 + b"\r\nb NOOP\r\n")
        self.assertIn(b"BAD Command line too long", out)
        self.assertEqual(tagged(out, b"b"), b"OK NOOP completed")

    async def test_pipelined_commands_answer_in_order(self):
        await self.deliver()
        proto = await self.session(select=None)
        out = await self.send(
            proto,
            b"1 SELECT INBOX\r\n2 FETCH 1 (FLAGS)\r\n3 STORE 1 +FLAGS (\\Flagged)\r\n"
            b"4 FETCH 1 (FLAGS)\r\n5 LOGOUT\r\n",
        )
        tags = [line.split(b" ")[0] for line in out.split(b"\r\n") if line[:1].isdigit()]
        self.assertEqual(tags, [b"1", b"2", b"3", b"4", b"5"])
        self.assertIn(b"* 1 FETCH (FLAGS (\\Flagged))\r\n4 OK", out)

    async def test_store_failure_answers_serverbug_without_details(self):
        proto = await self.session()

        def broken(*args, **kwargs):
            raise RuntimeError("secret internal detail")

        self.patch(self.store.mailboxes, "create", broken)
        out = await self.send(proto, b"a CREATE Foo\r\nb NOOP\r\n")
        self.assertEqual(
            tagged(out, b"a"), b"NO [SERVERBUG] Internal error; the administrator has been told"
        )
        self.assertNotIn(b"secret", out)
        self.assertEqual(tagged(out, b"b"), b"OK NOOP completed")
        self.flushLoggedErrors(RuntimeError)

    async def test_logout(self):
        proto, transport = self.connect()
        out = await self.send(proto, b"a LOGOUT\r\nb NOOP\r\n")
        self.assertEqual(out, b"* BYE Logging out\r\na OK LOGOUT completed\r\n")
        self.assertFalse(transport.connected)

    async def test_idle_timeout_logs_out(self):
        _proto, transport = self.connect()
        self.clock.advance(self.settings.login_timeout + 1)
        self.assertIn(b"* BYE Autologout", transport.value())
        self.assertFalse(transport.connected)

    async def test_connection_limit_per_ip(self):
        from twisted.internet.address import IPv4Address

        factory = self.make_factory(max_connections_per_ip=1)
        first = factory.buildProtocol(IPv4Address("TCP", "192.0.2.9", 1))
        self.assertIsInstance(first, IMAPServer)
        second = factory.buildProtocol(IPv4Address("TCP", "192.0.2.9", 2))
        self.assertNotIsInstance(second, IMAPServer)
        factory.released(first)
        third = factory.buildProtocol(IPv4Address("TCP", "192.0.2.9", 3))
        self.assertIsInstance(third, IMAPServer)


class MiscCommandTests(ImapTestCase):
    async def test_namespace_id_enable(self):
        proto = await self.session(select=None)
        out = await self.send(
            proto, b'a NAMESPACE\r\nb ID ("name" "test")\r\nc ENABLE CONDSTORE X-UNKNOWN\r\n'
        )
        self.assertIn(b'* NAMESPACE (("" "/")) NIL NIL\r\n', out)
        self.assertIn(b'* ID ("name" "a3mail"', out)
        self.assertIn(b"* ENABLED CONDSTORE\r\n", out)
        self.assertTrue(proto.condstore)

    async def test_quota(self):
        await self.store.accounts.set_quota("alice@example.com", 10 * 1024 * 1024)
        await self.deliver()
        proto = await self.session(select=None)
        out = await self.send(proto, b'a GETQUOTAROOT INBOX\r\nb GETQUOTA ""\r\n')
        self.assertIn(b'* QUOTAROOT "INBOX" ""\r\n', out)
        self.assertIn(b'* QUOTA "" (STORAGE 1 10240)\r\n', out)
        self.assertEqual(tagged(out, b"b"), b"OK GETQUOTA completed")

    async def test_select_responses(self):
        await self.deliver()
        await self.deliver()
        proto = await self.session(select=None)
        out = await self.send(proto, b"a SELECT INBOX (CONDSTORE)\r\n")
        for line in (
            b"* 2 EXISTS",
            b"* 0 RECENT",
            b"* OK [UNSEEN 1]",
            b"* OK [UIDNEXT 3]",
            b"* OK [UIDVALIDITY ",
            b"* OK [HIGHESTMODSEQ ",
            b"* OK [PERMANENTFLAGS (",
        ):
            self.assertIn(line, out)
        self.assertEqual(tagged(out, b"a"), b"OK [READ-WRITE] SELECT completed")
        self.assertTrue(proto.condstore)

    async def test_examine_is_read_only(self):
        await self.deliver()
        proto = await self.session(select=None)
        out = await self.send(
            proto,
            b"a EXAMINE INBOX\r\nb STORE 1 +FLAGS (\\Seen)\r\n"
            b"c FETCH 1 BODY[]\r\nd FETCH 1 FLAGS\r\n",
        )
        self.assertEqual(tagged(out, b"a"), b"OK [READ-ONLY] EXAMINE completed")
        self.assertEqual(tagged(out, b"b"), b"NO [READ-ONLY] Mailbox is read-only")
        self.assertIn(MESSAGE, out)
        self.assertIn(b"* 1 FETCH (FLAGS ())", out)

    async def test_select_missing_mailbox_leaves_selected_state(self):
        proto = await self.session()
        out = await self.send(proto, b"a SELECT Nope\r\nb FETCH 1 FLAGS\r\n")
        self.assertTrue(tagged(out, b"a").startswith(b"NO"))
        self.assertEqual(tagged(out, b"b"), b"BAD Command not valid in this state")
