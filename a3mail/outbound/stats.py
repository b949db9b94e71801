"""Counters of the outbound queue runner, for /metrics."""

from __future__ import annotations

import attrs


@attrs.define
class OutboundStats:
    """What this process's queue runner did since it started."""

    attempts: int = 0
    sent: int = 0  # recipients delivered
    deferred: int = 0  # recipients deferred (temporary failures)
    failed: int = 0  # recipients failed for good (incl. expired)
    bounces: int = 0  # DSNs generated (failures)
    delay_warnings: int = 0
    lease_errors: int = 0  # rounds that could not lease (database trouble)

    def snapshot(self) -> dict[str, int]:
        """The counters as a dict."""
        return attrs.asdict(self)
