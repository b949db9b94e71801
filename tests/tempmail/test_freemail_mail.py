"""Freemail mail endpoints in memory: list with preview and verification code, batch
metadata, one message (marked read), the raw bytes, delete one, clear all; another user's
message ids answer 404; a guest sees demo messages only."""

from __future__ import annotations

from tests.tempmail.freemail_support import CODE_MAIL, FreemailTestCase


class MailTests(FreemailTestCase):
    async def setUp(self) -> None:  # type: ignore[override]
        await super().setUp()
        self.box = (await self.create("reader"))["email"]
        self.mail = CODE_MAIL.replace(b"{to}", self.box.encode())
        await self.deliver(self.box, self.mail)

    async def test_list_has_preview_and_verification_code(self):
        reply = await self.call("GET", f"/api/emails?mailbox={self.box}")
        self.assertEqual(reply.status, 200, reply.body)
        [item] = reply.json
        self.assertEqual(
            set(item),
            {"id", "sender", "subject", "received_at", "is_read", "preview", "verification_code"},
        )
        self.assertEqual(item["sender"], "noreply@service.example")
        self.assertEqual(item["subject"], "Your verification code")
        self.assertEqual(item["verification_code"], "482913")
        self.assertIn("482913", item["preview"])
        self.assertEqual(item["is_read"], 0)
        self.assertRegex(item["received_at"], r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")

    async def test_list_limit_is_capped_and_checked(self):
        for _ in range(3):
            await self.deliver(self.box, self.mail)
        reply = await self.call("GET", f"/api/emails?mailbox={self.box}&limit=2")
        self.assertEqual(len(reply.json), 2)
        self.assertError(await self.call("GET", f"/api/emails?mailbox={self.box}&limit=x"), 400)
        self.assertError(await self.call("GET", "/api/emails"), 400)

    async def test_one_message_in_full_is_marked_read(self):
        [number] = await self.message_ids(self.box)
        reply = await self.call("GET", f"/api/email/{number}")
        body = reply.json
        self.assertEqual(body["id"], number)
        self.assertEqual(body["to_addrs"], self.box)
        self.assertIn("482913", body["content"])
        self.assertEqual(body["verification_code"], "482913")
        self.assertEqual(body["download"], f"/api/email/{number}/download")
        listed = await self.call("GET", f"/api/emails?mailbox={self.box}")
        self.assertEqual(listed.json[0]["is_read"], 1)

    async def test_download_is_the_stored_bytes(self):
        [number] = await self.message_ids(self.box)
        reply = await self.call("GET", f"/api/email/{number}/download")
        self.assertEqual(reply.status, 200)
        self.assertEqual(reply.header("content-type"), "message/rfc822")
        self.assertIn("attachment", reply.header("content-disposition"))
        self.assertTrue(reply.body.endswith(self.mail))

    async def test_batch_returns_metadata_of_the_callers_messages_only(self):
        other = (await self.create("bobs", who="bob"))["email"]
        await self.deliver(other, CODE_MAIL.replace(b"{to}", other.encode()))
        [mine] = await self.message_ids(self.box)
        [theirs] = await self.message_ids(other, who="bob")
        reply = await self.call("GET", f"/api/emails/batch?ids={mine},{theirs},999999")
        [item] = reply.json
        self.assertEqual(item["id"], mine)
        self.assertEqual(item["to_addrs"], self.box)
        self.assertEqual(item["verification_code"], "482913")
        self.assertIn("r2_object_key", item)
        too_many = ",".join(str(n) for n in range(1, 52))
        self.assertError(await self.call("GET", f"/api/emails/batch?ids={too_many}"), 400)
        self.assertError(await self.call("GET", "/api/emails/batch?ids=1,x"), 400)

    async def test_delete_one_message(self):
        [number] = await self.message_ids(self.box)
        reply = await self.call("DELETE", f"/api/email/{number}")
        self.assertEqual(
            reply.json, {"success": True, "deleted": True, "message": "message deleted"}
        )
        self.assertEqual(await self.message_ids(self.box), [])
        self.assertError(await self.call("DELETE", f"/api/email/{number}"), 404)

    async def test_clear_a_mailbox(self):
        await self.deliver(self.box, self.mail)
        reply = await self.call("DELETE", f"/api/emails?mailbox={self.box}")
        self.assertEqual(reply.json, {"success": True, "deletedCount": 2})
        self.assertEqual(await self.message_ids(self.box), [])

    async def test_bad_ids_are_404(self):
        for path in ("/api/email/abc", "/api/email/0", "/api/email/99999999"):
            self.assertError(await self.call("GET", path), 404)


class MailIsolationTests(FreemailTestCase):
    async def test_bob_gets_404_for_every_message_endpoint_on_alices_mail(self):
        box = (await self.create("secret"))["email"]
        await self.deliver(box, CODE_MAIL.replace(b"{to}", box.encode()))
        [number] = await self.message_ids(box)
        await self.create("bobbox", who="bob")
        for method, path in (
            ("GET", f"/api/email/{number}"),
            ("GET", f"/api/email/{number}/download"),
            ("DELETE", f"/api/email/{number}"),
            ("GET", f"/api/emails?mailbox={box}"),
            ("DELETE", f"/api/emails?mailbox={box}"),
        ):
            self.assertError(await self.call(method, path, who="bob"), 404)
        reply = await self.call("GET", f"/api/emails/batch?ids={number}", who="bob")
        self.assertEqual(reply.json, [])
        self.assertEqual(await self.message_ids(box), [number])  # still there, still unread
        listed = await self.call("GET", f"/api/emails?mailbox={box}")
        self.assertEqual(listed.json[0]["is_read"], 0)

    async def test_an_admin_reads_every_mailbox(self):
        box = (await self.create("anyone"))["email"]
        await self.deliver(box, CODE_MAIL.replace(b"{to}", box.encode()))
        [number] = await self.message_ids(box, who="admin")
        reply = await self.call("GET", f"/api/email/{number}", who="root")
        self.assertEqual(reply.json["verification_code"], "482913")


class GuestMailTests(FreemailTestCase):
    async def test_guest_sees_demo_messages_never_real_mail(self):
        box = (await self.create("real"))["email"]
        await self.deliver(box, CODE_MAIL.replace(b"{to}", box.encode()))
        [real] = await self.message_ids(box)
        listed = await self.call("GET", f"/api/emails?mailbox={box}", who="guest")
        self.assertEqual([m["id"] for m in listed.json], [9001, 9002, 9003])
        self.assertEqual(listed.json[0]["verification_code"], "482913")
        self.assertError(await self.call("GET", f"/api/email/{real}", who="guest"), 404)
        demo = await self.call("GET", "/api/email/9003", who="guest")
        self.assertEqual(demo.json["verification_code"], "7Q4KZP")
        raw = await self.call("GET", "/api/email/9001/download", who="guest")
        self.assertIn(b"demo.invalid", raw.body)
        self.assertError(await self.call("DELETE", "/api/email/9001", who="guest"), 403)
        self.assertError(await self.call("DELETE", f"/api/emails?mailbox={box}", who="guest"), 403)
        self.assertEqual(await self.message_ids(box), [real])
