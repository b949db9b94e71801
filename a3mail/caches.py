"""In-process caches that count their hits and can be resized while a3mail runs.

:func:`cached` is a drop-in for ``functools.lru_cache`` on a pure function of hashable
arguments; the cache registers itself in :data:`CACHES` by name, so the operations API can
report hit rates (``GET /api/v1/metrics/application``, ``/api/v1/performance/stats``) and
change sizes (``POST /api/v1/performance/optimize``).  Everything runs on the reactor
thread; no locking.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

#: The largest size a cache may be given.
MAX_CACHE_SIZE = 1_000_000


class LruCache(Generic[R]):
    """A least-recently-used cache with hit, miss and eviction counters."""

    def __init__(self, name: str, maxsize: int) -> None:
        self.name = name
        self.maxsize = maxsize
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self._items: OrderedDict[Hashable, R] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get_or_compute(self, key: Hashable, compute: Callable[[], R]) -> R:
        """The cached value of *key*, computing (and keeping) it on a miss."""
        try:
            value = self._items[key]
        except KeyError:
            self.misses += 1
            value = compute()
            self._items[key] = value
            self._trim()
            return value
        self.hits += 1
        self._items.move_to_end(key)
        return value

    def resize(self, maxsize: int) -> None:
        """Change the capacity (1..MAX_CACHE_SIZE); extra entries are evicted at once."""
        if not 1 <= maxsize <= MAX_CACHE_SIZE:
            raise ValueError(f"cache size must be 1..{MAX_CACHE_SIZE}")
        self.maxsize = maxsize
        self._trim()

    def clear(self) -> None:
        """Drop every entry (counters are kept)."""
        self._items.clear()

    def _trim(self) -> None:
        while len(self._items) > self.maxsize:
            self._items.popitem(last=False)
            self.evictions += 1

    @property
    def lookups(self) -> int:
        """Hits plus misses."""
        return self.hits + self.misses

    @property
    def hit_rate(self) -> float:
        """Hits per lookup (0.0 before the first lookup)."""
        return self.hits / self.lookups if self.lookups else 0.0

    def snapshot(self) -> dict[str, Any]:
        """The counters and sizes as plain data."""
        return {
            "size": len(self._items),
            "max_size": self.maxsize,
            "hits": self.hits,
            "misses": self.misses,
            "evictions": self.evictions,
            "hit_rate": round(self.hit_rate, 4),
        }


#: Every cache made by :func:`cached`, by name.
CACHES: dict[str, LruCache[Any]] = {}


def cached(name: str, maxsize: int) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a pure function with a registered :class:`LruCache` called *name*."""

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        cache: LruCache[R] = LruCache(name, maxsize)
        CACHES[name] = cache

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            key = (args, tuple(sorted(kwargs.items()))) if kwargs else args
            return cache.get_or_compute(key, lambda: fn(*args, **kwargs))

        wrapper.cache = cache  # type: ignore[attr-defined]
        return wrapper

    return decorate
