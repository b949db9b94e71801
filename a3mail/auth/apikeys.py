"""API key tokens.

A key is a pair of random tokens shown once at creation: ``mk_live_...`` (the API key,
sent as ``Authorization: Bearer`` by SirrChat-style clients or as ``X-API-Key`` by temp-mail
clients) and ``sk_live_...`` (the secret, which A3Mailer-style clients send as the bearer
token).  Either one authenticates the key.  Only SHA-256 digests are stored: the tokens
carry 192 bits of randomness, so a fast digest is safe here (unlike passwords).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from a3mail.store import Store
    from a3mail.store.records import ApiKey

KEY_PREFIX = "mk_live_"
SECRET_PREFIX = "sk_live_"  # noqa: S105 - a token prefix, not a secret
KEY_ID_PREFIX = "key_"
_TOKEN_BYTES = 24
MAX_TOKEN_LENGTH = 200


@attrs.frozen
class NewKey:
    """Freshly generated tokens and what the store keeps of them."""

    key_id: str
    key: str = attrs.field(repr=False)
    secret: str = attrs.field(repr=False)

    @property
    def key_hash(self) -> bytes:
        """Digest of the API key token."""
        return token_digest(self.key)

    @property
    def secret_hash(self) -> bytes:
        """Digest of the secret token."""
        return token_digest(self.secret)

    @property
    def key_prefix(self) -> str:
        """The start of the key, safe to show in listings."""
        return self.key[: len(KEY_PREFIX) + 6]


def generate() -> NewKey:
    """A new key id and token pair."""
    return NewKey(
        key_id=KEY_ID_PREFIX + secrets.token_hex(8),
        key=KEY_PREFIX + secrets.token_urlsafe(_TOKEN_BYTES),
        secret=SECRET_PREFIX + secrets.token_urlsafe(_TOKEN_BYTES),
    )


def token_digest(token: str) -> bytes:
    """The SHA-256 digest under which a token is looked up."""
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


def looks_like_token(token: str) -> bool:
    """Cheap syntax check before any database work."""
    return (
        0 < len(token) <= MAX_TOKEN_LENGTH
        and token.startswith((KEY_PREFIX, SECRET_PREFIX))
        and token.isascii()
        and token.isprintable()
    )


async def issue(
    store: Store,
    *,
    account_id: int | None,
    name: str = "",
    permissions: Sequence[str] = ("read",),
    expires_at: datetime | None = None,
) -> tuple[NewKey, ApiKey]:
    """Generate a key and store its digests; returns the tokens (shown once) and the record."""
    new = generate()
    record = await store.keys.create(
        key_id=new.key_id,
        key_hash=new.key_hash,
        secret_hash=new.secret_hash,
        key_prefix=new.key_prefix,
        account_id=account_id,
        name=name,
        permissions=permissions,
        expires_at=expires_at,
    )
    return new, record
