"""RFC 3464 delivery status notifications: bounces (``failed``) and delay warnings.

:func:`build_dsn` returns the bytes of one ``multipart/report; report-type=delivery-status``
message: a human-readable text part, a ``message/delivery-status`` part (per-message fields,
then per recipient Final-Recipient, Action, Status, Diagnostic-Code and Remote-MTA) and the
original message's headers as ``text/rfc822-headers``.  A DSN is sent with the null
envelope sender, so it is never bounced itself.
"""

from __future__ import annotations

import email.utils
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import attrs

MAX_HEADERS = 64 * 1024


@attrs.frozen
class DSNRecipient:
    """One recipient's line of the report."""

    recipient: str
    action: str  # "failed" or "delayed"
    code: int
    reply: str
    remote_mta: str = ""

    @property
    def status(self) -> str:
        """The enhanced status code: from the reply if it starts with one, else derived."""
        first = self.reply.split(None, 1)[0] if self.reply else ""
        parts = first.split(".")
        if len(parts) == 3 and all(p.isdigit() for p in parts) and first[0] in "245":
            return first
        return "5.0.0" if 500 <= self.code < 600 else "4.0.0"


def original_headers(message_start: bytes) -> bytes:
    """The header block of a message (up to the first empty line), at most 64 KiB."""
    data = message_start[:MAX_HEADERS]
    end = data.find(b"\r\n\r\n")
    return data if end < 0 else data[: end + 2]


def _clean(text: str) -> str:
    return " ".join(text.replace("\r", " ").replace("\n", " ").split())


def build_dsn(
    *,
    reporting_mta: str,
    sender: str,
    recipients: Sequence[DSNRecipient],
    headers: bytes,
    arrival: datetime | None = None,
    queue_id: str = "",
) -> bytes:
    """The DSN for *sender* about *recipients* (all ``failed`` or all ``delayed``)."""
    delayed = all(r.action == "delayed" for r in recipients)
    boundary = f"=_a3mail_{uuid.uuid4().hex}"
    now = email.utils.format_datetime(datetime.now(UTC))
    subject = (
        "Delivery delayed: message not yet delivered"
        if delayed
        else "Undelivered Mail Returned to Sender"
    )
    lines = [
        f"From: Mail Delivery System <MAILER-DAEMON@{reporting_mta}>",
        f"To: <{sender}>",
        f"Subject: {subject}",
        f"Date: {now}",
        f"Message-ID: <{uuid.uuid4().hex}@{reporting_mta}>",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
        "",
        "This is a MIME-encapsulated delivery status notification.",
        "",
        f"--{boundary}",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Description: Notification",
        "",
        f"This is the mail system at host {reporting_mta}.",
        "",
    ]
    if delayed:
        lines.append("Your message could not be delivered yet; delivery will be retried.")
        lines.append("You do not need to resend it.")
    else:
        lines.append("Your message could not be delivered to one or more recipients.")
    lines.append("")
    for r in recipients:
        lines.append(f"<{r.recipient}>: {r.code} {_clean(r.reply)}")
    lines += [
        "",
        f"--{boundary}",
        "Content-Type: message/delivery-status",
        "Content-Description: Delivery report",
        "",
        f"Reporting-MTA: dns; {reporting_mta}",
    ]
    if queue_id:
        lines.append(f"X-A3mail-Queue-ID: {queue_id}")
    if arrival is not None:
        lines.append(f"Arrival-Date: {email.utils.format_datetime(arrival)}")
    for r in recipients:
        lines += ["", f"Final-Recipient: rfc822; {r.recipient}", f"Action: {r.action}"]
        lines.append(f"Status: {r.status}")
        if r.remote_mta:
            lines.append(f"Remote-MTA: dns; {r.remote_mta}")
        if r.code > 0:
            lines.append(f"Diagnostic-Code: smtp; {r.code} {_clean(r.reply)}")
    lines += [
        "",
        f"--{boundary}",
        "Content-Type: text/rfc822-headers",
        "Content-Description: Undelivered message headers",
        "",
    ]
    head = "\r\n".join(lines).encode("utf-8") + b"\r\n"
    body = original_headers(headers)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    return head + body + f"\r\n--{boundary}--\r\n".encode()
