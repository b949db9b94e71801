"""API key authentication (``Authorization: Bearer <key>``) and permissions.

Either token of a key authenticates it: the ``mk_live_`` API key or the ``sk_live_``
secret.  Permissions form a ladder: ``admin`` implies ``write``, which implies ``read``
(GET routes need read, changes need write, key management and server reload need admin).
"""

from __future__ import annotations

from typing import Any

import attrs

from a3mail.auth.apikeys import looks_like_token, token_digest
from a3mail.http.errors import Forbidden, Unauthorized
from a3mail.store.records import ApiKey

READ = "read"
WRITE = "write"
ADMIN = "admin"
PERMISSIONS = (READ, WRITE, ADMIN)
_RANK = {READ: 1, WRITE: 2, ADMIN: 3}


def grants(held: tuple[str, ...] | list[str], needed: str) -> bool:
    """True if permissions *held* include *needed* (directly or by a higher one)."""
    return max((_RANK.get(p, 0) for p in held), default=0) >= _RANK[needed]


@attrs.frozen
class Principal:
    """Who is calling: an API key, with its effective permissions."""

    key: ApiKey

    @property
    def key_id(self) -> str:
        """The public id of the key."""
        return self.key.key_id

    @property
    def actor(self) -> str:
        """How the audit log names the caller."""
        owner = self.key.account_address
        return f"{self.key.key_id} ({owner})" if owner else self.key.key_id

    def allows(self, needed: str) -> bool:
        """True if this key may do what needs *needed*."""
        return grants(self.key.permissions, needed)

    def require(self, needed: str) -> None:
        """403 unless this key has *needed*."""
        if not self.allows(needed):
            raise Forbidden(
                f"this API key lacks the {needed} permission",
                {"required": needed, "granted": list(self.key.permissions)},
            )


def bearer_token(request: Any) -> str | None:
    """The bearer token of the request, None without an Authorization header."""
    header = request.getHeader(b"authorization")
    if header is None:
        return None
    text = header.decode("latin-1") if isinstance(header, bytes) else str(header)
    scheme, _, token = text.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("use Authorization: Bearer <API key>")
    return token.strip()


class Authenticator:
    """Turns a bearer token into a :class:`Principal` (or 401)."""

    def __init__(self, store: Any) -> None:
        self.store = store

    async def authenticate(self, token: str) -> Principal:
        """The principal of a live key; 401 for unknown, expired or revoked keys."""
        if not looks_like_token(token):
            raise Unauthorized("invalid API key")
        key = await self.store.keys.authenticate(token_digest(token))
        if key is None:
            raise Unauthorized("invalid, expired or revoked API key")
        return Principal(key)
