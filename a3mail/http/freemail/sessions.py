"""Session tokens of the freemail API: signed (HMAC-SHA256), expiring, in a cookie.

A token is ``base64url(payload JSON) "." base64url(HMAC-SHA256(secret, payload))``; the
payload names the principal and ``exp`` (POSIX seconds).  Tokens are stateless: logging
out clears the cookie; a user's role, limits and existence are re-read from the store on
every request, so deleting a user or turning a mailbox's login off ends its sessions.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path
from typing import Any

from a3mail.logs import get_logger

log = get_logger(__name__)

SECRET_FILE = "freemail-session.key"  # noqa: S105 - a file name, not a secret
MAX_TOKEN = 2048


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_secret(configured: str, data_dir: Path) -> bytes:
    """The signing key: the configured one, else ``<data_dir>/freemail-session.key``
    (created with 32 random bytes, mode 0600, the first time)."""
    if configured:
        return configured.encode("utf-8")
    path = data_dir / SECRET_FILE
    try:
        return bytes.fromhex(path.read_text("ascii").strip())
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it just now
        return bytes.fromhex(path.read_text("ascii").strip())
    with os.fdopen(fd, "w") as file:
        file.write(key.hex() + "\n")
        file.flush()
        os.fsync(file.fileno())
    log.info("generated the freemail session key in {path}", path=str(path))
    return key


class SessionSigner:
    """Issues and checks session tokens with one key."""

    def __init__(self, secret: bytes, lifetime: float) -> None:
        if not secret:
            raise ValueError("the session secret must not be empty")
        self.secret = secret
        self.lifetime = lifetime

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self.secret, payload, hashlib.sha256).digest()

    def issue(self, claims: dict[str, Any], now: float) -> str:
        """A token for *claims*, valid for the lifetime from *now*."""
        payload = json.dumps(
            {**claims, "exp": int(now + self.lifetime)}, separators=(",", ":")
        ).encode()
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def verify(self, token: str, now: float) -> dict[str, Any] | None:
        """The claims of a genuine, unexpired *token*, else None."""
        if not token or len(token) > MAX_TOKEN or token.count(".") != 1:
            return None
        encoded, _, signature = token.partition(".")
        try:
            payload, mac = _unb64(encoded), _unb64(signature)
        except (binascii.Error, ValueError):
            return None
        if not hmac.compare_digest(mac, self._mac(payload)):
            return None
        try:
            claims = json.loads(payload)
        except ValueError:
            return None
        if not isinstance(claims, dict) or not isinstance(claims.get("exp"), int):
            return None
        if claims["exp"] <= now:
            return None
        return claims
