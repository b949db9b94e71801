"""The trace header fields a3mail prepends: Return-Path and Received (RFC 5321 4.4).

Every line ends in CRLF; nothing the client sent can add a line or a field: client
strings (the HELO name, addresses) lose control characters and are length-capped.
"""

from __future__ import annotations

import email.utils
import re
from datetime import UTC, datetime

_UNSAFE = re.compile(r"[\x00-\x20\x7f()\\;<>\"]")
_MAX_HELO = 255


def clean(text: str, limit: int = _MAX_HELO) -> str:
    """*text* without controls, spaces or comment/angle syntax, at most *limit* chars."""
    return _UNSAFE.sub("?", text)[:limit] or "?"


def return_path(sender: str) -> bytes:
    """``Return-Path: <sender>`` (``<>`` for the null sender)."""
    return f"Return-Path: <{clean(sender, 320) if sender else ''}>\r\n".encode()


def protocol_name(*, esmtp: bool, tls: bool, authenticated: bool, utf8: bool) -> str:
    """The ``with`` keyword of RFC 3848 / RFC 6531 (ESMTP, ESMTPS, ESMTPSA, UTF8SMTPS...)."""
    if utf8:
        return "UTF8SMTP" + ("S" if tls else "") + ("A" if authenticated else "")
    if not esmtp:
        return "SMTP"
    return "ESMTP" + ("S" if tls else "") + ("A" if authenticated else "")


def received(
    *,
    helo: str,
    client_ip: str,
    hostname: str,
    protocol: str,
    queue_id: str,
    recipient: str | None,
    when: float,
) -> bytes:
    """An RFC 5322 Received field, folded, CRLF line ends.

    ``for <recipient>`` only names a single recipient (never leak the others).
    """
    date = email.utils.format_datetime(datetime.fromtimestamp(when, UTC))
    lines = [
        f"Received: from {clean(helo)} ([{clean(client_ip, 64)}])",
        f"\tby {hostname} (a3mail) with {protocol} id {queue_id}",
    ]
    if recipient is not None:
        lines.append(f"\tfor <{clean(recipient, 320)}>;")
    else:
        lines[-1] += ";"
    lines.append(f"\t{date}")
    return ("\r\n".join(lines) + "\r\n").encode()
