"""WSGI middleware whose server span the dye rules can match.

OpenTelemetry's ``opentelemetry-instrumentation-wsgi`` middleware starts the
server span with the request's method, URL and peer only, and names it after
the path. A sampler sees only the attributes a span *starts* with, so a dye
rule on ``user:42`` or ``route:GET /orders/{id}`` could not match it.
:class:`TinctWSGIMiddleware` builds the same span itself — the request
attributes come from that package's ``collect_request_attributes``, in the
semantic-convention mode ``OTEL_SEMCONV_STABILITY_OPT_IN`` selects — and adds,
before the span starts:

* the incoming context, extracted with the global propagator and attached,
  so baggage (and the dye) flows to every span and outgoing call below;
* ``enduser.id`` from a header (``x-user-id`` by default) or a callback;
* ``http.route`` from a resolver, naming the span ``GET /orders/{id}``
  (semantic conventions, HTTP server span name; just ``GET`` without a route).

A request a rule dyes at this span (``tinct.dye`` set by ``DyeSampler``) has
its dye put in the context (``carry_dye``) for the app's call and its
response iteration, so the next hops see it too.

Every request, sampled or not, is also timed into
``http.server.request.duration`` (tracing.red). As in OpenTelemetry's WSGI
middleware, the time runs from the call until the response iterable is
closed, so a streamed body counts; a server that never iterates nor closes
the response has it recorded when the generator is collected.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any

from opentelemetry import context, propagate, trace
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider

from tinct.tracing.dyeing import carry_dye
from tinct.tracing.instrument import (
    ENDUSER_ID,
    HTTP_ROUTE,
    header_user,
    require_module,
    server_span_name,
)
from tinct.tracing.red import ServerDuration

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["TinctWSGIMiddleware"]

_ExcInfo = tuple[type[BaseException], BaseException, TracebackType] | tuple[None, None, None] | None


class TinctWSGIMiddleware:
    """Traces each request of a WSGI app in a server span that dye rules can match.

    Args:
        app: the WSGI application.
        user_header: the request header holding ``enduser.id``; None for none.
        user_callback: ``environ -> user id or None``; when given it is asked
            first, and the header only when it returns None.
        route_resolver: ``environ -> route template or None``, e.g. a Flask
            ``url_map`` look-up; called before the app routes the request.
        tracer_provider: default: the global one.
        meter_provider: for ``http.server.request.duration``; default: the
            global one.

    Callbacks run on the request path before the span starts: they should be
    fast; an exception they raise is recorded as "no user" / "no route".
    Thread-safe: one instance serves every worker thread.
    """

    def __init__(
        self,
        app: WSGIApplication,
        *,
        user_header: str | None = "x-user-id",
        user_callback: Callable[[WSGIEnvironment], str | None] | None = None,
        route_resolver: Callable[[WSGIEnvironment], str | None] | None = None,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        wsgi = require_module("opentelemetry.instrumentation.wsgi")
        semconv = require_module("opentelemetry.instrumentation._semconv")
        stability = semconv._OpenTelemetrySemanticConventionStability
        stability._initialize()
        self._mode = stability._get_opentelemetry_stability_opt_in_mode(
            semconv._OpenTelemetryStabilitySignalType.HTTP
        )
        self._collect = wsgi.collect_request_attributes
        self._respond = wsgi.add_response_attributes
        self._getter = wsgi.wsgi_getter
        self.app = app
        # PEP 3333: HTTP_ + the header name upper-cased with "-" as "_".
        self._user_key = (
            "HTTP_" + user_header.upper().replace("-", "_") if user_header is not None else None
        )
        self._user_callback = user_callback
        self._route_resolver = route_resolver
        self._tracer = trace.get_tracer(
            "tinct.tracing.wsgi",
            tracer_provider=tracer_provider,
            schema_url=semconv._get_schema_url(self._mode),
        )
        self._duration = ServerDuration(meter_provider)

    def _user(self, environ: WSGIEnvironment) -> str | None:
        if self._user_callback is not None:
            try:
                user = self._user_callback(environ)
            except Exception:
                user = None
            if user:
                return header_user(str(user))
        return header_user(environ.get(self._user_key)) if self._user_key else None

    def _route(self, environ: WSGIEnvironment) -> str | None:
        if self._route_resolver is None:
            return None
        try:
            return self._route_resolver(environ) or None
        except Exception:
            return None

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Run the app inside the request's server span (PEP 3333)."""
        start = time.perf_counter()
        token = None
        if trace.get_current_span() is trace.INVALID_SPAN:
            parent = propagate.extract(environ, getter=self._getter)
            token = context.attach(parent)
            kind = SpanKind.SERVER
        else:  # inside another server span already (nested middleware): a child
            parent = context.get_current()
            kind = SpanKind.INTERNAL
        try:
            attributes = self._collect(environ, self._mode)
            route = self._route(environ)
            user = self._user(environ)
            if route:
                attributes[HTTP_ROUTE] = route
            if user:
                attributes[ENDUSER_ID] = user
            name = server_span_name(environ.get("REQUEST_METHOD"), route)
            span = self._tracer.start_span(name, parent, kind, attributes)
        except BaseException:
            if token is not None:
                context.detach(token)
            raise
        # Only the outermost server span times the request: a nested
        # middleware would count it twice.
        exchange = _Exchange(start, route) if token is not None else None
        try:
            with _current(span), carry_dye(span):
                iterable = self.app(environ, self._start_response(span, start_response, exchange))
        except BaseException as exc:
            _fail(span, exc)
            span.end()
            self._record(environ, exchange, exc)
            if token is not None:
                context.detach(token)
            raise
        return self._iterate(iterable, span, token, environ, exchange)

    def _start_response(
        self, span: Span, start_response: StartResponse, exchange: _Exchange | None
    ) -> StartResponse:
        @functools.wraps(start_response)
        def wrapped(
            status: str, headers: list[tuple[str, str]], exc_info: _ExcInfo = None, /
        ) -> Callable[[bytes], object]:
            if exchange is not None:
                try:
                    exchange.status = int(status[:3])
                except ValueError:
                    pass
            if span.is_recording():
                try:
                    self._respond(span, status, headers, None, self._mode)
                except Exception:  # an odd status line must not break the response
                    pass
            return start_response(status, headers, exc_info)

        return wrapped

    def _iterate(
        self,
        iterable: Iterable[bytes],
        span: Span,
        token: Any,
        environ: WSGIEnvironment,
        exchange: _Exchange | None,
    ) -> Iterator[bytes]:
        # A generator app runs while the server iterates: the span and the
        # dye are made current again for that, and the span ends with it.
        failure = None
        try:
            with _current(span), carry_dye(span):
                yield from iterable
        except BaseException as exc:
            failure = exc
            _fail(span, exc)
            raise
        finally:
            try:
                close = getattr(iterable, "close", None)
                if close is not None:
                    close()
            finally:
                span.end()
                self._record(environ, exchange, failure)
                if token is not None:
                    context.detach(token)

    def _record(
        self, environ: WSGIEnvironment, exchange: _Exchange | None, exc: BaseException | None
    ) -> None:
        if exchange is None:
            return
        self._duration.record(
            time.perf_counter() - exchange.start,
            environ.get("REQUEST_METHOD"),
            exchange.route,
            exchange.status,
            environ.get("wsgi.url_scheme"),
            environ.get("SERVER_PROTOCOL"),
            type(exc).__qualname__ if isinstance(exc, Exception) else None,
        )


class _Exchange:
    """One request's timing and response status, for its duration record."""

    __slots__ = ("route", "start", "status")

    def __init__(self, start: float, route: str | None) -> None:
        self.start = start
        self.route = route
        self.status: int | None = None


def _current(span: Span) -> Any:
    """``span`` made current; exceptions are recorded by the caller, once."""
    return trace.use_span(
        span, end_on_exit=False, record_exception=False, set_status_on_exception=False
    )


def _fail(span: Span, exc: BaseException) -> None:
    if span.is_recording() and isinstance(exc, Exception):
        span.record_exception(exc)
        span.set_attribute("error.type", type(exc).__qualname__)
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
