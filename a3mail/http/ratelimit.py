"""Rate limits per API key and per client address, shared by every a3mail process.

Fixed windows (one hour by default).  Each process counts requests in memory and, about
once a second, adds what it counted to PostgreSQL (``store.ratelimits``) in one statement
that also returns the totals of all processes.  A bucket seen for the first time in a window
(or idle for more than two flush intervals) reads its shared total before its request is
counted, so a process never decides on a total older than about two seconds.

The approximation: within one process counting is exact.  With P processes, each admits
requests against the last total it read, so past the limit at most what the other P-1
processes admitted since their last flush (about one second of their traffic for that key
or address) gets through: a bounded overshoot, never a drift.  If the database cannot be
reached, counting goes on in memory and the deltas are added when it comes back.
"""

from __future__ import annotations

from typing import Any

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall

from a3mail.logs import get_logger

log = get_logger(__name__)

FLUSH_INTERVAL = 1.0
MAX_BUCKETS = 200_000


@attrs.define
class RateLimitStats:
    """Requests refused for a rate limit by this process since it started."""

    refused: int = 0


STATS = RateLimitStats()

# The longest window any limiter of this process counts in, or any stored rate-limit setting
# names: several limiters (admin, temp-mail, freemail surfaces) share the counts table, and
# none may prune rows of a window another one still counts in.
_LONGEST_WINDOW = [0]


def note_window(seconds: float) -> None:
    """Tell every limiter of this process that windows of *seconds* are in use."""
    _LONGEST_WINDOW[0] = max(_LONGEST_WINDOW[0], int(seconds))


@attrs.frozen
class Decision:
    """The outcome of counting one request."""

    allowed: bool
    limit: int
    remaining: int
    reset: int  # when the window ends, seconds since the epoch

    def headers(self) -> dict[str, str]:
        """The X-RateLimit-* headers for this decision."""
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }


@attrs.define
class _Bucket:
    window: int
    size: int  # the window's length
    shared: int = 0  # the total of every process as last read (ours flushed included)
    pending: int = 0  # counted here, not yet added to the database
    watched: bool = False  # used since the last flush
    refreshed: float = 0.0  # when ``shared`` was last read from the database
    loading: Deferred[None] | None = None


async def count_request(
    limiter: RateLimiter, limits: Any, key_id: str | None, client_ip: str
) -> Decision:
    """Count one API request against the limits in force (a router's ``Limits``).

    First the ``global`` bucket (every request, ``limits.global_limit`` per
    ``limits.global_window``), then the caller's own bucket: ``key:<id>`` for a request with
    a valid API key (``per_key``), else ``ip:<address>`` (``per_ip``).  Returns the decision
    that refused the request, else the caller's bucket's decision (for the headers).
    """
    if limits.global_limit:
        overall = await limiter.hit("global", limits.global_limit, limits.global_window or None)
        if not overall.allowed:
            return overall
    if key_id is not None:
        return await limiter.hit(f"key:{key_id}", limits.per_key, limits.per_key_window or None)
    return await limiter.hit(f"ip:{client_ip}", limits.per_ip, limits.per_ip_window or None)


