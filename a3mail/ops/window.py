"""A bounded rolling window of request outcomes: latency percentiles and throughput.

The HTTP front adds one sample per answered request; ``/api/v1/metrics/application`` and
``/api/v1/performance/stats`` read averages, percentiles and rates from the samples of the
last :attr:`RequestWindow.span` seconds (at most :attr:`RequestWindow.capacity` of them, so
memory stays bounded however busy the server is).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

import attrs

DEFAULT_CAPACITY = 10_000
DEFAULT_SPAN = 300.0


@attrs.frozen
class Sample:
    """One answered request."""

    at: float  # when it finished (seconds, the window's clock)
    seconds: float  # how long it took
    status: int


@attrs.frozen
class WindowFigures:
    """What the window says about recent requests (latencies in milliseconds)."""

    count: int
    failed: int  # status >= 500
    client_errors: int  # 400 <= status < 500
    avg_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    per_second: float
    span: float  # seconds the figures cover

    @property
    def error_rate(self) -> float:
        """Failed requests (5xx) per request (0.0 without requests)."""
        return self.failed / self.count if self.count else 0.0


def percentile(ordered: list[float], fraction: float) -> float:
    """The nearest-rank percentile of an ascending list (0.0 for an empty one)."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


class RequestWindow:
    """The last requests (bounded by count and by age)."""

    def __init__(
        self,
        clock: Callable[[], float],
        capacity: int = DEFAULT_CAPACITY,
        span: float = DEFAULT_SPAN,
    ) -> None:
        self.clock = clock
        self.capacity = capacity
        self.span = span
        self.started = clock()
        self._samples: deque[Sample] = deque(maxlen=capacity)

    def add(self, seconds: float, status: int) -> None:
        """Note one answered request."""
        self._samples.append(Sample(self.clock(), max(0.0, seconds), status))

    def figures(self) -> WindowFigures:
        """Averages, percentiles and the rate over the recent samples."""
        now = self.clock()
        oldest = now - self.span
        recent = [s for s in self._samples if s.at >= oldest]
        latencies = sorted(s.seconds * 1000 for s in recent)
        failed = sum(1 for s in recent if s.status >= 500)
        client = sum(1 for s in recent if 400 <= s.status < 500)
        covered = min(self.span, max(now - self.started, 0.0))
        if len(recent) == self.capacity and recent:
            covered = min(covered, max(now - recent[0].at, 0.0))
        per_second = len(recent) / covered if covered > 0 else 0.0
        return WindowFigures(
            count=len(recent),
            failed=failed,
            client_errors=client,
            avg_ms=round(sum(latencies) / len(latencies), 3) if latencies else 0.0,
            p50_ms=round(percentile(latencies, 0.50), 3),
            p95_ms=round(percentile(latencies, 0.95), 3),
            p99_ms=round(percentile(latencies, 0.99), 3),
            per_second=round(per_second, 3),
            span=round(covered, 3),
        )
