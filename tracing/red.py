"""RED meters: HTTP server and client request durations, for every request.

tinct samples few traces (1/1024 by default), so rates, errors and latencies
cannot be counted from spans. The server middleware (tracing.wsgi,
tracing.asgi) and the client hooks of :func:`~tinct.tracing.instrument_clients`
record every request, sampled or not, in the two histograms of the stable
OpenTelemetry HTTP metrics semantic conventions (v1.21+,
https://opentelemetry.io/docs/specs/semconv/http/http-metrics/):

=================================  ====  ==========================================
``http.server.request.duration``   s     ``http.request.method``, ``http.route``
                                         (when known), ``http.response.status_code``
                                         (when sent), ``url.scheme``,
                                         ``network.protocol.version``, ``error.type``
``http.client.request.duration``   s     ``http.request.method``, ``server.address``,
                                         ``server.port``, ``http.response.status_code``,
                                         ``peer.service`` (when mapped), ``error.type``
=================================  ====  ==========================================

Both use the bucket boundaries the conventions advise
(:data:`DURATION_BUCKETS`). ``error.type`` is the exception's class name, or
the status code as a string for a server's 5xx and a client's 4xx/5xx (the
conventions' rule). No ``enduser.id``: per-user series would make the
metrics' cardinality unbounded.

tinct records these itself, not OpenTelemetry's instrumentations: those use
the old names (``http.server.duration``, in milliseconds, rounded) unless the
process-wide ``OTEL_SEMCONV_STABILITY_OPT_IN=http`` was set before the first
instrumentation read it, and their client histogram cannot carry
``peer.service``. The middleware and ``instrument_clients`` therefore switch
the instrumentations' own metrics off, so each request is counted once.

Hot path: one ``Histogram.record`` per request, with an attribute dict reused
per distinct attribute tuple (a bounded cache); nothing raised.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable
from contextvars import ContextVar
from typing import Any

from opentelemetry import metrics
from opentelemetry.metrics import MeterProvider
from opentelemetry.util.types import AttributeValue

__all__ = [
    "CLIENT_DURATION",
    "DURATION_BUCKETS",
    "OTHER_METHOD",
    "SERVER_DURATION",
    "ClientDuration",
    "ServerDuration",
    "semconv_method",
]

logger = logging.getLogger(__name__)

SERVER_DURATION = "http.server.request.duration"
CLIENT_DURATION = "http.client.request.duration"
# The conventions' advised explicit boundaries for both histograms, in seconds.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)

_METER_NAME = "tinct.tracing"
_SCHEMA_URL = "https://opentelemetry.io/schemas/1.21.0"  # HTTP conventions made stable
_MAX_CACHED = 512  # distinct attribute sets kept; beyond, dicts are built per request

# Semantic conventions (http.request.method): a method outside the known set
# is reported as _OTHER, so junk methods cannot multiply the series.
_METHODS = frozenset(
    ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY")
)
OTHER_METHOD = "_OTHER"

Attributes = dict[str, AttributeValue]


def semconv_method(method: str | bytes | None) -> str:
    """``http.request.method``: the method upper-cased, or ``_OTHER`` when unknown."""
    if isinstance(method, bytes):
        method = method.decode("latin-1")
    method = (method or "").strip().upper()
    return method if method in _METHODS else OTHER_METHOD


def _histogram(meter_provider: MeterProvider | None, name: str, description: str) -> Any:
    meter = metrics.get_meter(_METER_NAME, meter_provider=meter_provider, schema_url=_SCHEMA_URL)
    return meter.create_histogram(
        name,
        unit="s",
        description=description,
        explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
    )


class _AttributeCache:
    """Attribute dicts by key, built once per distinct key up to a bound.

    The dicts are shared between requests and threads: never mutated after
    they are built. A race builds a dict twice, harmlessly.
    """

    def __init__(self, build: Callable[..., Attributes]) -> None:
        self._build = build
        self._cache: dict[Hashable, Attributes] = {}

    def get(self, *key: Any) -> Attributes:
        found = self._cache.get(key)
        if found is None:
            found = self._build(*key)
            if len(self._cache) < _MAX_CACHED:
                self._cache[key] = found
        return found


def _server_attributes(
    method: str | None,
    route: str | None,
    status: int | None,
    scheme: str | None,
    protocol: str | None,
    error: str | None,
) -> Attributes:
    attributes: Attributes = {"http.request.method": semconv_method(method)}
    if route:
        attributes["http.route"] = route
    if status is not None:
        attributes["http.response.status_code"] = status
    if scheme:
        attributes["url.scheme"] = scheme
    if protocol:
        # WSGI's SERVER_PROTOCOL is "HTTP/1.1"; ASGI's http_version is "1.1".
        attributes["network.protocol.version"] = protocol.rpartition("/")[2]
    if error is None and status is not None and status >= 500:
        error = str(status)  # conventions: server errors are 5xx only
    if error:
        attributes["error.type"] = error
    return attributes


class ServerDuration:
    """``http.server.request.duration`` on one meter provider.

    Args:
        meter_provider: default: the global one (resolved when it is set).

    Thread-safe; :meth:`record` never raises.
    """

    def __init__(self, meter_provider: MeterProvider | None = None) -> None:
        self._histogram = _histogram(
            meter_provider, SERVER_DURATION, "Duration of HTTP server requests."
        )
        self._attributes = _AttributeCache(_server_attributes)

    def record(
        self,
        seconds: float,
        method: str | None,
        route: str | None,
        status: int | None,
        scheme: str | None,
        protocol: str | None,
        error: str | None = None,
    ) -> None:
        """Record one request.

        Args:
            seconds: from the request's arrival to the response's end.
            method: the raw request method (normalised here).
            route: the route template, or None when unknown.
            status: the response status, or None when none was sent.
            scheme: ``http`` or ``https``.
            protocol: ``HTTP/1.1`` or ``1.1``.
            error: the exception's class name, when the app raised.
        """
        try:
            attributes = self._attributes.get(method, route, status, scheme, protocol, error)
            self._histogram.record(max(seconds, 0.0), attributes)
        except Exception:
            logger.debug("recording %s failed", SERVER_DURATION, exc_info=True)


def _client_attributes(
    method: str | bytes | None,
    address: str | None,
    port: int | None,
    service: str | None,
    status: int | None,
    error: str | None,
) -> Attributes:
    attributes: Attributes = {"http.request.method": semconv_method(method)}
    if address:
        attributes["server.address"] = address
    if port is not None:
        attributes["server.port"] = port
    if service:
        attributes["peer.service"] = service
    if status is not None:
        attributes["http.response.status_code"] = status
    if error is None and status is not None and status >= 400:
        error = str(status)  # conventions: for a client 4xx is an error too
    if error:
        attributes["error.type"] = error
    return attributes


# (start, method, address, port, peer.service) of the client request in flight
# in this context, from the request hook to the response hook. Instrumented
# client calls do not nest (the instrumentations suppress HTTP instrumentation
# below themselves), and an async hook runs in its caller's context.
_pending: ContextVar[tuple[float, Any, str | None, int | None, str | None] | None] = ContextVar(
    "tinct_red_client", default=None
)


class ClientDuration:
    """``http.client.request.duration`` on one meter provider, fed by client hooks.

    :meth:`start` in the request hook, :meth:`finish` in the response hook of
    the same call (same thread or task). A call that fails without a response
    never reaches the response hook and is not recorded (as in OpenTelemetry's
    httpx instrumentation).

    Args:
        meter_provider: default: the global one (resolved when it is set).

    Thread-safe; neither method raises.
    """

    def __init__(self, meter_provider: MeterProvider | None = None) -> None:
        self._histogram = _histogram(
            meter_provider, CLIENT_DURATION, "Duration of HTTP client requests."
        )
        self._attributes = _AttributeCache(_client_attributes)

    def start(
        self,
        method: str | bytes | None,
        address: str | None,
        port: int | None,
        service: str | None,
    ) -> None:
        """Mark the start of a client request in this context."""
        _pending.set((time.perf_counter(), method, address, port, service))

    def finish(self, status: int | None, error: str | None = None) -> None:
        """Record the request :meth:`start` marked in this context, if any."""
        pending = _pending.get()
        if pending is None:
            return
        _pending.set(None)
        try:
            start, method, address, port, service = pending
            attributes = self._attributes.get(method, address, port, service, status, error)
            self._histogram.record(max(time.perf_counter() - start, 0.0), attributes)
        except Exception:
            logger.debug("recording %s failed", CLIENT_DURATION, exc_info=True)
