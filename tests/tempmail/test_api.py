"""The mail.ry.edu.kg-style API in memory: each endpoint, each error, ownership, /v1."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

from tests.http.support import START
from tests.tempmail.support import DOMAIN, OTHER_DOMAIN, TempmailTestCase

NOW = datetime.fromtimestamp(START, UTC)
PDF = b"%PDF-1.4 fake document\n" * 20

PLAIN = (
    b"From: Service <noreply@service.example>\r\nTo: {to}\r\n"
    b"Subject: Your verification code\r\nMessage-ID: <1@service.example>\r\n\r\n"
    b"Your verification code is 482913. It expires in 10 minutes.\r\n"
)


def with_attachment(to: str) -> bytes:
    """A multipart message: text, HTML and a base64 PDF attachment."""
    encoded = base64.encodebytes(PDF).replace(b"\n", b"\r\n")
    return (
        b"From: Docs <docs@service.example>\r\nTo: " + to.encode() + b"\r\n"
        b"Subject: Your invoice\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
        b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee attached.\r\n"
        b"--b1\r\nContent-Type: application/pdf; name=invoice.pdf\r\n"
        b"Content-Disposition: attachment; filename=invoice.pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + encoded + b"--b1--\r\n"
    )


class ConfigTests(TempmailTestCase):
    async def test_config_lists_the_temp_mail_domains_only(self):
        reply = await self.call("GET", "/api/config")
        self.assertEqual(reply.status, 200)
        self.assertEqual(reply.json, {"domains": [OTHER_DOMAIN, DOMAIN]})

    async def test_a_disabled_domain_is_not_offered(self):
        await self.store.tempmail.set_domain(OTHER_DOMAIN, False)
        reply = await self.call("GET", "/api/config")
        self.assertEqual(reply.json, {"domains": [DOMAIN]})

    async def test_no_key_is_401(self):
        reply = await self.call("GET", "/api/config", key=None)
        self.assertIn("X-API-Key", self.assertApiError(reply, 401))

    async def test_a_wrong_key_is_401(self):
        reply = await self.call("GET", "/api/config", key="mk_live_nope")
        self.assertApiError(reply, 401)

    async def test_the_secret_token_of_a_key_works_too(self):
        from a3mail.auth import apikeys

        new, _ = await apikeys.issue(self.store, account_id=None, name="s", permissions=["read"])
        reply = await self.call("GET", "/api/config", key=new.secret)
        self.assertEqual(reply.status, 200)

    async def test_unknown_path_under_the_surface_is_404_in_its_format(self):
        reply = await self.call("GET", "/api/emails/1/2/3/4/5")
        self.assertApiError(reply, 404)

    async def test_the_admin_api_enables_a_domain_for_temp_mail(self):
        headers = {"Authorization": [f"Bearer {self.alice}"]}
        for name, flag in (("new.example", True), ("other.example", False)):
            response = await self.settle(
                self.http.post(
                    "http://a3mail.test/api/v1/domains",
                    json={"name": name, "tempmail": flag},
                    headers=headers,
                )
            )
            body = await self.settle(self.http.json_content(response))
            self.assertEqual((response.code, body["tempmail"]), (201, flag))
        reply = await self.call("GET", "/api/config")
        self.assertEqual(reply.json, {"domains": [OTHER_DOMAIN, "new.example", DOMAIN]})

    async def test_admin_api_still_owns_api_v1(self):
        reply = await self.call("GET", "/api/v1/domains", key=None)
        self.assertEqual(reply.status, 401)
        self.assertEqual(reply.json["error"]["code"], "unauthorized")  # the admin format


class GenerateTests(TempmailTestCase):
    async def test_generate_with_a_name(self):
        reply = await self.call(
            "POST",
            "/api/emails/generate",
            json={"name": "Test", "expiryTime": 3600000, "domain": DOMAIN},
        )
        self.assertEqual(reply.status, 200, reply.body)
        body = reply.json
        self.assertEqual(
            set(body), {"emailId", "email", "name", "domain", "createdAt", "expiresAt", "token"}
        )
        self.assertEqual(body["email"], f"test@{DOMAIN}")
        self.assertEqual((body["name"], body["domain"]), ("test", DOMAIN))
        expires = datetime.fromisoformat(body["expiresAt"])
        self.assertEqual(expires, NOW + timedelta(hours=1))
        account = await self.store.accounts.get(f"test@{DOMAIN}")
        self.assertEqual(str(account.id), body["emailId"])
        self.assertIsNone(account.password_hash)  # no IMAP/POP3 login
        self.assertTrue(body["token"].startswith("mt_"))

    async def test_expiry_choices(self):
        for ms, delta in [
            (86400000, timedelta(days=1)),
            (604800000, timedelta(days=7)),
            (0, timedelta(days=36525)),
        ]:
            body = await self.generate(expiryTime=ms)
            self.assertEqual(datetime.fromisoformat(body["expiresAt"]), NOW + delta)

    async def test_random_name_when_missing(self):
        first = await self.generate()
        second = await self.generate()
        self.assertRegex(first["name"], r"^[a-z][a-z0-9]{9}$")
        self.assertNotEqual(first["email"], second["email"])

    async def test_unknown_domain_is_400(self):
        for domain in ("nowhere.example", "plain.example"):
            reply = await self.call(
                "POST", "/api/emails/generate", json={"expiryTime": 0, "domain": domain}
            )
            self.assertIn("domain", self.assertApiError(reply, 400))

    async def test_taken_name_is_400(self):
        await self.generate(name="dup")
        reply = await self.call(
            "POST", "/api/emails/generate", key="bob", json={"name": "dup", "domain": DOMAIN}
        )
        self.assertIn("taken", self.assertApiError(reply, 400))

    async def test_invalid_name_expiry_or_body_is_400(self):
        for body in (
            {"name": "bad name", "domain": DOMAIN},
            {"name": "a@b", "domain": DOMAIN},
            {"name": "x" * 65, "domain": DOMAIN},
            {"name": 7, "domain": DOMAIN},
            {"expiryTime": 1234, "domain": DOMAIN},
            {"expiryTime": "3600000", "domain": DOMAIN},
            {"domain": 5},
            [1, 2],
        ):
            reply = await self.call("POST", "/api/emails/generate", json=body)
            self.assertApiError(reply, 400)
        reply = await self.call("POST", "/api/emails/generate", data=b"{nope")
        self.assertApiError(reply, 400)

    async def test_a_read_only_key_cannot_generate(self):
        reply = await self.call("POST", "/api/emails/generate", key="reader", json={})
        self.assertApiError(reply, 401)


class ListTests(TempmailTestCase):
    async def test_pages_with_a_numeric_cursor(self):
        made = [await self.generate(name=f"box{i}") for i in range(5)]
        await self.generate(key="bob", name="bobs")
        reply = await self.call("GET", "/api/emails?limit=2")
        self.assertEqual(reply.status, 200)
        self.assertEqual(reply.json["nextCursor"], "2")
        self.assertEqual(
            [e["email"] for e in reply.json["emails"]], [made[4]["email"], made[3]["email"]]
        )
        self.assertEqual(
            set(reply.json["emails"][0]),
            {"emailId", "email", "name", "domain", "createdAt", "expiresAt"},
        )
        reply = await self.call("GET", "/api/emails?cursor=4&limit=2")
        self.assertEqual([e["email"] for e in reply.json["emails"]], [made[0]["email"]])
        self.assertIsNone(reply.json["nextCursor"])

    async def test_default_and_maximum_limit(self):
        for i in range(3):
            await self.generate(name=f"b{i}")
        reply = await self.call("GET", "/api/emails?limit=1000")
        self.assertEqual(len(reply.json["emails"]), 3)
        self.assertIsNone(reply.json["nextCursor"])

    async def test_bad_cursor_or_limit_is_400(self):
        for query in ("cursor=abc", "cursor=-1", "limit=0", "limit=x"):
            reply = await self.call("GET", f"/api/emails?{query}")
            self.assertApiError(reply, 400)


class MessageTests(TempmailTestCase):
    async def setUp(self) -> None:  # type: ignore[override]
        await super().setUp()
        self.box = await self.generate(name="inbox")
        self.address = self.box["email"]
        await self.deliver(self.address, PLAIN.replace(b"{to}", self.address.encode()))
        await self.deliver(self.address, with_attachment(self.address))
        self.base = f"/api/emails/{self.box['emailId']}"

    async def test_list_messages(self):
        reply = await self.call("GET", self.base)
        self.assertEqual(reply.status, 200)
        newest, oldest = reply.json["messages"]
        self.assertIsNone(reply.json["nextCursor"])
        self.assertEqual(
            set(oldest),
            {
                "messageId",
                "from",
                "subject",
                "createdAt",
                "isRead",
                "hasAttachment",
                "verificationCode",
            },
        )
        self.assertEqual(oldest["subject"], "Your verification code")
        self.assertEqual(oldest["verificationCode"], "482913")
        self.assertFalse(oldest["isRead"])
        self.assertFalse(oldest["hasAttachment"])
        self.assertTrue(newest["hasAttachment"])
        self.assertEqual(oldest["from"], "noreply@service.example")
        page = await self.call("GET", self.base + "?limit=1")
        self.assertEqual(page.json["nextCursor"], "1")
        self.assertEqual(page.json["messages"][0]["messageId"], newest["messageId"])

    async def test_read_a_message_marks_it_read(self):
        reply = await self.call("GET", self.base + "/1")
        self.assertEqual(reply.status, 200, reply.body)
        body = reply.json
        self.assertEqual(body["messageId"], "1")
        self.assertEqual(body["emailId"], self.box["emailId"])
        self.assertEqual(body["from"], "noreply@service.example")
        self.assertEqual(body["to"], self.address)
        self.assertIn("482913", body["text"])
        self.assertEqual(body["html"], "")
        self.assertTrue(body["isRead"])
        self.assertEqual(body["attachments"], [])
        self.assertEqual(body["verificationCode"], "482913")
        listed = await self.call("GET", self.base)
        self.assertTrue(listed.json["messages"][1]["isRead"])

    async def test_attachments_listed_and_downloaded(self):
        body = (await self.call("GET", self.base + "/2")).json
        [attachment] = body["attachments"]
        self.assertEqual(
            attachment,
            {
                "attachmentId": "2",
                "filename": "invoice.pdf",
                "contentType": "application/pdf",
                "size": len(PDF),
            },
        )
        reply = await self.call("GET", self.base + "/2/attachments/2")
        self.assertEqual(reply.status, 200)
        self.assertEqual(reply.body, PDF)
        self.assertEqual(reply.header("content-type"), "application/pdf")
        self.assertIn('filename="invoice.pdf"', reply.header("content-disposition") or "")
        for missing in ("/2/attachments/1", "/2/attachments/9", "/1/attachments/1"):
            self.assertApiError(await self.call("GET", self.base + missing), 404)

    async def test_a_non_ascii_file_name_is_sent_both_ways(self):
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "a@b.example", self.address, "x"
        message.set_content("see attachment")
        message.add_attachment(
            b"data", maintype="application", subtype="pdf", filename="請求書.pdf"
        )
        await self.deliver(self.address, message.as_bytes().replace(b"\n", b"\r\n"))
        [attachment] = (await self.call("GET", self.base + "/3")).json["attachments"]
        self.assertEqual(attachment["filename"], "請求書.pdf")
        reply = await self.call("GET", f"{self.base}/3/attachments/{attachment['attachmentId']}")
        self.assertEqual(reply.body, b"data")
        self.assertEqual(
            reply.header("content-disposition"),
            "attachment; filename=\".pdf\"; filename*=UTF-8''%E8%AB%8B%E6%B1%82%E6%9B%B8.pdf",
        )

    async def test_raw_download(self):
        reply = await self.call("GET", self.base + "/1/raw")
        self.assertEqual(reply.status, 200)
        self.assertEqual(reply.header("content-type"), "message/rfc822")
        self.assertTrue(reply.body.endswith(b"expires in 10 minutes.\r\n"))

    async def test_unknown_message_is_404(self):
        for path in ("/99", "/0", "/abc", "/99/raw"):
            self.assertApiError(await self.call("GET", self.base + path), 404)

    async def test_delete_a_message(self):
        reply = await self.call("DELETE", self.base + "/1")
        self.assertEqual(reply.status, 200)
        self.assertEqual(reply.json, {"success": True, "messageId": "1"})
        self.assertApiError(await self.call("GET", self.base + "/1"), 404)
        self.assertApiError(await self.call("DELETE", self.base + "/1"), 404)
        self.assertEqual(len((await self.call("GET", self.base)).json["messages"]), 1)

    async def test_delete_the_mailbox_with_its_mail(self):
        account = await self.store.accounts.get(self.address)
        mail_dir = self.data_dir / "mail"
        files_before = sum(1 for p in mail_dir.rglob("*") if p.is_file())
        reply = await self.call("DELETE", self.base)
        self.assertEqual(reply.status, 200)
        self.assertEqual(reply.json, {"success": True, "emailId": str(account.id)})
        self.assertIsNone(await self.store.accounts.find(self.address))
        self.assertEqual(sum(1 for p in mail_dir.rglob("*") if p.is_file()), files_before - 2)
        self.assertApiError(await self.call("GET", self.base), 404)

    async def test_a_read_only_key_cannot_delete(self):
        self.assertApiError(await self.call("DELETE", self.base, key="reader"), 401)


class OwnershipTests(TempmailTestCase):
    async def setUp(self) -> None:  # type: ignore[override]
        await super().setUp()
        self.box = await self.generate(name="mine")
        await self.deliver(self.box["email"], with_attachment(self.box["email"]))
        self.base = f"/api/emails/{self.box['emailId']}"

    async def test_another_key_sees_nothing_of_it(self):
        for method, path in [
            ("GET", self.base),
            ("GET", self.base + "/1"),
            ("GET", self.base + "/1/raw"),
            ("GET", self.base + "/1/attachments/2"),
            ("DELETE", self.base + "/1"),
            ("DELETE", self.base),
        ]:
            reply = await self.call(method, path, key="bob")
            self.assertApiError(reply, 404)
        listed = await self.call("GET", "/api/emails", key="bob")
        self.assertEqual(listed.json, {"emails": [], "nextCursor": None})
        # Still all there for its owner, and still unread.
        reply = await self.call("GET", self.base)
        self.assertFalse(reply.json["messages"][0]["isRead"])

    async def test_ordinary_accounts_are_not_reachable(self):
        account = await self.make_account("user@plain.example")
        self.assertApiError(await self.call("GET", f"/api/emails/{account.id}"), 404)
        self.assertApiError(await self.call("DELETE", f"/api/emails/{account.id}"), 404)
        self.assertIsNotNone(await self.store.accounts.find("user@plain.example"))

    async def test_the_mailbox_token_reaches_only_its_mailbox(self):
        other = await self.generate(name="other")
        token = self.box["token"]
        listed = await self.call("GET", "/api/emails", key=token)
        self.assertEqual([e["email"] for e in listed.json["emails"]], [self.box["email"]])
        self.assertEqual((await self.call("GET", self.base + "/1", key=token)).status, 200)
        self.assertApiError(
            await self.call("GET", f"/api/emails/{other['emailId']}", key=token), 404
        )
        reply = await self.call("POST", "/api/emails/generate", key=token, json={})
        self.assertApiError(reply, 401)


class V1Tests(TempmailTestCase):
    async def test_success_envelope(self):
        reply = await self.call("GET", "/v1/config")
        self.assertEqual(reply.status, 200)
        self.assertEqual(
            reply.json, {"code": 0, "msg": "success", "data": {"domains": [OTHER_DOMAIN, DOMAIN]}}
        )
        reply = await self.call(
            "POST", "/v1/emails/generate", json={"name": "v", "expiryTime": 0, "domain": DOMAIN}
        )
        data = reply.json["data"]
        self.assertEqual(data["email"], f"v@{DOMAIN}")
        listed = await self.call("GET", "/v1/emails")
        self.assertEqual(listed.json["data"]["emails"][0]["emailId"], data["emailId"])
        messages = await self.call("GET", f"/v1/emails/{data['emailId']}")
        self.assertEqual(messages.json["data"], {"messages": [], "nextCursor": None})

    async def test_error_envelope(self):
        reply = await self.call("GET", "/v1/emails/12345")
        self.assertEqual(reply.status, 404)
        self.assertEqual(reply.json["code"], 404)
        self.assertIsNone(reply.json["data"])
        self.assertIsInstance(reply.json["msg"], str)
        reply = await self.call("GET", "/v1/config", key=None)
        self.assertEqual((reply.status, reply.json["code"]), (401, 401))
