"""Protocol factories for the three SMTP listeners.

``listeners.PROTOCOL_FACTORIES`` names :func:`build_mx` (``smtp``), :func:`build_submission`
(``submission``) and :func:`build_submissions` (``submissions``: the service wraps it in
TLS; the protocol sees a TLS transport and allows AUTH at once).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.protocol import Protocol, ServerFactory

from a3mail.config import Config
from a3mail.runtime import Runtime
from a3mail.smtp import replies
from a3mail.smtp.auth import Authenticator
from a3mail.smtp.delivery import Delivery, DeliverySettings
from a3mail.smtp.limits import ConnectionTracker, SmtpLimits
from a3mail.smtp.policy import Policy
from a3mail.smtp.reporting import Reporter
from a3mail.smtp.server import SMTPServer
from a3mail.smtp.session import MX, SUBMISSION, ListenerContext
from a3mail.smtp.stats import STATS, SmtpStats

#: Passed as ``verifier`` to build one from the configuration.
FROM_CONFIG: Any = object()


class _Refuse(Protocol):
    """Says 421 and closes (too many connections from one address)."""

    def connectionMade(self) -> None:
        transport: Any = self.transport
        transport.write(b"".join(replies.TOO_MANY_CONNECTIONS.lines()) + b"\r\n")
        transport.loseConnection()


class SMTPFactory(ServerFactory):
    """Builds :class:`SMTPServer` connections sharing one :class:`ListenerContext`."""

    noisy = False  # the service logs where each listener listens

    def __init__(self, context: ListenerContext) -> None:
        self.context = context

    #: The keys that :meth:`reconfigure` applies (a3mail.control reports the others).
    live_keys = frozenset(
        {
            "limits.max_message_size",
            "limits.max_recipients",
            "limits.max_line_length",
            "smtp.max_data_line_length",
            "smtp.command_timeout",
            "smtp.data_timeout",
            "smtp.max_connections_per_ip",
            "smtp.max_errors",
        }
    )

    def reconfigure(self, config: Config) -> None:
        """A reload: new connections get the limits of *config*."""
        self.context.limits = SmtpLimits.from_config(config)
        self.context.tracker.limit = self.context.limits.max_connections_per_ip

    def stopFactory(self) -> None:
        """The listener stopped: publish the events still waiting for their batch."""
        self.context.reporter.idle()

    def buildProtocol(self, addr: Any) -> Protocol:
        """A server, or a refusal past ``smtp.max_connections_per_ip``."""
        host = str(getattr(addr, "host", "unknown"))
        tracker = self.context.tracker
        if not tracker.acquire(host):
            self.context.stats.connections_refused += 1
            refuse = _Refuse()
            refuse.factory = self
            return refuse
        server = SMTPServer(self.context)
        server.factory = self
        server.on_close = lambda: tracker.release(host)
        return server


def build_verifier(runtime: Runtime, clock: Any) -> Any:
    """The SPF/DKIM/DMARC verifier of ``[smtp]`` (static DNS table or twisted.names)."""
    from a3mail.smtp.authres import InboundVerifier, StaticResolver, TwistedNamesResolver

    smtp = runtime.config.smtp
    resolver: Any
    if smtp.static_dns:
        resolver = StaticResolver(
            {key: [_record(key[0], v) for v in values] for key, values in smtp.static_dns.items()}
        )
    else:
        servers = [_server(s) for s in smtp.dns_servers] or None
        resolver = TwistedNamesResolver(runtime.reactor, timeout=smtp.dns_timeout, servers=servers)
    return InboundVerifier(
        resolver, runtime.reactor, authserv_id=runtime.config.hostname, timeout=smtp.dns_timeout
    )


def _record(kind: str, value: str) -> Any:
    if kind == "MX":
        preference, _, exchange = value.partition(" ")
        return (int(preference), exchange)
    return value


def _server(text: str) -> tuple[str, int]:
    if text.startswith("["):
        host, _, port = text[1:].partition("]")
        return host, int(port.lstrip(":") or 53)
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, int(port)
    return text, 53


def build_factory(
    runtime: Runtime,
    mode: str,
    *,
    name: str | None = None,
    clock: Any = None,
    verifier: Any = FROM_CONFIG,
    stats: SmtpStats | None = None,
) -> SMTPFactory:
    """The factory of one SMTP listener: *mode* ``"mx"`` or ``"submission"``.

    *verifier*: an InboundVerifier (or a fake with its ``verify``), None for no inbound
    verification, or :data:`FROM_CONFIG`.  *clock*: timeouts and the failed-login delay
    (default: the runtime's reactor).
    """
    if mode not in (MX, SUBMISSION):
        raise ValueError(f"unknown SMTP mode {mode!r}")
    config = runtime.config
    clock = runtime.reactor if clock is None else clock
    if verifier is FROM_CONFIG:
        verifier = (
            build_verifier(runtime, clock) if mode == MX and config.smtp.verify_inbound else None
        )
    stats = STATS if stats is None else stats
    limits = SmtpLimits.from_config(config)
    policy = Policy(runtime.store, config.smtp.over_quota_reply)
    reporter = Reporter(
        runtime.store, stats, name or mode, clock=runtime.reactor, metrics=runtime.metrics
    )
    settings = DeliverySettings(
        hostname=config.hostname,
        dmarc_failure=config.smtp.dmarc_failure,
        sent_copy=config.smtp.sent_copy,
    )
    context = ListenerContext(
        name=name or mode,
        mode=mode,
        hostname=config.hostname,
        limits=limits,
        store=runtime.store,
        policy=policy,
        delivery=Delivery(runtime.store, settings, policy, reporter, verifier),
        authenticator=Authenticator(
            runtime.store,
            runtime.reactor,
            config.auth.failure_delay,
            clock=clock,
            metrics=runtime.metrics,
        ),
        clock=clock,
        stats=stats,
        reporter=reporter,
        tracker=ConnectionTracker(limits.max_connections_per_ip),
        tls=runtime.tls,
        allow_plaintext_loopback=config.auth.allow_plaintext_loopback,
        metrics=runtime.metrics,
    )
    return SMTPFactory(context)


def build_mx(runtime: Runtime) -> SMTPFactory:
    """The ``smtp`` listener: inbound mail for local domains."""
    return build_factory(runtime, MX, name="smtp")


def build_submission(runtime: Runtime) -> SMTPFactory:
    """The ``submission`` listener: authenticated users, STARTTLS before AUTH."""
    return build_factory(runtime, SUBMISSION, name="submission")


def build_submissions(runtime: Runtime) -> SMTPFactory:
    """The ``submissions`` listener (implicit TLS, added by the service)."""
    return build_factory(runtime, SUBMISSION, name="submissions")
