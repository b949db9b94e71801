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

from a3mail.config import load_config
from a3mail.http.freemail.site import build_site
from a3mail.runtime import Runtime
from a3mail.smtp.factory import build_factory
from a3mail.smtp.stats import SmtpStats
from tests.support.store import StoreTestCase

DOMAIN = "temp.example"
ROOT = "e2e-root-token"


def signup_mail(to: str) -> bytes:
    """A sign-up message in Korean with an HTML part."""
    message = EmailMessage()
    message["From"] = "Service <no-reply@service.example>"
    message["To"] = to
    message["Subject"] = "인증 코드 안내"
    message.set_content("가입해 주셔서 감사합니다.\n인증 코드: 591034\n고객센터 02-1234-5678")
    message.add_alternative("<p>인증 코드: <b>591034</b></p>", subtype="html")
    return message.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


class FreemailEndToEndTests(StoreTestCase):
    async def setUp(self) -> None:  # type: ignore[override]
        await super().setUp()
        config = load_config(
            None,
            data_dir=self.data_dir,
            overrides={"hostname": "mx.test", "freemail": {"admin_token": ROOT}},
        )
        self.runtime = Runtime(config, self.store, object(), reactor=reactor)
        await self.store.domains.add(DOMAIN)
        await self.store.tempmail.set_domain(DOMAIN, True)
        http_port = reactor.listenTCP(0, build_site(self.runtime, reactor), interface="127.0.0.1")
        self.addCleanup(http_port.stopListening)
        self.base = f"http://127.0.0.1:{http_port.getHost().port}"
        mx: Any = build_factory(self.runtime, "mx", verifier=None, stats=SmtpStats())
        self.addCleanup(mx.context.reporter.idle)
        smtp_port = reactor.listenTCP(0, mx, interface="127.0.0.1")
        self.addCleanup(smtp_port.stopListening)
        self.smtp_port = smtp_port.getHost().port
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, str, bytes]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - http://127.0.0.1 only
            self.base + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        try:
            with self.opener.open(request, timeout=10) as response:
                return response.status, response.headers["Content-Type"], response.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers["Content-Type"], e.read()

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
