"""POP3 login: CAPA by state, TLS before passwords, STLS, USER/PASS, SASL PLAIN and LOGIN,
failures delayed and recorded, the maildrop lock ([IN-USE]) and store outages ([SYS/TEMP])."""

from __future__ import annotations

import base64

from twisted.internet.defer import fail

from a3mail.auth.guard import AUTH_FAILURE, AUTH_SUCCESS
from a3mail.pop3 import replies
from a3mail.pop3.server import State, is_loopback
from a3mail.store import StoreUnavailable
from tests.pop3.support import PASSWORD, Pop3TestCase
from tests.store.helpers import wait_for

REMOTE = "192.0.2.7"
BEFORE_TLS = [b"TOP", b"UIDL", b"STLS", b"RESP-CODES", b"AUTH-RESP-CODE", b"PIPELINING"]
BEFORE_TLS += [b"IMPLEMENTATION a3mail"]
AFTER_TLS = [b"TOP", b"UIDL", b"USER", b"SASL PLAIN LOGIN", b"RESP-CODES", b"AUTH-RESP-CODE"]
AFTER_TLS += [b"PIPELINING", b"IMPLEMENTATION a3mail"]
PLAINTEXT = replies.ERR_PLAINTEXT + b"\r\n"


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)


def capa(out: bytes) -> list[bytes]:
    lines = out.split(b"\r\n")
    assert lines[0] == b"+OK Capability list follows." and lines[-2:] == [b".", b""], out
    return lines[1:-2]


class CapabilityTests(Pop3TestCase):
    async def test_capa_before_tls_offers_no_passwords(self):
        proto, _ = self.connect(REMOTE)
        self.assertEqual(capa(await self.send(proto, b"CAPA\r\n")), BEFORE_TLS)

    async def test_capa_after_stls(self):
        proto, transport = self.connect(REMOTE)
        self.assertEqual(await self.send(proto, b"STLS\r\n"), b"+OK Begin TLS negotiation now.\r\n")
        self.assertEqual(transport.tls_started, [self.factory.tls])
        self.assertEqual(capa(await self.send(proto, b"CAPA\r\n")), AFTER_TLS)
        self.assertEqual(await self.send(proto, b"STLS\r\n"), b"-ERR Already using TLS.\r\n")

    async def test_capa_on_implicit_tls_and_after_login(self):
        proto, _ = await self.session()
        self.assertEqual(capa(await self.send(proto, b"CAPA\r\n")), AFTER_TLS)

    async def test_no_stls_without_a_certificate(self):
        proto, _ = self.connect(REMOTE, factory=self.make_factory())
        proto.factory.tls = None
        self.assertNotIn(b"STLS", capa(await self.send(proto, b"CAPA\r\n")))
        self.assertEqual(await self.send(proto, b"STLS\r\n"), b"-ERR STLS is not available.\r\n")

    async def test_greeting_has_no_apop_timestamp(self):
        proto = self.factory.buildProtocol(None)
        from tests.pop3.support import SessionTransport

        transport = SessionTransport()
        proto.makeConnection(transport)
        self.assertEqual(transport.value(), b"+OK pop.example.com POP3 server ready.\r\n")


