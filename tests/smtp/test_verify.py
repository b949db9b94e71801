"""Inbound SPF/DKIM/DMARC on the MX: the Authentication-Results header, and what a failure
does (tag, Junk, reject), with a static DNS table."""

from __future__ import annotations

from tests.smtp.support import HOSTNAME, SmtpTestCase

ALIGNED = (
    b"From: Bob <bob@example.net>\r\nTo: alice@example.com\r\nSubject: verified\r\n\r\n"
    b"Hello from example.net.\r\n"
)
FORGED_AR = f"Authentication-Results: {HOSTNAME}; spf=pass smtp.mailfrom=bank.example\r\n"


class VerifiedDeliveryTests(SmtpTestCase):
    async def send(self, peer: str, body: bytes, sender: str = "bob@example.net") -> tuple:
        await self.user("alice@example.com")
        s = await self.greeted(peer=peer, verifier=self.make_verifier())
        await s.command(f"MAIL FROM:<{sender}>")
        await s.command("RCPT TO:<alice@example.com>")
        return await s.message(body), s

    async def test_authentication_results_header_is_prepended(self):
        reply, _ = await self.send("192.0.2.1", ALIGNED)
        self.assertEqual(reply.code, 250)
        [(info, data)] = await self.inbox("alice@example.com")
        head = data.split(b"\r\n\r\n")[0]
        self.assertTrue(
            data.startswith(b"Return-Path: <bob@example.net>\r\nAuthentication-Results: ")
        )
        self.assertIn(f"Authentication-Results: {HOSTNAME};".encode(), head)
        self.assertIn(b"spf=pass smtp.mailfrom=example.net", head)
        self.assertIn(b"dmarc=pass", head)
        self.assertLess(head.index(b"Authentication-Results:"), head.index(b"Received: from"))
        self.assertTrue(data.endswith(ALIGNED))
        self.assertEqual(info.size, len(data))
        self.assertNotIn(b"\n", data.replace(b"\r\n", b""))
        self.assertEqual(self.tmp_files(), [])

    async def test_forged_authentication_results_of_our_id_are_removed(self):
        body = (
            FORGED_AR.encode() + b"Authentication-Results: other.example; dkim=pass\r\n" + ALIGNED
        )
        reply, _ = await self.send("192.0.2.1", body)
        self.assertEqual(reply.code, 250)
        [(_, data)] = await self.inbox("alice@example.com")
        self.assertNotIn(b"bank.example", data)
        self.assertIn(b"Authentication-Results: other.example; dkim=pass\r\n", data)
        self.assertEqual(data.count(f"Authentication-Results: {HOSTNAME}".encode()), 1)

    async def test_dmarc_failure_is_tagged_by_default(self):
        reply, _ = await self.send("198.51.100.7", ALIGNED)
        self.assertEqual(reply.code, 250)
        [(_, data)] = await self.inbox("alice@example.com")
        self.assertIn(b"spf=fail", data)
        self.assertIn(b"dmarc=fail", data)


class JunkTests(SmtpTestCase):
    overrides = {"smtp.dmarc_failure": "junk"}

    async def test_dmarc_failure_goes_to_junk(self):
        await self.user("alice@example.com")
        s = await self.greeted(peer="198.51.100.7", verifier=self.make_verifier())
        await s.command("MAIL FROM:<bob@example.net>")
        await s.command("RCPT TO:<alice@example.com>")
        self.assertEqual((await s.message(ALIGNED)).code, 250)
        self.assertEqual(await self.inbox("alice@example.com"), [])
        [(_, data)] = await self.inbox("alice@example.com", "Junk")
        self.assertIn(b"dmarc=fail", data)

    async def test_spf_fail_without_dmarc_record_goes_to_junk(self):
        await self.user("alice@example.com")
        s = await self.greeted(peer="198.51.100.7", verifier=self.make_verifier())
        await s.command("MAIL FROM:<carol@example.org>")
        await s.command("RCPT TO:<alice@example.com>")
        body = b"From: carol@example.org\r\nSubject: x\r\n\r\nhi\r\n"
        self.assertEqual((await s.message(body)).code, 250)
        self.assertEqual(len(await self.inbox("alice@example.com", "Junk")), 1)

    async def test_passing_mail_goes_to_inbox(self):
        await self.user("alice@example.com")
        s = await self.greeted(peer="192.0.2.1", verifier=self.make_verifier())
        await s.command("MAIL FROM:<bob@example.net>")
        await s.command("RCPT TO:<alice@example.com>")
        self.assertEqual((await s.message(ALIGNED)).code, 250)
        self.assertEqual(len(await self.inbox("alice@example.com")), 1)


class RejectTests(SmtpTestCase):
    overrides = {"smtp.dmarc_failure": "reject"}

    async def test_dmarc_failure_is_refused_with_550_5_7_1(self):
        await self.user("alice@example.com")
        s = await self.greeted(peer="198.51.100.7", verifier=self.make_verifier())
        await s.command("MAIL FROM:<bob@example.net>")
        await s.command("RCPT TO:<alice@example.com>")
        reply = await s.message(ALIGNED)
        self.assertEqual((reply.code, reply.status), (550, "5.7.1"))
        self.assertEqual(await self.inbox("alice@example.com"), [])
        self.assertEqual(await self.inbox("alice@example.com", "Junk"), [])
        self.assertEqual(self.tmp_files(), [])
        self.assertEqual(self.stats.messages_rejected["dmarc"], 1)
        self.assertEqual((await s.command("NOOP")).code, 250)
