"""What a running a3mail hands to its protocol fronts: config, store, TLS, reactor."""

from __future__ import annotations

import time
from typing import Any

import attrs

from a3mail.config import Config
from a3mail.store import Store
from a3mail.tls import ServerTLS


@attrs.define
class Runtime:
    """The live parts of one a3mail process, shared by every listener."""

    config: Config
    store: Store
    tls: ServerTLS
    reactor: Any
    started_at: float = attrs.field(factory=time.time)

    @property
    def uptime(self) -> float:
        """Seconds since start."""
        return time.time() - self.started_at
