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


def make_request(rng: random.Random, spans: int = 1000, now_ns: int = 0) -> bytes:
    """One ExportTraceServiceRequest of ``spans`` spans, serialized."""
    req = ExportTraceServiceRequest()
    per_service = spans // len(SERVICES)
    for s_index, service in enumerate(SERVICES):
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
        count = per_service if s_index < len(SERVICES) - 1 else spans - per_service * s_index
        for _ in range(count):
            span = ss.spans.add()
            span.trace_id = rng.randbytes(16)
            span.span_id = rng.randbytes(8)
            if rng.random() < 0.8:
                span.parent_span_id = rng.randbytes(8)
            route = rng.choice(ROUTES)
            method = rng.choice(METHODS)
            span.name = f"{method} {route}"
            span.kind = rng.choice((Span.SPAN_KIND_SERVER, Span.SPAN_KIND_CLIENT))
            start = now_ns + rng.randrange(10**9)
            span.start_time_unix_nano = start
            span.end_time_unix_nano = start + rng.randrange(50_000, 200_000_000)
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
                ev.time_unix_nano = start + 1000
                ev.name = "exception"
                ev.attributes.extend(
                    [
                        _kv("exception.type", "TimeoutError"),
                        _kv("exception.message", "deadline exceeded after 200ms"),
                    ]
                )
    return req.SerializeToString()


def make_requests(count: int, spans: int = 1000, seed: int = 7, now_ns: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    return [make_request(rng, spans, now_ns) for _ in range(count)]
