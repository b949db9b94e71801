"""Mail endpoints: list a mailbox's INBOX, message metadata by ids, one message, its raw
bytes, deleting one message or all of them.

Message ids are the store's global message ids.  Each handler first checks that the
message's mailbox is one the caller may use: any other id answers 404, exactly like an id
that does not exist.
"""

from __future__ import annotations

from typing import Any

from a3mail.http.freemail.common import (
    MAX_BATCH,
    BytesReply,
    Principal,
    address,
    arg,
    bad_request,
    email_meta_json,
    email_summary_json,
    int_arg,
    not_found,
    path_id,
    stamp,
)
from a3mail.http.freemail.context import FreemailContext
from a3mail.store.names import INBOX
from a3mail.store.records import MessageContent, MessageInfo, NotFound
from a3mail.store.tempmail import is_seen

DEFAULT_LIMIT = 20
MAX_LIMIT = 50


def _sender(content: MessageContent) -> str:
    found = (content.parsed or {}).get("from")
    if isinstance(found, list) and found and isinstance(found[0], dict):
        sender = str(found[0].get("address") or "")
        if sender:
            return sender
    return content.info.from_addr


class MailHandlers:
    """The mail endpoints."""

    def __init__(self, ctx: FreemailContext) -> None:
        self.ctx = ctx

    async def _inbox(self, request: Any, caller: Principal) -> Any:
        box = await self.ctx.mailbox(caller, address=address(arg(request, "mailbox"), "mailbox"))
        try:
            inbox = await self.ctx.store.summaries.mailbox(box.account_id, INBOX)
        except NotFound:
            raise not_found("mailbox not found") from None
        return box, inbox

    async def _message(self, caller: Principal, message_id: str) -> MessageInfo:
        info: MessageInfo | None = await self.ctx.store.freemail_sent.message(path_id(message_id))
        if info is None or not await self.ctx.may_use(caller, info.account_id):
            raise not_found("message not found")
        return info

    async def list_emails(self, request: Any, caller: Principal) -> list[dict[str, Any]]:
        """The newest messages of a mailbox's INBOX, with preview and verification code."""
        limit = int_arg(request, "limit", DEFAULT_LIMIT, maximum=MAX_LIMIT, minimum=1)
        box, _inbox = await self._inbox(request, caller)
        found = await self.ctx.store.tempmail.inbox_page(box.account_id, offset=0, limit=limit)
        return [email_summary_json(info, sender) for info, sender in found]

    async def batch(self, request: Any, caller: Principal) -> list[dict[str, Any]]:
        """Metadata of up to 50 messages by id (ids the caller may not see are left out)."""
        text = arg(request, "ids") or ""
        parts = [p.strip() for p in text.split(",") if p.strip()]
        if not parts:
            return []
        if len(parts) > MAX_LIMIT:
            raise bad_request(f"at most {MAX_LIMIT} ids at a time")
        ids = []
        for part in parts:
            if not part.isascii() or not part.isdigit() or len(part) > 18:
                raise bad_request("invalid ids")
            ids.append(int(part))
        found = await self.ctx.store.freemail_sent.messages(ids[:MAX_BATCH])
        allowed = await self.ctx.usable(caller, sorted({i.account_id for i, _ in found}))
        return [email_meta_json(i, s) for i, s in found if i.account_id in allowed]

    async def get_email(self, request: Any, caller: Principal, message_id: str) -> dict[str, Any]:
        """One message in full; it is marked read."""
        info = await self._message(caller, message_id)
        try:
            content = await self.ctx.store.messages.get(info.account_id, info.mailbox_id, info.uid)
        except NotFound:
            raise not_found("message not found") from None
        if not is_seen(info):
            await self.ctx.store.messages.store_flags(
                info.account_id, info.mailbox_id, [info.uid], "+", ["\\Seen"]
            )
        return {
            "id": info.id,
            "sender": _sender(content),
            "to_addrs": info.to_addr,
            "subject": info.subject,
            "verification_code": info.verification_code,
            "content": content.text,
            "html_content": content.html,
            "received_at": stamp(info.internal_date),
            "is_read": 1,
            "download": f"/api/email/{info.id}/download",
        }

    async def download(self, request: Any, caller: Principal, message_id: str) -> BytesReply:
        """The stored bytes of one message."""
        info = await self._message(caller, message_id)
        try:
            data = await self.ctx.store.messages.read(info)
        except (NotFound, FileNotFoundError):
            raise not_found("message not found") from None
        return BytesReply(data, "message/rfc822", f"{info.id}.eml")

    async def delete_email(
        self, request: Any, caller: Principal, message_id: str
    ) -> dict[str, Any]:
        """Delete one message."""
        info = await self._message(caller, message_id)
        removed = await self.ctx.store.messages.expunge(
            info.account_id, info.mailbox_id, [info.uid], only_deleted=False
        )
        if not removed:
            raise not_found("message not found")
        return {"success": True, "deleted": True, "message": "message deleted"}

    async def clear(self, request: Any, caller: Principal) -> dict[str, Any]:
        """Delete every message of a mailbox's INBOX."""
        box, inbox = await self._inbox(request, caller)
        removed = await self.ctx.store.messages.expunge(
            box.account_id, inbox.id, None, only_deleted=False
        )
        return {"success": True, "deletedCount": len(removed)}
