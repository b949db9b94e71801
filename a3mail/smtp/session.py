"""What one SMTP listener shares with its connections, and one mail transaction's state."""

from __future__ import annotations

import secrets
from typing import Any

import attrs

from a3mail.ops.metrics import Metrics, detached
from a3mail.smtp.addresses import MailPath
from a3mail.smtp.auth import Authenticator
from a3mail.smtp.delivery import Delivery
from a3mail.smtp.limits import ConnectionTracker, SmtpLimits
from a3mail.smtp.policy import Policy, Recipient
from a3mail.smtp.reporting import Reporter
from a3mail.smtp.stats import SmtpStats
from a3mail.store import Store

MX = "mx"
SUBMISSION = "submission"


@attrs.define
class ListenerContext:
    """One listener's configuration and services.

    ``mode``: ``"mx"`` (inbound mail, AUTH optional after TLS) or ``"submission"`` (AUTH
    required before MAIL).  ``tls``: the server TLS context for STARTTLS (None: no
    STARTTLS).  ``verify_inbound``: verify SPF/DKIM/DMARC of unauthenticated mail (needs
    a verifier in ``delivery``).
    """

    name: str
    mode: str
    hostname: str
    limits: SmtpLimits
    store: Store
    policy: Policy
    delivery: Delivery
    authenticator: Authenticator
    clock: Any
    stats: SmtpStats
    reporter: Reporter
    tracker: ConnectionTracker
    tls: Any | None = None
    allow_plaintext_loopback: bool = False
    metrics: Metrics = attrs.field(factory=detached)

    @property
    def verify_inbound(self) -> bool:
        """True if unauthenticated MX mail is verified (and so goes through a scratch file)."""
        return self.mode == MX and self.delivery.verifier is not None


@attrs.define
class Transaction:
    """One mail transaction: MAIL FROM, its parameters, the accepted recipients."""

    sender: MailPath
    size: int = 0
    body: str = "7BIT"
    smtputf8: bool = False
    recipients: list[Recipient] = attrs.field(factory=list)
    queue_id: str = attrs.field(factory=lambda: secrets.token_hex(6).upper())

    def add(self, recipient: Recipient) -> None:
        """Accept a recipient (a repeated one counts once)."""
        if all(r.target != recipient.target for r in self.recipients):
            self.recipients.append(recipient)
