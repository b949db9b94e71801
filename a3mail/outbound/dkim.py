"""DKIM signing of outbound mail (dkimpy; rsa-sha256 and ed25519-sha256).

Keys live under ``<data_dir>/dkim/<domain>/<selector>.key`` (mode 0600): an RSA key in PEM,
or an ed25519 key as the base64 of its 32-byte seed (dkimpy's format).  ``a3mail dkim
generate`` writes one (:func:`generate_key`) and prints the DNS TXT record to publish at
``<selector>._domainkey.<domain>``.

Mail is signed at delivery time, by the queue runner: when the envelope sender's domain
has a key, the message is read and signed in a worker thread (dkimpy needs the whole
message to hash the body) and the ``DKIM-Signature`` header is prepended to the bytes
streamed to the remote server; the queued file itself is never changed.  With several
selectors for a domain, each signs (e.g. one RSA and one ed25519 signature).
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

from twisted.internet.threads import deferToThread

from a3mail.outbound.client import PrefixedFile

DKIM_DIR = "dkim"
ALGORITHMS = ("rsa", "ed25519")
SIGNED_HEADERS = (
    b"from",
    b"to",
    b"cc",
    b"subject",
    b"date",
    b"message-id",
    b"reply-to",
    b"in-reply-to",
    b"references",
    b"mime-version",
    b"content-type",
    b"content-transfer-encoding",
)


def key_dir(data_dir: Path, domain: str) -> Path:
    """Where a domain's keys are."""
    domain = domain.lower().rstrip(".")
    if not domain or "/" in domain or domain.startswith("."):
        raise ValueError(f"bad domain: {domain!r}")
    return data_dir / DKIM_DIR / domain


def generate_key(data_dir: Path, domain: str, selector: str, algorithm: str = "rsa") -> str:
    """Create ``<selector>.key`` for *domain* (0600, never overwriting one) and return the
    TXT record value to publish at ``<selector>._domainkey.<domain>``."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r}: expected rsa or ed25519")
    if not selector or not all(c.isalnum() or c in "-_" for c in selector):
        raise ValueError(f"bad selector: {selector!r}")
    directory = key_dir(data_dir, domain)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / f"{selector}.key"
    if algorithm == "rsa":
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        record = f"v=DKIM1; k=rsa; p={base64.b64encode(public).decode()}"
    else:
        import nacl.signing

        signing = nacl.signing.SigningKey.generate()
        private = base64.b64encode(bytes(signing))
        public = bytes(signing.verify_key)
        record = f"v=DKIM1; k=ed25519; p={base64.b64encode(public).decode()}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(private)
    return record


def load_keys(data_dir: Path, domain: str) -> list[tuple[str, bytes]]:
    """(selector, key) of every key of *domain*, by selector ([] when none)."""
    try:
        directory = key_dir(data_dir, domain)
    except ValueError:
        return []
    if not directory.is_dir():
        return []
    return [(p.stem, p.read_bytes()) for p in sorted(directory.glob("*.key"))]


def sign(message: bytes, domain: str, keys: list[tuple[str, bytes]]) -> bytes:
    """The DKIM-Signature header lines (CRLF-terminated) for *message*, one per key."""
    import dkim

    headers = b""
    for selector, key in keys:
        ed25519 = b"PRIVATE KEY" not in key
        signature = dkim.sign(
            message,
            selector.encode(),
            domain.encode(),
            key.strip() if ed25519 else key,
            include_headers=list(SIGNED_HEADERS),
            signature_algorithm=b"ed25519-sha256" if ed25519 else b"rsa-sha256",
            linesep=b"\r\n",
        )
        headers += signature
    return headers


class DKIMSigner:
    """Signs queue entries whose envelope sender's domain has keys (see the module doc)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    async def wrap(self, entry: Any, message: Any, size: int) -> tuple[Any, int]:
        """The file to send (signature + *message*) and its size; *message* unchanged
        (already positioned) when the domain has no key or signing fails."""
        domain = entry.sender.rpartition("@")[2].lower()
        if not domain:
            return message, size

        def work() -> bytes:
            keys = load_keys(self.data_dir, domain)
            if not keys:
                return b""
            start = message.tell()
            try:
                return sign(message.read(), domain, keys)
            finally:
                message.seek(start)

        try:
            header = await deferToThread(work)
        except Exception:
            return message, size
        if not header:
            return message, size
        return PrefixedFile(header, message), size + len(header)
