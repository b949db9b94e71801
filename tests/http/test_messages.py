"""A user's messages over the API: list, read (JSON and raw), delete."""

from __future__ import annotations

from a3mail.mime import parse_message
from tests.http.support import ApiTestCase

PLAIN = (
    "From: Sender Name <sender@example.org>\r\n"
    "To: Alice <alice@example.com>, bob@example.net\r\n"
    "Cc: carol@example.net\r\n"
    "Subject: =?utf-8?q?Caf=C3=A9?= {n}\r\n"
    "Date: Mon, 15 Jan 2024 10:30:00 +0000\r\n"
    "Message-ID: <m{n}@example.org>\r\n"
    "\r\n"
    "Your code is 493021.\r\n"
)
WITH_ATTACHMENT = (
    b"From: sender@example.org\r\nTo: alice@example.com\r\nSubject: Report\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
    b"--XX\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Hello</p>\r\n"
    b"--XX\r\nContent-Type: application/pdf; name=r.pdf\r\n"
    b"Content-Disposition: attachment; filename=r.pdf\r\nContent-Transfer-Encoding: base64\r\n"
    b"\r\nJVBERi0xLjQK\r\n--XX--\r\n"
)


def parse(data: bytes) -> dict:
    return parse_message(data).to_json()


class MessageTests(ApiTestCase):
    async def setUp(self):
        await super().setUp()
        self.user = await self.make_user("alice@example.com")
        self.base = f"/api/v1/users/{self.user['id']}/messages"

    async def deliver(self, data: bytes, mailbox: str = "INBOX") -> int:
        blob = await self.store.incoming(data)
        [result] = await self.store.messages.deliver(
            blob, ["alice@example.com"], parse=parse, mailbox=mailbox
        )
        return int(result.uid)

    async def test_list_newest_first_with_paging(self):
        for n in range(1, 6):
            await self.deliver(PLAIN.format(n=n).encode())
        body = (await self.call("GET", f"{self.base}?limit=2", key="reader")).json
        self.assertEqual([m["uid"] for m in body["data"]], [5, 4])
        first = body["data"][0]
        self.assertEqual(
            {k: first[k] for k in ("from", "to", "subject", "date", "flags", "size")},
            {
                "from": "sender@example.org",
                "to": ["alice@example.com", "bob@example.net"],
                "subject": "Café 5",
                "date": "2024-01-15T10:30:00Z",
                "flags": [],
                "size": len(PLAIN.format(n=5)),
            },
        )
        self.assertEqual(body["meta"]["total"], 5)
        self.assertEqual((body["meta"]["mailbox"], body["meta"]["unseen"]), ("INBOX", 5))
        body = (await self.call("GET", f"{self.base}?limit=2&offset=4")).json
        self.assertEqual([m["uid"] for m in body["data"]], [1])
        body = (await self.call("GET", f"{self.base}?limit=2&page=2&order=asc")).json
        self.assertEqual([m["uid"] for m in body["data"]], [3, 4])
        by_address = await self.call("GET", "/api/v1/users/alice@example.com/messages")
        self.assertEqual(len(by_address.json["data"]), 5)

    async def test_list_other_mailbox_and_errors(self):
        await self.deliver(PLAIN.format(n=1).encode(), mailbox="Junk")
        body = (await self.call("GET", f"{self.base}?mailbox=Junk")).json
        self.assertEqual([m["uid"] for m in body["data"]], [1])
        self.assertEqual((await self.call("GET", self.base)).json["data"], [])
        reply = await self.call("GET", f"{self.base}?mailbox=Nope")
        self.assertEqual(self.assertError(reply, 404, "not_found")["details"]["field"], "mailbox")
        self.assertError(await self.call("GET", "/api/v1/users/9999/messages"), 404, "not_found")
        reply = await self.call("GET", f"{self.base}?offset=1&page=2")
        self.assertError(reply, 400, "invalid_request")
        reply = await self.call("GET", f"{self.base}?order=sideways")
        self.assertError(reply, 400, "invalid_request")
        reply = await self.call("GET", f"{self.base}?mailbox=a//b")
        self.assertError(reply, 400, "invalid_request")

    async def test_get_one_message_as_json(self):
        uid = await self.deliver(PLAIN.format(n=1).encode())
        message = (await self.call("GET", f"{self.base}/{uid}")).json
        self.assertEqual(message["uid"], uid)
        self.assertEqual(message["subject"], "Café 1")
        self.assertEqual(message["from"], "sender@example.org")
        self.assertEqual(message["cc"], ["carol@example.net"])
        self.assertEqual(
            message["addresses"]["from"], [{"name": "Sender Name", "address": "sender@example.org"}]
        )
        self.assertEqual(message["message_id"], "<m1@example.org>")
        self.assertIn({"name": "subject", "value": "Café 1"}, message["headers"])
        self.assertEqual([h["name"] for h in message["headers"]][:2], ["from", "to"])
        self.assertIn("493021", message["text"])
        self.assertEqual(message["verification_code"], "493021")
        self.assertEqual(message["attachments"], [])

    async def test_html_and_attachment_metadata(self):
        uid = await self.deliver(WITH_ATTACHMENT)
        message = (await self.call("GET", f"{self.base}/{uid}")).json
        self.assertIn("<p>Hello</p>", message["html"])
        [attachment] = message["attachments"]
        self.assertEqual(
            (attachment["filename"], attachment["content_type"], attachment["disposition"]),
            ("r.pdf", "application/pdf", "attachment"),
        )
        self.assertEqual(attachment["size"], 9)
        listed = (await self.call("GET", self.base)).json["data"][0]
        self.assertTrue(listed["has_attachments"])

    async def test_raw_is_the_stored_bytes(self):
        data = PLAIN.format(n=1).encode()
        uid = await self.deliver(data)
        reply = await self.call("GET", f"{self.base}/{uid}?format=raw")
        self.assertEqual(reply.status, 200)
        self.assertEqual(reply.header("content-type"), "message/rfc822")
        self.assertEqual(reply.body, data)
        self.assertEqual(reply.header("content-disposition"), f'attachment; filename="{uid}.eml"')
        reply = await self.call("GET", f"{self.base}/{uid}?format=xml")
        self.assertError(reply, 400, "invalid_request")

    async def test_raw_streams_a_big_message(self):
        data = PLAIN.format(n=1).encode() + b"x" * 998 + b"\r\n"
        data = data + (b"y" * 998 + b"\r\n") * 3000  # 3 MB: several producer chunks
        uid = await self.deliver(data)
        reply = await self.call("GET", f"{self.base}/{uid}?format=raw")
        self.assertEqual(reply.body, data)

    async def test_missing_messages(self):
        self.assertError(await self.call("GET", f"{self.base}/7"), 404, "not_found")
        self.assertError(await self.call("GET", f"{self.base}/0"), 404, "not_found")
        self.assertError(await self.call("GET", f"{self.base}/99999999999"), 404, "not_found")
        self.assertError(await self.call("DELETE", f"{self.base}/7"), 404, "not_found")

    async def test_delete_expunges_whatever_the_flags(self):
        uid = await self.deliver(PLAIN.format(n=1).encode())
        reply = await self.call("DELETE", f"{self.base}/{uid}", key="writer")
        self.assertEqual(reply.json, {"deleted": True, "uid": uid, "mailbox": "INBOX"})
        self.assertError(await self.call("GET", f"{self.base}/{uid}"), 404, "not_found")
        quota = (await self.call("GET", f"/api/v1/users/{self.user['id']}/quota")).json
        self.assertEqual((quota["used"], quota["files_count"]), (0, 0))
        [audit], _ = await self.store.audit.query(event_type="message.delete")
        self.assertEqual(audit.details["uid"], uid)
