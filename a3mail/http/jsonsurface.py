"""The pieces the JSON API surfaces (temp-mail, freemail) share in their request pipeline:
asynchronous rendering, the route match, rate-limit counting and writing the answer.

Each surface keeps its own error class (status and message) and passes it in as
*error*; these helpers raise it with our own words only, never exception text."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import unquote_to_bytes

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import MapAdapter, RequestRedirect, Rule

from a3mail.http.ratelimit import RateLimiter
from a3mail.http.request import new_request_id

#: builds a surface's error from a status and a message safe to show
ErrorFactory = Callable[[int, str], Exception]


class AsyncJsonResource(Resource):
    """A leaf resource that answers every request from the coroutine ``_respond``."""

    isLeaf = True
    log: Logger

    def render(self, request: Any) -> Any:
        """Answer asynchronously."""
        request_id = new_request_id()
        request.setHeader(b"x-request-id", request_id.encode())
        request.setHeader(b"cache-control", b"no-store")
        gone: list[bool] = []
        request.notifyFinish().addErrback(lambda _: gone.append(True))
        done = Deferred.fromCoroutine(self._respond(request, request_id, gone))
        done.addErrback(lambda f: self.log.failure("{id}: writing the response", f, id=request_id))
        return NOT_DONE_YET

    async def _respond(self, request: Any, request_id: str, gone: list[bool]) -> None:
        """Answer *request*, unless the client is *gone* (non-empty) by then."""
        raise NotImplementedError


def log_unhandled(log: Logger, request_id: str, request: Any) -> None:
    """Log the exception being handled, with the request id and request line."""
    log.failure(
        "{request_id}: unhandled error in {method} {path}",
        request_id=request_id,
        method=request.method.decode("latin-1"),
        path=request.path.decode("latin-1")[:200],
    )


def log_answered(log: Logger, request_id: str, request: Any, status: int) -> None:
    """Log one answered request: id, request line, status."""
    log.info(
        "{request_id} {method} {path} {status}",
        request_id=request_id,
        method=request.method.decode("latin-1"),
        path=request.path.decode("latin-1")[:200],
        status=status,
    )


def write_body(
    request: Any,
    status: int,
    content_type: str,
    body: bytes,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """Write *body* with *status* and *content_type* (no body for HEAD) and finish."""
    request.setResponseCode(status)
    request.setHeader(b"content-type", content_type.encode("latin-1"))
    request.setHeader(b"content-length", str(len(body)).encode())
    for name, value in headers:
        request.setHeader(name, value)
    if request.method != b"HEAD":
        request.write(body)
    request.finish()


def match_route(
    adapter: MapAdapter, request: Any, error: ErrorFactory, not_allowed_status: int
) -> tuple[str, Rule, Mapping[str, Any]]:
    """The decoded path, rule and arguments for *request*; *error* 404 for an unknown
    path, and *not_allowed_status* for a known path with another method."""
    try:
        path = unquote_to_bytes(request.path).decode("utf-8")
    except UnicodeDecodeError:
        raise error(404, "not found") from None
    method = request.method.decode("latin-1").upper()
    try:
        rule, arguments = adapter.match(path, method=method, return_rule=True)
    except MethodNotAllowed:
        raise error(not_allowed_status, f"{method} is not supported here") from None
    except (NotFound, RequestRedirect):
        raise error(404, "not found") from None
    return path, rule, arguments


async def count_request(
    limiter: RateLimiter | None,
    request: Any,
    bucket: str,
    limit: int,
    error: ErrorFactory,
    window: float | None = None,
) -> None:
    """Count the request against *bucket* (the rate-limit headers go on the answer);
    *error* 429 with ``Retry-After`` past the limit.  No limiter: nothing counts."""
    if limiter is None:
        return
    decision = await limiter.hit(bucket, limit, window)
    if decision.limit:
        for header, value in decision.headers().items():
            request.setHeader(header.encode(), value.encode())
    if not decision.allowed:
        retry = max(1, decision.reset - int(limiter.clock.seconds()))
        request.setHeader(b"retry-after", str(retry).encode())
        raise error(429, f"rate limit exceeded; retry in {retry} s")
