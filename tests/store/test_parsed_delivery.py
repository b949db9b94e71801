"""Delivery with the MIME parse made once at delivery, end to end through the index."""

from __future__ import annotations

from a3mail.mime import parse_message
from tests.support.store import StoreTestCase

SIGNUP = (
    b"From: =?UTF-8?B?5pyN5Yqh?= <noreply@service.example>\r\n"
    b"To: Alice <alice@example.com>\r\n"
    b"Subject: =?UTF-8?Q?Your_verification_code?=\r\n"
    b"Date: Sat, 21 Nov 2026 10:00:00 +0000\r\n"
    b"Message-ID: <abc@service.example>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="XX"\r\n'
    b"\r\n"
    b"--XX\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Your verification code is 482913. It expires in 10 minutes.\r\n"
    b"--XX\r\n"
    b'Content-Type: application/pdf; name="terms.pdf"\r\n'
    b'Content-Disposition: attachment; filename="terms.pdf"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"JVBERi0xLjQK\r\n"
    b"--XX--\r\n"
)


def to_json(data):
    return parse_message(data).to_json()


class ParsedDeliveryTests(StoreTestCase):
    async def test_index_columns_come_from_the_parse(self):
        alice = await self.make_account("alice@example.com")
        blob = await self.store.incoming(SIGNUP)
        [result] = await self.store.messages.deliver(blob, ["alice@example.com"], parse=to_json)
        info = (await self.store.messages.list(alice.id, result.mailbox_id))[0]
        self.assertEqual(info.subject, "Your verification code")
        self.assertEqual(info.from_addr, "服务 <noreply@service.example>")
        self.assertEqual(info.to_addr, "Alice <alice@example.com>")
        self.assertEqual(info.message_id, "<abc@service.example>")
        self.assertEqual(info.verification_code, "482913")
        self.assertTrue(info.has_attachments)
        self.assertEqual(info.sent_date.isoformat(), "2026-11-21T10:00:00+00:00")
        self.assertEqual(info.header_size, SIGNUP.index(b"\r\n\r\n") + 4)
        content = await self.store.messages.get(alice.id, result.mailbox_id, result.uid)
        self.assertIn("482913", content.text)
        self.assertEqual(content.parsed["attachments"][0]["filename"], "terms.pdf")
        # The cached body structure keeps parameters exactly as written.
        self.assertIn(["boundary", "XX"], content.parsed["body"]["params"])
        self.assertEqual(await self.store.messages.read(info), SIGNUP)

    async def test_append_parses_too(self):
        alice = await self.make_account("alice@example.com")
        blob = await self.store.incoming(SIGNUP)
        box, uid = await self.store.messages.append(alice.id, "Drafts", blob, parse=to_json)
        content = await self.store.messages.get(alice.id, box.id, uid)
        self.assertEqual(content.info.verification_code, "482913")

    async def test_hostile_input_is_delivered_with_what_could_be_read(self):
        alice = await self.make_account("alice@example.com")
        hostile = b"Content-Type: multipart/mixed; boundary=\r\n\r\n--\x00\xff\r\n" * 50
        blob = await self.store.incoming(hostile)
        [result] = await self.store.messages.deliver(blob, ["alice@example.com"], parse=to_json)
        info = (await self.store.messages.list(alice.id, result.mailbox_id))[0]
        self.assertEqual(await self.store.messages.read(info), hostile)

    async def test_empty_message(self):
        alice = await self.make_account("alice@example.com")
        blob = await self.store.incoming(b"")
        [result] = await self.store.messages.deliver(blob, ["alice@example.com"], parse=to_json)
        self.assertEqual(result.uid, 1)
        self.assertEqual(alice.used_bytes, 0)
