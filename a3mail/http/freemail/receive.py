"""``POST /receive``: a raw RFC 822 message uploaded by the strict admin (or the root
token), delivered exactly as the SMTP MX delivers: the same recipient checks
(:class:`~a3mail.smtp.policy.Policy`), the same DATA processing (line limits, hop count,
forged Authentication-Results dropped, trace headers), the same
:class:`~a3mail.smtp.delivery.Delivery` (local delivery with verification codes and
quota, alias forwards queued, events and counters).

Envelope: ``?to=`` (repeatable, or comma-separated; also the ``X-Rcpt-To`` header) and
``?from=`` (or ``X-Mail-From``); without ``to``, the message's To and Cc addresses.
"""

from __future__ import annotations

import email.parser
import email.utils
import secrets
from typing import Any

from a3mail.http.freemail.common import FreemailError, Principal, bad_request
from a3mail.http.freemail.context import FreemailContext, require_strict
from a3mail.smtp import headers
from a3mail.smtp.addresses import MailPath
from a3mail.smtp.data import DataReceiver
from a3mail.smtp.delivery import Delivery, DeliverySettings, ReceivedMessage, parse_json
from a3mail.smtp.policy import Policy, Recipient
from a3mail.smtp.reporting import Reporter
from a3mail.smtp.stats import SmtpStats

LISTENER = "freemail-receive"
MAX_RECIPIENTS = 100


def smtp_data(message: bytes) -> bytearray:
    """*message* as SMTP DATA: CRLF line ends, dot-stuffed, ended by ``.``."""
    text = message.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    if not text.endswith(b"\n"):
        text += b"\n"
    lines = [b"." + line if line.startswith(b".") else line for line in text.split(b"\n")[:-1]]
    return bytearray(b"\r\n".join(lines) + b"\r\n.\r\n")


def _header(request: Any, name: bytes) -> str:
    value = request.getHeader(name)
    return "" if value is None else str(value)


class ReceiveHandler:
    """Delivers uploaded messages through the SMTP delivery code."""

    def __init__(self, ctx: FreemailContext, stats: SmtpStats | None = None) -> None:
        self.ctx = ctx
        config = ctx.config
        self.policy = Policy(ctx.store, config.smtp.over_quota_reply)
        self.reporter = Reporter(ctx.store, stats or SmtpStats(), LISTENER, clock=ctx.clock)
        settings = DeliverySettings(
            hostname=config.hostname,
            dmarc_failure=config.smtp.dmarc_failure,
            sent_copy=False,
        )
        self.delivery = Delivery(ctx.store, settings, self.policy, self.reporter, None)

    def _envelope(self, request: Any, message: bytes) -> tuple[str, list[str]]:
        to: list[str] = []
        for value in request.args.get(b"to", []):
            to += value.decode("utf-8", "replace").split(",")
        to += _header(request, b"x-rcpt-to").split(",")
        sender = (request.args.get(b"from", [b""])[-1].decode("utf-8", "replace")).strip()
        sender = sender or _header(request, b"x-mail-from").strip()
        parsed = email.parser.BytesHeaderParser().parsebytes(message)
        if not [t for t in to if t.strip()]:
            pairs = email.utils.getaddresses(
                [str(v) for k in ("to", "cc") for v in parsed.get_all(k, [])]
            )
            to = [a for _, a in pairs]
        if not sender:
            found = email.utils.getaddresses([str(v) for v in parsed.get_all("from", [])])
            sender = found[0][1] if found else ""
        recipients = list(dict.fromkeys(t.strip().lower() for t in to if "@" in t))
        if not recipients:
            raise bad_request("no recipient: give ?to=address")
        if len(recipients) > MAX_RECIPIENTS:
            raise bad_request(f"at most {MAX_RECIPIENTS} recipients")
        return sender, recipients

    async def receive(self, request: Any, caller: Principal) -> dict[str, Any]:
        """Deliver the uploaded message; 200 once it is stored (and queued)."""
        require_strict(caller)
        config = self.ctx.config
        message = request.content.read()
        if not message.strip():
            raise bad_request("the body must be an RFC 822 message")
        if len(message) > config.limits.max_message_size:
            raise FreemailError(413, "the message is too large")
        sender, addresses = self._envelope(request, message)
        recipients: list[Recipient] = []
        for address in addresses:
            local, _, domain = address.rpartition("@")
            _reply, recipient = await self.policy.check_recipient(
                None, MailPath(local, domain), len(message)
            )
            if recipient is not None:
                recipients.append(recipient)
        if not recipients:
            raise FreemailError(404, "no recipient is a local address that takes mail")
        queue_id = secrets.token_hex(6).upper()
        return_path = headers.return_path(sender)
        received = headers.received(
            helo="freemail-receive",
            client_ip="127.0.0.1",
            hostname=config.hostname,
            protocol="HTTP",
            queue_id=queue_id,
            recipient=recipients[0].address if len(recipients) == 1 else None,
            when=self.ctx.clock.seconds(),
        )
        prefix = return_path + received
        writer = await self.ctx.store.spool.open_writer(prefix)
        receiver = DataReceiver(
            writer,
            max_size=config.limits.max_message_size,
            max_line=max(config.smtp.max_data_line_length, 998),
            authserv_id=config.hostname,
            drop_forged=True,
            offset=len(prefix),
        )
        receiver.feed(smtp_data(message))
        result = receiver.result()
        if result.too_big or result.line_too_long or result.write_failed or result.hops > 50:
            writer.abort()
            raise bad_request("the message is too large, has too long lines or too many hops")
        blob, parsed = await self.ctx.store.spool.finish(writer, parse_json)
        reply = await self.delivery.deliver(
            ReceivedMessage(
                blob=blob,
                parsed=parsed,
                scratch=False,
                return_path=return_path,
                received=received,
                data=result,
                sender=sender,
                recipients=tuple(recipients),
                client_ip="127.0.0.1",
                helo="freemail-receive",
                user=None,
                queue_id=queue_id,
            )
        )
        if reply.code >= 400:
            raise FreemailError(
                507 if reply.code in (452, 552) else 400, "the message was not delivered"
            )
        return {"success": True, "queue_id": queue_id, "recipients": [r.target for r in recipients]}
