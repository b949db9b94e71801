"""The POP3 listener's protocol factory, built from the running a3mail's Runtime.

The same factory serves the ``pop3`` listener (STLS) and the ``pop3s`` listener, which the
service wraps in TLS (``pop3s`` is in ``a3mail.listeners.IMPLICIT_TLS``); a session sees
which one it is on from its transport.
"""

from __future__ import annotations

from typing import Any

import attrs

from a3mail.config import Config
from a3mail.login_factory import LoginServerFactory
from a3mail.pop3.server import POP3Server
from a3mail.runtime import Runtime


@attrs.frozen
class Pop3Settings:
    """What a POP3 session needs from the configuration (durations in seconds)."""

    hostname: str = "localhost"
    max_line_length: int = 4096
    idle_timeout: float = 600.0
    max_errors: int = 10
    allow_plaintext_loopback: bool = False

    @classmethod
    def from_config(cls, config: Config) -> Pop3Settings:
        """The settings of a loaded configuration."""
        return cls(
            hostname=config.hostname,
            max_line_length=config.limits.max_line_length,
            idle_timeout=config.pop3.idle_timeout,
            max_errors=config.pop3.max_errors,
            allow_plaintext_loopback=config.auth.allow_plaintext_loopback,
        )


class POP3Factory(LoginServerFactory[Pop3Settings]):
    """Builds :class:`POP3Server` sessions sharing the store, checker, guard and TLS."""

    protocol = POP3Server

    #: The keys that :meth:`reconfigure` applies (a3mail.control reports the others).
    live_keys = frozenset({"limits.max_line_length", "pop3.idle_timeout", "pop3.max_errors"})

    def reconfigure(self, config: Config) -> None:
        """A reload: new sessions get the limits of *config*."""
        self.settings = attrs.evolve(
            self.settings,
            max_line_length=config.limits.max_line_length,
            idle_timeout=config.pop3.idle_timeout,
            max_errors=config.pop3.max_errors,
        )

    def buildProtocol(self, addr: Any) -> POP3Server:
        """A new session."""
        session = POP3Server()
        session.factory = self
        return session


def build_factory(runtime: Runtime) -> POP3Factory:
    """The factory for the ``pop3`` and ``pop3s`` listeners."""
    return POP3Factory.from_runtime(runtime, Pop3Settings.from_config(runtime.config))
