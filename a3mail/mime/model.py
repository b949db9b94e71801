"""The result of parsing a message once, and its JSON form cached in the store."""

from __future__ import annotations

import datetime
from typing import Any

import attrs

#: Bumped whenever the parser's output changes, so cached JSON can be redone.
PARSER_VERSION = 2

JSON = dict[str, Any]


@attrs.frozen
class ParsedMessage:
    """Everything the protocol fronts and APIs need from one stored message.

    Byte offsets in ``body`` are absolute offsets into the stored message.
    """

    #: Length of the stored message in octets.
    size: int
    #: Octets of the top-level header, including the blank line after it.
    header_size: int
    #: IMAP ENVELOPE fields as raw header values (see ``envelope.build_envelope``).
    envelope: JSON
    #: The BODYSTRUCTURE tree with byte offsets (see ``structure.parse_tree``).
    body: JSON
    #: RFC 2047 decoded, unfolded Subject ("" when absent).
    subject: str
    #: Decoded From addresses: ``[{"name": str, "address": str}]``.
    from_: list[dict[str, str]]
    #: Decoded To addresses.
    to: list[dict[str, str]]
    #: Decoded Cc addresses.
    cc: list[dict[str, str]]
    #: Decoded Reply-To addresses (empty when the header is absent).
    reply_to: list[dict[str, str]]
    #: The Date header, timezone-aware; None if absent or unparsable.
    date: datetime.datetime | None
    #: The Message-ID (with angle brackets) or None.
    message_id: str | None
    #: Inline text/plain parts joined with "\n" (else the HTML as text).
    text: str
    #: The first inline text/html part.
    html: str
    #: The first ~200 characters of ``text``, white space collapsed.
    preview: str
    #: ``[{"section", "filename", "content_type", "size", "content_id", "disposition"}]``.
    attachments: list[JSON]
    #: The verification code found in the message, if any.
    verification_code: str | None
    #: The top-level header fields as ``[lower-cased name, RFC 2047 decoded value]`` (for
    #: SEARCH HEADER/CC/BCC/TEXT), capped by ``parse.MAX_SEARCH_HEADERS``; [] before version 2.
    headers: list[list[str]] = attrs.field(factory=list)

    def to_json(self) -> JSON:
        """A JSON-serialisable dict (``from_`` is stored as ``"from"``, date as ISO 8601)."""
        return {
            "v": PARSER_VERSION,
            "size": self.size,
            "header_size": self.header_size,
            "envelope": self.envelope,
            "body": self.body,
            "subject": self.subject,
            "from": self.from_,
            "to": self.to,
            "cc": self.cc,
            "reply_to": self.reply_to,
            "date": self.date.isoformat() if self.date is not None else None,
            "message_id": self.message_id,
            "text": self.text,
            "html": self.html,
            "preview": self.preview,
            "attachments": self.attachments,
            "verification_code": self.verification_code,
            "headers": self.headers,
        }

    @classmethod
    def from_json(cls, data: JSON) -> ParsedMessage:
        """Rebuild a ParsedMessage from :meth:`to_json` output."""
        date = data.get("date")
        return cls(
            size=data["size"],
            header_size=data["header_size"],
            envelope=data["envelope"],
            body=data["body"],
            subject=data.get("subject", ""),
            from_=data.get("from", []),
            to=data.get("to", []),
            cc=data.get("cc", []),
            reply_to=data.get("reply_to", []),
            date=datetime.datetime.fromisoformat(date) if date else None,
            message_id=data.get("message_id"),
            text=data.get("text", ""),
            html=data.get("html", ""),
            preview=data.get("preview", ""),
            attachments=data.get("attachments", []),
            verification_code=data.get("verification_code"),
            headers=data.get("headers", []),
        )
