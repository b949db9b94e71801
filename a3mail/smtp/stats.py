"""In-process SMTP counters (connections, messages, bytes), read by the admin API's
server and stats views (``a3mail.http.admin.server.smtp_counters``).  /metrics has its own
Prometheus counters, fed from the same events (``a3mail.smtp.reporting``).

One :data:`STATS` object per process is shared by every SMTP listener; tests give their
factories a fresh :class:`SmtpStats`.
"""

from __future__ import annotations

from collections import Counter

import attrs


@attrs.define
class SmtpStats:
    """Monotonic counters, plus the connections open now."""

    connections: int = 0
    connections_open: int = 0
    connections_refused: int = 0
    messages_accepted: int = 0
    messages_rejected: Counter[str] = attrs.field(factory=Counter)
    recipients_accepted: int = 0
    recipients_rejected: Counter[str] = attrs.field(factory=Counter)
    bytes_received: int = 0
    auth_succeeded: int = 0
    auth_failed: int = 0

    def connection_opened(self) -> None:
        """A client connected (and was not refused)."""
        self.connections += 1
        self.connections_open += 1

    def connection_closed(self) -> None:
        """A counted connection ended."""
        self.connections_open = max(0, self.connections_open - 1)

    def accepted(self, size: int) -> None:
        """A message was accepted (250 after DATA)."""
        self.messages_accepted += 1
        self.bytes_received += size

    def rejected(self, reason: str) -> None:
        """A message was refused at or after DATA, for *reason* (a short keyword)."""
        self.messages_rejected[reason] += 1

    def snapshot(self) -> dict[str, object]:
        """A plain copy of every counter."""
        data = attrs.asdict(self)
        data["messages_rejected"] = dict(self.messages_rejected)
        data["recipients_rejected"] = dict(self.recipients_rejected)
        return data


#: The process-wide counters.
STATS = SmtpStats()
