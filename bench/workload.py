"""Realistic OTLP span requests for the ingest benchmarks.

Shaped like what an instrumented shop sends: a handful of services, each span
with the attributes HTTP, RPC and database instrumentations set, resources
with the usual SDK/host attributes, an event on some spans, seeded so every
run measures the same bytes.
"""

from __future__ import annotations

import random

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

SERVICES = ["frontend", "cart", "checkout", "payment", "shipping", "catalog", "users", "ads"]
ROUTES = ["/api/orders/{id}", "/api/cart", "/api/checkout", "/api/products", "/api/users/{id}"]
METHODS = ["GET", "POST", "PUT", "DELETE"]


def _kv(key: str, value: str | int | float | bool) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _trace_spans(rng: random.Random, now_ns: int) -> list[tuple[str, Span]]:
    """One trace: a server span at the edge and 2-14 calls below it, across services."""
    trace_id = rng.randbytes(16)
    start = now_ns + rng.randrange(10**9)
    route = rng.choice(ROUTES)
    method = rng.choice(METHODS)
    out: list[tuple[str, Span]] = []
    parent = b""
    for depth in range(rng.randrange(3, 16)):
        service = SERVICES[0] if depth == 0 else rng.choice(SERVICES[1:])
        span = Span(trace_id=trace_id, span_id=rng.randbytes(8), parent_span_id=parent)
        span.name = f"{method} {route}"
        span.kind = Span.SPAN_KIND_SERVER if depth % 2 == 0 else Span.SPAN_KIND_CLIENT
        begin = start + depth * rng.randrange(10_000, 1_000_000)
        span.start_time_unix_nano = begin
        span.end_time_unix_nano = begin + rng.randrange(50_000, 200_000_000)
        status = rng.choice((200, 200, 200, 201, 404, 500))
        span.attributes.extend(
            [
                _kv("http.request.method", method),
                _kv("http.route", route),
                _kv("http.response.status_code", status),
                _kv("url.path", route.replace("{id}", str(rng.randrange(10**6)))),
                _kv("url.scheme", "https"),
                _kv("server.address", f"{service}.shop.svc"),
                _kv("server.port", 8080),
                _kv("network.protocol.version", "1.1"),
                _kv("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64)"),
                _kv("enduser.id", f"user-{rng.randrange(5000)}"),
            ]
        )
        if status >= 500:
            span.status.code = Status.STATUS_CODE_ERROR
            span.status.message = "upstream failed"
            ev = span.events.add()
            ev.time_unix_nano = begin + 1000
            ev.name = "exception"
            ev.attributes.extend(
                [
                    _kv("exception.type", "TimeoutError"),
                    _kv("exception.message", "deadline exceeded after 200ms"),
                ]
            )
        out.append((service, span))
        if rng.random() < 0.7:
            parent = span.span_id
    return out


def make_request(rng: random.Random, spans: int = 1000, now_ns: int = 0) -> bytes:
    """One ExportTraceServiceRequest of ``spans`` spans from whole traces, serialized."""
    by_service: dict[str, list[Span]] = {s: [] for s in SERVICES}
    count = 0
    while count < spans:
        for service, span in _trace_spans(rng, now_ns)[: spans - count]:
            by_service[service].append(span)
            count += 1
    req = ExportTraceServiceRequest()
    for service, service_spans in by_service.items():
        if not service_spans:
            continue
        rs = req.resource_spans.add()
        rs.resource.attributes.extend(
            [
                _kv("service.name", service),
                _kv("service.version", "1.4.2"),
                _kv("service.instance.id", f"{service}-{rng.randrange(1 << 32):08x}"),
                _kv("deployment.environment.name", "production"),
                _kv("host.name", f"node-{rng.randrange(40)}"),
                _kv("telemetry.sdk.language", "python"),
                _kv("telemetry.sdk.name", "opentelemetry"),
                _kv("telemetry.sdk.version", "1.45.2"),
            ]
        )
        ss = rs.scope_spans.add()
        ss.scope.name = "opentelemetry.instrumentation.flask"
        ss.scope.version = "0.66b2"
        ss.spans.extend(service_spans)
    return req.SerializeToString()


def make_requests(count: int, spans: int = 1000, seed: int = 7, now_ns: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    return [make_request(rng, spans, now_ns) for _ in range(count)]
