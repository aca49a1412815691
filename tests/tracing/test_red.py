"""RED meters: every request timed, sampled or not, over real HTTP servers."""

from __future__ import annotations

import asyncio
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.util import setup_testing_defaults

import httpx
import pytest
import requests
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader, Metric
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tests.appserver import serve_app
from tinct.tracing import (
    TinctASGIMiddleware,
    TinctWSGIMiddleware,
    Tracing,
    instrument_clients,
    setup,
    starlette_route,
)
from tinct.tracing.red import CLIENT_DURATION, DURATION_BUCKETS, SERVER_DURATION

SEMCONV_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)


@pytest.fixture
def tracing() -> Iterator[tuple[Tracing, InMemorySpanExporter]]:
    """Nothing sampled: every span is a non-recording one."""
    exporter = InMemorySpanExporter()
    handle = setup("shop", sampling_probability=0.0, span_exporter=exporter, set_global=False)
    yield handle, exporter
    handle.shutdown()


def metrics(reader: InMemoryMetricReader) -> dict[str, Metric]:
    data = reader.get_metrics_data()
    if data is None:  # nothing recorded yet
        return {}
    return {
        metric.name: metric
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }


def points(metric: Metric) -> list[HistogramDataPoint]:
    found = list(metric.data.data_points)
    assert all(isinstance(point, HistogramDataPoint) for point in found)
    return found  # type: ignore[return-value]


def counts(metric: Metric, *keys: str) -> Counter[tuple[Any, ...]]:
    """Requests per value tuple of ``keys``."""
    result: Counter[tuple[Any, ...]] = Counter()
    for point in points(metric):
        attributes = dict(point.attributes or {})
        result[tuple(attributes.get(key) for key in keys)] += point.count
    return result


def assert_semconv_histogram(metric: Metric) -> None:
    assert metric.unit == "s"
    assert DURATION_BUCKETS == SEMCONV_BUCKETS
    for point in points(metric):
        assert tuple(point.explicit_bounds) == SEMCONV_BUCKETS
        assert 0 < point.sum < 10 * point.count
        assert "enduser.id" not in (point.attributes or {})


def spans_recorded(tracing: tuple[Tracing, InMemorySpanExporter]) -> int:
    handle, exporter = tracing
    handle.force_flush()
    return len(exporter.get_finished_spans())


def get(url: str) -> int:
    """GET through urllib, which no instrumentation here patches."""
    try:
        with urllib.request.urlopen(url) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        exc.read()
        return exc.code


