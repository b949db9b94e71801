"""SMTP limits and timeouts taken from the configuration, and connections per address."""

from __future__ import annotations

from collections import Counter

import attrs

from a3mail.config import Config

#: RFC 5321 4.5.3.1.4: a command line is at most 512 octets; we never go below it.
MIN_COMMAND_LINE = 512


@attrs.frozen
class SmtpLimits:
    """Sizes in bytes, durations in seconds."""

    max_message_size: int = 50 * 1024 * 1024
    max_recipients: int = 100
    max_line_length: int = 4096
    max_data_line_length: int = 998
    command_timeout: float = 300.0
    data_timeout: float = 300.0
    max_connections_per_ip: int = 20
    max_errors: int = 10
    max_hops: int = 50

    @classmethod
    def from_config(cls, config: Config) -> SmtpLimits:
        """The limits of ``[limits]`` and ``[smtp]``."""
        return cls(
            max_message_size=config.limits.max_message_size,
            max_recipients=config.limits.max_recipients,
            max_line_length=max(MIN_COMMAND_LINE, config.limits.max_line_length),
            max_data_line_length=config.smtp.max_data_line_length,
            command_timeout=config.smtp.command_timeout,
            data_timeout=config.smtp.data_timeout,
            max_connections_per_ip=config.smtp.max_connections_per_ip,
            max_errors=config.smtp.max_errors,
        )

    @property
    def max_buffered(self) -> int:
        """Unprocessed input kept before the connection stops reading (back-pressure)."""
        return max(256 * 1024, 4 * self.max_line_length)


class ConnectionTracker:
    """Counts open connections per client address."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open: Counter[str] = Counter()

    def acquire(self, address: str) -> bool:
        """Count a new connection from *address*; False (not counted) past the limit."""
        if self.open[address] >= self.limit:
            return False
        self.open[address] += 1
        return True

    def release(self, address: str) -> None:
        """A counted connection from *address* ended."""
        self.open[address] -= 1
        if self.open[address] <= 0:
            del self.open[address]