class RateLimiter:
    """Counts requests per bucket (``key:<id>``, ``ip:<address>``) in fixed windows."""

    def __init__(
        self,
        counters: Any,
        clock: Any,
        *,
        window: float = 3600.0,
        flush_interval: float = FLUSH_INTERVAL,
        max_buckets: int = MAX_BUCKETS,
    ) -> None:
        self.counters = counters
        self.clock = clock
        self.window = max(1, int(window))
        # The longest window any bucket used: rows of older windows are pruned.
        self.largest_window = self.window
        self.flush_interval = flush_interval
        self.max_buckets = max_buckets
        self.buckets: dict[str, _Bucket] = {}
        self._flushing: Deferred[None] | None = None
        self._loop: LoopingCall | None = None
        self._pruned_window = -1

    def window_start(self, size: int | None = None) -> int:
        """The start of the current window (of *size* seconds; default ``window``)."""
        size = size or self.window
        now = int(self.clock.seconds())
        return now - now % size

    async def hit(self, bucket: str, limit: int, window: float | None = None) -> Decision:
        """Count one request in *bucket*, unless that would go past *limit* (0: no limit).

        *window* is the bucket's window length in seconds (default ``self.window``); a
        bucket should keep one length (a new length starts a new count).
        """
        size = max(1, int(window)) if window else self.window
        if size > self.largest_window:
            self.largest_window = size
            note_window(size)
        window = self.window_start(size)
        reset = window + size
        if limit <= 0:
            return Decision(True, 0, 0, reset)
        state = self.buckets.get(bucket)
        if state is None or state.window != window:
            state = self._new_bucket(bucket, window, size)
        elif state.loading is None and self._stale(state):
            state.loading = Deferred.fromCoroutine(self._load(bucket, state))
        if state.loading is not None:
            await state.loading
        used = state.shared + state.pending
        state.watched = True
        if used >= limit:
            STATS.refused += 1
            return Decision(False, limit, 0, reset)
        state.pending += 1
        return Decision(True, limit, max(0, limit - used - 1), reset)

    def _stale(self, state: _Bucket) -> bool:
        """True for a bucket idle past two flush intervals: others may have used it since."""
        return float(self.clock.seconds()) - state.refreshed > 2 * self.flush_interval

    def _new_bucket(self, bucket: str, window: int, size: int) -> _Bucket:
        if len(self.buckets) >= self.max_buckets:
            self._shed()
        state = _Bucket(window, size)
        self.buckets[bucket] = state
        state.loading = Deferred.fromCoroutine(self._load(bucket, state))
        return state

    async def _load(self, bucket: str, state: _Bucket) -> None:
        try:
            state.shared = await self.counters.read(state.window, bucket)
            state.refreshed = float(self.clock.seconds())
        except Exception as e:
            log.warn("rate limit: cannot read {bucket}: {error}", bucket=bucket, error=str(e))
        finally:
            state.loading = None

    def _shed(self) -> None:
        """Forget buckets with nothing to flush (their counts are in the database)."""
        now = int(self.clock.seconds())
        idle = [n for n, b in self.buckets.items() if b.pending == 0 or b.window + b.size <= now]
        for name in idle:
            if self.buckets[name].loading is None:
                del self.buckets[name]

    def flush(self) -> Deferred[None]:
        """Add the pending counts to the database and read back the shared totals."""
        running = self._flushing
        if running is None:
            running = Deferred.fromCoroutine(self._flush())
            if not running.called:
                self._flushing = running
                running.addBoth(self._flushed)
        return running

    def _flushed(self, result: Any) -> Any:
        self._flushing = None
        return result

    async def _flush(self) -> None:
        current = self.window_start()
        now = int(self.clock.seconds())
        by_window: dict[int, dict[str, int]] = {}
        watched: dict[int, list[str]] = {}
        for name, state in list(self.buckets.items()):
            if state.pending:
                by_window.setdefault(state.window, {})[name] = state.pending
            elif state.watched and state.window + state.size > now and state.loading is None:
                watched.setdefault(state.window, []).append(name)
            state.watched = False
        for window in sorted(set(by_window) | set(watched)):
            deltas = by_window.get(window, {})
            try:
                totals = await self.counters.add(window, deltas, watched.get(window, []))
            except Exception as e:
                log.warn("rate limit: cannot record counts: {error}", error=str(e))
                continue
            for name, total in totals.items():
                known = self.buckets.get(name)
                if known is not None and known.window == window:
                    known.pending -= deltas.get(name, 0)
                    known.shared = total
                    known.refreshed = float(self.clock.seconds())
        ended = [n for n, b in self.buckets.items() if b.window + b.size <= now and not b.pending]
        for name in ended:
            del self.buckets[name]
        if self._pruned_window != current:
            self._pruned_window = current
            try:
                horizon = max(self.largest_window, _LONGEST_WINDOW[0])
                await self.counters.prune(int(self.clock.seconds()) - horizon)
            except Exception as e:
                log.warn("rate limit: cannot prune old counts: {error}", error=str(e))

    def start(self) -> None:
        """Flush every ``flush_interval`` seconds."""
        if self._loop is None:
            self._loop = LoopingCall(self._tick)
            self._loop.clock = self.clock
            self._loop.start(self.flush_interval, now=False)

    def _tick(self) -> None:
        if self._flushing is None and any(b.pending or b.watched for b in self.buckets.values()):
            self.flush().addErrback(lambda f: log.failure("rate limit flush failed", f))

    def stop(self) -> Deferred[None]:
        """Stop the periodic flush and flush once more."""
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        return self.flush()
