"""Freemail sending in memory: the outbound queue entry a send makes (released at once, or
held until ``scheduledAt``), the message bytes, the Sent copy, status following the
queue, reschedule and cancel, local recipients, batches, the sent records, can_send, and a
user never reaching another user's sends."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta

from a3mail.store.names import INBOX
from tests.http.support import START
from tests.tempmail.freemail_support import OTHER_DOMAIN, FreemailTestCase

NOW = datetime.fromtimestamp(START, UTC)


class SendTestCase(FreemailTestCase):
    async def setUp(self) -> None:  # type: ignore[override]
        await super().setUp()
        self.sender = (await self.create("sender"))["email"]

    async def send(self, who: str = "alice", **fields: object) -> dict:
        body = {
            "from": self.sender,
            "fromName": "Sender Name",
            "to": "friend@remote.example",
            "subject": "Hello there",
            "text": "plain body",
            "html": "<p>html body</p>",
            **fields,
        }
        reply = await self.call("POST", "/api/send", who=who, json=body)
        self.assertEqual(reply.status, 200, reply.body)
        return reply.json

    async def record(self, sent_id: str):
        return await self.store.freemail_sent.get(int(sent_id))


class SendTests(SendTestCase):
    async def test_a_send_is_queued_for_delivery_now(self):
        result = await self.send()
        self.assertEqual(set(result), {"success", "id"})
        record = await self.record(result["id"])
        [entry_id] = record.queue_entry_ids
        entry = await self.store.queue.get(entry_id)
        self.assertEqual(entry.sender, self.sender)
        self.assertEqual(entry.recipients, ("friend@remote.example",))
        self.assertEqual(entry.state, "queued")
        self.assertLess(entry.next_attempt_at, datetime.now(UTC) + timedelta(minutes=1))
        status = await self.call("GET", f"/api/send/{result['id']}")
        self.assertEqual(status.json["last_event"], "queued")
        self.assertEqual(status.json["to"], ["friend@remote.example"])
        self.assertEqual(status.json["queue_ids"], [entry_id])

    async def test_the_message_is_built_with_the_usual_headers(self):
        result = await self.send()
        record = await self.record(result["id"])
        entry = await self.store.queue.get(record.queue_entry_ids[0])
        data = await self.store.outbound.read_message(entry.blob_path, entry.skip_bytes, 100000)
        self.assertIn(b"\r\n", data)
        message = email.message_from_bytes(data, policy=email.policy.default)
        self.assertEqual(message["From"], f"Sender Name <{self.sender}>")
        self.assertEqual(message["To"], "friend@remote.example")
        self.assertEqual(message["Subject"], "Hello there")
        self.assertTrue(message["Message-ID"].endswith(f"@{OTHER_DOMAIN}>"))
        self.assertIsNotNone(message["Date"])
        self.assertEqual(message.get_body(("plain",)).get_content().strip(), "plain body")
        self.assertEqual(message.get_body(("html",)).get_content().strip(), "<p>html body</p>")

    async def test_a_copy_goes_to_the_senders_sent_folder(self):
        await self.send()
        box = await self.store.freemail.mailbox(address=self.sender)
        sent = await self.store.mailboxes.get_by_special_use(box.account_id, "\\Sent")
        [info] = await self.store.messages.list(box.account_id, sent.id)
        self.assertEqual(info.subject, "Hello there")

    async def test_the_status_follows_the_queue(self):
        result = await self.send()
        record = await self.record(result["id"])
        await self.store.queue.finish(record.queue_entry_ids[0], "sent")
        self.assertEqual((await self.record(result["id"])).status, "delivered")
        listed = await self.call("GET", f"/api/sent?from={self.sender}")
        self.assertEqual(listed.json[0]["status"], "delivered")
        failed = await self.send()
        entry = (await self.record(failed["id"])).queue_entry_ids[0]
        await self.store.queue.finish(entry, "failed", "550 no such user")
        self.assertEqual((await self.record(failed["id"])).status, "failed")

    async def test_local_recipients_are_delivered_at_once(self):
        target = (await self.create("local"))["email"]
        result = await self.send(to=[target])
        record = await self.record(result["id"])
        self.assertEqual((record.status, record.queue_entry_ids), ("delivered", ()))
        [listed] = (await self.call("GET", f"/api/emails?mailbox={target}")).json
        self.assertEqual(listed["subject"], "Hello there")
        self.assertEqual(listed["sender"], self.sender)
        box = await self.store.freemail.mailbox(address=target)
        inbox = await self.store.summaries.mailbox(box.account_id, INBOX)
        self.assertEqual(len(await self.store.messages.list(box.account_id, inbox.id)), 1)

    async def test_an_unknown_local_recipient_is_400(self):
        reply = await self.call(
            "POST",
            "/api/send",
            json={"from": self.sender, "to": "nobody@temp.example", "text": "x"},
        )
        self.assertError(reply, 400)

    async def test_invalid_sends_are_400(self):
        for fields in (
            {"to": "not an address"},
            {"to": "ünicode@remote.example"},
            {"fromName": "x" * 201},
            {"to": []},
            {"to": [f"r{n}@remote.example" for n in range(51)]},
            {"text": "", "html": ""},
            {"scheduledAt": "tomorrow"},
            {"scheduledAt": (NOW + timedelta(days=400)).isoformat()},
        ):
            body = {"from": self.sender, "to": "a@remote.example", "text": "x", **fields}
            self.assertError(await self.call("POST", "/api/send", json=body), 400)


class ScheduleTests(SendTestCase):
    async def test_scheduled_sends_to_local_addresses_are_refused(self):
        target = (await self.create("later"))["email"]
        body = {
            "from": self.sender,
            "to": target,
            "text": "x",
            "scheduledAt": (NOW + timedelta(hours=1)).isoformat(),
        }
        self.assertError(await self.call("POST", "/api/send", json=body), 400)
        self.assertEqual(await self.message_ids(target), [])

    async def test_a_scheduled_send_is_not_due_before_its_time(self):
        when = NOW + timedelta(hours=5)
        result = await self.send(scheduledAt=when.isoformat().replace("+00:00", "Z"))
        record = await self.record(result["id"])
        self.assertEqual((record.status, record.scheduled_at), ("scheduled", when))
        entry = await self.store.queue.get(record.queue_entry_ids[0])
        self.assertEqual(entry.next_attempt_at, when)

    async def test_patch_moves_and_cancel_removes_the_queue_entry(self):
        result = await self.send(scheduledAt=(NOW + timedelta(hours=1)).isoformat())
        later = NOW + timedelta(hours=3)
        reply = await self.call(
            "PATCH", f"/api/send/{result['id']}", json={"scheduledAt": later.isoformat()}
        )
        self.assertEqual(reply.json["success"], True)
        record = await self.record(result["id"])
        self.assertEqual(
            (await self.store.queue.get(record.queue_entry_ids[0])).next_attempt_at, later
        )
        reply = await self.call("POST", f"/api/send/{result['id']}/cancel")
        self.assertEqual(reply.json["success"], True)
        self.assertEqual((await self.record(result["id"])).status, "canceled")
        self.assertEqual(await self.store.queue.list(), [])
        self.assertEqual(list((self.data_dir / "mail" / "queue").iterdir()), [])
        self.assertError(await self.call("POST", f"/api/send/{result['id']}/cancel"), 409)

    async def test_patch_status_canceled_cancels(self):
        result = await self.send()
        reply = await self.call("PATCH", f"/api/send/{result['id']}", json={"status": "canceled"})
        self.assertEqual(reply.json["success"], True)
        self.assertEqual((await self.record(result["id"])).status, "canceled")

    async def test_a_send_being_delivered_cannot_be_canceled(self):
        result = await self.send()
        await self.store.outbound.lease("worker", 10, 60)
        self.assertError(await self.call("POST", f"/api/send/{result['id']}/cancel"), 409)


class SentRecordTests(SendTestCase):
    async def test_list_get_and_delete_sent_records(self):
        first = await self.send(subject="one")
        await self.send(subject="two")
        listed = await self.call("GET", f"/api/sent?from={self.sender}&limit=1")
        [item] = listed.json
        self.assertEqual(
            set(item), {"id", "resend_id", "recipients", "subject", "created_at", "status"}
        )
        self.assertEqual(item["subject"], "two")
        detail = await self.call("GET", f"/api/sent/{first['id']}")
        self.assertEqual(detail.json["from_addr"], self.sender)
        self.assertEqual(detail.json["html_content"], "<p>html body</p>")
        self.assertEqual(detail.json["text_content"], "plain body")
        self.assertEqual(
            (await self.call("DELETE", f"/api/sent/{first['id']}")).json, {"success": True}
        )
        self.assertError(await self.call("GET", f"/api/sent/{first['id']}"), 404)

    async def test_batch_send(self):
        reply = await self.call(
            "POST",
            "/api/send/batch",
            json=[
                {
                    "from": self.sender,
                    "to": "one@remote.example",
                    "subject": "1",
                    "html": "<p>1</p>",
                },
                {
                    "from": self.sender,
                    "to": "two@remote.example",
                    "subject": "2",
                    "html": "<p>2</p>",
                },
            ],
        )
        self.assertEqual(reply.status, 200, reply.body)
        self.assertEqual(len(reply.json["result"]), 2)
        self.assertEqual(len(await self.store.queue.list()), 2)

    async def test_a_bad_batch_sends_nothing(self):
        reply = await self.call(
            "POST",
            "/api/send/batch",
            json=[
                {"from": self.sender, "to": "one@remote.example", "text": "1"},
                {"from": self.sender, "to": "bad"},
            ],
        )
        self.assertError(reply, 400)
        self.assertEqual(await self.store.queue.list(), [])
        self.assertError(await self.call("POST", "/api/send/batch", json=[]), 400)


class SendPermissionTests(SendTestCase):
    async def test_only_users_with_can_send_may_send(self):
        bobs = (await self.create("bobs", who="bob"))["email"]
        reply = await self.call(
            "POST",
            "/api/send",
            who="bob",
            json={"from": bobs, "to": "a@remote.example", "text": "x"},
        )
        self.assertError(reply, 403)
        self.assertError(await self.call("POST", "/api/send", who="guest", json={}), 403)
        listed = await self.call("GET", f"/api/sent?from={self.sender}", who="guest")
        self.assertEqual((listed.status, listed.json), (200, []))
        self.assertEqual(await self.store.queue.list(), [])

    async def test_nobody_sends_from_or_sees_another_users_mailbox(self):
        result = await self.send()
        await self.store.freemail.update_user(self.bob_user.id, can_send=True)
        reply = await self.call(
            "POST",
            "/api/send",
            who="bob",
            json={"from": self.sender, "to": "a@remote.example", "text": "x"},
        )
        self.assertError(reply, 403)
        sent_id = result["id"]
        for method, path in (
            ("GET", f"/api/send/{sent_id}"),
            ("PATCH", f"/api/send/{sent_id}"),
            ("POST", f"/api/send/{sent_id}/cancel"),
            ("GET", f"/api/sent/{sent_id}"),
            ("DELETE", f"/api/sent/{sent_id}"),
            ("GET", f"/api/sent?from={self.sender}"),
        ):
            self.assertError(
                await self.call(method, path, who="bob", json={"status": "canceled"}), 404
            )
        self.assertEqual((await self.record(sent_id)).status, "queued")

    async def test_the_strict_admin_may_send_from_any_freemail_mailbox(self):
        reply = await self.call(
            "POST",
            "/api/send",
            who="root",
            json={"from": self.sender, "to": "a@remote.example", "text": "x"},
        )
        self.assertEqual(reply.status, 200, reply.body)
