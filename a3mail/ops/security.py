"""The security background service: keeps this process's blocklist and settings current.

Every a3mail process runs one :class:`SecurityService` (registered in
``a3mail.background``).  It

- applies each ``ip.blocked`` / ``ip.unblocked`` event from the store's bus to the
  in-memory matcher at once (so a block made by any process refuses connections here
  within moments);
- reloads the whole blocklist and the security settings every
  ``security.refresh_interval`` seconds, when a setting changes, and after the bus
  reconnects (events may have been missed meanwhile), and prunes expired entries;
- sets the automatic-block rule from the configuration in force (so a reload applies it).

Expiry needs no reload: the matcher compares each entry's expiry with the clock.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall

from a3mail.http.ratelimit import note_window
from a3mail.logs import get_logger
from a3mail.runtime import Runtime
from a3mail.store.blocklist import AutoBlockRule
from a3mail.store.events import BUS_RECONNECTED, Event
from a3mail.store.security_settings import RATE_LIMITS, SETTINGS_CHANGED

log = get_logger(__name__)

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


def rule_from_config(security: Any) -> AutoBlockRule:
    """The automatic-block rule of a ``[security]`` configuration section."""
    exempt = [ipaddress.ip_network(n, strict=False) for n in security.exempt_networks]
    if security.exempt_loopback:
        exempt[:0] = LOOPBACK
    return AutoBlockRule(
        failures=security.auto_block_failures,
        window=security.auto_block_window,
        duration=security.auto_block_duration,
        exempt=tuple(exempt),
    )


def stored_windows(settings: Any) -> list[int]:
    """The window lengths named by the stored rate limits (for pruning, see ratelimit)."""
    limits = settings.get(RATE_LIMITS) if isinstance(settings, dict) else None
    if not isinstance(limits, dict):
        return []
    return [
        value["window_seconds"]
        for value in limits.values()
        if isinstance(value, dict) and isinstance(value.get("window_seconds"), int)
    ]


class SecurityService(Service):
    """Keeps ``store.blocklist`` (matcher and rule) and ``store.security`` current."""

    def __init__(self, store: Any, config: Callable[[], Any], clock: Any) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self._loop: LoopingCall | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._refreshing: Deferred[None] | None = None
        self._again = False
        self.refreshes = 0

    def startService(self) -> None:
        """Subscribe to the bus and start the periodic reload (the first one at once)."""
        super().startService()
        self.apply_rule()
        self._unsubscribe = self.store.events.subscribe(self.on_event)
        self._loop = LoopingCall(self.refresh)
        self._loop.clock = self.clock
        interval = float(self.config().security.refresh_interval)
        self._loop.start(interval, now=True).addErrback(
            lambda f: log.failure("security refresh loop stopped", f)
        )

    def stopService(self) -> Deferred[None] | None:
        """Stop reloading; wait for a reload in progress."""
        super().stopService()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        self._again = False
        running = self._refreshing
        if running is None:
            return None
        done: Deferred[None] = Deferred()
        running.addBoth(lambda _: done.callback(None))
        return done

    def apply_rule(self) -> None:
        """Set the automatic-block rule from the configuration in force."""
        self.store.blocklist.auto_block = rule_from_config(self.config().security)

    def on_event(self, event: Event) -> None:
        """A bus event: apply blocklist changes, reload on a settings change or reconnect."""
        if self.store.blocklist.apply_event(event.type, event.data):
            return
        if event.type in (SETTINGS_CHANGED, BUS_RECONNECTED):
            self.refresh()

    def refresh(self) -> Deferred[None]:
        """Reload the blocklist and the settings (once more after a reload in progress)."""
        if self._refreshing is not None:
            self._again = True
            return self._refreshing
        running = self._refreshing = Deferred.fromCoroutine(self._refresh())
        running.addBoth(self._refreshed)
        return running

    def _refreshed(self, result: Any) -> None:
        self._refreshing = None
        if self._again and self.running:
            self._again = False
            self.refresh()

    async def _refresh(self) -> None:
        self.apply_rule()
        try:
            await self.store.blocklist.prune()
            await self.store.blocklist.refresh()
            settings = await self.store.security.refresh()
            for window in stored_windows(settings):
                note_window(window)
            self.refreshes += 1
        except Exception as e:
            log.warn("security: cannot reload the blocklist: {error}", error=str(e))


def build_service(runtime: Runtime) -> SecurityService:
    """The background-service builder registered in ``a3mail.background``."""
    return SecurityService(runtime.store, lambda: runtime.config, runtime.reactor)
