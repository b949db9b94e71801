"""Declaring routes: the method, the path and the permission of each Klein handler."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import attrs
from klein import Klein

F = TypeVar("F", bound=Callable[..., Any])

#: A route anyone may call (no API key), e.g. the OpenAPI document.
PUBLIC = None


def endpoint(app: Klein, method: str, path: str, permission: str | None) -> Callable[[F], F]:
    """Register a handler for one method and path, needing *permission* (or PUBLIC).

    Paths use werkzeug's syntax (``/api/v1/users/<user_id>``).  The permission is read by
    the router before the handler runs, and by the OpenAPI test.
    """

    def decorate(handler: F) -> F:
        setattr(handler, "a3mail_permission", permission)  # noqa: B010 - read by the router
        setattr(handler, "a3mail_route", (method, path))  # noqa: B010
        app.route(path, methods=[method])(handler)
        return handler

    return decorate


@attrs.frozen
class RouteInfo:
    """One declared route, as the OpenAPI test and the docs see it."""

    method: str
    path: str
    permission: str | None
    endpoint: str


def routes_of(app: Klein) -> Iterator[RouteInfo]:
    """Every route of a Klein app declared with :func:`endpoint` (HEAD/OPTIONS left out)."""
    for rule in app.url_map.iter_rules():
        handler: Any = app.endpoints[rule.endpoint]
        method, path = handler.a3mail_route
        yield RouteInfo(method, path, handler.a3mail_permission, rule.endpoint)
