"""ASGI middleware whose server span the dye rules can match.

A thin layer over ``opentelemetry-instrumentation-asgi``'s
``OpenTelemetryMiddleware``, which extracts the incoming context with the
global propagator, attaches it (so baggage and the dye flow to every span and
outgoing call below) and starts the server span with the attributes its
``default_span_details`` callback returns. :class:`TinctASGIMiddleware` uses
that callback to add, before the span starts, ``enduser.id`` (header or
callback) and ``http.route`` (resolver; :func:`starlette_route` for Starlette
apps), and to name the span ``GET /orders/{id}`` (semantic conventions, HTTP
server span name; just ``GET`` without a route) instead of after the path.
A request a rule dyes at this span has its dye put in the context
(``carry_dye``) while the app runs, so the next hops see it too.

Every HTTP request, sampled or not, is also timed into
``http.server.request.duration`` (tracing.red), from the call until the app
returns (the response sent). The OpenTelemetry middleware's own metrics are
switched off: without the process-wide ``OTEL_SEMCONV_STABILITY_OPT_IN=http``
they use the old names and milliseconds, and with it they would count each
request a second time.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from contextvars import ContextVar
from typing import Any, Literal

from opentelemetry import trace
from opentelemetry.metrics import MeterProvider, NoOpMeterProvider
from opentelemetry.trace import TracerProvider

from tinct.tracing.dyeing import carry_dye
from tinct.tracing.instrument import (
    ENDUSER_ID,
    HTTP_ROUTE,
    header_user,
    require_module,
    server_span_name,
)
from tinct.tracing.red import ServerDuration

__all__ = ["TinctASGIMiddleware", "starlette_route"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class TinctASGIMiddleware:
    """Traces each HTTP/websocket request of an ASGI app in a span dye rules can match.

    Args:
        app: the ASGI application.
        user_header: the request header holding ``enduser.id``; None for none.
        user_callback: ``scope -> user id or None``; when given it is asked
            first, and the header only when it returns None.
        route_resolver: ``scope -> route template or None``, e.g.
            ``starlette_route(app)``; called before the app routes the request.
        tracer_provider: default: the global one.
        meter_provider: for ``http.server.request.duration``; default: the
            global one.
        exclude_spans: the OpenTelemetry middleware's per-message
            ``receive``/``send`` spans to leave out; both by default, since
            they multiply a trace's spans without naming anything new.

    Callbacks run on the event loop before the span starts: they must not
    block; an exception they raise counts as "no user" / "no route".
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        user_header: str | None = "x-user-id",
        user_callback: Callable[[Scope], str | None] | None = None,
        route_resolver: Callable[[Scope], str | None] | None = None,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        exclude_spans: Sequence[Literal["receive", "send"]] = ("receive", "send"),
    ) -> None:
        asgi = require_module("opentelemetry.instrumentation.asgi")
        self.app = app
        self._user_header = user_header.lower().encode("latin-1") if user_header else None
        self._user_callback = user_callback
        self._route_resolver = route_resolver
        self._otel = asgi.OpenTelemetryMiddleware(
            _carrying_dye(app),
            default_span_details=self._span_details,
            tracer_provider=tracer_provider,
            meter_provider=NoOpMeterProvider(),
            exclude_spans=list(exclude_spans) or None,
        )
        self._duration = ServerDuration(meter_provider)
        # The route __call__ resolved for the request in flight, for
        # _span_details, which the OpenTelemetry middleware calls in the same
        # context; one variable per instance, so nested middleware keep theirs.
        self._resolved: ContextVar[tuple[str | None] | None] = ContextVar(
            f"tinct_asgi_route_{id(self)}", default=None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app inside the request's server span (ASGI 3)."""
        # Only the outermost server span times the request: a nested
        # middleware would count it twice.
        if scope.get("type") != "http" or trace.get_current_span() is not trace.INVALID_SPAN:
            await self._otel(scope, receive, send)
            return
        start = time.perf_counter()
        route = self._route(scope)
        status: int | None = None

        async def sending(message: Message) -> None:
            nonlocal status
            if message.get("type") == "http.response.start":
                status = message.get("status")
            await send(message)

        error = None
        token = self._resolved.set((route,))
        try:
            await self._otel(scope, receive, sending)
        except Exception as exc:
            error = type(exc).__qualname__
            raise
        finally:
            self._resolved.reset(token)
            self._duration.record(
                time.perf_counter() - start,
                scope.get("method"),
                route,
                status,
                scope.get("scheme"),
                scope.get("http_version"),
                error,
            )

    def _route(self, scope: Scope) -> str | None:
        if self._route_resolver is None:
            return None
        try:
            return self._route_resolver(scope) or None
        except Exception:
            return None

    def _span_details(self, scope: Scope) -> tuple[str, dict[str, Any]]:
        attributes: dict[str, Any] = {}
        # __call__ resolved the route of an HTTP request already.
        resolved = self._resolved.get()
        route = resolved[0] if resolved is not None else self._route(scope)
        if route:
            attributes[HTTP_ROUTE] = route
        user = self._user(scope)
        if user:
            attributes[ENDUSER_ID] = user
        if scope.get("type") == "websocket":
            return route or str(scope.get("path", "")) or "websocket", attributes
        return server_span_name(scope.get("method"), route), attributes

    def _user(self, scope: Scope) -> str | None:
        if self._user_callback is not None:
            try:
                user = self._user_callback(scope)
            except Exception:
                user = None
            if user:
                return header_user(str(user))
        if self._user_header is None:
            return None
        for name, value in scope.get("headers") or ():
            if name.lower() == self._user_header:
                return header_user(value)
        return None


def _carrying_dye(app: ASGIApp) -> ASGIApp:
    """``app`` run with the server span's rule dye (if any) in the context."""

    async def carrying(scope: Scope, receive: Receive, send: Send) -> None:
        with carry_dye(trace.get_current_span()):
            await app(scope, receive, send)

    return carrying


def starlette_route(app: Any) -> Callable[[Scope], str | None]:
    """A route resolver for a Starlette app (or router): ``scope -> "/orders/{id}"``.

    Asks the app's routes the way its router will (``Route.matches``), through
    ``Mount``s, preferring a full match (path and method) to a partial one
    (path only, as for a 405), so the span names the template, not the path.
    """
    routing = require_module("starlette.routing")

    def find(routes: Sequence[Any], scope: Scope, prefix: str) -> str | None:
        partial = None
        for route in routes:
            match, child = route.matches(scope)
            if match == routing.Match.NONE:
                continue
            path = prefix + str(getattr(route, "path", ""))
            nested = getattr(route, "routes", None) if isinstance(route, routing.Mount) else None
            if nested:
                found = find(nested, {**scope, **child}, path)
                if found is not None:
                    return found
                continue
            if match == routing.Match.FULL:
                return path
            partial = partial or path
        return partial

    def resolve(scope: Scope) -> str | None:
        if scope.get("type") not in ("http", "websocket"):
            return None
        return find(app.routes, scope, "")

    return resolve
