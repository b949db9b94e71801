"""The Prometheus metrics of one running a3mail, and the calls protocol code makes.

Each :class:`~a3mail.runtime.Runtime` owns one :class:`Metrics` (``runtime.metrics``) with
its own ``CollectorRegistry``, so that several servers in one test process never share
counters.  ``GET /metrics`` serves :meth:`Metrics.exposition` (Prometheus text format).

Counters and histograms move when protocol code calls:

==========================================  ===============================================
``connection_opened(protocol)``             a client connected (``smtp``, ``imap``, ``pop3``)
``connection_closed(protocol)``             ... and went away
``command(protocol, name, seconds)``        one command answered, its latency
``smtp_accepted(size)``                     a message accepted after DATA/BDAT
``smtp_rejected(reason)``                   a message refused (a short keyword)
``auth(protocol, succeeded)``               a login (LoginGuard calls it)
``delivery(result)``                        one outbound recipient: sent/deferred/failed
``webhook_delivery(result)``                one webhook attempt recorded
``http_request(route, method, status, s)``  one HTTP request (route template, not path)
``db_operation(seconds, failed)``           one pooled database operation (the store)
==========================================  ===============================================

**For the IMAP server** (wired by its author): call ``metrics.connection_opened("imap")``
in ``connectionMade`` and ``metrics.connection_closed("imap")`` in ``connectionLost``;
``metrics.command("imap", name, seconds)`` once per tagged command when its tagged reply is
sent (``name`` upper-case, e.g. ``"FETCH"``, ``"UID FETCH"``; unknown commands as
``"UNKNOWN"``; time with ``time.perf_counter()``); and build the ``LoginGuard`` with
``metrics=runtime.metrics`` so logins count under ``protocol="imap"``.

Gauges that describe state rather than events (database pool, queue backlog, custom
metrics, caches, process CPU and memory, uptime) are read when /metrics is scraped;
:meth:`Metrics.refresh` fetches the figures that need the database first.  Label values
are bounded: commands and routes beyond :data:`MAX_SERIES` distinct values per metric are
counted as ``other``.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import psutil
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

import a3mail
from a3mail.caches import CACHES
from a3mail.logs import get_logger
from a3mail.ops.window import RequestWindow

log = get_logger(__name__)

# No ``*_created`` timestamp series beside every counter and histogram: they double the
# exposition and a3mail's counters all start with the process anyway.
disable_created_metrics()

PREFIX = "a3mail"
#: Distinct label values kept per metric for commands and routes (the rest is "other").
MAX_SERIES = 200
#: What generate_latest writes: the classic text format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
DB_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_LABEL_TEXT = re.compile(r"[^A-Za-z0-9_ ./{}<>:-]")


class _BoundedLabels:
    """Remembers label values; past the limit new ones become ``other``."""

    def __init__(self, limit: int = MAX_SERIES) -> None:
        self.limit = limit
        self.seen: set[tuple[str, ...]] = set()

    def admit(self, *values: str) -> tuple[str, ...]:
        key = tuple(_LABEL_TEXT.sub("_", v)[:100] for v in values)
        if key in self.seen:
            return key
        if len(self.seen) >= self.limit:
            return (*key[:-1], "other")
        self.seen.add(key)
        return key


class Metrics:
    """Every metric of one server (see the module docstring)."""

    def __init__(self, *, started_at: float | None = None, clock: Callable[[], float] = time.time):
        self.registry = CollectorRegistry(auto_describe=True)
        self.started_at = time.time() if started_at is None else started_at
        self.window = RequestWindow(clock)
        self.active: dict[str, int] = {}
        self.pool_stats: Callable[[], dict[str, int]] | None = None
        self.queue_sizes: dict[str, int] = {}
        self.queue_oldest_age: float | None = None
        self.custom: Sequence[Any] = ()
        self._commands = _BoundedLabels()
        self._routes = _BoundedLabels()
        self._process = psutil.Process()
        self._process.cpu_percent(None)  # the first call only starts the measurement
        self._define()
        self.registry.register(_LiveCollector(self))

    def _define(self) -> None:
        r = self.registry
        self.connections = Counter(
            f"{PREFIX}_connections", "Client connections accepted", ["protocol"], registry=r
        )
        self.connections_active = Gauge(
            f"{PREFIX}_connections_active", "Client connections open now", ["protocol"], registry=r
        )
        self.commands = Histogram(
            f"{PREFIX}_command_duration_seconds",
            "Protocol commands answered, by name, and how long each took",
            ["protocol", "command"],
            registry=r,
        )
        self.smtp_messages = Counter(
            f"{PREFIX}_smtp_messages_accepted", "Messages accepted by SMTP", registry=r
        )
        self.smtp_rejections = Counter(
            f"{PREFIX}_smtp_messages_rejected", "Messages refused by SMTP", ["reason"], registry=r
        )
        self.smtp_bytes = Counter(
            f"{PREFIX}_smtp_received_bytes", "Bytes of messages accepted by SMTP", registry=r
        )
        self.deliveries = Counter(
            f"{PREFIX}_queue_deliveries",
            "Outbound recipients attempted, by result",
            ["result"],
            registry=r,
        )
        self.http_requests = Counter(
            f"{PREFIX}_http_requests",
            "HTTP requests answered",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_latency = Histogram(
            f"{PREFIX}_http_request_duration_seconds",
            "HTTP request latency",
            ["route", "method"],
            registry=r,
        )
        self.db_latency = Histogram(
            f"{PREFIX}_db_operation_duration_seconds",
            "How long store operations held a pooled database connection",
            buckets=DB_BUCKETS,
            registry=r,
        )
        self.db_errors = Counter(
            f"{PREFIX}_db_operation_errors", "Store operations that lost the database", registry=r
        )
        self.logins = Counter(
            f"{PREFIX}_auth_attempts",
            "Logins by protocol and result",
            ["protocol", "result"],
            registry=r,
        )
        self.webhooks = Counter(
            f"{PREFIX}_webhook_deliveries",
            "Webhook delivery attempts by result",
            ["result"],
            registry=r,
        )

    # -- what protocol code calls -------------------------------------------------------

    def connection_opened(self, protocol: str) -> None:
        """A client connected on *protocol* (``smtp``, ``imap``, ``pop3``)."""
        self.connections.labels(protocol).inc()
        self.connections_active.labels(protocol).inc()
        self.active[protocol] = self.active.get(protocol, 0) + 1

    def connection_closed(self, protocol: str) -> None:
        """A connection counted by :meth:`connection_opened` ended."""
        self.connections_active.labels(protocol).dec()
        self.active[protocol] = max(0, self.active.get(protocol, 0) - 1)

    def command(self, protocol: str, name: str, seconds: float) -> None:
        """One command of *protocol* answered after *seconds*."""
        protocol, name = self._commands.admit(protocol, name.upper())
        self.commands.labels(protocol, name).observe(max(0.0, seconds))

    def smtp_accepted(self, size: int) -> None:
        """SMTP accepted a message of *size* bytes."""
        self.smtp_messages.inc()
        self.smtp_bytes.inc(max(0, size))

    def smtp_rejected(self, reason: str) -> None:
        """SMTP refused a message for *reason* (a short keyword from the code)."""
        self.smtp_rejections.labels(reason[:50]).inc()

    def auth(self, protocol: str, succeeded: bool) -> None:
        """A login on *protocol* succeeded or failed."""
        self.logins.labels(protocol, "success" if succeeded else "failure").inc()

    def delivery(self, result: str) -> None:
        """The queue runner finished one attempt for one recipient (sent/deferred/failed)."""
        self.deliveries.labels(result).inc()

    def webhook_delivery(self, result: str) -> None:
        """A webhook attempt was recorded (delivered/retrying/failed/taken_over)."""
        self.webhooks.labels(result).inc()

    def http_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """An HTTP request for *route* (its template) was answered with *status*."""
        method = method if method in HTTP_METHODS else "OTHER"
        (route,) = self._routes.admit(route)
        self.http_requests.labels(route, method, str(status)).inc()
        self.http_latency.labels(route, method).observe(max(0.0, seconds))
        self.window.add(seconds, status)

    def db_operation(self, seconds: float, failed: bool) -> None:
        """A store operation held a database connection for *seconds* (or lost it)."""
        self.db_latency.observe(seconds)
        if failed:
            self.db_errors.inc()

    # -- wiring and reading -------------------------------------------------------------

    def watch_database(self, db: Any) -> None:
        """Export *db*'s pool figures and time its operations (``db.on_operation``)."""
        self.pool_stats = db.stats
        db.on_operation = self.db_operation

    async def refresh(self, store: Any) -> list[str]:
        """Fetch the queue backlog and the custom metrics; returns the parts that failed
        (their previous figures stay)."""
        failed = []
        try:
            backlog = await store.queue_admin.backlog()
        except Exception as e:
            log.debug("metrics: queue backlog unavailable: {error}", error=str(e))
            failed.append("queue")
        else:
            self.queue_sizes = dict(backlog.queues)
            self.queue_oldest_age = backlog.oldest_age
        try:
            self.custom = await store.custom_metrics.all()
        except Exception as e:
            log.debug("metrics: custom metrics unavailable: {error}", error=str(e))
            failed.append("custom")
        return failed

    def exposition(self) -> bytes:
        """Every metric in the Prometheus text format."""
        return generate_latest(self.registry)

    def active_sessions(self) -> int:
        """Connections open now, over every protocol."""
        return sum(self.active.values())

    def protocol_figures(self, protocol: str) -> dict[str, int]:
        """Connections accepted, open now, and commands answered on *protocol*."""
        return {
            "connections": int(_sample_sum(self.connections, "_total", protocol=protocol)),
            "connections_active": self.active.get(protocol, 0),
            "commands": int(_sample_sum(self.commands, "_count", protocol=protocol)),
        }

    def process_figures(self) -> dict[str, float]:
        """CPU percent (since the previous call) and resident memory of this process."""
        with self._process.oneshot():
            return {
                "cpu_percent": float(self._process.cpu_percent(None)),
                "memory_bytes": float(self._process.memory_info().rss),
            }


