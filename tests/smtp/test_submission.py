"""Submission in memory: STARTTLS, AUTH PLAIN/LOGIN over twisted.cred, sender ownership,
local delivery, the Sent copy and the outbound queue."""

from __future__ import annotations

import base64

from twisted.internet import reactor
from twisted.internet.task import deferLater

from a3mail.smtp.auth import Credentials, SaslError, SaslExchange
from tests.smtp.support import PASSWORD, Session, SmtpTestCase, parse_replies, simple_message


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class SubmissionTestCase(SmtpTestCase):
    async def submitter(self, address: str = "alice@example.com", **kwargs) -> Session:
        await self.user(address)
        s = await self.greeted("submission", tls=True, **kwargs)
        reply = await s.login(address)
        self.assertEqual((reply.code, reply.status), (235, "2.7.0"))
        return s

    async def failed_auth(self, s: Session, data: bytes) -> list:
        """Send an AUTH exchange that fails; run the Clock through the failure delay."""
        s.protocol.dataReceived(data)
        for _ in range(200):
            await deferLater(reactor, 0.01, lambda: None)
            self.clock.advance(1)
            if not s.protocol._busy:
                break
        await s.settle()
        return parse_replies(s.new_output())


class AuthTests(SubmissionTestCase):
    async def test_no_auth_before_tls(self):
        await self.user("alice@example.com")
        s = self.connect("submission")
        ehlo = await s.command("EHLO c.example.com")
        self.assertIn("STARTTLS", ehlo.lines)
        self.assertFalse(any(line.startswith("AUTH") for line in ehlo.lines))
        reply = await s.login("alice@example.com")
        self.assertEqual((reply.code, reply.status), (538, "5.7.11"))
        reply = await s.command("MAIL FROM:<alice@example.com>")
        self.assertEqual((reply.code, reply.status), (530, "5.7.0"))

    async def test_starttls_then_auth_plain(self):
        await self.user("alice@example.com")
        s = self.connect("submission")
        await s.command("EHLO c.example.com")
        reply = await s.command("STARTTLS")
        self.assertEqual((reply.code, reply.status), (220, "2.0.0"))
        self.assertIs(s.transport.tls_started_with, self.tls)
        self.assertEqual((await s.login("alice@example.com")).code, 503)  # EHLO again first
        ehlo = await s.command("EHLO c.example.com")
        self.assertIn("AUTH PLAIN LOGIN", ehlo.lines)
        self.assertNotIn("STARTTLS", ehlo.lines)
        self.assertEqual((await s.command("STARTTLS")).code, 503)
        self.assertEqual((await s.login("alice@example.com")).code, 235)
        self.assertEqual((await s.login("alice@example.com")).code, 503)
        self.assertEqual(self.stats.auth_succeeded, 1)
        [entry], _ = await self.store.audit.query(event_type="auth.success")
        self.assertEqual((entry.actor, entry.details["protocol"]), ("alice@example.com", "smtp"))

    async def test_auth_login_and_plain_with_a_separate_response(self):
        await self.user("alice@example.com")
        s = await self.greeted("submission", tls=True)
        reply = await s.command("AUTH LOGIN")
        self.assertEqual((reply.code, base64.b64decode(reply.text)), (334, b"Username:"))
        reply = await s.command(b64("alice@example.com"))
        self.assertEqual((reply.code, base64.b64decode(reply.text)), (334, b"Password:"))
        self.assertEqual((await s.command(b64(PASSWORD))).code, 235)
        s2 = await self.greeted("submission", tls=True)
        self.assertEqual((await s2.command("AUTH PLAIN")).text, "")
        self.assertEqual((await s2.command(b64(f"\0alice@example.com\0{PASSWORD}"))).code, 235)

    async def test_wrong_password_is_delayed_recorded_and_refused(self):
        await self.user("alice@example.com")
        s = await self.greeted("submission", tls=True)
        token = b64("\0alice@example.com\0wrong")
        s.protocol.dataReceived(f"AUTH PLAIN {token}\r\n".encode())
        await deferLater(reactor, 0.3, lambda: None)
        self.assertEqual(s.new_output(), b"")  # not answered before the delay
        [reply] = await self.failed_auth(s, b"")
        self.assertEqual((reply.code, reply.status), (535, "5.7.8"))
        [entry], _ = await self.store.audit.query(event_type="auth.failure")
        self.assertEqual(entry.actor, "alice@example.com")
        self.assertEqual(self.stats.auth_failed, 1)
        self.assertEqual((await s.command("NOOP")).code, 250)

    async def test_bad_exchanges(self):
        s = await self.greeted("submission", tls=True)
        self.assertEqual((await s.command("AUTH CRAM-MD5")).status, "5.5.4")
        await s.command("AUTH LOGIN")
        self.assertEqual((await s.command("*")).code, 501)
        self.assertEqual((await s.command("AUTH PLAIN !!!notbase64")).status, "5.5.2")
        [reply] = await self.failed_auth(s, f"AUTH PLAIN {b64('no-nuls')}\r\n".encode())
        self.assertEqual(reply.code, 535)
        self.assertEqual((await s.command("NOOP")).code, 250)

    def test_sasl_exchanges(self):
        plain = SaslExchange(b"PLAIN")
        self.assertEqual(
            plain.step(base64.b64encode(b"a@b.c\0a@b.c\0pw")), Credentials("a@b.c", "pw")
        )
        for bad in (b"\0\0pw", b"other@x\0a@b.c\0pw", b"a\0b"):
            self.assertRaises(SaslError, SaslExchange(b"PLAIN").step, base64.b64encode(bad))
        self.assertRaises(SaslError, SaslExchange(b"PLAIN").step, b"=")


