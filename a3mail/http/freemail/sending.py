"""Sending through a3mail's own outbound queue, and the sent-mail records.

A send builds the message with the stdlib email package (Message-ID, Date, From, To,
Subject, text and/or HTML), delivers it to local recipients at once as SMTP submission
does, queues it for the others (held back, then released with its record in one
transaction: see :mod:`a3mail.store.freemail_sent`), and keeps a copy in the sender's Sent
folder.  ``scheduledAt`` is the queue entries' first attempt time: the queue runner does
not try before it.  The ``id`` returned is the sent record's; ``GET /api/send/:id`` shows
its queue status (``queued``, ``scheduled``, ``delivered``, ``failed``, ``bounced``,
``canceled``).
"""

from __future__ import annotations

import email.policy
import email.utils
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import attrs

from a3mail.http.freemail.common import (
    FreemailError,
    Principal,
    address,
    arg,
    bad_request,
    forbidden,
    int_arg,
    json_object,
    json_value,
    not_found,
    path_id,
    stamp,
    text_field,
)
from a3mail.http.freemail.context import FreemailContext
from a3mail.logs import get_logger
from a3mail.mime import parse_message
from a3mail.store.freemail_sent import SentRecord
from a3mail.store.records import NotFound, OverQuota

log = get_logger(__name__)

MAX_RECIPIENTS = 50
MAX_BATCH = 20
MAX_SUBJECT = 998
MAX_BODY = 512 * 1024
MAX_SCHEDULE = timedelta(days=365)
HOLD = timedelta(days=3650)
DEFAULT_LIMIT, MAX_LIMIT = 20, 50


@attrs.frozen
class Outgoing:
    """One validated send."""

    account_id: int
    sender: str
    from_name: str
    to: tuple[str, ...]
    subject: str
    html: str
    text: str
    scheduled_at: datetime | None