class _LiveCollector(Collector):
    """Gauges read at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def describe(self) -> Iterable[Metric]:
        """Nothing to pre-describe: the families depend on live data."""
        return ()

    def collect(self) -> Iterator[Metric]:
        """Process, pool, queue, cache and custom figures."""
        m = self.metrics
        info = GaugeMetricFamily(f"{PREFIX}_info", "This a3mail", labels=["version"])
        info.add_metric([a3mail.__version__], 1)
        yield info
        yield GaugeMetricFamily(
            f"{PREFIX}_uptime_seconds", "Seconds since start", value=time.time() - m.started_at
        )
        process = m.process_figures()
        yield GaugeMetricFamily(
            f"{PREFIX}_cpu_usage_percent", "CPU use of this process", value=process["cpu_percent"]
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_memory_usage_bytes",
            "Resident memory of this process",
            value=process["memory_bytes"],
        )
        yield from self._pool()
        yield from self._queue()
        yield from self._caches()
        yield from custom_families(m.custom)

    def _pool(self) -> Iterator[Metric]:
        if self.metrics.pool_stats is None:
            return
        stats = self.metrics.pool_stats()
        size = stats.get("pool_size", 0)
        available = stats.get("pool_available", 0)
        pool = GaugeMetricFamily(
            f"{PREFIX}_db_pool_connections", "Database pool connections", labels=["state"]
        )
        pool.add_metric(["open"], size)
        pool.add_metric(["idle"], available)
        pool.add_metric(["in_use"], max(0, size - available))
        pool.add_metric(["max"], stats.get("pool_max", 0))
        yield pool
        yield GaugeMetricFamily(
            f"{PREFIX}_db_pool_waiting",
            "Requests waiting for a pooled connection",
            value=stats.get("requests_waiting", 0),
        )

    def _queue(self) -> Iterator[Metric]:
        m = self.metrics
        size = GaugeMetricFamily(
            f"{PREFIX}_queue_size", "Outbound queue entries by named queue", labels=["queue"]
        )
        for name, count in sorted(m.queue_sizes.items()):
            size.add_metric([name], count)
        yield size
        yield GaugeMetricFamily(
            f"{PREFIX}_queue_oldest_age_seconds",
            "Age of the oldest entry waiting in the outbound queue (0 when empty)",
            value=m.queue_oldest_age or 0.0,
        )

    def _caches(self) -> Iterator[Metric]:
        hits = CounterMetricFamily(f"{PREFIX}_cache_hits", "Cache hits", labels=["cache"])
        misses = CounterMetricFamily(f"{PREFIX}_cache_misses", "Cache misses", labels=["cache"])
        size = GaugeMetricFamily(f"{PREFIX}_cache_entries", "Cache entries", labels=["cache"])
        for name, cache in sorted(CACHES.items()):
            hits.add_metric([name], cache.hits)
            misses.add_metric([name], cache.misses)
            size.add_metric([name], len(cache))
        yield from (hits, misses, size)


def custom_families(samples: Sequence[Any]) -> Iterator[Metric]:
    """Families ``a3mail_custom_<name>`` for stored custom metrics (name, kind, labels, value)."""
    families: dict[str, Metric] = {}
    for sample in samples:
        family = families.get(sample.name)
        full = f"{PREFIX}_custom_{sample.name}"
        if family is None:
            cls = CounterMetricFamily if sample.kind == "counter" else GaugeMetricFamily
            family = cls(full, f"Custom metric {sample.name}", labels=None)
            families[sample.name] = family
        sample_name = full + "_total" if sample.kind == "counter" else full
        family.add_sample(sample_name, dict(sample.labels), float(sample.value))
    yield from families.values()


@functools.cache
def _sample_sum(metric: Any, suffix: str, **labels: str) -> float:
    """The sum of *metric*'s samples named ``*suffix`` whose labels include *labels*."""
    return sum(
        s.value
        for m in metric.collect()
        for s in m.samples
        if s.name.endswith(suffix) and all(s.labels.get(k) == v for k, v in labels.items())
    )


def detached() -> Metrics:
    """A :class:`Metrics` nobody serves: the default of parts built without a runtime."""
    return Metrics()
