"""End to end over real sockets: the root token creates a user through the freemail API,
the user logs in (real argon2id, session cookie), creates an address, mail arrives over
SMTP (smtplib to the MX listener), and the user reads it and its verification code and
downloads the raw message (urllib as the client)."""

from __future__ import annotations

import json
import smtplib
import urllib.error
import urllib.request
from email.message import EmailMessage
from http.cookiejar import CookieJar
from typing import Any

from twisted.internet import reactor
from twisted.internet.threads import deferToThread

from a3mail.http.freemail.site import build_site
from tests.tempmail.end_to_end_support import (
    DOMAIN,
    EndToEndTestCase,
    json_request,
    wire_bytes,
)

ROOT = "e2e-root-token"


def signup_mail(to: str) -> bytes:
    """A sign-up message in Korean with an HTML part."""
    message = EmailMessage()
    message["From"] = "Service <no-reply@service.example>"
    message["To"] = to
    message["Subject"] = "인증 코드 안내"
    message.set_content("가입해 주셔서 감사합니다.\n인증 코드: 591034\n고객센터 02-1234-5678")
    message.add_alternative("<p>인증 코드: <b>591034</b></p>", subtype="html")
    return wire_bytes(message)


class FreemailEndToEndTests(EndToEndTestCase):
    def config_overrides(self) -> dict[str, Any]:
        return {"freemail": {"admin_token": ROOT}}

    def build_site(self) -> Any:
        return build_site(self.runtime, reactor)

    async def setUp(self) -> None:  # type: ignore[override]
        await super().setUp()
        self.start_listening()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, str, bytes]:
        return json_request(
            self.opener.open,
            self.base + path,
            method,
            body,
            {"Content-Type": "application/json", **(headers or {})},
        )

    async def test_create_receive_over_smtp_read_the_code_and_download(self):
        def scenario() -> dict[str, Any]:
            root = {"X-Admin-Token": ROOT}
            status, _, body = self.request(
                "POST", "/api/users", {"username": "erin", "password": "erin-pass"}, root
            )
            assert status == 200, body
            status, _, body = self.request(
                "POST", "/api/login", {"username": "erin", "password": "erin-pass"}
            )
            assert status == 200, body
            status, _, body = self.request("POST", "/api/create", {"local": "signup"})
            assert status == 200, body
            address = json.loads(body)["email"]
            mail = signup_mail(address)
            with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=10) as client:
                refused = client.sendmail("no-reply@service.example", [address], mail)
            assert refused == {}, refused
            listed = json.loads(self.request("GET", f"/api/emails?mailbox={address}")[2])
            [summary] = listed
            detail = json.loads(self.request("GET", f"/api/email/{summary['id']}")[2])
            raw = self.request("GET", f"/api/email/{summary['id']}/download")
            anonymous = urllib.request.build_opener()
            try:
                anonymous.open(f"{self.base}/api/email/{summary['id']}", timeout=10)
                unauthenticated = 200
            except urllib.error.HTTPError as e:
                unauthenticated = e.code
            return {
                "address": address,
                "mail": mail,
                "summary": summary,
                "detail": detail,
                "raw": raw,
                "unauthenticated": unauthenticated,
            }

        seen = await deferToThread(scenario)
        summary, detail = seen["summary"], seen["detail"]
        self.assertEqual(seen["address"], f"signup@{DOMAIN}")
        self.assertEqual(summary["subject"], "인증 코드 안내")
        self.assertEqual(summary["verification_code"], "591034")
        self.assertEqual(summary["sender"], "no-reply@service.example")
        self.assertEqual(summary["is_read"], 0)
        self.assertEqual(detail["verification_code"], "591034")
        self.assertIn("인증 코드: 591034", detail["content"])
        self.assertIn("<b>591034</b>", detail["html_content"])
        self.assertEqual(detail["is_read"], 1)
        status, content_type, raw = seen["raw"]
        self.assertEqual((status, content_type), (200, "message/rfc822"))
        self.assertTrue(raw.startswith(b"Return-Path: <no-reply@service.example>\r\nReceived: "))
        self.assertTrue(raw.endswith(seen["mail"]))
        self.assertEqual(seen["unauthenticated"], 401)
