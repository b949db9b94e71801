"""Who is calling, and ``POST /api/login``, ``POST /api/logout``, ``GET /api/session``.

The root admin token (``freemail.admin_token``) is accepted as ``Authorization: Bearer``,
``X-Admin-Token`` or ``?admin_token=`` and compared in constant time; otherwise the
session token is read from the cookie (or from ``Authorization: Bearer``, for scripts).
Logins: the configured admin (strict admin), ``guest`` when enabled, users, and mailboxes
whose ``can_login`` is on (password: their own, or the address itself until one is set).
"""

from __future__ import annotations

import hmac
from typing import Any

from a3mail.auth.guard import LoginGuard
from a3mail.http.freemail.common import (
    ADMIN,
    GUEST,
    MAILBOX,
    ROOT_NAME,
    USER,
    FreemailError,
    Principal,
    Reply,
    json_object,
)
from a3mail.http.freemail.context import FreemailContext
from a3mail.http.freemail.sessions import SessionSigner
from a3mail.http.request import client_ip

ADMIN_LIMIT = 9999
MAX_CREDENTIAL = 1024


def _same(given: str, expected: str) -> bool:
    """Constant-time equality of two strings (False when *expected* is empty)."""
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def _header(request: Any, name: bytes) -> str:
    value = request.getHeader(name)
    if value is None:
        return ""
    return (value.decode("latin-1") if isinstance(value, bytes) else str(value)).strip()


class Sessions:
    """Authentication of requests and the session endpoints."""

    def __init__(self, ctx: FreemailContext, signer: SessionSigner, guard: LoginGuard) -> None:
        self.ctx = ctx
        self.signer = signer
        self.guard = guard

    # -- who is calling ---------------------------------------------------------------------

    async def principal(self, request: Any) -> Principal | None:
        """The caller of *request*, or None if it is not authenticated."""
        settings = self.ctx.settings
        bearer = _header(request, b"authorization")
        bearer = bearer[7:].strip() if bearer[:7].lower() == "bearer " else ""
        query = request.args.get(b"admin_token", [b""])[-1].decode("utf-8", "replace")
        for candidate in (bearer, _header(request, b"x-admin-token"), query):
            if candidate and _same(candidate, settings.admin_token):
                return Principal(ADMIN, ROOT_NAME, strict=True, can_send=True)
        cookie = request.getCookie(settings.cookie_name.encode())
        token = cookie.decode("ascii", "replace") if cookie else bearer
        claims = self.signer.verify(token, self.ctx.clock.seconds()) if token else None
        return None if claims is None else await self._from_claims(claims)

    async def _from_claims(self, claims: dict[str, Any]) -> Principal | None:
        kind = claims.get("r")
        settings = self.ctx.settings
        if kind == "admin":
            name = str(claims.get("u", ""))
            if name != settings.admin_name or not settings.admin_password:
                return None
            return Principal(ADMIN, name, strict=True, can_send=True)
        if kind == "guest":
            return Principal(GUEST, "guest") if settings.guest_enabled else None
        if kind == "user" and isinstance(claims.get("i"), int):
            user = await self.ctx.store.freemail.user(claims["i"])
            if user is None:
                return None
            return Principal(
                ADMIN if user.role == "admin" else USER,
                user.username,
                user_id=user.id,
                can_send=user.can_send,
                mailbox_limit=user.mailbox_limit,
            )
        if kind == "mailbox" and isinstance(claims.get("m"), int):
            box = await self.ctx.store.freemail.mailbox(account_id=claims["m"])
            if box is None or not box.can_login:
                return None
            return Principal(MAILBOX, box.address, account_id=box.account_id)
        return None

    # -- endpoints --------------------------------------------------------------------------

    async def login(self, request: Any) -> Reply:
        """Check the credentials; set the session cookie."""
        body = json_object(request)
        username, password = body.get("username"), body.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            raise FreemailError(400, "username and password are required")
        username = username.strip()
        if not username or not password or len(username) + len(password) > MAX_CREDENTIAL:
            raise FreemailError(400, "username and password are required")
        found = await self._check(username, password)
        if found is None:
            ip = client_ip(request, ())
            await self.guard.failed("freemail", username, ip, "bad credentials")
            raise FreemailError(401, "invalid username or password")
        claims, principal = found
        token = self.signer.issue(claims, self.ctx.clock.seconds())
        body = {
            "success": True,
            "role": principal.role,
            "can_send": int(principal.can_send),
            "mailbox_limit": ADMIN_LIMIT if principal.sees_all else principal.mailbox_limit,
        }
        return Reply(body, cookies=(self._cookie(token, self.signer.lifetime),))

    async def _check(self, username: str, password: str) -> tuple[dict[str, Any], Principal] | None:
        settings = self.ctx.settings
        if settings.admin_password and username == settings.admin_name:
            if _same(password, settings.admin_password):
                return {"r": "admin", "u": username}, Principal(
                    ADMIN, username, strict=True, can_send=True
                )
            return None
        if username == "guest" and settings.guest_enabled:
            if not settings.guest_password or _same(password, settings.guest_password):
                return {"r": "guest"}, Principal(GUEST, "guest")
            return None
        user = await self.ctx.store.freemail.user_by_name(username)
        if user is not None:
            if not await self.ctx.verify_password(user.password_hash, password):
                return None
            principal = Principal(
                ADMIN if user.role == "admin" else USER,
                user.username,
                user_id=user.id,
                can_send=user.can_send,
                mailbox_limit=user.mailbox_limit,
            )
            return {"r": "user", "i": user.id}, principal
        if "@" in username:
            box = await self.ctx.store.freemail.mailbox(address=username)
            if box is None or not box.can_login:
                await self.ctx.verify_password(None, password)  # as long as a real check
                return None
            if box.password_hash is None:
                ok = _same(password, box.address)
            else:
                ok = await self.ctx.verify_password(box.password_hash, password)
            if ok:
                principal = Principal(MAILBOX, box.address, account_id=box.account_id)
                return {"r": "mailbox", "m": box.account_id}, principal
            return None
        await self.ctx.verify_password(None, password)  # as long as a real check
        return None

    async def logout(self, request: Any) -> Reply:
        """Clear the session cookie."""
        return Reply({"success": True}, cookies=(self._cookie("", 0),))

    async def session(self, request: Any, caller: Principal | None) -> Reply:
        """Who the session belongs to; 401 ``{"authenticated": false}`` without one."""
        if caller is None:
            return Reply({"authenticated": False, "error": "not logged in"}, status=401)
        body: dict[str, Any] = {
            "authenticated": True,
            "role": caller.role,
            "username": caller.username,
            "strictAdmin": caller.strict,
            "can_send": int(caller.can_send or caller.strict),
        }
        if caller.role == MAILBOX:
            body["mailboxAddress"] = caller.username
        return Reply(body)

    def _cookie(self, value: str, max_age: float) -> str:
        settings = self.ctx.settings
        parts = [
            f"{settings.cookie_name}={value}",
            "Path=/",
            "HttpOnly",
            f"SameSite={settings.cookie_samesite}",
            f"Max-Age={int(max_age)}",
        ]
        if settings.cookie_secure:
            parts.append("Secure")
        return "; ".join(parts)
