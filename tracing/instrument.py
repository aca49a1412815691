"""Auto-instrumentation helpers: HTTP and database clients, and what servers share.

Clients: :func:`instrument_clients` switches on OpenTelemetry's own
instrumentations of ``requests``, ``urllib3``, ``httpx``, ``redis`` and
``psycopg`` — those installed, with the ``tinct[instrument]`` extra; psycopg
through tinct's own wrapper (tracing.dbapi) when OpenTelemetry's is not — and adds
``peer.service`` (semantic conventions: the name of the service being called)
to their client spans through their request hooks, from a host → service
mapping. ``db.system`` comes from the redis and psycopg instrumentations
themselves. The ``requests`` and ``httpx`` hooks also time every call, sampled
or not, into ``http.client.request.duration`` with ``peer.service``
(tracing.red), in place of those instrumentations' own duration metrics. The
outgoing requests carry the trace context and the dye through the global
propagator (``DyePropagator`` after ``tinct.tracing.setup``).

Servers: the WSGI and ASGI middleware (tracing.wsgi, tracing.asgi) share
:func:`server_span_name` and :func:`header_user` from here.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.metrics import MeterProvider, NoOpMeterProvider
from opentelemetry.trace import Span, TracerProvider

from tinct.tracing.red import OTHER_METHOD, ClientDuration, semconv_method

__all__ = [
    "CLIENT_LIBRARIES",
    "ClientInstrumentation",
    "PeerService",
    "header_user",
    "instrument_clients",
    "server_span_name",
]

logger = logging.getLogger(__name__)

PEER_SERVICE = "peer.service"
ENDUSER_ID = "enduser.id"
HTTP_ROUTE = "http.route"

_MAX_USER_LENGTH = 256  # an enduser.id longer than this is not an id: ignored

PeerService = Callable[[str], str | None] | Mapping[str, str]
"""``peer.service`` by host: a callable (``None``: unknown) or a mapping of
``host`` or ``host:port`` to the service name."""


def server_span_name(method: str | None, route: str | None) -> str:
    """A server span's name per semantic conventions: ``GET /orders/{id}``, or ``GET``.

    The route template, never the path: names must be low-cardinality.
    """
    # Semantic conventions (HTTP spans, "Name"): a method outside the known
    # set is named "HTTP".
    known = semconv_method(method)
    if known == OTHER_METHOD:
        known = "HTTP"
    return f"{known} {route}" if route else known


def header_user(value: str | bytes | None) -> str | None:
    """``enduser.id`` from a header value, or None when absent, empty or too long."""
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if not text or len(text) > _MAX_USER_LENGTH:
        return None
    return text


def require_module(name: str) -> Any:
    """Import ``name``, or say which extra provides it."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ImportError(
            f"{name} is not installed: install tinct with the instrument extra "
            "(pip install 'tinct[instrument]')"
        ) from exc


def _lookup(peer_service: PeerService) -> Callable[[str | None, int | None], str | None]:
    """A ``(host, port) -> service`` function over either form of ``peer_service``."""
    if callable(peer_service):
        resolve = peer_service

        def by_callable(host: str | None, port: int | None) -> str | None:
            return resolve(host) if host else None

        return by_callable
    table = {key.lower(): value for key, value in peer_service.items()}

    def by_table(host: str | None, port: int | None) -> str | None:
        if not host:
            return None
        host = host.lower()
        if port is not None:
            found = table.get(f"{host}:{port}")
            if found is not None:
                return found
        return table.get(host)

    return by_table


