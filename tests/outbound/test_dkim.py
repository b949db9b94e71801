"""DKIM: key generation (rsa, ed25519), signing at delivery, verification with dkimpy."""

from __future__ import annotations

import stat

import dkim

from a3mail.outbound.dkim import DKIMSigner, generate_key, key_dir
from tests.outbound.support import MESSAGE, OutboundTestCase, ScriptedFactory


class DKIMTests(OutboundTestCase):
    async def test_delivered_mail_carries_verifiable_rsa_and_ed25519_signatures(self):
        records = {
            b"rsa._domainkey.example.com.": generate_key(self.data_dir, "example.com", "rsa"),
            b"ed._domainkey.example.com.": generate_key(
                self.data_dir, "example.com", "ed", "ed25519"
            ),
        }
        mode = (key_dir(self.data_dir, "example.com") / "rsa.key").stat().st_mode
        self.assertEqual(stat.S_IMODE(mode), 0o600)
        server = ScriptedFactory()
        runner = self.make_runner(self.listen(server))
        runner.signer = DKIMSigner(self.data_dir)
        await self.queue()
        await self.run_round(runner)
        [(_, _, body)] = server.received
        self.assertTrue(body.endswith(MESSAGE))
        self.assertEqual(body.count(b"DKIM-Signature:"), 2)
        self.assertIn(b"a=rsa-sha256", body)
        self.assertIn(b"a=ed25519-sha256", body)

        def dns(name, timeout=5):
            return records[name].encode()

        verifier = dkim.DKIM(body)
        self.assertTrue(verifier.verify(idx=0, dnsfunc=dns))
        self.assertTrue(verifier.verify(idx=1, dnsfunc=dns))
        self.assertFalse(dkim.verify(body.replace(b"Hi Bob", b"Hi Eve"), dnsfunc=dns))

    async def test_mail_from_a_domain_without_keys_is_sent_unsigned(self):
        server = ScriptedFactory()
        runner = self.make_runner(self.listen(server))
        runner.signer = DKIMSigner(self.data_dir)
        await self.queue()
        await self.run_round(runner)
        [(_, _, body)] = server.received
        self.assertEqual(body, MESSAGE)

    def test_generate_refuses_to_overwrite_and_bad_names(self):
        generate_key(self.data_dir, "example.com", "s1", "ed25519")
        with self.assertRaises(FileExistsError):
            generate_key(self.data_dir, "example.com", "s1", "ed25519")
        with self.assertRaises(ValueError):
            generate_key(self.data_dir, "../x", "s1")
        with self.assertRaises(ValueError):
            generate_key(self.data_dir, "example.com", "a/b")