def parse_time(value: Any, now: datetime) -> datetime | None:
    """``scheduledAt`` (ISO 8601; null/"" = now): in the future, within a year."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise bad_request("invalid scheduledAt")
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise bad_request("invalid scheduledAt: use ISO 8601") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if when <= now:
        return None
    if when > now + MAX_SCHEDULE:
        raise bad_request("scheduledAt is too far ahead")
    return when


def build_message(send: Outgoing, now: datetime) -> bytes:
    """The RFC 5322 bytes (CRLF line ends) of *send*."""
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = email.utils.formataddr((send.from_name, send.sender))
    message["To"] = ", ".join(send.to)
    message["Subject"] = send.subject
    message["Date"] = email.utils.format_datetime(now)
    message["Message-ID"] = email.utils.make_msgid(domain=send.sender.rpartition("@")[2])
    if send.text and send.html:
        message.set_content(send.text)
        message.add_alternative(send.html, subtype="html")
    elif send.html:
        message.set_content(send.html, subtype="html")
    else:
        message.set_content(send.text)
    return message.as_bytes()


def sent_summary_json(record: SentRecord) -> dict[str, Any]:
    """One record as ``GET /api/sent`` lists it."""
    return {
        "id": record.id,
        "resend_id": str(record.id),
        "recipients": ", ".join(record.recipients),
        "subject": record.subject,
        "created_at": stamp(record.created_at),
        "status": record.status,
    }


def sent_json(record: SentRecord) -> dict[str, Any]:
    """One record as ``GET /api/sent/:id`` returns it."""
    return {
        "id": record.id,
        "resend_id": str(record.id),
        "from_addr": record.from_addr,
        "recipients": ", ".join(record.recipients),
        "subject": record.subject,
        "html_content": record.html_content,
        "text_content": record.text_content,
        "status": record.status,
        "scheduled_at": stamp(record.scheduled_at),
        "created_at": stamp(record.created_at),
        "queue_ids": list(record.queue_entry_ids),
    }


class SendHandlers:
    """The sending endpoints."""

    def __init__(self, ctx: FreemailContext) -> None:
        self.ctx = ctx

    async def _validate(self, caller: Principal, body: Any) -> Outgoing:
        if not isinstance(body, dict):
            raise bad_request("each message must be a JSON object")
        sender = address(body.get("from"), "from")
        try:
            box = await self.ctx.mailbox(caller, address=sender)
        except FreemailError:
            raise forbidden("you cannot send from this address") from None
        to_value = body.get("to")
        items = to_value if isinstance(to_value, list) else [to_value]
        if not items or len(items) > MAX_RECIPIENTS:
            raise bad_request(f"give 1 to {MAX_RECIPIENTS} recipients in to")
        to = tuple(dict.fromkeys(address(v, "to") for v in items))
        if not box.address.isascii() or not all(t.isascii() for t in to):
            raise bad_request("internationalized addresses cannot be sent to yet")
        html = text_field(body, "html", maximum=MAX_BODY)
        text = text_field(body, "text", maximum=MAX_BODY)
        if not html and not text:
            raise bad_request("text or html is required")
        from_name = text_field(body, "fromName", maximum=200).replace("\r", " ").replace("\n", " ")
        subject = text_field(body, "subject", maximum=MAX_SUBJECT)
        return Outgoing(
            account_id=box.account_id,
            sender=box.address,
            from_name=from_name,
            to=to,
            subject=subject.replace("\r", " ").replace("\n", " "),
            html=html,
            text=text,
            scheduled_at=parse_time(body.get("scheduledAt"), self.ctx.now()),
        )

    def _may_send(self, caller: Principal) -> None:
        if not (caller.strict or caller.can_send):
            raise forbidden("this login may not send mail")

    async def _route(self, send: Outgoing, size: int) -> tuple[list[str], list[str]]:
        """(local addresses, addresses for the queue) of a send; 400 for unknown locals."""
        local: list[str] = []
        remote: list[str] = []
        for recipient in send.to:
            check = await self.ctx.store.recipients.check(recipient, size)
            if not check.local_domain:
                remote.append(recipient)
            elif not check.exists:
                raise bad_request(f"no such local address: {recipient}")
            else:
                if check.account_ids:
                    local.append(check.address)
                remote.extend(check.external)
        if send.scheduled_at is not None and local:
            raise bad_request("scheduled sends to local addresses are not supported")
        return local, list(dict.fromkeys(remote))

    async def _send(self, send: Outgoing) -> SentRecord:
        now = self.ctx.now()
        data = build_message(send, now)
        local, remote = await self._route(send, len(data))
        store = self.ctx.store
        blob = await store.incoming(data)
        try:
            if local:
                await store.messages.deliver(blob, local, keep_source=True, parse=_parse)
            entries: list[int] = []
            if remote:
                entries = await store.queue.enqueue(
                    blob, send.sender, remote, keep_source=True, not_before=now + HOLD
                )
            record: SentRecord = await store.freemail_sent.record(
                account_id=send.account_id,
                from_addr=send.sender,
                recipients=send.to,
                subject=send.subject,
                html=send.html,
                text=send.text,
                entry_ids=entries,
                scheduled_at=send.scheduled_at,
            )
        except BaseException:
            await store.spool.discard(blob)
            raise
        await self._sent_copy(send.account_id, blob)
        return record

    async def _sent_copy(self, account_id: int, blob: Any) -> None:
        store = self.ctx.store
        try:
            sent = await store.mailboxes.get_by_special_use(account_id, "\\Sent")
            if sent is None:
                await store.spool.discard(blob)
                return
            await store.messages.append(account_id, sent.name, blob, parse=_parse, flags=["\\Seen"])
        except (OverQuota, NotFound) as e:
            log.info("no Sent copy: {reason}", reason=str(e))
            await store.spool.discard(blob)

    async def send(self, request: Any, caller: Principal) -> dict[str, Any]:
        """Send (or schedule) one message."""
        self._may_send(caller)
        outgoing = await self._validate(caller, json_object(request))
        record = await self._send(outgoing)
        return {"success": True, "id": str(record.id)}

    async def send_batch(self, request: Any, caller: Principal) -> dict[str, Any]:
        """Send up to 20 messages; all are checked before any is sent."""
        self._may_send(caller)
        body = json_value(request)
        if not isinstance(body, list) or not body or len(body) > MAX_BATCH:
            raise bad_request(f"the body must be a list of 1 to {MAX_BATCH} messages")
        sends = [await self._validate(caller, item) for item in body]
        records = [await self._send(s) for s in sends]
        return {"success": True, "result": [{"id": str(r.id)} for r in records]}

    async def _record(self, caller: Principal, sent_id: str) -> SentRecord:
        record: SentRecord | None = await self.ctx.store.freemail_sent.get(path_id(sent_id))
        if record is None or not await self.ctx.may_use(caller, record.account_id):
            raise not_found("sent message not found")
        return record

    async def status(self, request: Any, caller: Principal, sent_id: str) -> dict[str, Any]:
        """A send and its queue status (Resend's shape)."""
        record = await self._record(caller, sent_id)
        return {
            "object": "email",
            "id": str(record.id),
            "from": record.from_addr,
            "to": list(record.recipients),
            "subject": record.subject,
            "html": record.html_content,
            "text": record.text_content,
            "created_at": stamp(record.created_at),
            "scheduled_at": stamp(record.scheduled_at),
            "last_event": record.status,
            "queue_ids": list(record.queue_entry_ids),
        }

    async def update(self, request: Any, caller: Principal, sent_id: str) -> dict[str, Any]:
        """Cancel (``status: "canceled"``) or move (``scheduledAt``) a send not yet begun."""
        self._may_send(caller)
        record = await self._record(caller, sent_id)
        body = json_object(request)
        if body.get("status") not in (None, "canceled", "cancelled"):
            raise bad_request('status can only be "canceled"')
        if body.get("status"):
            return await self._cancel(record)
        when = parse_time(body.get("scheduledAt"), self.ctx.now())
        if when is None:
            raise bad_request("give a future scheduledAt or status canceled")
        if not await self.ctx.store.freemail_sent.reschedule(record.id, when):
            raise FreemailError(409, "the message is already being sent or is finished")
        return {"success": True, "object": "email", "id": str(record.id)}

    async def cancel(self, request: Any, caller: Principal, sent_id: str) -> dict[str, Any]:
        """Cancel a send not yet begun."""
        self._may_send(caller)
        return await self._cancel(await self._record(caller, sent_id))

    async def _cancel(self, record: SentRecord) -> dict[str, Any]:
        if not await self.ctx.store.freemail_sent.cancel(record.id):
            raise FreemailError(409, "the message is already being sent or is finished")
        return {"success": True, "id": str(record.id)}

    async def list_sent(self, request: Any, caller: Principal) -> list[dict[str, Any]]:
        """The newest records sent from one mailbox (``from``)."""
        limit = int_arg(request, "limit", DEFAULT_LIMIT, maximum=MAX_LIMIT, minimum=1)
        box = await self.ctx.mailbox(caller, address=address(arg(request, "from"), "from"))
        records = await self.ctx.store.freemail_sent.page(box.account_id, limit=limit)
        return [sent_summary_json(r) for r in records]

    async def get_sent(self, request: Any, caller: Principal, sent_id: str) -> dict[str, Any]:
        """One sent record."""
        return sent_json(await self._record(caller, sent_id))

    async def delete_sent(self, request: Any, caller: Principal, sent_id: str) -> dict[str, Any]:
        """Forget a sent record."""
        record = await self._record(caller, sent_id)
        await self.ctx.store.freemail_sent.delete(record.id)
        return {"success": True}


def _parse(data: bytes) -> dict[str, Any]:
    result: dict[str, Any] = parse_message(data).to_json()
    return result
