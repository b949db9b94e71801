"""``POST /receive`` in memory: an uploaded message is delivered as SMTP delivers it
(trace headers, verification code, forged Authentication-Results dropped, alias forwards
queued); only the strict admin may upload."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from a3mail.http.freemail.receive import smtp_data
from tests.tempmail.freemail_support import CODE_MAIL, DOMAIN, FreemailTestCase


class SmtpDataTests(SynchronousTestCase):
    def test_line_ends_dots_and_the_end_marker(self):
        self.assertEqual(
            bytes(smtp_data(b"a\n.b\r\n..c\rd")),
            b"a\r\n..b\r\n...c\r\nd\r\n.\r\n",
        )


class ReceiveTests(FreemailTestCase):
    async def setUp(self) -> None:  # type: ignore[override]
        await super().setUp()
        self.box = (await self.create("incoming", index=1))["email"]
        self.mail = CODE_MAIL.replace(b"{to}", self.box.encode()).replace(b"\r\n", b"\n")

    async def upload(self, query: str = "", who: str = "root", data: bytes | None = None):
        return await self.call(
            "POST",
            "/receive" + query,
            who=who,
            data=self.mail if data is None else data,
            headers={"Content-Type": ["message/rfc822"]},
        )

    async def test_an_upload_is_delivered_like_smtp_mail(self):
        forged = b"Authentication-Results: mx.test; dkim=pass\n" + self.mail
        reply = await self.upload(f"?to={self.box}&from=noreply@service.example", data=forged)
        self.assertEqual(reply.status, 200, reply.body)
        self.assertEqual(reply.json["recipients"], [self.box])
        [item] = (await self.call("GET", f"/api/emails?mailbox={self.box}")).json
        self.assertEqual(item["verification_code"], "482913")
        raw = (await self.call("GET", f"/api/email/{item['id']}/download")).body
        self.assertTrue(raw.startswith(b"Return-Path: <noreply@service.example>\r\nReceived: "))
        self.assertIn(b"by mx.test (a3mail) with HTTP", raw)
        self.assertNotIn(b"dkim=pass", raw)
        self.assertIn(b"\r\n\r\nYour verification code is 482913.", raw)

    async def test_without_to_the_headers_name_the_recipients(self):
        reply = await self.upload()
        self.assertEqual(reply.status, 200, reply.body)
        self.assertEqual(len(await self.message_ids(self.box)), 1)

    async def test_a_forward_is_queued(self):
        number = (await self.store.freemail.mailbox(address=self.box)).account_id
        await self.store.freemail.set_forward([number], "copy@remote.example")
        reply = await self.upload(f"?to={self.box}")
        self.assertEqual(reply.status, 200, reply.body)
        [entry] = await self.store.queue.list()
        self.assertEqual(entry.recipients, ("copy@remote.example",))
        self.assertEqual(len(await self.message_ids(self.box)), 1)

    async def test_unknown_or_remote_recipients_are_refused(self):
        for query in (f"?to=nobody@{DOMAIN}", "?to=someone@remote.example"):
            self.assertError(await self.upload(query), 404)
        self.assertEqual(await self.store.queue.list(), [])
        self.assertError(await self.upload(data=b"   "), 400)

    async def test_only_the_strict_admin_may_upload(self):
        self.assertError(await self.upload(f"?to={self.box}", who="alice"), 403)
        self.assertError(await self.upload(f"?to={self.box}", who="guest"), 403)
        self.assertError(await self.upload(f"?to={self.box}", who=None), 401)
        self.assertEqual(await self.message_ids(self.box), [])
        reply = await self.upload(f"?to={self.box}", who="admin")
        self.assertEqual(reply.status, 200)


class ReceiveLimitTests(FreemailTestCase):
    overrides = {"limits": {"max_message_size": 2048}, "http": {"max_body": 4096}}

    async def test_an_upload_over_the_message_size_is_413_and_json_bodies_keep_their_cap(self):
        await self.create("small", index=1)
        reply = await self.call("POST", f"/receive?to=small@{DOMAIN}", who="root", data=b"x" * 3000)
        self.assertError(reply, 413)
        reply = await self.call("POST", "/api/create", data=b'{"local": "' + b"a" * 5000 + b'"}')
        self.assertEqual(reply.status, 413)
