"""Server middleware (WSGI, ASGI) and client instrumentation, over real HTTP servers."""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server
from wsgiref.util import setup_testing_defaults

import httpx
import pytest
import requests
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from tests.appserver import serve_app
from tinct.tracing import (
    TinctASGIMiddleware,
    TinctWSGIMiddleware,
    Tracing,
    dye,
    instrument_clients,
    setup,
    starlette_route,
)
from tinct.tracing.dye import get_dye
from tinct.tracing.dyeing import DyeRule
from tinct.tracing.instrument import CLIENT_LIBRARIES, server_span_name

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"  # not sampled


class Downstream(BaseHTTPRequestHandler):
    """A downstream service: records each request's headers, answers 200."""

    seen: list[dict[str, str]] = []

    def do_GET(self) -> None:
        self.seen.append({k.lower(): v for k, v in self.headers.items()})
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def downstream() -> Iterator[tuple[str, list[dict[str, str]]]]:
    seen: list[dict[str, str]] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("H", (Downstream,), {"seen": seen}))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def tracing() -> Iterator[tuple[Tracing, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    handle = setup("shop", sampling_probability=0.0, span_exporter=exporter, set_global=False)
    handle.matcher.replace_rules([DyeRule("r1", "user", "", "42")])
    yield handle, exporter
    handle.shutdown()


@pytest.fixture
def clients(tracing: tuple[Tracing, InMemorySpanExporter], downstream) -> Iterator[Any]:
    address, _ = downstream
    instrumented = instrument_clients(
        {address: "inventory"},
        libraries=["requests", "httpx"],
        tracer_provider=tracing[0].tracer_provider,
    )
    yield instrumented
    instrumented.uninstrument()


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """GET through urllib, which no instrumentation here patches (httpx and
    requests are, and would inject their own traceparent)."""
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {})) as response:
        return response.status, response.read().decode()


def finished(tracing: tuple[Tracing, InMemorySpanExporter]) -> dict[str, ReadableSpan]:
    handle, exporter = tracing
    handle.force_flush()
    spans = exporter.get_finished_spans()
    exporter.clear()
    return {span.name: span for span in spans}