class PlaintextTests(Pop3TestCase):
    async def test_passwords_refused_before_tls(self):
        proto, _ = self.connect(REMOTE)
        self.assertEqual(await self.send(proto, b"USER alice@example.com\r\n"), PLAINTEXT)
        self.assertEqual(await self.send(proto, b"PASS x\r\n"), PLAINTEXT)
        self.assertEqual(await self.send(proto, b"AUTH PLAIN\r\n"), PLAINTEXT)
        self.assertEqual(await self.send(proto, b"AUTH\r\n"), PLAINTEXT)
        self.assertEqual(proto.phase, State.AUTHORIZATION)

    async def test_loopback_refused_unless_configured(self):
        proto, _ = self.connect("127.0.0.1")
        self.assertEqual(await self.send(proto, b"USER alice@example.com\r\n"), PLAINTEXT)

    async def test_plaintext_loopback_when_configured(self):
        factory = self.make_factory(allow_plaintext_loopback=True)
        proto, _ = self.connect("127.0.0.1", factory=factory)
        caps = capa(await self.send(proto, b"CAPA\r\n"))
        self.assertIn(b"USER", caps)
        self.assertIn(b"STLS", caps)
        out = await self.send(proto, f"USER alice@example.com\r\nPASS {PASSWORD}\r\n".encode())
        self.assertEqual(
            out, b"+OK Send the password.\r\n+OK Logged in, 0 messages (0 octets).\r\n"
        )

    async def test_remote_plaintext_refused_even_when_loopback_allowed(self):
        factory = self.make_factory(allow_plaintext_loopback=True)
        proto, _ = self.connect(REMOTE, factory=factory)
        self.assertEqual(await self.send(proto, b"USER alice@example.com\r\n"), PLAINTEXT)

    def test_loopback_addresses(self):
        for host in ("127.0.0.1", "127.9.8.7", "::1", "::ffff:127.0.0.1"):
            self.assertTrue(is_loopback(host), host)
        for host in ("192.0.2.7", "::ffff:192.0.2.7", "2001:db8::1", "localhost", None):
            self.assertFalse(is_loopback(host), host)


class StlsInjectionTests(Pop3TestCase):
    async def test_plaintext_pipelined_after_stls_is_discarded(self):
        factory = self.make_factory(allow_plaintext_loopback=True)
        proto, transport = self.connect("127.0.0.1", factory=factory)
        out = await self.send(
            proto, f"STLS\r\nUSER alice@example.com\r\nPASS {PASSWORD}\r\nCAPA".encode()
        )
        self.assertEqual(out, b"+OK Begin TLS negotiation now.\r\n")
        self.assertEqual(len(transport.tls_started), 1)
        self.assertIsNone(proto.pending_user)
        self.assertEqual(proto.phase, State.AUTHORIZATION)
        # What arrives after the handshake is read afresh ("CAPA" above was dropped).
        self.assertEqual(capa(await self.send(proto, b"CAPA\r\n")), AFTER_TLS)

    async def test_user_given_before_stls_is_forgotten(self):
        factory = self.make_factory(allow_plaintext_loopback=True)
        proto, _ = self.connect("127.0.0.1", factory=factory)
        await self.send(proto, b"USER alice@example.com\r\n")
        await self.send(proto, b"STLS\r\n")
        self.assertEqual(
            await self.send(proto, f"PASS {PASSWORD}\r\n".encode()), b"-ERR Send USER first.\r\n"
        )


class PasswordTests(Pop3TestCase):
    async def audit(self, event_type: str) -> list:
        entries, _ = await self.store.audit.query(event_type=event_type)
        return entries

    async def test_success_is_recorded(self):
        await self.session()
        [entry] = await self.audit(AUTH_SUCCESS)
        self.assertEqual((entry.actor, entry.details["protocol"]), ("alice@example.com", "pop3"))

    async def test_bad_password_and_unknown_user(self):
        proto, _ = self.connect()
        proto.secure = True
        for user in (b"alice@example.com", b"nobody@example.com"):
            out = await self.send(proto, b"USER " + user + b"\r\nPASS wrong\r\n")
            self.assertEqual(
                out, b"+OK Send the password.\r\n-ERR [AUTH] Authentication failed.\r\n"
            )
        entries = await self.audit(AUTH_FAILURE)
        self.assertEqual(
            sorted(e.actor for e in entries), ["alice@example.com", "nobody@example.com"]
        )
        self.assertEqual({e.details["protocol"] for e in entries}, {"pop3"})
        self.assertEqual({e.ip for e in entries}, {"127.0.0.1"})
        self.assertEqual(proto.phase, State.AUTHORIZATION)

    async def test_failure_is_answered_after_the_delay(self):
        self.failure_delay = 5.0
        proto, transport = self.connect(factory=self.make_factory())
        proto.secure = True
        proto.dataReceived(b"USER alice@example.com\r\nPASS wrong\r\nNOOP\r\n")
        await wait_for(
            lambda: self.clock.getDelayedCalls() and len(self.clock.getDelayedCalls()) > 1,
            10,
            "delay",
        )
        self.assertEqual(transport.value(), b"+OK Send the password.\r\n")
        self.clock.advance(5)
        await proto.when_idle()
        self.assertEqual(
            transport.value(),
            b"+OK Send the password.\r\n-ERR [AUTH] Authentication failed.\r\n"
            b"-ERR Command not valid in this state.\r\n",
        )

    async def test_pass_without_user(self):
        proto, _ = self.connect()
        proto.secure = True
        self.assertEqual(await self.send(proto, b"PASS x\r\n"), b"-ERR Send USER first.\r\n")


