"""The temp-mail API's handlers and the surface mounted on the ``http`` listener.

Ids: ``emailId`` is the account's number and ``messageId`` the message's UID in INBOX;
``attachmentId`` is the part's IMAP section.  Numbers are guessable, so every handler
first checks that the calling key created the address (:meth:`TempMail.owned`): another
key's ids answer 404 exactly like ids that do not exist.
"""

from __future__ import annotations

import re
import secrets
import string
from datetime import UTC, datetime, timedelta
from typing import Any

from a3mail.auth.apikeys import token_digest
from a3mail.http.live_limits import LiveLimits
from a3mail.http.ratelimit import RateLimiter
from a3mail.http.surfaces import Surface
from a3mail.http.tempmail.resource import (
    MAILBOX_TOKEN_PREFIX,
    BytesResponse,
    Caller,
    TempmailError,
    TempmailResource,
)
from a3mail.http.tempmail.views import mailbox_json, message_json, message_summary_json
from a3mail.http.validation import parse_json
from a3mail.mime.parts import find_part, part_bytes
from a3mail.store.names import INBOX
from a3mail.store.records import AlreadyExists, InvalidName, NotFound
from a3mail.store.tempmail import is_seen

PREFIXES = ("/api/config", "/api/emails", "/v1")
#: expiryTime values (ms) a client may ask for; 0 = permanent, stored as 100 years.
EXPIRY_CHOICES = (3_600_000, 86_400_000, 604_800_000, 0)
DEFAULT_EXPIRY = 3_600_000
PERMANENT = timedelta(days=36525)
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_CURSOR = 10_000_000
MAX_ID = 2**63 - 1
MAX_UID = 4294967295
RANDOM_NAME_LENGTH = 10
_NAME = re.compile(r"[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?")
_ALPHABET = string.ascii_lowercase + string.digits


def random_name() -> str:
    """A random local part: 10 lowercase letters and digits, starting with a letter."""
    first = secrets.choice(string.ascii_lowercase)
    return first + "".join(secrets.choice(_ALPHABET) for _ in range(RANDOM_NAME_LENGTH - 1))


def valid_name(name: str) -> bool:
    """True for a local part the API accepts (letters, digits, ``.``, ``_``, ``-``)."""
    return bool(_NAME.fullmatch(name)) and ".." not in name


def _number(text: str, maximum: int) -> int:
    """A path id as a number, or 404 (an id that cannot exist)."""
    if text.isascii() and text.isdigit() and len(text) <= 20:
        value = int(text)
        if 0 < value <= maximum:
            return value
    raise TempmailError(404, "not found")


def _page_params(request: Any) -> tuple[int, int]:
    """``cursor`` (a numeric offset, default 0) and ``limit`` (default 20, at most 100)."""

    def one(name: str) -> str:
        values = request.args.get(name.encode(), [])
        return values[-1].decode("latin-1").strip() if values else ""

    cursor_text, limit_text = one("cursor"), one("limit")
    cursor, limit = 0, DEFAULT_LIMIT
    if cursor_text:
        if not cursor_text.isdigit() or len(cursor_text) > 9 or int(cursor_text) > MAX_CURSOR:
            raise TempmailError(400, "invalid cursor")
        cursor = int(cursor_text)
    if limit_text:
        if not limit_text.isdigit() or len(limit_text) > 9 or int(limit_text) < 1:
            raise TempmailError(400, "invalid limit")
        limit = min(int(limit_text), MAX_LIMIT)
    return cursor, limit


def _next_cursor(cursor: int, limit: int, fetched: int) -> str | None:
    """The cursor of the next page ("20"), or None when this page is the last."""
    return str(cursor + limit) if fetched > limit else None


