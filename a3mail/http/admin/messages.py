"""A user's messages: list a mailbox, read one message (JSON or raw), delete one."""

from __future__ import annotations

from typing import Any

from klein import Klein

from a3mail.http.admin.context import AdminContext, account_key
from a3mail.http.auth import READ, WRITE
from a3mail.http.errors import InvalidRequest, NotFound
from a3mail.http.pagination import MAX_LIMIT, Page, raw_envelope
from a3mail.http.responses import FileResponse, JsonResponse
from a3mail.http.routes import endpoint
from a3mail.http.validation import query_int, query_str
from a3mail.mime.headers import parse_headers
from a3mail.mime.rfc2047 import decode_words
from a3mail.store.names import INBOX, normalize_mailbox
from a3mail.store.records import InvalidName, MessageContent
from a3mail.store.records import NotFound as StoreNotFound

MAX_OFFSET = 10_000_000
UID = "<int:uid>"
MAX_UID = 4294967295
MESSAGE_PATH = f"/api/v1/users/<user_id>/messages/{UID}"


def _addresses(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list):
        return []
    return [
        {"name": str(a.get("name") or ""), "address": str(a.get("address") or "")}
        for a in value
        if isinstance(a, dict)
    ]


def _attachments(parsed: dict[str, Any]) -> list[dict[str, Any]]:
    found = parsed.get("attachments")
    if not isinstance(found, list):
        return []
    keys = ("filename", "content_type", "size", "content_id", "disposition", "section")
    return [{k: a.get(k) for k in keys} for a in found if isinstance(a, dict)]


def message_json(content: MessageContent, mailbox: str, header: bytes) -> dict[str, Any]:
    """One message: addresses, headers, text, HTML and attachment metadata."""
    info, parsed = content.info, content.parsed or {}
    sender = _addresses(parsed.get("from"))
    to = _addresses(parsed.get("to"))
    cc = _addresses(parsed.get("cc"))
    return {
        "uid": info.uid,
        "mailbox": mailbox,
        "from": sender[0]["address"] if sender else "",
        "to": [a["address"] for a in to],
        "cc": [a["address"] for a in cc],
        "addresses": {
            "from": sender,
            "to": to,
            "cc": cc,
            "reply_to": _addresses(parsed.get("reply_to")),
        },
        "subject": info.subject,
        "date": info.sent_date or info.internal_date,
        "received_at": info.internal_date,
        "size": info.size,
        "flags": list(info.flag_names),
        "message_id": info.message_id,
        "headers": [
            {"name": name, "value": decode_words(value)}
            for name, value in parse_headers(header).fields
        ],
        "text": content.text,
        "html": content.html,
        "attachments": _attachments(parsed),
        "verification_code": info.verification_code,
    }


class MessagesApi:
    """Reading and deleting a user's messages."""

    app = Klein()

    def __init__(self, ctx: AdminContext) -> None:
        self.ctx = ctx

    @endpoint(app, "GET", "/api/v1/users/<user_id>/messages", READ)
    async def list_messages(self, request: Any, user_id: str) -> JsonResponse:
        """A page of a mailbox, newest first (``order=asc`` for oldest first)."""
        name = _mailbox_param(request)
        limit = query_int(request, "limit", 20, minimum=1, maximum=MAX_LIMIT)
        offset = query_int(request, "offset", -1, minimum=0, maximum=MAX_OFFSET)
        page_number = query_int(request, "page", 0, minimum=1, maximum=MAX_OFFSET)
        if offset >= 0 and page_number:
            raise InvalidRequest("give offset or page, not both", {"field": "page"})
        if offset < 0:
            offset = (max(page_number, 1) - 1) * limit
        order = query_str(request, "order", "desc")
        if order not in ("asc", "desc"):
            raise InvalidRequest("order must be asc or desc", {"field": "order", "value": order})
        account_id = await self._account_id(user_id)
        try:
            mailbox, items = await self.ctx.store.summaries.page(
                account_id, name, limit=limit, offset=offset, newest_first=order == "desc"
            )
        except StoreNotFound:
            await self.ctx.store.accounts.get(account_id)  # 404 for the user, if it is that
            raise NotFound(f"no such mailbox: {name}", {"field": "mailbox"}) from None
        page = Page(offset // limit + 1, limit)
        # The page's JSON comes from PostgreSQL ready to write (store.summaries).
        body = raw_envelope(
            request,
            items,
            mailbox.message_count,
            page,
            {"offset": offset, "mailbox": mailbox.name, "unseen": mailbox.unseen_count},
        )
        return JsonResponse(body)

    async def _account_id(self, user_id: str) -> int:
        key = account_key(user_id)
        if isinstance(key, int):
            return key  # checked only if the mailbox is not found (one query saved)
        return int((await self.ctx.store.accounts.get(key)).id)

    async def _locate(self, request: Any, user_id: str) -> tuple[Any, Any]:
        account = await self.ctx.account(user_id)
        name = _mailbox_param(request)
        try:
            mailbox = await self.ctx.store.summaries.mailbox(account.id, name)
        except StoreNotFound:
            raise NotFound(f"no such mailbox: {name}", {"field": "mailbox"}) from None
        return account, mailbox

    @endpoint(app, "GET", MESSAGE_PATH, READ)
    async def get_message(self, request: Any, user_id: str, uid: int) -> Any:
        """One message as JSON, or with ``format=raw`` its stored bytes (message/rfc822)."""
        fmt = query_str(request, "format", "json")
        if fmt not in ("json", "raw"):
            raise InvalidRequest("format must be json or raw", {"field": "format", "value": fmt})
        account, mailbox = await self._locate(request, user_id)
        _check_uid(uid)
        try:
            content = await self.ctx.store.messages.get(account.id, mailbox.id, uid)
        except StoreNotFound:
            raise NotFound(f"no message {uid} in {mailbox.name}", {"uid": uid}) from None
        if fmt == "raw":
            return FileResponse(
                self.ctx.store.messages.open(content.info),
                content.info.size,
                "message/rfc822",
                {"Content-Disposition": f'attachment; filename="{uid}.eml"'},
            )
        header = await self.ctx.store.summaries.header(content.info)
        return message_json(content, mailbox.name, header)

    @endpoint(app, "DELETE", MESSAGE_PATH, WRITE)
    async def delete_message(self, request: Any, user_id: str, uid: int) -> dict[str, Any]:
        """Remove one message (expunged at once, whatever its flags)."""
        account, mailbox = await self._locate(request, user_id)
        _check_uid(uid)
        removed = await self.ctx.store.messages.expunge(
            account.id, mailbox.id, [uid], only_deleted=False
        )
        if not removed:
            raise NotFound(f"no message {uid} in {mailbox.name}", {"uid": uid})
        await self.ctx.audit(
            request, "message.delete", account.address, {"mailbox": mailbox.name, "uid": uid}
        )
        return {"deleted": True, "uid": uid, "mailbox": mailbox.name}


def _check_uid(uid: int) -> None:
    """404 for a UID that cannot exist (IMAP UIDs are 32-bit, from 1)."""
    if not 1 <= uid <= MAX_UID:
        raise NotFound(f"no message {uid}", {"uid": uid})


def _mailbox_param(request: Any) -> str:
    name = query_str(request, "mailbox", INBOX, max_length=512) or INBOX
    try:
        return normalize_mailbox(name)
    except InvalidName:
        raise InvalidRequest("invalid mailbox name", {"field": "mailbox"}) from None