class Quiet(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def wsgi_app(environ: dict[str, Any], start_response: Any) -> Any:
    path = environ["PATH_INFO"]
    if path.startswith("/boom"):
        raise RuntimeError("boom")
    status = "500 Internal Server Error" if path.endswith("/fail") else "200 OK"
    start_response(status, [("content-type", "text/plain")])
    return iter([b"o", b"k"])  # an iterable, timed until it is closed


def wsgi_route(environ: dict[str, Any]) -> str | None:
    path = environ["PATH_INFO"]
    if path.startswith("/orders/"):
        return "/orders/{id}"
    if path.startswith("/users/"):
        return "/users/{id}"
    return None


def serve_wsgi(app: Any) -> tuple[WSGIServer, str]:
    server = make_server("127.0.0.1", 0, app, handler_class=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


def test_wsgi_counts_every_request_at_probability_0(tracing) -> None:
    handle, _ = tracing
    reader = InMemoryMetricReader()
    wrapped = TinctWSGIMiddleware(
        wsgi_app,
        route_resolver=wsgi_route,
        tracer_provider=handle.tracer_provider,
        meter_provider=MeterProvider(metric_readers=[reader]),
    )
    server, base = serve_wsgi(wrapped)
    try:
        expected: Counter[tuple[Any, ...]] = Counter()
        for i in range(50):
            route = "/orders/{id}" if i % 2 else "/users/{id}"
            fail = i % 5 == 0
            path = route.replace("{id}", str(i)) + ("/fail" if fail else "")
            assert get(base + path) == (500 if fail else 200)
            expected[(route, "GET", 500 if fail else 200)] += 1
        assert get(base + "/boom") == 500  # wsgiref answers 500 for the app
        get(base + "/other")
    finally:
        server.shutdown()
        server.server_close()

    metric = metrics(reader)[SERVER_DURATION]
    assert_semconv_histogram(metric)
    found = counts(metric, "http.route", "http.request.method", "http.response.status_code")
    assert found == expected + Counter({(None, "GET", None): 1, (None, "GET", 200): 1})
    by_error = counts(metric, "http.response.status_code", "error.type")
    assert by_error[(500, "500")] == 10
    assert by_error[(None, "RuntimeError")] == 1
    assert by_error[(200, None)] == 41
    for point in points(metric):
        attributes = point.attributes or {}
        assert attributes["url.scheme"] == "http"
        assert attributes["network.protocol.version"] == "1.1"
    assert spans_recorded(tracing) == 0


def test_wsgi_times_until_the_response_is_closed(tracing) -> None:
    handle, _ = tracing
    reader = InMemoryMetricReader()
    closed = threading.Event()

    def streaming(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [])
        yield b"first"
        closed.wait(0.3)  # the body is slow: the time counts
        yield b"second"

    wrapped = TinctWSGIMiddleware(
        streaming,
        tracer_provider=handle.tracer_provider,
        meter_provider=MeterProvider(metric_readers=[reader]),
    )
    environ: dict[str, Any] = {"REQUEST_METHOD": "PUT", "wsgi.url_scheme": "https"}
    setup_testing_defaults(environ)
    del environ["SERVER_PROTOCOL"]
    body = wrapped(environ, lambda status, headers, exc_info=None: lambda data: None)
    assert SERVER_DURATION not in metrics(reader)  # still streaming: not recorded yet
    assert b"".join(body) == b"firstsecond"
    body.close()  # type: ignore[attr-defined]
    (point,) = points(metrics(reader)[SERVER_DURATION])
    assert point.count == 1 and point.sum >= 0.3
    assert dict(point.attributes or {}) == {
        "http.request.method": "PUT",
        "http.response.status_code": 200,
        "url.scheme": "https",
    }


def test_nested_wsgi_middleware_counts_a_request_once(tracing) -> None:
    handle, _ = tracing
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    inner = TinctWSGIMiddleware(
        wsgi_app, tracer_provider=handle.tracer_provider, meter_provider=provider
    )
    outer = TinctWSGIMiddleware(
        inner, tracer_provider=handle.tracer_provider, meter_provider=provider
    )
    environ: dict[str, Any] = {"REQUEST_METHOD": "brew"}
    setup_testing_defaults(environ)  # HTTP/1.0, http
    body = outer(environ, lambda status, headers, exc_info=None: lambda data: None)
    list(body)
    body.close()  # type: ignore[attr-defined]
    (point,) = points(metrics(reader)[SERVER_DURATION])
    assert point.count == 1
    assert point.attributes == {
        "http.request.method": "_OTHER",
        "http.response.status_code": 200,
        "url.scheme": "http",
        "network.protocol.version": "1.0",
    }


def test_asgi_counts_every_request_at_probability_0(tracing) -> None:
    handle, _ = tracing

    async def order(request: Request) -> PlainTextResponse:
        code = 500 if request.path_params["id"].startswith("f") else 200
        return PlainTextResponse("ok", status_code=code)

    async def boom(request: Request) -> PlainTextResponse:
        raise RuntimeError("boom")

    app = Starlette(
        routes=[
            Route("/orders/{id}", order, methods=["GET", "POST"]),
            Route("/users/{id}", order),
            Route("/boom", boom),
        ]
    )
    reader = InMemoryMetricReader()
    wrapped = TinctASGIMiddleware(
        app,
        route_resolver=starlette_route(app),
        tracer_provider=handle.tracer_provider,
        meter_provider=MeterProvider(metric_readers=[reader]),
    )
    expected: Counter[tuple[Any, ...]] = Counter()
    with serve_app(wrapped) as base, httpx.Client(base_url=base) as client:
        for i in range(50):
            route = "/orders/{id}" if i % 2 else "/users/{id}"
            method = "POST" if i % 4 == 1 else "GET"
            ident = f"f{i}" if i % 5 == 0 else str(i)
            response = client.request(method, route.replace("{id}", ident))
            assert response.status_code == (500 if i % 5 == 0 else 200)
            expected[(route, method, response.status_code)] += 1
        assert client.get("/boom").status_code == 500

    names = metrics(reader)
    # The OpenTelemetry middleware's own metrics are off: each request counted once.
    assert set(names) == {SERVER_DURATION}
    metric = names[SERVER_DURATION]
    assert_semconv_histogram(metric)
    found = counts(metric, "http.route", "http.request.method", "http.response.status_code")
    # Starlette answers 500 for the exception, then re-raises it.
    assert found == expected + Counter({("/boom", "GET", 500): 1})
    by_error = counts(metric, "error.type")
    assert by_error == Counter({(None,): 40, ("500",): 10, ("RuntimeError",): 1})
    assert spans_recorded(tracing) == 0


class Downstream(BaseHTTPRequestHandler):
    """Answers 200, or 503 for paths ending in /busy."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(503 if self.path.endswith("/busy") else 200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def downstream() -> Iterator[tuple[str, int]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Downstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield "127.0.0.1", server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_client_calls_counted_with_peer_service_at_probability_0(tracing, downstream) -> None:
    handle, _ = tracing
    host, port = downstream
    reader = InMemoryMetricReader()
    instrumented = instrument_clients(
        {f"{host}:{port}": "inventory"},
        libraries=["requests", "httpx"],
        tracer_provider=handle.tracer_provider,
        meter_provider=MeterProvider(metric_readers=[reader]),
    )
    base = f"http://{host}:{port}"
    try:
        assert instrumented.enabled == ("requests", "httpx")
        for i in range(10):
            assert requests.get(f"{base}/a{'/busy' if i < 3 else ''}").status_code
        with httpx.Client() as client:
            for i in range(10):
                assert client.get(f"{base}/b{'/busy' if i < 4 else ''}").status_code

        async def async_calls() -> None:
            async with httpx.AsyncClient() as client:
                for _ in range(5):
                    await client.get(f"{base}/c")

        asyncio.run(async_calls())
    finally:
        instrumented.uninstrument()

    names = metrics(reader)
    # requests' and httpx's own duration histograms are off: counted once.
    assert set(names) == {CLIENT_DURATION}
    metric = names[CLIENT_DURATION]
    assert_semconv_histogram(metric)
    found = counts(
        metric,
        "peer.service",
        "server.address",
        "server.port",
        "http.request.method",
        "http.response.status_code",
        "error.type",
    )
    assert found == Counter(
        {
            ("inventory", host, port, "GET", 200, None): 7 + 6 + 5,
            ("inventory", host, port, "GET", 503, "503"): 3 + 4,
        }
    )
    assert spans_recorded(tracing) == 0


def test_client_calls_to_unmapped_hosts_counted_without_peer_service(tracing, downstream) -> None:
    handle, _ = tracing
    host, port = downstream
    reader = InMemoryMetricReader()
    instrumented = instrument_clients(
        libraries=["requests"],
        tracer_provider=handle.tracer_provider,
        meter_provider=MeterProvider(metric_readers=[reader]),
    )
    try:
        for _ in range(4):
            requests.get(f"http://{host}:{port}/x")
    finally:
        instrumented.uninstrument()
    (point,) = points(metrics(reader)[CLIENT_DURATION])
    assert point.count == 4
    assert point.attributes == {
        "http.request.method": "GET",
        "server.address": host,
        "server.port": port,
        "http.response.status_code": 200,
    }
