"""The running a3mail: the store, then one listener per configured protocol."""

from __future__ import annotations

import signal
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import IListeningPort, IProtocolFactory, IStreamServerEndpoint
from twisted.internet.threads import deferToThreadPool

from a3mail.background import BACKGROUND_SERVICES, ServiceBuilder
from a3mail.control import Control
from a3mail.listeners import IMPLICIT_TLS, PROTOCOL_FACTORIES, FactoryBuilder
from a3mail.logs import add_json_file, get_logger, set_level
from a3mail.ops.gate import gate_factory
from a3mail.runtime import ListenerState, Runtime
from a3mail.sessions import SessionTrackingFactory
from a3mail.store.embedded import EmbeddedPostgres
from a3mail.tls import wrap_server_factory

log = get_logger(__name__)

EndpointFactory = Callable[[Any, str], IStreamServerEndpoint]


class ListenerService(Service):
    """Listens on one endpoint with one protocol factory; logs where it listens."""

    def __init__(
        self,
        name: str,
        description: str,
        endpoint: IStreamServerEndpoint,
        factory: IProtocolFactory,
        on_failure: Callable[[str], None],
        state: ListenerState | None = None,
    ) -> None:
        self.setName(name)
        self.state = state if state is not None else ListenerState(name, description)
        self.description = description
        self.endpoint = endpoint
        self.factory = factory
        self.on_failure = on_failure
        self.port: IListeningPort | None = None
        self.listening: Deferred[IListeningPort] | None = None

    def startService(self) -> None:
        """Start listening."""
        super().startService()
        self.listening = self.endpoint.listen(self.factory)
        self.listening.addCallbacks(self._listening, self._failed)

    def _listening(self, port: IListeningPort) -> IListeningPort:
        self.port = port
        self.state.state, self.state.address = "listening", _address(port)
        log.info(
            "{name} listening on {description} ({address})",
            name=self.name,
            description=self.description,
            address=_address(port),
        )
        return port

    def _failed(self, failure: Any) -> None:
        reason = str(failure.value).strip() or type(failure.value).__name__
        self.state.state, self.state.error = "failed", reason
        self.on_failure(f"listeners.{self.name}: cannot listen on {self.description}: {reason}")

    def stopService(self) -> Deferred[None] | None:
        """Stop listening (open connections are not cut here)."""
        super().stopService()
        self.state.state = "stopped"
        port, self.port = self.port, None
        if port is not None:
            return port.stopListening()  # type: ignore[no-any-return]
        return None


def _refresh_hook(service: Any) -> Callable[[Any], Any]:
    """A reload hook calling *service*.refresh() (the new config is already in force)."""

    def refresh(config: Any) -> Any:
        return service.refresh()

    return refresh


def _address(port: IListeningPort) -> str:
    try:
        host = port.getHost()
    except Exception:
        return "?"
    return f"{getattr(host, 'host', host)}:{getattr(host, 'port', '')}".rstrip(":")