def _hooks(peer_service: PeerService | None, red: ClientDuration) -> dict[str, dict[str, Any]]:
    """The instrument() keyword arguments for tinct's hooks, per library.

    Every library's request hook sets ``peer.service`` on sampled spans (with
    a ``peer_service`` mapping); the HTTP libraries' hooks also time every
    call, sampled or not, into ``http.client.request.duration`` (tracing.red).
    Hooks run on the request path: they never raise (a failing lookup leaves
    the attribute unset).
    """
    lookup = _lookup(peer_service) if peer_service is not None else None

    def service_of(host: str | None, port: int | None) -> str | None:
        if lookup is None:
            return None
        try:
            return lookup(host, port)
        except Exception:
            logger.debug("peer.service lookup failed for %s:%s", host, port, exc_info=True)
            return None

    def tag(span: Span, service: str | None) -> None:
        if service and span.is_recording():
            span.set_attribute(PEER_SERVICE, service)

    def requests_hook(span: Span, request: Any) -> None:
        try:
            parts = urlsplit(str(getattr(request, "url", "")))
            host, port = parts.hostname, parts.port
            if port is None:
                port = {"http": 80, "https": 443}.get(parts.scheme)
        except ValueError:
            host = port = None
        service = service_of(host, port) if host else None
        tag(span, service)
        red.start(getattr(request, "method", None), host, port, service)

    def requests_response_hook(span: Span, request: Any, response: Any) -> None:
        red.finish(getattr(response, "status_code", None))

    def httpx_hook(span: Span, request: Any) -> None:
        url = getattr(request, "url", None)  # RequestInfo: an httpx.URL
        host, port = getattr(url, "host", None), getattr(url, "port", None)
        if port is None:
            port = {"http": 80, "https": 443}.get(getattr(url, "scheme", ""))
        service = service_of(host, port) if host else None
        tag(span, service)
        red.start(getattr(request, "method", None), host, port, service)

    def httpx_response_hook(span: Span, request: Any, response: Any) -> None:
        red.finish(getattr(response, "status_code", None))  # ResponseInfo

    async def httpx_async_hook(span: Span, request: Any) -> None:
        httpx_hook(span, request)

    async def httpx_async_response_hook(span: Span, request: Any, response: Any) -> None:
        httpx_response_hook(span, request, response)

    def urllib3_hook(span: Span, pool: Any, *args: Any) -> None:
        if span.is_recording():
            tag(span, service_of(getattr(pool, "host", None), getattr(pool, "port", None)))

    def redis_hook(span: Span, instance: Any, *args: Any) -> None:
        if span.is_recording():
            pool = getattr(instance, "connection_pool", None)
            kwargs = getattr(pool, "connection_kwargs", None) or {}
            tag(span, service_of(kwargs.get("host"), kwargs.get("port")))

    hooks: dict[str, dict[str, Any]] = {
        "requests": {"request_hook": requests_hook, "response_hook": requests_response_hook},
        "httpx": {
            "request_hook": httpx_hook,
            "response_hook": httpx_response_hook,
            "async_request_hook": httpx_async_hook,
            "async_response_hook": httpx_async_response_hook,
        },
    }
    if lookup is not None:
        hooks["urllib3"] = {"request_hook": urllib3_hook}
        hooks["redis"] = {"request_hook": redis_hook}
    # psycopg's instrumentation has no request hook; its spans carry
    # server.address / net.peer.name for the database. (tinct's own psycopg
    # wrapper, used when that instrumentation is not installed, sets
    # peer.service itself: see _tinct_psycopg.)
    return hooks


# The libraries whose client durations tinct records (tracing.red): their
# instrumentations' own duration histograms are switched off.
_TIMED = frozenset(("requests", "httpx"))


# library -> (instrumentation module, instrumentor class)
CLIENT_LIBRARIES: dict[str, tuple[str, str]] = {
    "requests": ("opentelemetry.instrumentation.requests", "RequestsInstrumentor"),
    "urllib3": ("opentelemetry.instrumentation.urllib3", "URLLib3Instrumentor"),
    "httpx": ("opentelemetry.instrumentation.httpx", "HTTPXClientInstrumentor"),
    "redis": ("opentelemetry.instrumentation.redis", "RedisInstrumentor"),
    "psycopg": ("opentelemetry.instrumentation.psycopg", "PsycopgInstrumentor"),
}


@dataclass
class ClientInstrumentation:
    """The client instrumentations :func:`instrument_clients` switched on.

    Attributes:
        enabled: the libraries now instrumented, e.g. ``("requests", "httpx")``.
        skipped: library -> why it was not (not installed, version conflict).
    """

    enabled: tuple[str, ...] = ()
    skipped: dict[str, str] = field(default_factory=dict)
    _instrumentors: list[Any] = field(default_factory=list, repr=False)

    def uninstrument(self) -> None:
        """Switch the instrumentations off again (idempotent)."""
        while self._instrumentors:
            instrumentor = self._instrumentors.pop()
            try:
                instrumentor.uninstrument()
            except Exception:
                logger.exception("uninstrumenting %s failed", type(instrumentor).__name__)
        self.enabled = ()


