"""End of DATA: verify, assemble the final file, deliver and queue, then one reply.

Two ways a message reaches this point:

- **direct** (no verification: submission, authenticated clients, ``verify_inbound`` off):
  the trace headers (Return-Path, Received) were written first and the body streamed after
  them into one file, fsynced by the server;
- **scratch** (inbound verification on): the body alone went to a scratch file under
  ``mail/tmp`` (not fsynced).  SPF/DKIM/DMARC run over its bytes, then
  :meth:`~a3mail.store.spool.Spool.assemble` writes the final file = Return-Path +
  Authentication-Results + Received + body (copied in the kernel, without any forged
  Authentication-Results field) and fsyncs it; the scratch file is removed.

Then the message is parsed once (MIME, in a worker thread) and handed to the store: ONE
``group_delivery.deliver`` (``messages.deliver`` with group commit: messages finishing
together share one index statement and one fsync per directory) for every local recipient
(INBOX, or Junk by policy), ``queue.enqueue``
for remote recipients and external alias targets (without the Return-Path line:
``skip_bytes``), and for an authenticated sender a copy in its Sent mailbox.  The client
gets 250 only after those commits.  Recipients were checked at RCPT time; if all local
recipients turn out unable to take the message at delivery (a quota race) and nothing was
queued, the reply is the over-quota/unknown refusal instead; if some took it, 250.
"""

from __future__ import annotations

from typing import Any

import attrs

from a3mail.logs import get_logger
from a3mail.mime import parse_message
from a3mail.smtp import replies
from a3mail.smtp.data import DataResult
from a3mail.smtp.policy import AuthUser, Policy, Recipient
from a3mail.smtp.replies import Reply
from a3mail.smtp.reporting import Reporter
from a3mail.store import Store
from a3mail.store.blobs import IncomingBlob
from a3mail.store.records import DeliveryStatus, NotFound, OverQuota

log = get_logger(__name__)

INBOX = "INBOX"
JUNK = "Junk"
SENT = "\\Sent"


def parse_json(data: Any) -> dict[str, Any]:
    """The JSON form of the MIME parse the store indexes."""
    return parse_message(data).to_json()


@attrs.frozen
class ReceivedMessage:
    """A message whose data has fully arrived, and its envelope."""

    blob: IncomingBlob
    parsed: Any
    scratch: bool
    return_path: bytes
    received: bytes
    data: DataResult
    sender: str
    recipients: tuple[Recipient, ...]
    client_ip: str
    helo: str
    user: AuthUser | None
    queue_id: str


@attrs.frozen
class DeliverySettings:
    """The policy knobs of ``[smtp]`` used at the end of DATA."""

    hostname: str
    dmarc_failure: str = "tag"
    sent_copy: bool = True


def dmarc_verdict(results: Any, action: str) -> str:
    """``"deliver"``, ``"junk"`` or ``"reject"`` for verification *results*.

    A failure is a DMARC ``fail``, or, for a domain publishing no DMARC record, an SPF
    ``fail`` (``-all``); *action* (``smtp.dmarc_failure``) says what a failure does.
    """
    failed = results.dmarc == "fail" or (results.dmarc == "none" and results.spf == "fail")
    if not failed or action == "tag":
        return "deliver"
    return action


