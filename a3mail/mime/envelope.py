"""The IMAP ENVELOPE (RFC 3501 7.4.2) of a header block, plus decoded header values."""

from __future__ import annotations

import datetime
import email.utils
import re
from typing import Any

from .addresses import parse_addresses
from .headers import Headers

_MSG_ID = re.compile(r"<[^<>\s]*>")


def build_envelope(headers: Headers) -> dict[str, Any]:
    """The ENVELOPE fields as raw (unfolded, not decoded) header values.

    String fields are None when the header is absent; address fields are
    lists (empty when absent). ``sender`` and ``reply_to`` default to ``from``.
    """
    from_ = parse_addresses(headers.get("from"))
    sender = parse_addresses(headers.get("sender")) or [dict(a) for a in from_]
    reply_to = parse_addresses(headers.get("reply-to")) or [dict(a) for a in from_]
    return {
        "date": headers.get("date"),
        "subject": headers.get("subject"),
        "from": from_,
        "sender": sender,
        "reply_to": reply_to,
        "to": parse_addresses(headers.get("to")),
        "cc": parse_addresses(headers.get("cc")),
        "bcc": parse_addresses(headers.get("bcc")),
        "in_reply_to": headers.get("in-reply-to"),
        "message_id": headers.get("message-id"),
    }


def parse_date(value: str | None) -> datetime.datetime | None:
    """A timezone-aware datetime from an RFC 5322 date, or None if unparsable.

    A date without a usable zone (``-0000`` or none) is taken as UTC.
    """
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value.strip())
    except Exception:
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed


def message_id(value: str | None) -> str | None:
    """The first ``<...>`` in a Message-ID value, else the stripped value, else None."""
    if not value:
        return None
    m = _MSG_ID.search(value)
    if m is not None and len(m.group(0)) > 2:
        return m.group(0)
    return value.strip() or None
