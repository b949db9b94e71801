"""The ``http`` listener: one Site serving every registered API surface.

``listeners.PROTOCOL_FACTORIES["http"]`` names :func:`build_http`.  :data:`SURFACES` lists
the surfaces (name -> ``"module:function"`` builder, imported lazily); the first is the
fallback for paths no surface owns.  See :mod:`a3mail.http.surfaces` to add one.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

from a3mail.http.request import ApiSite
from a3mail.http.surfaces import HttpRoot, Surface
from a3mail.logs import get_logger
from a3mail.runtime import Runtime

log = get_logger(__name__)

SurfaceBuilder = Callable[[Runtime, Any], Surface]

#: name -> "module:function" building the surface from (runtime, clock).
SURFACES: dict[str, str] = {
    "admin": "a3mail.http.admin.api:build_surface",
    "tempmail": "a3mail.http.tempmail.api:build_surface",
    "ops": "a3mail.http.ops:build_surface",
}


def _builder(target: str) -> SurfaceBuilder:
    module_name, _, function_name = target.partition(":")
    builder: SurfaceBuilder = getattr(importlib.import_module(module_name), function_name)
    return builder


class HttpSite(ApiSite):
    """The API Site: starts and stops its surfaces with the listening port."""

    def __init__(self, root: HttpRoot, surfaces: Sequence[Surface], **kwargs: Any) -> None:
        super().__init__(root, **kwargs)
        self.surfaces = list(surfaces)

    def startFactory(self) -> None:
        """The port is listening: start the surfaces' background work."""
        super().startFactory()
        for surface in self.surfaces:
            surface.start()

    def stopFactory(self) -> None:
        """The port stopped: stop the surfaces' background work (final flushes)."""
        for surface in self.surfaces:
            try:
                surface.stop()
            except Exception:
                log.failure("stopping the {name} surface", name=surface.name)
        super().stopFactory()


def build_site(runtime: Runtime, clock: Any = None, names: Sequence[str] | None = None) -> HttpSite:
    """The Site for the ``http`` listener with the surfaces *names* (default: all)."""
    clock = clock if clock is not None else runtime.reactor
    chosen = list(SURFACES) if names is None else list(names)
    surfaces = [_builder(SURFACES[name])(runtime, clock) for name in chosen]
    root = HttpRoot(surfaces, fallback=surfaces[0])
    return HttpSite(
        root,
        surfaces,
        max_body=lambda: int(runtime.config.http.max_body),  # follows reloads
        clock=clock,
        timeout=runtime.config.http.request_timeout,
    )


def build_http(runtime: Runtime) -> HttpSite:
    """The protocol factory of the ``http`` listener."""
    return build_site(runtime)