class LoopbackTests(SubmissionTestCase):
    overrides = {"auth.allow_plaintext_loopback": True}

    async def test_loopback_may_authenticate_without_tls_when_allowed(self):
        await self.user("alice@example.com")
        s = await self.greeted("submission", peer="127.0.0.1")
        self.assertEqual((await s.login("alice@example.com")).code, 235)
        remote = await self.greeted("submission", peer="192.0.2.9")
        self.assertEqual((await remote.login("alice@example.com")).code, 538)


class SenderTests(SubmissionTestCase):
    async def test_sender_must_be_owned(self):
        s = await self.submitter()
        await self.user("bob@example.com")
        await self.store.accounts.add_alias("sales@example.com", "alice@example.com")
        await self.store.accounts.add_alias("@example.com", "alice@example.com")
        cases = {
            "MAIL FROM:<bob@example.com>": 553,
            "MAIL FROM:<anyone@example.com>": 553,  # a catch-all receives, does not send
            "MAIL FROM:<alice@example.org>": 553,
            "MAIL FROM:<>": 553,
            "MAIL FROM:<sales@example.com>": 250,
            "MAIL FROM:<ALICE@example.com>": 250,
        }
        for command, code in cases.items():
            reply = await s.command(command)
            self.assertEqual(reply.code, code, command)
            if code == 553:
                self.assertEqual(reply.status, "5.7.1")
            await s.command("RSET")


class SubmitTests(SubmissionTestCase):
    async def test_local_remote_and_sent_copy(self):
        s = await self.submitter()
        await self.user("bob@example.com")
        await s.command("MAIL FROM:<alice@example.com>")
        self.assertEqual((await s.command("RCPT TO:<bob@example.com>")).code, 250)
        self.assertEqual((await s.command("RCPT TO:<x@remote.example>")).code, 250)
        self.assertEqual((await s.command("RCPT TO:<y@remote.example>")).code, 250)
        self.assertEqual((await s.command("RCPT TO:<z@other.example>")).code, 250)
        self.assertEqual((await s.command("RCPT TO:<nobody@example.com>")).code, 550)
        self.assertEqual((await s.message(simple_message("sent"))).code, 250)
        [(_, delivered)] = await self.inbox("bob@example.com")
        self.assertIn(b"with ESMTPSA id ", delivered)
        [(info, sent)] = await self.inbox("alice@example.com", "Sent")
        self.assertEqual(sent, delivered)
        self.assertIn("\\Seen", info.flag_names)
        entries = await self.store.queue.list()
        self.assertEqual(
            sorted((e.domain, e.recipients) for e in entries),
            [
                ("other.example", ("z@other.example",)),
                ("remote.example", ("x@remote.example", "y@remote.example")),
            ],
        )
        self.assertEqual({e.sender for e in entries}, {"alice@example.com"})
        self.assertEqual((await self.store.queue.counts())["queued"], 2)
        self.assertEqual(self.tmp_files(), [])

    async def test_remote_only_message_is_queued_with_its_file(self):
        s = await self.submitter()
        await s.command("MAIL FROM:<alice@example.com>")
        await s.command("RCPT TO:<friend@remote.example>")
        self.assertEqual((await s.message(simple_message())).code, 250)
        [entry] = await self.store.queue.list()
        data = (self.data_dir / entry.blob_path).read_bytes()
        self.assertTrue(data[entry.skip_bytes :].startswith(b"Received: from "))
        self.assertTrue(data.endswith(simple_message()))


class NoSentCopyTests(SubmissionTestCase):
    overrides = {"smtp.sent_copy": False}

    async def test_no_sent_copy_when_disabled(self):
        s = await self.submitter()
        await self.user("bob@example.com")
        await s.command("MAIL FROM:<alice@example.com>")
        await s.command("RCPT TO:<bob@example.com>")
        self.assertEqual((await s.message(simple_message())).code, 250)
        self.assertEqual(await self.inbox("alice@example.com", "Sent"), [])
        self.assertEqual(self.tmp_files(), [])


class AuthenticatedRelayOnMxTests(SubmissionTestCase):
    async def test_mx_offers_auth_after_tls_and_then_relays(self):
        await self.user("alice@example.com")
        s = await self.greeted("mx", tls=True)
        self.assertEqual((await s.login("alice@example.com")).code, 235)
        await s.command("MAIL FROM:<alice@example.com>")
        self.assertEqual((await s.command("RCPT TO:<x@remote.example>")).code, 250)
        self.assertEqual((await s.message(simple_message())).code, 250)
        self.assertEqual(len(await self.store.queue.list()), 1)