def _tinct_psycopg(
    peer_service: PeerService | None,
    tracer_provider: TracerProvider | None,
    result: ClientInstrumentation,
) -> bool:
    """psycopg through tinct's own wrapper (tracing.dbapi), when psycopg is installed.

    True when switched on; False without psycopg, or when it is wrapped
    already (then recorded in ``result.skipped``).
    """
    if importlib.util.find_spec("psycopg") is None:
        return False
    from tinct.tracing.dbapi import PsycopgInstrumentor

    if PsycopgInstrumentor.is_instrumented():
        result.skipped["psycopg"] = "already instrumented"
        return False
    lookup = _lookup(peer_service) if peer_service is not None else None
    instrumentor = PsycopgInstrumentor(tracer_provider, peer_service=lookup)
    instrumentor.instrument()
    result._instrumentors.append(instrumentor)
    return True


def instrument_clients(
    peer_service: PeerService | None = None,
    *,
    libraries: Iterable[str] | None = None,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> ClientInstrumentation:
    """Instrument the installed HTTP and database client libraries.

    Args:
        peer_service: the called service's name by host, set as ``peer.service``
            on client spans: a mapping of ``host`` or ``host:port`` to the name,
            or a callable taking the host. None: no ``peer.service``.
        libraries: a subset of :data:`CLIENT_LIBRARIES`' keys; default all.
        tracer_provider: the provider for the client spans; default the global one.
        meter_provider: the provider for ``http.client.request.duration``
            (tracing.red), recorded for every ``requests`` and ``httpx`` call,
            sampled or not; default the global one. The instrumentations' own
            duration metrics are switched off for these two libraries.

    Returns:
        What was switched on; ``uninstrument()`` switches it off.

    Raises:
        ValueError: an unknown library name.

    A library whose package or OpenTelemetry instrumentation is not installed,
    or whose installed version the instrumentation does not support, is
    skipped with a debug log. Instrumentations patch the libraries process-wide;
    one already instrumented elsewhere is left as it is. Call at start-up.
    """
    names = tuple(CLIENT_LIBRARIES) if libraries is None else tuple(libraries)
    unknown = sorted(set(names) - set(CLIENT_LIBRARIES))
    if unknown:
        raise ValueError(
            f"libraries {unknown} are not among {', '.join(CLIENT_LIBRARIES)} (instrument_clients)"
        )
    hooks = _hooks(peer_service, ClientDuration(meter_provider))
    result = ClientInstrumentation()
    enabled = []
    for name in names:
        module_name, class_name = CLIENT_LIBRARIES[name]
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            if name == "psycopg" and _tinct_psycopg(peer_service, tracer_provider, result):
                enabled.append(name)
                continue
            if name in result.skipped:  # tinct's psycopg wrapper, already on
                continue
            result.skipped[name] = f"{module_name} is not installed ({exc})"
            logger.debug("not instrumenting %s: %s", name, result.skipped[name])
            continue
        instrumentor = getattr(module, class_name)()
        if instrumentor.is_instrumented_by_opentelemetry:
            result.skipped[name] = "already instrumented"
            logger.debug("not instrumenting %s: already instrumented", name)
            continue
        # BaseInstrumentor checks this too, but logs a missing library as an error.
        from opentelemetry.instrumentation.dependencies import get_dependency_conflicts

        conflict = get_dependency_conflicts(instrumentor.instrumentation_dependencies())
        if conflict is not None:
            result.skipped[name] = str(conflict)
            logger.debug("not instrumenting %s: %s", name, conflict)
            continue
        kwargs: dict[str, Any] = dict(hooks.get(name, {}))
        if tracer_provider is not None:
            kwargs["tracer_provider"] = tracer_provider
        if name in _TIMED:
            kwargs["meter_provider"] = NoOpMeterProvider()
        instrumentor.instrument(**kwargs)
        result._instrumentors.append(instrumentor)
        enabled.append(name)
    result.enabled = tuple(enabled)
    return result
