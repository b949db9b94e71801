"""Building the queue runner from the configuration (background service ``outbound``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from a3mail.config import OutboundConfig
from a3mail.outbound.dkim import DKIMSigner
from a3mail.outbound.mx import MXFinder, parse_host_port
from a3mail.outbound.runner import QueueRunner, RunnerSettings, Smarthost
from a3mail.runtime import Runtime


def build_resolver(runtime: Runtime, timeout: float) -> Any:
    """The DNS resolver: ``[smtp] static_dns`` when set (tests, closed networks), else
    twisted.names over ``[smtp] dns_servers`` (or /etc/resolv.conf)."""
    from a3mail.smtp.dns import StaticResolver, TwistedNamesResolver
    from a3mail.smtp.factory import _record, _server

    smtp = runtime.config.smtp
    if smtp.static_dns:
        return StaticResolver(
            {key: [_record(key[0], v) for v in values] for key, values in smtp.static_dns.items()}
        )
    servers = [_server(s) for s in smtp.dns_servers] or None
    return LazyResolver(lambda: TwistedNamesResolver(runtime.reactor, timeout, servers))


class LazyResolver:
    """A resolver made on first use (nothing scheduled on the reactor before), and
    closed with the service (twisted.names re-reads resolv.conf on a timer)."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._resolver: Any = None

    def _get(self) -> Any:
        if self._resolver is None:
            self._resolver = self._make()
        return self._resolver

    def __getattr__(self, name: str) -> Any:
        if name in ("txt", "a", "aaaa", "mx", "ptr"):
            return getattr(self._get(), name)
        raise AttributeError(name)

    def close(self) -> None:
        """Cancel the resolv.conf re-read timer, if a resolver was made."""
        client = getattr(self._resolver, "_client", None)
        call = getattr(client, "_parseCall", None)
        if call is not None and call.active():
            call.cancel()
        self._resolver = None


def runner_settings(config: OutboundConfig, helo_name: str) -> RunnerSettings:
    """The runner's settings from ``[outbound]``."""
    smarthost = None
    if config.smarthost:
        host, port = parse_host_port(config.smarthost, 25)
        smarthost = Smarthost(
            host,
            port,
            config.smarthost_tls,
            config.smarthost_username or None,
            config.smarthost_password or None,
        )
    domain_smarthosts = {}
    for domain, route in config.smarthost_domains.items():
        host, port = parse_host_port(route["host"], 25)
        domain_smarthosts[domain] = Smarthost(
            host, port, route["tls"], route["username"] or None, route["password"] or None
        )
    return RunnerSettings(
        domain_smarthosts=domain_smarthosts,
        helo_name=helo_name,
        poll_interval=config.poll_interval,
        lease_time=config.lease_time,
        concurrency=config.concurrency,
        connections_per_domain=config.connections_per_domain,
        connect_timeout=config.connect_timeout,
        command_timeout=config.command_timeout,
        dns_timeout=config.dns_timeout,
        schedule=tuple(config.retry_schedule),
        max_queue_lifetime=config.max_queue_lifetime,
        delay_warning=config.delay_warning,
        tls=config.tls,
        verify_certificates=config.verify_certificates,
        smarthost=smarthost,
    )


def build_service(runtime: Runtime) -> QueueRunner:
    """The background-service builder registered in ``a3mail.background``."""
    config = runtime.config.outbound
    finder = MXFinder(
        build_resolver(runtime, config.dns_timeout),
        runtime.reactor,
        timeout=config.dns_timeout,
        static={domain: list(targets) for domain, targets in config.static_mx.items()},
    )
    settings = runner_settings(config, runtime.config.hostname)
    signer = DKIMSigner(runtime.config.data_dir)
    return QueueRunner(
        runtime.store, runtime.reactor, finder, settings, signer=signer, metrics=runtime.metrics
    )
