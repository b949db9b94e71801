"""The request pipeline of a JSON API surface over several Klein apps.

:class:`ApiRouter` is the twisted.web resource of a surface.  For each request it:

1. gives it a request id (``X-Request-Id``) and works out the client address;
2. matches the path against the routes of its Klein apps (no I/O yet);
3. authenticates the bearer key, if one is sent;
4. counts the request against the key's (or, without a valid key, the address's) rate
   limit and sets the ``X-RateLimit-*`` headers — on every response;
5. answers 404/405 for unknown routes, 401 without a valid key, 403 without the route's
   permission;
6. runs the handler and writes what it returns as JSON (or streams a file);
7. turns every error into the JSON error body (exception text never reaches the client;
   unexpected ones are logged with the request id and answered 500), and logs one line.

Klein provides the route declarations, werkzeug's matching and the handler binding; none of
Klein's own HTML responses (404, 405, 500) can be produced, because the router never hands
a request to ``KleinResource``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import unquote_to_bytes

import attrs
from klein import Klein
from twisted.internet.defer import Deferred
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from twisted.web.static import NoRangeStaticProducer
from werkzeug.exceptions import MethodNotAllowed as WerkzeugMethodNotAllowed
from werkzeug.exceptions import NotFound as WerkzeugNotFound
from werkzeug.routing import Map, MapAdapter, RequestRedirect, Rule

from a3mail.http import errors
from a3mail.http.auth import Authenticator, Principal, bearer_token
from a3mail.http.ratelimit import RateLimiter, count_request
from a3mail.http.request import (
    Network,
    RequestContext,
    client_ip,
    new_request_id,
    parse_networks,
)
from a3mail.http.responses import FileResponse, JsonResponse, dumps, iso_from_epoch
from a3mail.logs import get_logger
from a3mail.ops.metrics import Metrics, detached
from a3mail.store.db import StoreError, StoreUnavailable
from a3mail.store.records import (
    AlreadyExists,
    Conflict,
    InvalidName,
    LimitExceeded,
    NotFound,
    OverQuota,
)

log = get_logger(__name__)

JSON_TYPE = b"application/json"
# Permissions of the routes that change something (every success is in the audit log).
WRITES = frozenset({"write", "admin"})

# Store errors that may reach a handler's caller, as API errors (their text is ours).
_STORE_ERRORS: tuple[tuple[type[StoreError], type[errors.ApiError]], ...] = (
    (NotFound, errors.NotFound),
    (AlreadyExists, errors.Conflict),
    (Conflict, errors.Conflict),
    (LimitExceeded, errors.Conflict),
    (OverQuota, errors.Conflict),
    (InvalidName, errors.InvalidRequest),
)


@attrs.frozen
class Limits:
    """Rate limits (requests per window; 0 = none) and trusted proxies of a surface.

    Windows are in seconds; 0 = the limiter's own window (``http.rate_limit_window``).
    """

    per_key: int = 1000
    per_ip: int = 100
    trusted_proxies: tuple[Network, ...] = ()
    global_limit: int = 0
    global_window: float = 0
    per_key_window: float = 0
    per_ip_window: float = 0


class LimitsFromConfig:
    """The rate limits of the ``[http]`` configuration in force, recomputed only when a
    reload replaced the configuration.  *config* returns the current Config."""

    def __init__(self, config: Callable[[], Any]) -> None:
        self.config = config
        self._seen: Any = None
        self._limits = Limits()

    def __call__(self) -> Limits:
        http = self.config().http
        if http is not self._seen:
            self._seen = http
            self._limits = Limits(
                per_key=http.rate_limit_per_key,
                per_ip=http.rate_limit_per_ip,
                trusted_proxies=parse_networks(http.trusted_proxies),
            )
        return self._limits


@attrs.frozen
class _Match:
    app: Klein
    endpoint: str
    arguments: dict[str, Any]
    rule: str = ""

    @property
    def permission(self) -> str | None:
        handler: Any = self.app.endpoints[self.endpoint]
        permission: str | None = handler.a3mail_permission
        return permission


def error_body(error: errors.ApiError, request_id: str, now: float) -> dict[str, Any]:
    """The JSON error document."""
    return {
        "error": {
            "code": error.code,
            "message": error.message,
            "details": error.details,
            "timestamp": iso_from_epoch(now),
            "request_id": request_id,
        }
    }


def as_api_error(failure: BaseException) -> errors.ApiError | None:
    """The API error for an exception from a handler, or None if it is unexpected."""
    if isinstance(failure, errors.ApiError):
        return failure
    if isinstance(failure, StoreUnavailable):
        return errors.ServiceUnavailable(
            "the database is unavailable; try again shortly", headers={"Retry-After": "5"}
        )
    for store_error, api_error in _STORE_ERRORS:
        if isinstance(failure, store_error):
            return api_error(str(failure))
    return None


class ApiRouter(Resource):
    """A JSON API surface: routes of several Klein apps behind one pipeline."""

    isLeaf = True

    def __init__(
        self,
        apps: Sequence[Klein],
        *,
        authenticator: Authenticator,
        limiter: RateLimiter,
        limits: Callable[[], Limits],
        clock: Any,
        metrics: Metrics | None = None,
        audit_write: Callable[[Any, str], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__()
        # Records a successful write the handler did not record itself (admin API).
        self.audit_write = audit_write
        self.metrics = metrics if metrics is not None else detached()
        self.apps = list(apps)
        # One map with every app's rules: one match per request, and 405 across apps.
        combined = Map()
        for index, app in enumerate(self.apps):
            for rule in app.url_map.iter_rules():
                combined.add(Rule(rule.rule, methods=rule.methods, endpoint=(index, rule.endpoint)))
        self.adapter: MapAdapter = combined.bind("localhost")
        self.authenticator = authenticator
        self.limiter = limiter
        self.limits = limits
        self.clock = clock

    def render(self, request: Any) -> Any:
        """Answer the request asynchronously (see the module docstring)."""
        limits = self.limits()
        context = RequestContext(
            request_id=new_request_id(),
            started=self.clock.seconds(),
            client_ip=client_ip(request, limits.trusted_proxies),
        )
        request.a3mail_context = context
        request.setHeader(b"x-request-id", context.request_id.encode())
        request.setHeader(b"cache-control", b"no-store")
        gone: list[bool] = []
        request.notifyFinish().addErrback(lambda _: gone.append(True))
        done = Deferred.fromCoroutine(self._respond(request, context, limits, gone))
        done.addErrback(
            lambda f: log.failure("{id}: writing the response", f, id=context.request_id)
        )
        return NOT_DONE_YET

    async def _respond(
        self, request: Any, context: RequestContext, limits: Limits, gone: list[bool]
    ) -> None:
        try:
            result = await self._dispatch(request, context, limits)
        except Exception as e:
            error = as_api_error(e)
            if error is None:
                log.failure(
                    "{request_id}: unhandled error in {method} {path}",
                    request_id=context.request_id,
                    method=request.method.decode("latin-1"),
                    path=request.path.decode("latin-1")[:200],
                )
                error = errors.ApiError("internal server error")
            result = JsonResponse(
                error_body(error, context.request_id, self.clock.seconds()),
                error.status,
                error.headers,
            )
        if gone:
            _close(result)
            return
        self._write(request, context, result)

    def _match(self, request: Any) -> tuple[_Match | None, errors.ApiError | None]:
        try:
            path = unquote_to_bytes(request.path).decode("utf-8")
        except UnicodeDecodeError:
            return None, errors.InvalidRequest("the path is not UTF-8", {"field": "path"})
        method = request.method.decode("latin-1").upper()
        try:
            rule, arguments = self.adapter.match(path, method=method, return_rule=True)
        except WerkzeugMethodNotAllowed as e:
            allowed = set(e.valid_methods or ())
        except (WerkzeugNotFound, RequestRedirect):
            allowed = set()
        else:
            index, endpoint = rule.endpoint
            return _Match(self.apps[index], endpoint, dict(arguments), rule.rule), None
        if allowed:
            methods = ", ".join(sorted(allowed))
            return None, errors.MethodNotAllowed(
                f"{method} is not allowed here; use {methods}",
                {"allowed": sorted(allowed)},
                {"Allow": methods},
            )
        return None, errors.NotFound("no such endpoint", {"path": path[:200]})

    async def _dispatch(self, request: Any, context: RequestContext, limits: Limits) -> Any:
        match, route_error = self._match(request)
        if match is not None:
            context.route = match.rule
        principal: Principal | None = None
        auth_error: errors.ApiError | None = None
        try:
            token = bearer_token(request)
            if token is not None:
                principal = await self.authenticator.authenticate(token)
        except errors.Unauthorized as e:
            auth_error = e
        key_id = principal.key_id if principal is not None else None
        decision = await count_request(self.limiter, limits, key_id, context.client_ip)
        if decision.limit:
            for name, value in decision.headers().items():
                request.setHeader(name.encode(), value.encode())
        if not decision.allowed:
            retry = max(1, decision.reset - int(self.clock.seconds()))
            raise errors.RateLimited(
                f"rate limit of {decision.limit} requests exceeded; retry in {retry} s",
                {"limit": decision.limit, "reset": decision.reset},
                {"Retry-After": str(retry)},
            )
        if auth_error is not None:
            raise auth_error
        if route_error is not None or match is None:
            raise route_error or errors.NotFound("no such endpoint")
        context.principal = principal
        permission = match.permission
        if permission is not None:
            if principal is None:
                raise errors.Unauthorized(
                    "an API key is required: Authorization: Bearer <key>",
                    headers={"WWW-Authenticate": 'Bearer realm="a3mail"'},
                )
            principal.require(permission)
        result = await _maybe_await(
            match.app.execute_endpoint(match.endpoint, request, **match.arguments)
        )
        if self.audit_write is not None and permission in WRITES and not context.audited:
            await self.audit_write(request, match.rule or request.path.decode("latin-1"))
        return result

    def _write(self, request: Any, context: RequestContext, result: Any) -> None:
        if isinstance(result, FileResponse):
            context.status = 200
            request.setResponseCode(200)
            request.setHeader(b"content-type", result.content_type.encode())
            request.setHeader(b"content-length", str(result.size).encode())
            for name, value in result.headers.items():
                request.setHeader(name.encode(), value.encode())
            self._log(request, context)
            if request.method == b"HEAD":
                result.file.close()
                request.finish()
                return
            NoRangeStaticProducer(request, result.file).start()
            return
        if not isinstance(result, JsonResponse):
            result = JsonResponse(result)
        body = result.body if isinstance(result.body, bytes) else dumps(result.body)
        context.status = result.status
        request.setResponseCode(result.status)
        request.setHeader(b"content-type", JSON_TYPE)
        for name, value in result.headers.items():
            request.setHeader(name.encode(), value.encode())
        request.setHeader(b"content-length", str(len(body)).encode())
        self._log(request, context)
        if request.method != b"HEAD":
            request.write(body)
        request.finish()

    def _log(self, request: Any, context: RequestContext) -> None:
        principal = context.principal
        method = request.method.decode("latin-1")
        path = request.path.decode("latin-1")[:200]
        ms = (self.clock.seconds() - context.started) * 1000
        key = principal.key_id if principal is not None else "-"
        self.metrics.http_request(context.route, method, context.status, ms / 1000)
        # One pre-formatted field keeps the text observers cheap; the parts stay as fields
        # for the JSON log.
        log.info(
            "{access}",
            access=f"{context.request_id} {context.client_ip} {method} {path}"
            f" {context.status} {ms:.1f}ms {key}",
            request_id=context.request_id,
            ip=context.client_ip,
            method=method,
            path=path,
            status=context.status,
            ms=ms,
            key=key,
        )


def _close(result: Any) -> None:
    if isinstance(result, FileResponse):
        result.file.close()


async def _maybe_await(value: Any) -> Any:
    if isinstance(value, Deferred):
        return await value
    return value