class Quiet(WSGIRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def wsgi_server(tracing, downstream, clients) -> Iterator[tuple[str, list[str | None]]]:
    handle, _ = tracing
    address, _ = downstream
    dyes_seen: list[str | None] = []

    def app(environ, start_response):
        # The app's own spans go through the plain OpenTelemetry API.
        with handle.tracer_provider.get_tracer("app").start_as_current_span("load order"):
            dye = get_dye()
            dyes_seen.append(str(dye) if dye else None)
            requests.get(f"http://{address}/stock", timeout=5)
        start_response("200 OK", [("content-type", "text/plain")])
        return [b"order ", b"7"]

    def route(environ) -> str | None:
        return "/orders/{id}" if environ["PATH_INFO"].startswith("/orders/") else None

    wrapped = TinctWSGIMiddleware(app, route_resolver=route, tracer_provider=handle.tracer_provider)
    server = make_server("127.0.0.1", 0, wrapped, handler_class=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", dyes_seen
    finally:
        server.shutdown()
        server.server_close()


def test_wsgi_rule_dyes_a_user_s_request_end_to_end(tracing, downstream, wsgi_server) -> None:
    base, dyes_seen = wsgi_server
    address, seen = downstream
    assert fetch(base + "/orders/7", headers={"x-user-id": "42", "traceparent": TRACEPARENT}) == (
        200,
        "order 7",
    )

    spans = finished(tracing)
    assert set(spans) == {"GET /orders/{id}", "load order", "GET"}
    server, child, client = spans["GET /orders/{id}"], spans["load order"], spans["GET"]
    assert server.kind == SpanKind.SERVER and client.kind == SpanKind.CLIENT
    assert attrs(server)["enduser.id"] == "42"
    assert attrs(server)["http.route"] == "/orders/{id}"
    assert attrs(server)["http.status_code"] == 200
    assert attrs(server)["tinct.dye"] == "user:42"
    # The incoming (unsampled) trace is continued, not replaced.
    assert format(server.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    assert attrs(child)["tinct.dye"] == attrs(client)["tinct.dye"] == "user:42"
    assert attrs(client)["peer.service"] == "inventory"
    # The rule's dye is in the context for the app and goes on to the next hop.
    assert dyes_seen == ["user:42"]
    [headers] = seen
    assert "tinct.dye=user" in headers["baggage"]
    assert headers["traceparent"].split("-")[1] == "0af7651916cd43dd8448eb211c80319c"
    assert headers["traceparent"].split("-")[2] == format(client.context.span_id, "016x")


def test_wsgi_undyed_request_is_not_recorded_at_probability_0(
    tracing, downstream, wsgi_server
) -> None:
    base, dyes_seen = wsgi_server
    _, seen = downstream
    assert fetch(base + "/orders/7", headers={"x-user-id": "41"})[0] == 200
    assert finished(tracing) == {}
    assert dyes_seen == [None]
    assert "tinct.dye" not in seen[0].get("baggage", "")
    assert int(seen[0]["traceparent"][-2:], 16) & 1 == 0  # not sampled, passed on as such


def test_wsgi_incoming_dye_is_recorded_and_passed_on(tracing, downstream, wsgi_server) -> None:
    base, dyes_seen = wsgi_server
    _, seen = downstream
    assert fetch(base + "/health", headers={"baggage": "tinct.dye=user:7,other=1"})[0] == 200
    handle, exporter = tracing
    handle.force_flush()
    spans = exporter.get_finished_spans()
    assert sorted((s.kind.name, s.name) for s in spans) == [
        ("CLIENT", "GET"),
        ("INTERNAL", "load order"),
        ("SERVER", "GET"),  # no route known: the method alone, never the path
    ]
    [server] = [s for s in spans if s.kind == SpanKind.SERVER]
    assert "http.route" not in server.attributes and "enduser.id" not in server.attributes
    assert {attrs(s)["tinct.dye"] for s in spans} == {"user:7"}
    assert dyes_seen == ["user:7"]
    assert "tinct.dye=user" in seen[0]["baggage"] and "other=1" in seen[0]["baggage"]


def test_wsgi_user_callback_and_app_errors(tracing) -> None:
    handle, _ = tracing

    def broken(environ, start_response):
        raise RuntimeError("boom")

    wrapped = TinctWSGIMiddleware(
        broken,
        user_header=None,
        user_callback=lambda environ: environ.get("QUERY_STRING", "").removeprefix("u="),
        tracer_provider=handle.tracer_provider,
    )
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/pay", "QUERY_STRING": "u=42"}
    setup_testing_defaults(environ)
    with pytest.raises(RuntimeError, match="boom"):
        wrapped(environ, lambda status, headers, exc_info=None: lambda data: None)
    [span] = finished(tracing).values()
    assert span.name == "POST" and attrs(span)["enduser.id"] == "42"
    assert span.status.status_code == trace.StatusCode.ERROR
    assert attrs(span)["error.type"] == "RuntimeError"
    assert trace.get_current_span() is trace.INVALID_SPAN  # nothing left attached


@pytest.fixture
def asgi_server(tracing, downstream, clients) -> Iterator[tuple[str, list[str | None]]]:
    handle, _ = tracing
    address, _ = downstream
    dyes_seen: list[str | None] = []

    async def order(request: Request) -> PlainTextResponse:
        with handle.tracer_provider.get_tracer("app").start_as_current_span("load order"):
            dye = get_dye()
            dyes_seen.append(str(dye) if dye else None)
            async with httpx.AsyncClient() as client:
                await client.get(f"http://{address}/stock")
        return PlainTextResponse(f"order {request.path_params['id']}")

    app = Starlette(routes=[Mount("/api", routes=[Route("/orders/{id}", order, methods=["GET"])])])
    wrapped = TinctASGIMiddleware(
        app, route_resolver=starlette_route(app), tracer_provider=handle.tracer_provider
    )
    with serve_app(wrapped) as base:
        yield base, dyes_seen


def test_asgi_rule_dyes_a_user_s_request_end_to_end(tracing, downstream, asgi_server) -> None:
    base, dyes_seen = asgi_server
    _, seen = downstream
    assert fetch(base + "/api/orders/7", headers={"x-user-id": "42"}) == (200, "order 7")
    spans = finished(tracing)
    assert set(spans) == {"GET /api/orders/{id}", "load order", "GET"}
    server, client = spans["GET /api/orders/{id}"], spans["GET"]
    assert server.kind == SpanKind.SERVER and client.kind == SpanKind.CLIENT
    assert attrs(server)["enduser.id"] == "42"
    assert attrs(server)["http.route"] == "/api/orders/{id}"
    assert attrs(server)["tinct.dye"] == "user:42"
    assert attrs(spans["load order"])["tinct.dye"] == "user:42"
    assert attrs(client)["tinct.dye"] == "user:42"
    assert attrs(client)["peer.service"] == "inventory"
    assert dyes_seen == ["user:42"]
    assert "tinct.dye=user" in seen[0]["baggage"]


def test_asgi_undyed_not_recorded_and_incoming_dye_recorded(
    tracing, downstream, asgi_server
) -> None:
    base, dyes_seen = asgi_server
    assert fetch(base + "/api/orders/7", headers={"x-user-id": "41"})[0] == 200
    assert finished(tracing) == {}
    assert fetch(base + "/api/orders/8", headers={"baggage": "tinct.dye=tenant:acme"})[0] == 200
    spans = finished(tracing)
    assert attrs(spans["GET /api/orders/{id}"])["tinct.dye"] == "tenant:acme"
    assert dyes_seen == [None, "tenant:acme"]


def test_starlette_route_partial_match_and_unknown_path() -> None:
    async def endpoint(request: Request) -> PlainTextResponse:
        return PlainTextResponse("")

    app = Starlette(routes=[Route("/items/{id:int}", endpoint, methods=["GET"])])
    resolve = starlette_route(app)
    scope = {"type": "http", "method": "DELETE", "path": "/items/3", "root_path": ""}
    assert resolve(scope) == "/items/{id:int}"  # a 405 still names the route
    assert resolve({**scope, "path": "/nope"}) is None
    assert resolve({"type": "lifespan"}) is None


@pytest.mark.parametrize(
    ("method", "route", "name"),
    [("get", "/a/{b}", "GET /a/{b}"), ("GET", None, "GET"), ("BREW", "/pot", "HTTP /pot")],
)
def test_server_span_name_follows_semantic_conventions(method, route, name) -> None:
    assert server_span_name(method, route) == name


def test_instrument_clients_enables_installed_ones_and_uninstruments(tracing, downstream) -> None:
    handle, exporter = tracing
    address, _ = downstream
    instrumented = instrument_clients(
        lambda host: "local" if host == "127.0.0.1" else None,
        tracer_provider=handle.tracer_provider,
    )
    try:
        assert set(instrumented.enabled) | set(instrumented.skipped) == set(CLIENT_LIBRARIES)
        assert {"requests", "httpx"} <= set(instrumented.enabled)
        again = instrument_clients(libraries=["requests"])
        assert again.enabled == () and again.skipped == {"requests": "already instrumented"}
        with dye("user:1"):
            requests.get(f"http://{address}/a", timeout=5)
        [span] = [s for s in finished(tracing).values() if s.kind == SpanKind.CLIENT]
        assert attrs(span)["peer.service"] == "local"
    finally:
        instrumented.uninstrument()
    assert instrumented.enabled == ()
    with dye("user:1"):
        requests.get(f"http://{address}/b", timeout=5)
    assert exporter.get_finished_spans() == ()
    instrumented.uninstrument()  # idempotent


def test_instrument_clients_rejects_unknown_libraries() -> None:
    with pytest.raises(ValueError, match=r"\['aiohttp'\] are not among requests"):
        instrument_clients(libraries=["requests", "aiohttp"])
