"""The ops surface (/health, /ready, /metrics) and the admin API in memory, over a live
runtime, plus a Prometheus text parser for assertions."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from a3mail.http.ops import OpsResource
from a3mail.http.surfaces import HttpRoot, Surface
from a3mail.runtime import ListenerState, Runtime
from tests.http.support import ApiTestCase, Reply


def parse_metrics(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus exposition: (name, sorted labels) -> value."""
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float | None:
    """One sample's value (None if absent)."""
    return samples.get((name, tuple(sorted(labels.items()))))


class OpsTestCase(ApiTestCase):
    """``self.call`` reaches the admin API and the ops surface of ``self.live``."""

    def runtime(self) -> Runtime:
        return self.live_runtime()

    async def setUp(self) -> None:  # type: ignore[override]
        await super().setUp()
        admin = Surface("admin", ("/api/v1",), self.router)
        self.ops = OpsResource(self.live, self.clock)
        ops = Surface("ops", ("/health", "/ready", "/metrics"), self.ops)
        self.root = HttpRoot([admin, ops], fallback=admin)
        self.site.resource = self.root
        self.http = self.stub()

    def all_listening(self) -> None:
        """Mark every configured listener as listening (as the service does)."""
        for name, description in self.live.config.listeners.items():
            self.live.listeners[name] = ListenerState(
                name, description, "listening", address="127.0.0.1:1"
            )

    async def scrape(self) -> dict[Any, float]:
        """GET /metrics, checked to be Prometheus text, parsed."""
        reply = await self.call("GET", "/metrics", key=None)
        self.assertEqual(reply.status, 200, reply.body[:300])
        self.assertTrue((reply.header("content-type") or "").startswith("text/plain"))
        return parse_metrics(reply.body.decode())

    async def get(self, path: str, key: str | None = "reader") -> Reply:
        """A GET with the read-only key (by default)."""
        return await self.call("GET", path, key=key)