class TempmailApi:
    """The handlers; each gets the request, the :class:`Caller` and the path arguments."""

    def __init__(self, store: Any, clock: Any) -> None:
        self.store = store
        self.clock = clock

    def now(self) -> datetime:
        """The current time by the injected clock."""
        return datetime.fromtimestamp(self.clock.seconds(), UTC)

    async def _mailbox(self, caller: Caller, email_id: str) -> Any:
        account_id = _number(email_id, MAX_ID)
        if caller.only_account is not None and caller.only_account != account_id:
            raise TempmailError(404, "mailbox not found")
        try:
            return await self.store.tempmail.owned(caller.key_id, account_id)
        except NotFound:
            raise TempmailError(404, "mailbox not found") from None

    async def _message(self, caller: Caller, email_id: str, message_id: str) -> Any:
        account = await self._mailbox(caller, email_id)
        uid = _number(message_id, MAX_UID)
        try:
            inbox = await self.store.summaries.mailbox(account.id, INBOX)
            content = await self.store.messages.get(account.id, inbox.id, uid)
        except NotFound:
            raise TempmailError(404, "message not found") from None
        return account, inbox, content

    # -- endpoints --------------------------------------------------------------------------

    async def config(self, request: Any, caller: Caller) -> dict[str, Any]:
        """``{"domains": [...]}``: the domains offering temp addresses."""
        return {"domains": await self.store.tempmail.domains()}

    async def generate(self, request: Any, caller: Caller) -> dict[str, Any]:
        """Create a temp address; returns it with its own token (shown only here)."""
        if caller.only_account is not None:
            raise TempmailError(401, "a mailbox token cannot create mailboxes")
        try:
            body = parse_json(request.content.read())
        except Exception:
            raise TempmailError(400, "invalid request: the body is not JSON") from None
        if not isinstance(body, dict):
            raise TempmailError(400, "invalid request: the body must be a JSON object")
        expiry = body.get("expiryTime", DEFAULT_EXPIRY)
        if isinstance(expiry, bool) or not isinstance(expiry, int) or expiry not in EXPIRY_CHOICES:
            raise TempmailError(400, "invalid expiryTime: use 3600000, 86400000, 604800000 or 0")
        domain = body.get("domain")
        if domain is None or domain == "":
            domains = await self.store.tempmail.domains()
            if not domains:
                raise TempmailError(400, "no domain is enabled for temp mail")
            domain = domains[0]
        if not isinstance(domain, str) or len(domain) > 253:
            raise TempmailError(400, "invalid domain")
        domain = domain.strip().lower()
        if not await self.store.tempmail.is_domain(domain):
            raise TempmailError(400, f"unknown domain: {domain[:100]}")
        name = body.get("name")
        if name is None or name == "":
            name = random_name()
        if not isinstance(name, str) or not valid_name(name.strip().lower()):
            raise TempmailError(400, "invalid name: use letters, digits, '.', '_' or '-'")
        name = name.strip().lower()
        lifetime = PERMANENT if expiry == 0 else timedelta(milliseconds=expiry)
        token = MAILBOX_TOKEN_PREFIX + secrets.token_urlsafe(32)
        try:
            account = await self.store.tempmail.create(
                f"{name}@{domain}",
                key_id=caller.key_id,
                token_hash=token_digest(token),
                expires_at=self.now() + lifetime,
            )
        except AlreadyExists:
            raise TempmailError(400, f"{name}@{domain} is already taken") from None
        except (InvalidName, NotFound):
            raise TempmailError(400, "invalid name or domain") from None
        return {**mailbox_json(account), "token": token}

    async def list_mailboxes(self, request: Any, caller: Caller) -> dict[str, Any]:
        """The caller's temp addresses, newest first, a page at a time."""
        cursor, limit = _page_params(request)
        if caller.only_account is not None:
            account = await self.store.tempmail.owned(caller.key_id, caller.only_account)
            accounts = [account] if cursor == 0 else []
        else:
            accounts = await self.store.tempmail.page(caller.key_id, offset=cursor, limit=limit + 1)
        return {
            "emails": [mailbox_json(a) for a in accounts[:limit]],
            "nextCursor": _next_cursor(cursor, limit, len(accounts)),
        }

    async def list_messages(self, request: Any, caller: Caller, email_id: str) -> dict[str, Any]:
        """The messages of one temp address, newest first, a page at a time."""
        account = await self._mailbox(caller, email_id)
        cursor, limit = _page_params(request)
        infos = await self.store.tempmail.inbox_page(account.id, offset=cursor, limit=limit + 1)
        return {
            "messages": [message_summary_json(i, sender) for i, sender in infos[:limit]],
            "nextCursor": _next_cursor(cursor, limit, len(infos)),
        }

    async def get_message(
        self, request: Any, caller: Caller, email_id: str, message_id: str
    ) -> dict[str, Any]:
        """One message in full; it is marked read (``\\Seen``)."""
        account, inbox, content = await self._message(caller, email_id, message_id)
        if not is_seen(content.info):
            await self.store.messages.store_flags(
                account.id, inbox.id, [content.info.uid], "+", ["\\Seen"]
            )
        return message_json(account, content, read=True)

    async def get_raw(
        self, request: Any, caller: Caller, email_id: str, message_id: str
    ) -> BytesResponse:
        """The stored bytes of one message (message/rfc822)."""
        _account, _inbox, content = await self._message(caller, email_id, message_id)
        data = await self.store.messages.read(content.info)
        return BytesResponse(data, "message/rfc822", f"{content.info.uid}.eml")

    async def get_attachment(
        self,
        request: Any,
        caller: Caller,
        email_id: str,
        message_id: str,
        attachment_id: str,
    ) -> BytesResponse:
        """One attachment, decoded, with its content type and file name."""
        _account, _inbox, content = await self._message(caller, email_id, message_id)
        listed = {
            str(a.get("section")): a
            for a in (content.parsed or {}).get("attachments") or []
            if isinstance(a, dict)
        }
        meta = listed.get(attachment_id)
        node = find_part((content.parsed or {}).get("body"), attachment_id) if meta else None
        if meta is None or node is None:
            raise TempmailError(404, "attachment not found")
        data = await self.store.messages.read(content.info)
        content_type = str(meta.get("content_type") or "application/octet-stream")
        return BytesResponse(
            part_bytes(data, node), content_type, str(meta.get("filename") or "attachment")
        )

    async def delete_mailbox(self, request: Any, caller: Caller, email_id: str) -> dict[str, Any]:
        """Remove a temp address with all its mail."""
        account = await self._mailbox(caller, email_id)
        try:
            await self.store.accounts.delete(account.id)
        except NotFound:
            raise TempmailError(404, "mailbox not found") from None
        return {"success": True, "emailId": str(account.id)}

    async def delete_message(
        self, request: Any, caller: Caller, email_id: str, message_id: str
    ) -> dict[str, Any]:
        """Remove one message."""
        account, inbox, content = await self._message(caller, email_id, message_id)
        removed = await self.store.messages.expunge(
            account.id, inbox.id, [content.info.uid], only_deleted=False
        )
        if not removed:
            raise TempmailError(404, "message not found")
        return {"success": True, "messageId": str(content.info.uid)}


def build_surface(runtime: Any, clock: Any) -> Surface:
    """The temp-mail surface of the ``http`` listener (rate limits as the admin API's)."""
    limiter = RateLimiter(
        runtime.store.ratelimits, clock, window=runtime.config.http.rate_limit_window
    )
    resource = TempmailResource(
        TempmailApi(runtime.store, clock),
        runtime.store,
        limiter=limiter,
        limits=LiveLimits(lambda: runtime.config, getattr(runtime.store, "security", None)),
    )
    return Surface("tempmail", PREFIXES, resource, start=limiter.start, stop=limiter.stop)