class SaslTests(Pop3TestCase):
    PLAIN = b64(b"\0alice@example.com\0" + PASSWORD.encode())

    async def secure_session(self):
        proto, transport = self.connect()
        proto.secure = True
        return proto, transport

    async def test_bare_auth_lists_mechanisms(self):
        proto, _ = await self.secure_session()
        self.assertEqual(
            await self.send(proto, b"AUTH\r\n"),
            b"+OK Mechanisms follow.\r\nPLAIN\r\nLOGIN\r\n.\r\n",
        )

    async def test_plain_with_initial_response(self):
        proto, _ = await self.secure_session()
        out = await self.send(proto, b"AUTH PLAIN " + self.PLAIN + b"\r\n")
        self.assertEqual(out, b"+OK Logged in, 0 messages (0 octets).\r\n")

    async def test_plain_after_a_challenge_with_authzid(self):
        proto, _ = await self.secure_session()
        self.assertEqual(await self.send(proto, b"auth plain\r\n"), b"+ \r\n")
        response = b64(b"alice@example.com\0alice@example.com\0" + PASSWORD.encode())
        self.assertEqual(
            await self.send(proto, response + b"\r\n"), b"+OK Logged in, 0 messages (0 octets).\r\n"
        )

    async def test_login_mechanism(self):
        proto, _ = await self.secure_session()
        self.assertEqual(
            await self.send(proto, b"AUTH LOGIN\r\n"), b"+ " + b64(b"Username:") + b"\r\n"
        )
        self.assertEqual(
            await self.send(proto, b64(b"alice@example.com") + b"\r\n"),
            b"+ " + b64(b"Password:") + b"\r\n",
        )
        out = await self.send(proto, b64(PASSWORD.encode()) + b"\r\n")
        self.assertEqual(out, b"+OK Logged in, 0 messages (0 octets).\r\n")

    async def test_wrong_password(self):
        proto, _ = await self.secure_session()
        bad = b64(b"\0alice@example.com\0nope")
        self.assertEqual(
            await self.send(proto, b"AUTH PLAIN " + bad + b"\r\n"),
            b"-ERR [AUTH] Authentication failed.\r\n",
        )

    async def test_malformed_responses(self):
        proto, _ = await self.secure_session()
        for lines, reply in [
            (b"AUTH PLAIN\r\n*\r\n", b"+ \r\n-ERR Authentication cancelled.\r\n"),
            (b"AUTH PLAIN !!!\r\n", b"-ERR invalid base64 in SASL response.\r\n"),
            (b"AUTH PLAIN " + b64(b"no-nuls") + b"\r\n", b"-ERR malformed PLAIN response.\r\n"),
            (
                b"AUTH PLAIN " + b64(b"bob@example.com\0alice@example.com\0x") + b"\r\n",
                b"-ERR authorization identity must be empty or the user name.\r\n",
            ),
            (b"AUTH CRAM-MD5\r\n", b"-ERR Unsupported authentication mechanism.\r\n"),
            (b"AUTH PLAIN a b c\r\n", b"-ERR Wrong arguments.\r\n"),
        ]:
            proto.errors = 0
            self.assertEqual(await self.send(proto, lines), reply, lines)
        self.assertEqual(proto.phase, State.AUTHORIZATION)
        out = await self.send(proto, b"AUTH PLAIN " + self.PLAIN + b"\r\n")
        self.assertEqual(out, b"+OK Logged in, 0 messages (0 octets).\r\n")


