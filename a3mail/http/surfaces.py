"""The HTTP listener's root: API surfaces chosen by path prefix.

Several surfaces share the ``http`` listener (the admin API now; the ops endpoints and the
temp-mail API later).  Each is a :class:`Surface`: a name, the path prefixes it owns and a
twisted.web resource.  :class:`HttpRoot` hands each request to the surface with the longest
matching prefix (``/api/v1`` beats ``/api``), or to the fallback surface (whose JSON 404
carries its rate-limit headers) when none matches.  The surface's resource is called with
the whole path in ``request.path`` (``prepath`` empty), so its routes are full paths.

To add a surface: write ``build_surface(runtime, clock) -> Surface`` in its module and add
``"name": "module:build_surface"`` to :data:`a3mail.http.factory.SURFACES`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
from twisted.web.resource import Resource


@attrs.frozen
class Surface:
    """One API surface: its path prefixes (``/api/v1``), resource and lifecycle hooks."""

    name: str
    prefixes: tuple[str, ...]
    resource: Any
    start: Callable[[], None] = lambda: None
    stop: Callable[[], Any] = lambda: None


class HttpRoot(Resource):
    """Dispatches every request to one surface by path prefix."""

    isLeaf = True

    def __init__(self, surfaces: Sequence[Surface], fallback: Surface) -> None:
        super().__init__()
        self.surfaces = list(surfaces)
        self.fallback = fallback
        pairs = [(p.rstrip("/").encode(), s) for s in self.surfaces for p in s.prefixes]
        self._prefixes = sorted(pairs, key=lambda pair: len(pair[0]), reverse=True)

    def surface_for(self, path: bytes) -> Surface:
        """The surface owning *path*."""
        for prefix, surface in self._prefixes:
            if path == prefix or path.startswith(prefix + b"/") or not prefix:
                return surface
        return self.fallback

    def render(self, request: Any) -> Any:
        """Let the owning surface answer."""
        return self.surface_for(request.path).resource.render(request)