class A3MailService(MultiService):
    """Opens the store (sweeping leftovers), then starts a listener per configured protocol.

    On shutdown: listeners stop, the store closes, the embedded PostgreSQL (if any) stops.
    """

    def __init__(
        self,
        runtime: Runtime,
        *,
        endpoint_factory: EndpointFactory,
        embedded: EmbeddedPostgres | None = None,
        protocols: Mapping[str, FactoryBuilder] | None = None,
        stop_reactor: Callable[[], None] | None = None,
        background: Mapping[str, ServiceBuilder] | None = None,
        handle_signals: bool = False,
    ) -> None:
        super().__init__()
        self.runtime = runtime
        self.control = runtime.control = Control(runtime, self)
        self.handle_signals = handle_signals
        self._previous_sighup: Any = signal.SIG_DFL
        #: Listener name -> the factory it listens with (all wrappers applied).
        self.factories: dict[str, IProtocolFactory] = {}
        self.endpoint_factory = endpoint_factory
        self.embedded = embedded
        self.protocols = PROTOCOL_FACTORIES if protocols is None else protocols
        self.background_builders = BACKGROUND_SERVICES if background is None else background
        # Background services (a3mail.background): not children of this MultiService, so
        # that they start after the store opens and stop after the listeners.
        self.background = MultiService()
        self.stop_reactor = stop_reactor or self._stop_reactor
        self.ready: Deferred[None] | None = None
        self.failure: str | None = None
        self._stop_json_log: Callable[[], None] | None = None

    def startService(self) -> None:
        """Open the store in the background, then start the listeners."""
        Service.startService(self)
        logging = self.runtime.config.logging
        set_level(logging.level)
        self.open_json_log(logging.json_file)
        if self.handle_signals:
            self._install_sighup()
        self.ready = Deferred.fromCoroutine(self._start())

    def open_json_log(self, path: Path | None) -> None:
        """Write the JSON-lines log to *path* (None: no JSON log), closing any previous one."""
        if self._stop_json_log is not None:
            self._stop_json_log()
            self._stop_json_log = None
        if path is not None:
            self._stop_json_log = add_json_file(path)

    def _install_sighup(self) -> None:
        """SIGHUP reloads the configuration (as POST /api/v1/server/reload)."""
        # A Python-level handler (Twisted owns the wakeup fd, so asyncio's
        # add_signal_handler would never fire); callFromThread wakes the reactor.
        reactor = self.runtime.reactor
        self._previous_sighup = signal.signal(
            signal.SIGHUP, lambda *_: reactor.callFromThread(self.reload_on_signal)
        )

    def reload_on_signal(self) -> Deferred[None]:
        """Reload the configuration; a failure is logged, the old configuration stays."""

        async def reload() -> None:
            try:
                await self.control.reload()
            except Exception as e:
                log.error("reload on SIGHUP failed, nothing changed: {error}", error=str(e))

        return Deferred.fromCoroutine(reload())

    async def _start(self) -> None:
        store = self.runtime.store
        config = self.runtime.config
        try:
            await store.open(migrate=True)  # a no-op unless built in a running reactor
            await store.sweep(default_grace=config.store.orphan_grace)
        except Exception as e:
            self.fail(f"store: cannot open: {e}")
            return
        origin = "embedded" if self.embedded is not None else "external"
        log.info(
            "store ready: {origin} PostgreSQL, data in {data_dir}",
            origin=origin,
            data_dir=str(config.data_dir),
        )
        self._start_background()
        for name, description in config.listeners.items():
            builder = self.protocols.get(name)
            if builder is None:
                continue
            try:
                factory = builder(self.runtime)
            except ValueError as e:
                self.fail(f"listeners.{name}: {e}")
                return
            if name in IMPLICIT_TLS:
                factory = wrap_server_factory(factory, self.runtime.tls)
            factory = SessionTrackingFactory(factory, name, self.runtime.sessions)
            # Outermost: a blocked peer is refused before anything else runs.
            factory = gate_factory(name, factory, self.runtime, implicit_tls=name in IMPLICIT_TLS)
            self.factories[name] = factory
            endpoint = self.endpoint_factory(self.runtime.reactor, description)
            state = self.runtime.listeners[name] = ListenerState(name, description)
            self.addService(ListenerService(name, description, endpoint, factory, self.fail, state))

    def _start_background(self) -> None:
        """Build and start every background service (webhooks, ...)."""
        if not self.running:  # stopped while the store was opening
            return
        for name, builder in self.background_builders.items():
            service = builder(self.runtime)
            service.setName(name)
            service.setServiceParent(self.background)
            if name == "security" and hasattr(service, "refresh"):
                # A reload re-reads the blocklist and the automatic-block rule at once.
                self.control.add_reload_hook(_refresh_hook(service))
        self.background.startService()

    def _stop_reactor(self) -> None:
        reactor = self.runtime.reactor
        if reactor.running:
            reactor.stop()
        else:
            reactor.callWhenRunning(reactor.stop)

    def fail(self, message: str) -> None:
        """Report a fatal start-up problem in one line and stop the process."""
        if self.failure is None:
            self.failure = message
            log.critical("a3mail cannot start: {message}", message=message)
            self.stop_reactor()

    def stopService(self) -> Deferred[Any]:
        """Stop listeners, close the store, stop the embedded PostgreSQL."""
        return Deferred.fromCoroutine(self._stop())

    async def _stop(self) -> None:
        await DeferredList([d for d in [MultiService.stopService(self)] if d is not None])
        await self._drain()
        if self.background.running:
            await DeferredList([d for d in [self.background.stopService()] if d is not None])
        try:
            await self.runtime.store.close()
        except Exception:
            log.failure("closing the store failed")
        if self.embedded is not None:
            reactor = self.runtime.reactor
            await deferToThreadPool(reactor, reactor.getThreadPool(), self.embedded.stop)
            log.info("embedded PostgreSQL stopped")
        if self.handle_signals:
            signal.signal(signal.SIGHUP, self._previous_sighup)
        self.open_json_log(None)

    async def _drain(self) -> None:
        """Listeners are closed: let open sessions finish for ``server.drain_timeout``."""
        sessions = self.runtime.sessions
        if not len(sessions):
            return
        timeout = self.runtime.config.server.drain_timeout
        log.info(
            "draining {count} open sessions for up to {timeout}s",
            count=len(sessions),
            timeout=timeout,
        )
        forced = await sessions.drain(timeout, self.runtime.reactor)
        if forced:
            log.warn("closed {count} sessions still open after the drain", count=forced)