class LockTests(Pop3TestCase):
    async def test_second_session_is_in_use(self):
        first, _ = await self.session()
        second, _ = self.connect()
        second.secure = True
        out = await self.send(second, f"USER alice@example.com\r\nPASS {PASSWORD}\r\n".encode())
        self.assertEqual(out, b"+OK Send the password.\r\n" + replies.ERR_IN_USE + b"\r\n")
        self.assertEqual(second.phase, State.AUTHORIZATION)
        await self.send(first, b"QUIT\r\n")
        await self.login(second)

    async def test_in_use_across_processes(self):
        other = self.make_store(application_name="a3mail-test-other")
        await other.open(listen=False)
        self.addCleanup(other.close)
        held = await other.locks.acquire("pop3", self.alice.id, lambda: None)
        self.assertIsNotNone(held)
        proto, _ = self.connect()
        proto.secure = True
        out = await self.send(proto, f"USER alice@example.com\r\nPASS {PASSWORD}\r\n".encode())
        self.assertTrue(
            out.endswith(b"-ERR [IN-USE] Mailbox is locked by another POP3 session.\r\n")
        )
        await held.release()
        await self.login(proto)

    async def test_lost_lock_ends_the_session_without_committing(self):
        uid = await self.deliver()
        proto, transport = await self.session()
        await self.send(proto, b"DELE 1\r\n")
        pid = self.store.locks._conn.info.backend_pid  # type: ignore[union-attr]
        await self.sql("SELECT pg_terminate_backend(%s)", (pid,))
        self.assertFalse(await self.store.locks.check())
        await wait_for(lambda: not transport.connected, 10, "session ended")
        self.assertEqual(transport.value(), replies.ERR_LOCK_LOST + b"\r\n")
        self.assertEqual(
            [m.uid for m in await self.store.messages.list(self.alice.id, self.inbox.id)], [uid]
        )
        await self.session()  # the next session gets a fresh lock

    async def test_store_unavailable_is_temporary(self):
        self.patch(self.store.locks, "acquire", lambda *a, **k: fail(StoreUnavailable()))
        proto, _ = self.connect()
        proto.secure = True
        out = await self.send(proto, f"USER alice@example.com\r\nPASS {PASSWORD}\r\n".encode())
        self.assertTrue(
            out.endswith(b"\r\n-ERR [SYS/TEMP] Temporary server failure, try again later.\r\n")
        )

    async def test_checker_outage_is_temporary_and_not_a_failed_login(self):
        self.patch(self.factory.checker, "requestAvatarId", lambda c: fail(StoreUnavailable()))
        proto, _ = self.connect()
        proto.secure = True
        out = await self.send(proto, f"USER alice@example.com\r\nPASS {PASSWORD}\r\n".encode())
        self.assertTrue(
            out.endswith(b"\r\n-ERR [SYS/TEMP] Temporary server failure, try again later.\r\n")
        )
        entries, _ = await self.store.audit.query(event_type=AUTH_FAILURE)
        self.assertEqual(entries, [])
        self.flushLoggedErrors(StoreUnavailable)

    async def test_disconnect_during_login_releases_the_lock(self):
        proto, transport = self.connect()
        proto.secure = True
        proto.dataReceived(f"USER alice@example.com\r\nPASS {PASSWORD}\r\n".encode())
        transport.loseConnection()
        await wait_for(lambda: not proto._busy, 10, "login finished")
        await wait_for(lambda: self.store.locks.held_count == 0, 10, "lock released")
        await self.session()
