"""Health and readiness of a running a3mail, measured when asked.

:class:`HealthChecker` runs one check per component — ``database`` (a ``SELECT 1`` round
trip and the pool's use), ``disk_space`` (the data directory's file system), ``memory``
(the machine's and this process's), ``queue`` (the outbound backlog) and ``listeners``
(every configured listener listening) — each answering ``healthy``, ``degraded`` or
``unhealthy`` with its response time (ms) and the figures it judged.  The thresholds are
the constants below (docs/operations.md lists them).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import attrs
import psutil

import a3mail

HEALTHY = "healthy"
DEGRADED = "degraded"
UNHEALTHY = "unhealthy"
_RANK = {HEALTHY: 0, DEGRADED: 1, UNHEALTHY: 2}

#: A database round trip slower than this (seconds) is degraded; no answer within
#: DB_TIMEOUT is unhealthy.
DB_SLOW = 0.5
DB_TIMEOUT = 3.0
#: Disk and memory use (percent) from which a check is degraded / unhealthy.
DISK_DEGRADED, DISK_UNHEALTHY = 90.0, 98.0
MEMORY_DEGRADED, MEMORY_UNHEALTHY = 90.0, 98.0
#: An outbound entry waiting longer than this (seconds), or more entries than QUEUE_LARGE
#: waiting, make the queue degraded.
QUEUE_OLD = 3600.0
QUEUE_LARGE = 10_000

COMPONENTS = ("database", "disk_space", "memory", "queue", "listeners")


@attrs.frozen
class Check:
    """One component's verdict."""

    status: str
    response_time: float  # milliseconds
    details: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        """The JSON form of the /health ``checks`` entries."""
        return {
            "status": self.status,
            "response_time": round(self.response_time, 3),
            "details": self.details,
        }


def worst(statuses: list[str]) -> str:
    """The worst of several statuses (healthy for none)."""
    return max(statuses, key=_RANK.__getitem__, default=HEALTHY)


def by_percent(percent: float, degraded: float, unhealthy: float) -> str:
    """The status of a use percentage against two thresholds."""
    if percent >= unhealthy:
        return UNHEALTHY
    if percent >= degraded:
        return DEGRADED
    return HEALTHY


