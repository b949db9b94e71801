"""Real-socket test setup shared by the protocol suites: a self-signed certificate, a
runtime over the test's store, and listeners built as the service builds them
(``listeners.PROTOCOL_FACTORIES[name](runtime)``, wrapped in TLS for implicit-TLS
names) on 127.0.0.1, port 0, recording every server-side session."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path
from typing import Any

from twisted.internet import reactor

from a3mail.config import load_config
from a3mail.listeners import IMPLICIT_TLS, PROTOCOL_FACTORIES
from a3mail.runtime import Runtime
from a3mail.tls import ServerTLS, ensure_self_signed, wrap_server_factory
from tests.store.helpers import in_thread, wait_for


class LoopbackListeners:
    """Mixin for a StoreTestCase: call ``start_listeners`` from ``setUp``.

    Afterwards ``self.cert`` is the server certificate, ``self.runtime`` the runtime,
    ``self.sessions`` every server-side session built and ``self.ports`` the port of
    each listener by name.  Subclasses say when a session is over (``session_closed``).
    """

    allow_plaintext_loopback = False
    store: Any
    data_dir: Any
    mktemp: Any
    addCleanup: Any

    def session_closed(self, session: Any) -> bool:
        """Whether the server side of ``session`` is gone."""
        raise NotImplementedError

    def start_listeners(self, hostname: str, names: tuple[str, ...]) -> None:
        """Make the certificate and runtime and listen on each of ``names``."""
        tls_dir = Path(self.mktemp()).absolute()
        self.cert, key = tls_dir / "cert.pem", tls_dir / "key.pem"
        ensure_self_signed(self.cert, key, "localhost")
        server_tls = ServerTLS(self.cert, key)
        server_tls.load()
        config = load_config(
            None,
            data_dir=self.data_dir,
            overrides={
                "hostname": hostname,
                "auth": {
                    "failure_delay": 0,
                    "allow_plaintext_loopback": self.allow_plaintext_loopback,
                },
            },
        )
        self.runtime = Runtime(config=config, store=self.store, tls=server_tls, reactor=reactor)
        self.sessions: list[Any] = []
        self.ports = {name: self.listen(name) for name in names}

    def listen(self, name: str) -> int:
        """Listen with the production factory for ``name``; return the port."""
        factory: Any = PROTOCOL_FACTORIES[name](self.runtime)
        build = factory.buildProtocol

        def recording(addr: Any) -> Any:
            session = build(addr)
            self.sessions.append(session)
            return session

        factory.buildProtocol = recording
        if name in IMPLICIT_TLS:
            factory = wrap_server_factory(factory, self.runtime.tls)
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")  # type: ignore[attr-defined]
        self.addCleanup(port.stopListening)
        self.addCleanup(self.sessions_closed)
        return int(port.getHost().port)

    async def sessions_closed(self) -> None:
        """No dirty reactor: wait until the server side of every session is gone."""
        await wait_for(
            lambda: all(self.session_closed(s) for s in self.sessions), 10, "sessions closed"
        )

    def client_context(self) -> ssl.SSLContext:
        """A client TLS context that trusts the test certificate."""
        return ssl.create_default_context(cafile=str(self.cert))

    async def run_tool(self, *command: str, **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        """Run a client program in a thread (the server runs on this thread's reactor)."""
        return await in_thread(
            lambda: subprocess.run(command, capture_output=True, timeout=60, **kwargs)
        )
