"""What a guest sees: demo data generated in memory, never real mail.

Each read endpoint a guest may call has a function here with the handler's name; every
other endpoint answers a guest 403.  The data is fixed (three mailboxes on the first
offered domain, three messages) so a guest can try the read paths of a client.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Awaitable, Callable
from typing import Any

from a3mail.http.freemail.common import BytesReply, Principal, not_found, path_id
from a3mail.http.freemail.context import FreemailContext

_CREATED = "2024-01-01 00:00:00"
_MESSAGES = (
    (
        9001,
        "noreply@github.example",
        "Your GitHub launch code",
        "Your launch code is 482913.",
        "482913",
    ),
    (
        9002,
        "hello@shop.example",
        "Welcome to Shop",
        "Thanks for signing up! Order 2024-1105 ships soon.",
        None,
    ),
    (
        9003,
        "security@bank.example",
        "Verification code",
        "Use the code 7Q4KZP to verify your login.",
        "7Q4KZP",
    ),
)


class DemoData:
    """The guest's view of the read endpoints."""

    def __init__(self, ctx: FreemailContext) -> None:
        self.ctx = ctx

    async def _domain(self) -> str:
        domains = await self.ctx.domains()
        return domains[0] if domains else "demo.example"

    async def domains(self, request: Any, caller: Principal) -> list[str]:
        """The real domain names (not mail)."""
        return await self.ctx.domains()

    async def generate(self, request: Any, caller: Principal) -> dict[str, Any]:
        """An address that is never created."""
        local = "demo" + "".join(secrets.choice(string.digits) for _ in range(6))
        return {"email": f"{local}@{await self._domain()}", "expires": None}

    async def list_mailboxes(self, request: Any, caller: Principal) -> list[dict[str, Any]]:
        """Three demo mailboxes."""
        domain = await self._domain()
        return [
            {
                "id": 900 + n,
                "address": f"demo{n}@{domain}",
                "created_at": _CREATED,
                "is_pinned": int(n == 1),
                "password_is_default": 1,
                "can_login": 0,
                "forward_to": None,
                "is_favorite": 0,
                "expires_at": None,
            }
            for n in (1, 2, 3)
        ]

    async def quota(self, request: Any, caller: Principal) -> dict[str, Any]:
        """A demo quota."""
        return {"limit": 10, "used": 3, "remaining": 7}

    def _summary(self, item: tuple[Any, ...]) -> dict[str, Any]:
        number, sender, subject, text, code = item
        return {
            "id": number,
            "sender": sender,
            "subject": subject,
            "received_at": _CREATED,
            "is_read": 0,
            "preview": text[:120],
            "verification_code": code,
        }

    async def list_emails(self, request: Any, caller: Principal) -> list[dict[str, Any]]:
        """Three demo messages, whatever the mailbox."""
        return [self._summary(item) for item in _MESSAGES]

    async def batch(self, request: Any, caller: Principal) -> list[dict[str, Any]]:
        """The demo messages among ``ids``."""
        raw = request.args.get(b"ids", [b""])[-1].decode("ascii", "replace")
        wanted = {p.strip() for p in raw.split(",")}
        return [self._summary(item) for item in _MESSAGES if str(item[0]) in wanted]

    def _find(self, message_id: str) -> tuple[Any, ...]:
        number = path_id(message_id)
        for item in _MESSAGES:
            if item[0] == number:
                return item
        raise not_found("message not found")

    async def get_email(self, request: Any, caller: Principal, message_id: str) -> dict[str, Any]:
        """One demo message."""
        item = self._find(message_id)
        body = self._summary(item)
        return {
            **{k: v for k, v in body.items() if k != "preview"},
            "to_addrs": f"demo1@{await self._domain()}",
            "content": item[3],
            "html_content": f"<p>{item[3]}</p>",
            "download": f"/api/email/{item[0]}/download",
        }

    async def download(self, request: Any, caller: Principal, message_id: str) -> BytesReply:
        """One demo message as RFC 822 bytes."""
        number, sender, subject, text, _code = self._find(message_id)
        data = (
            f"From: {sender}\r\nTo: demo1@{await self._domain()}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{number}@demo.invalid>\r\n\r\n{text}\r\n"
        ).encode()
        return BytesReply(data, "message/rfc822", f"{number}.eml")

    async def list_sent(self, request: Any, caller: Principal) -> list[dict[str, Any]]:
        """No demo sent mail."""
        return []


def demo_handler(demo: DemoData, name: str) -> Callable[..., Awaitable[Any]] | None:
    """The guest's version of handler *name*, or None (403 for guests)."""
    found = getattr(demo, name, None)
    return found if callable(found) and not name.startswith("_") else None