def iso_now() -> str:
    """Now, ISO 8601 UTC."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class HealthChecker:
    """Runs the checks over one runtime; database calls are bounded by timeouts on *clock*
    (the reactor; tests pass a Clock)."""

    def __init__(self, runtime: Any, clock: Any) -> None:
        self.runtime = runtime
        self.clock = clock
        self.checks: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {
            "database": self.database,
            "disk_space": self.disk_space,
            "memory": self.memory,
            "queue": self.queue,
            "listeners": self.listeners,
        }

    async def run(self, component: str) -> Check:
        """Run one check, timing it."""
        started = time.perf_counter()
        result = await self.checks[component]()
        elapsed = (time.perf_counter() - started) * 1000
        status = result.pop("status")
        return Check(status, elapsed, result)

    async def run_all(self) -> dict[str, Check]:
        """Every check, in :data:`COMPONENTS` order."""
        return {name: await self.run(name) for name in COMPONENTS}

    async def report(self, detailed: bool = False) -> dict[str, Any]:
        """The /health document (``detailed`` adds the process and configuration facts)."""
        checks = await self.run_all()
        body: dict[str, Any] = {
            "status": worst([c.status for c in checks.values()]),
            "timestamp": iso_now(),
            "uptime": max(0, int(self.runtime.uptime)),
            "version": a3mail.__version__,
            "checks": {name: check.as_json() for name, check in checks.items()},
        }
        if detailed:
            body["process"] = process_facts()
            body["thresholds"] = thresholds()
        return body

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Whether the database answers and every configured listener listens."""
        database = await self.run("database")
        services: dict[str, bool] = {"database": database.status != UNHEALTHY}
        for name, state in self.listener_states().items():
            services[name] = state["state"] == "listening"
        failing = sorted(name for name, up in services.items() if not up)
        ready = not failing
        body: dict[str, Any] = {"ready": ready, "timestamp": iso_now(), "services": services}
        if not ready:
            body["failing"] = failing
        return ready, body

    # -- the checks ------------------------------------------------------------------------

    async def database(self) -> dict[str, Any]:
        """A round trip and the pool figures."""
        pool = self.runtime.store.db.stats()
        size, available = pool.get("pool_size", 0), pool.get("pool_available", 0)
        details: dict[str, Any] = {
            "connection_pool": f"{max(0, size - available)}/{pool.get('pool_max', 0)} active",
            "pool_size": size,
            "pool_available": available,
            "pool_max": pool.get("pool_max", 0),
            "requests_waiting": pool.get("requests_waiting", 0),
        }
        try:
            d = self.runtime.store.ping()
            d.addTimeout(DB_TIMEOUT, self.clock)
            seconds = await d
        except Exception as e:
            details["error"] = _reason(e)
            return {"status": UNHEALTHY, **details}
        details["query_time"] = f"{seconds * 1000:.1f}ms"
        slow = seconds >= DB_SLOW or details["requests_waiting"] > 0
        return {"status": DEGRADED if slow else HEALTHY, **details}

    async def disk_space(self) -> dict[str, Any]:
        """Use of the file system holding the data directory."""
        data_dir = str(self.runtime.config.data_dir)
        usage = psutil.disk_usage(data_dir)
        return {
            "status": by_percent(usage.percent, DISK_DEGRADED, DISK_UNHEALTHY),
            "path": data_dir,
            "usage_percent": f"{usage.percent:.1f}%",
            "available_space": _size(usage.free),
            "free_bytes": usage.free,
            "total_bytes": usage.total,
        }

    async def memory(self) -> dict[str, Any]:
        """The machine's memory use and this process's resident size."""
        memory = psutil.virtual_memory()
        rss = psutil.Process().memory_info().rss
        return {
            "status": by_percent(memory.percent, MEMORY_DEGRADED, MEMORY_UNHEALTHY),
            "usage_percent": f"{memory.percent:.1f}%",
            "available_memory": _size(memory.available),
            "available_bytes": memory.available,
            "process_rss_bytes": rss,
        }

    async def queue(self) -> dict[str, Any]:
        """The outbound backlog: entries waiting and the oldest one's age."""
        try:
            d = self.runtime.store.queue_admin.backlog()
            d.addTimeout(DB_TIMEOUT, self.clock)
            backlog = await d
        except Exception as e:
            return {"status": UNHEALTHY, "error": _reason(e)}
        waiting = backlog.queues.get("outgoing", 0) + backlog.queues.get("retry", 0)
        age = backlog.oldest_age or 0.0
        old = age > QUEUE_OLD or waiting > QUEUE_LARGE
        return {
            "status": DEGRADED if old else HEALTHY,
            "waiting": waiting,
            "queues": dict(backlog.queues),
            "oldest_age_seconds": round(age, 1),
        }

    async def listeners(self) -> dict[str, Any]:
        """Whether every configured listener is listening."""
        states = self.listener_states()
        down = sorted(name for name, s in states.items() if s["state"] != "listening")
        return {"status": UNHEALTHY if down else HEALTHY, "listeners": states, "down": down}

    def listener_states(self) -> dict[str, dict[str, Any]]:
        """Each configured listener's state (``not_started`` if the service has none)."""
        known = self.runtime.listeners
        states = {}
        for name, description in sorted(self.runtime.config.listeners.items()):
            state = known.get(name)
            states[name] = {
                "state": state.state if state is not None else "not_started",
                "endpoint": description,
                "address": state.address if state is not None else None,
            }
            if state is not None and state.error:
                states[name]["error"] = state.error
        return states


def process_facts() -> dict[str, Any]:
    """This process: pid, threads, open files, CPU times."""
    process = psutil.Process()
    with process.oneshot():
        times = process.cpu_times()
        return {
            "pid": process.pid,
            "threads": process.num_threads(),
            "open_files": len(process.open_files()),
            "cpu_user_seconds": round(times.user, 3),
            "cpu_system_seconds": round(times.system, 3),
            "memory_rss_bytes": process.memory_info().rss,
        }


def thresholds() -> dict[str, float]:
    """The thresholds the checks apply."""
    return {
        "database_slow_seconds": DB_SLOW,
        "database_timeout_seconds": DB_TIMEOUT,
        "disk_degraded_percent": DISK_DEGRADED,
        "disk_unhealthy_percent": DISK_UNHEALTHY,
        "memory_degraded_percent": MEMORY_DEGRADED,
        "memory_unhealthy_percent": MEMORY_UNHEALTHY,
        "queue_old_seconds": QUEUE_OLD,
        "queue_large_entries": QUEUE_LARGE,
    }


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024
    return f"{n:.1f}TB"


def _reason(error: Exception) -> str:
    """A short reason for a failed check (our store's errors are safe to show)."""
    from a3mail.store.db import StoreError

    if isinstance(error, StoreError):
        return str(error)[:200]
    return type(error).__name__
