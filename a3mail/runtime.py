"""What a running a3mail hands to its protocol fronts: config, store, TLS, reactor."""

from __future__ import annotations

import time
from typing import Any

import attrs

from a3mail.config import Config
from a3mail.ops.metrics import Metrics
from a3mail.sessions import SessionRegistry
from a3mail.store import Store
from a3mail.tls import ServerTLS


@attrs.define
class ListenerState:
    """What the service knows of one configured listener (``/health``, ``/ready``)."""

    name: str
    description: str
    state: str = "starting"  # starting | listening | failed | stopped
    address: str | None = None
    error: str | None = None

    @property
    def up(self) -> bool:
        """True while the listener accepts connections."""
        return self.state == "listening"


@attrs.define
class Runtime:
    """The live parts of one a3mail process, shared by every listener."""

    config: Config
    store: Store
    tls: ServerTLS
    reactor: Any
    started_at: float = attrs.field(factory=time.time)
    #: Every open protocol session of every listener (a3mail.sessions).
    sessions: SessionRegistry = attrs.field(factory=SessionRegistry)
    #: Reload, graceful stop and restart (a3mail.control.Control), set by the service.
    control: Any = None
    #: This server's Prometheus metrics and request window (a3mail.ops.metrics).
    metrics: Metrics = attrs.field(factory=Metrics)
    #: Each configured listener's state, kept up to date by the service.
    listeners: dict[str, ListenerState] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        self.metrics.started_at = self.started_at
        db = getattr(self.store, "db", None)
        if db is not None:
            self.metrics.watch_database(db)

    @property
    def uptime(self) -> float:
        """Seconds since start."""
        return time.time() - self.started_at
