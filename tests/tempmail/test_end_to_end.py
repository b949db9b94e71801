"""End to end over real sockets: create an address through the HTTP API, send it mail with
smtplib to the MX listener, read the message, its verification code, the raw message and
an attachment back through the API (urllib as the client)."""

from __future__ import annotations

import json
import smtplib
import urllib.error
import urllib.request
from email.message import EmailMessage
from typing import Any

from twisted.internet import reactor
from twisted.internet.threads import deferToThread

from a3mail.auth import apikeys
from a3mail.http.factory import build_site
from tests.tempmail.end_to_end_support import (
    DOMAIN,
    EndToEndTestCase,
    json_request,
    wire_bytes,
)

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 8


def signup_mail(to: str) -> bytes:
    """A realistic sign-up message in Japanese with an HTML part and a PDF attachment."""
    message = EmailMessage()
    message["From"] = "Shop <no-reply@shop.example>"
    message["To"] = to
    message["Subject"] = "認証コードのお知らせ"
    message.set_content("ご登録ありがとうございます。\n認証コード: 730512\n注文番号 2024-11-05")
    message.add_alternative("<p>認証コード: <b>730512</b></p>", subtype="html")
    message.add_attachment(PDF, maintype="application", subtype="pdf", filename="terms.pdf")
    return wire_bytes(message)


class EndToEndTests(EndToEndTestCase):
    def build_site(self) -> Any:
        return build_site(self.runtime, reactor)

    async def setUp(self) -> None:  # type: ignore[override]
        await super().setUp()
        new, _ = await apikeys.issue(
            self.store, account_id=None, name="e2e", permissions=["read", "write"]
        )
        self.key = new.key
        self.start_listening()

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, str, bytes]:
        return json_request(
            urllib.request.urlopen,
            self.base + path,
            method,
            body,
            {"X-API-Key": self.key, "Content-Type": "application/json"},
        )

    async def test_create_receive_read_code_raw_and_attachment(self):
        def scenario() -> dict[str, Any]:
            status, _, body = self.request(
                "POST", "/api/emails/generate", {"expiryTime": 3600000, "domain": DOMAIN}
            )
            assert status == 200, body
            box = json.loads(body)
            mail = signup_mail(box["email"])
            with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=10) as client:
                refused = client.sendmail("no-reply@shop.example", [box["email"]], mail)
            assert refused == {}, refused
            status, _, body = self.request("GET", f"/api/emails/{box['emailId']}")
            listed = json.loads(body)
            [summary] = listed["messages"]
            base = f"/api/emails/{box['emailId']}/{summary['messageId']}"
            _, _, detail = self.request("GET", base)
            message = json.loads(detail)
            [attachment] = message["attachments"]
            raw = self.request("GET", base + "/raw")
            file = self.request("GET", f"{base}/attachments/{attachment['attachmentId']}")
            v1 = json.loads(self.request("GET", f"/v1/emails/{box['emailId']}")[2])
            return {
                "box": box,
                "mail": mail,
                "summary": summary,
                "message": message,
                "raw": raw,
                "file": file,
                "v1": v1,
            }

        seen = await deferToThread(scenario)
        summary, message = seen["summary"], seen["message"]
        self.assertEqual(summary["subject"], "認証コードのお知らせ")
        self.assertEqual(summary["verificationCode"], "730512")
        self.assertTrue(summary["hasAttachment"])
        self.assertFalse(summary["isRead"])
        self.assertEqual(message["verificationCode"], "730512")
        self.assertEqual(message["from"], "no-reply@shop.example")
        self.assertEqual(message["to"], seen["box"]["email"])
        self.assertIn("認証コード: 730512", message["text"])
        self.assertIn("<b>730512</b>", message["html"])
        self.assertTrue(message["isRead"])
        status, content_type, raw = seen["raw"]
        self.assertEqual((status, content_type), (200, "message/rfc822"))
        self.assertTrue(raw.endswith(seen["mail"]))  # the stored bytes: trace headers + message
        status, content_type, data = seen["file"]
        self.assertEqual((status, content_type, data), (200, "application/pdf", PDF))
        self.assertEqual(seen["v1"]["code"], 0)
        self.assertTrue(seen["v1"]["data"]["messages"][0]["isRead"])