class Delivery:
    """Delivers received messages into the store."""

    def __init__(
        self,
        store: Store,
        settings: DeliverySettings,
        policy: Policy,
        reporter: Reporter,
        verifier: Any | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.policy = policy
        self.reporter = reporter
        self.verifier = verifier

    async def deliver(self, message: ReceivedMessage) -> Reply:
        """Deliver *message*; the reply for the client's final dot."""
        blob, parsed = message.blob, message.parsed
        mailbox = INBOX
        auth: dict[str, str] = {}
        try:
            if message.scratch:
                results = await self._verify(message)
                auth = {"spf": results.spf, "dkim": results.dkim, "dmarc": results.dmarc}
                verdict = dmarc_verdict(results, self.settings.dmarc_failure)
                if verdict == "reject":
                    await self.store.spool.discard(blob)
                    self._rejected(message, "dmarc", **auth)
                    return replies.POLICY_REJECTED
                if verdict == "junk":
                    mailbox = JUNK
                prefix = (
                    message.return_path + results.header(self.settings.hostname) + message.received
                )
                blob, parsed = await self.store.spool.assemble(
                    prefix, blob, message.data.forged_ranges, parse_json
                )
            reply = await self._store(message, blob, parsed, mailbox, auth)
        except BaseException:
            await _discard_quietly(self.store, blob)
            raise
        return reply

    async def _verify(self, message: ReceivedMessage) -> Any:
        assert self.verifier is not None
        data = await self.store.spool.read(message.blob)
        return await self.verifier.verify(
            client_ip=message.client_ip,
            helo=message.helo,
            mail_from=message.sender,
            message=data,
        )

    async def _store(
        self,
        message: ReceivedMessage,
        blob: IncomingBlob,
        parsed: Any,
        mailbox: str,
        auth: dict[str, str],
    ) -> Reply:
        local = [r.target for r in message.recipients if r.local]
        outbound = _outbound(message.recipients)
        sent_copy = message.user is not None and self.settings.sent_copy
        statuses: list[DeliveryStatus] = []
        if local:
            # deliver() removes the file unless the queue or the Sent copy still needs it
            keep = bool(outbound or sent_copy)
            # group commit: deliveries finishing together share one statement and fsyncs
            results = await self.store.group_delivery.deliver(
                blob, local, parsed=parsed, mailbox=mailbox, keep_source=keep
            )
            statuses = [r.status for r in results]
        queued: list[int] = []
        if outbound:
            queued = await self.store.queue.enqueue(
                blob, message.sender, outbound, skip_bytes=len(message.return_path)
            )
        delivered = statuses.count(DeliveryStatus.DELIVERED)
        if not delivered and not queued:
            await self.store.spool.discard(blob)
            self._rejected(message, "delivery", **auth)
            return self._undelivered(statuses)
        if sent_copy and message.user is not None:
            await self._sent_copy(message.user, blob, parsed)
        elif outbound or not local:
            await self.store.spool.discard(blob)
        self.reporter.received(
            blob.size,
            queue_id=message.queue_id,
            recipients=len(message.recipients),
            delivered=delivered,
            queued=len(outbound),
            mailbox=mailbox,
            authenticated=message.user is not None,
            **auth,
        )
        return replies.ACCEPTED.with_text(f"Message accepted as {message.queue_id}")

    def _undelivered(self, statuses: list[DeliveryStatus]) -> Reply:
        if DeliveryStatus.OVER_QUOTA in statuses:
            return self.policy.over_quota
        if DeliveryStatus.DISABLED in statuses:
            return replies.MAILBOX_DISABLED
        return replies.NOT_DELIVERED

    async def _sent_copy(self, user: AuthUser, blob: IncomingBlob, parsed: Any) -> None:
        """Append to the sender's Sent mailbox (consumes *blob*); problems are logged."""
        try:
            sent = await self.store.mailboxes.get_by_special_use(user.account_id, SENT)
            if sent is None:
                await self.store.spool.discard(blob)
                return
            await self.store.messages.append(
                user.account_id, sent.name, blob, parsed=parsed, flags=["\\Seen"]
            )
        except (OverQuota, NotFound) as e:
            log.info("no Sent copy for {user}: {reason}", user=user.address, reason=str(e))
            await self.store.spool.discard(blob)

    def _rejected(self, message: ReceivedMessage, reason: str, **data: Any) -> None:
        self.reporter.rejected(
            reason,
            queue_id=message.queue_id,
            recipients=len(message.recipients),
            size=message.data.size,
            **data,
        )


def _outbound(recipients: tuple[Recipient, ...]) -> list[str]:
    """Remote recipients and external alias targets, each once."""
    targets: dict[str, None] = {}
    for r in recipients:
        if r.remote:
            targets[r.target] = None
        for external in r.external:
            targets[external] = None
    return list(targets)


async def _discard_quietly(store: Store, blob: IncomingBlob) -> None:
    try:
        await store.spool.discard(blob)
    except Exception:
        log.failure("removing an undelivered message file failed")
