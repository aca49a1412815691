"""Sample OTLP requests shared by the codec tests and the decode benchmark."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from tests.peer_suites import peer_suites_dir

FIXTURES = peer_suites_dir() / "jaeger-storage" / "fixtures"
TRACE_FIXTURES = sorted((FIXTURES / "traces").glob("*.json"))


def kv(key: str, value: Any) -> KeyValue:
    """A KeyValue with the AnyValue field chosen from the Python type."""
    return KeyValue(key=key, value=any_value(value))


def any_value(value: Any) -> AnyValue:
    if value is None:
        return AnyValue()
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, list):
        out = AnyValue()
        out.array_value.values.extend(any_value(v) for v in value)
        return out
    if isinstance(value, dict):
        out = AnyValue()
        out.kvlist_value.values.extend(kv(k, v) for k, v in value.items())
        return out
    raise TypeError(type(value))


_ROUTES = ["/api/users/{id}", "/api/orders", "/api/orders/{id}", "/health", "/api/cart"]
_METHODS = ["GET", "POST", "PUT", "DELETE"]


def realistic_request(n_spans: int = 1000, seed: int = 1) -> ExportTraceServiceRequest:
    """A request shaped like an instrumented web service's export.

    Two resources (~8 attributes each), one scope each, spans with ~10
    string/int attributes (HTTP server semantic conventions), one in five with
    an event, traces of 10 spans.
    """
    rnd = random.Random(seed)
    req = ExportTraceServiceRequest()
    for r in range(2):
        rs = req.resource_spans.add()
        rs.resource.attributes.extend(
            [
                kv("service.name", f"shop-{r}"),
                kv("service.version", "1.4.2"),
                kv("service.instance.id", f"pod-{r}-7f9c"),
                kv("deployment.environment", "prod"),
                kv("host.name", f"node-{r}.cluster.local"),
                kv("telemetry.sdk.name", "opentelemetry"),
                kv("telemetry.sdk.language", "python"),
                kv("telemetry.sdk.version", "1.24.0"),
            ]
        )
        rs.schema_url = "https://opentelemetry.io/schemas/1.24.0"
        ss = rs.scope_spans.add()
        ss.scope.name = "opentelemetry.instrumentation.flask"
        ss.scope.version = "0.45b0"
        for i in range(n_spans // 2):
            trace_id = rnd.getrandbits(128).to_bytes(16, "big")
            span = ss.spans.add()
            span.trace_id = trace_id
            span.span_id = rnd.getrandbits(64).to_bytes(8, "big") or b"\x01" * 8
            if i % 10:
                span.parent_span_id = rnd.getrandbits(64).to_bytes(8, "big")
            span.name = "GET " + _ROUTES[i % len(_ROUTES)]
            span.kind = Span.SPAN_KIND_SERVER
            start = 1_700_000_000_000_000_000 + i * 1_000_000
            span.start_time_unix_nano = start
            span.end_time_unix_nano = start + rnd.randrange(100_000, 50_000_000)
            span.flags = 0x101
            status = 200 if i % 13 else 500
            span.attributes.extend(
                [
                    kv("http.route", _ROUTES[i % len(_ROUTES)]),
                    kv("http.request.method", _METHODS[i % len(_METHODS)]),
                    kv("http.response.status_code", status),
                    kv("server.address", "shop.example.com"),
                    kv("server.port", 443),
                    kv("url.scheme", "https"),
                    kv("url.path", f"/api/users/{rnd.randrange(10_000)}"),
                    kv("client.address", f"10.0.{i % 256}.{rnd.randrange(256)}"),
                    kv("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64)"),
                    kv("network.protocol.version", "1.1"),
                ]
            )
            if status == 500:
                span.status.code = Status.STATUS_CODE_ERROR
                span.status.message = "Internal Server Error"
            if i % 5 == 0:
                ev = span.events.add()
                ev.time_unix_nano = start + 1000
                ev.name = "exception"
                ev.attributes.extend(
                    [
                        kv("exception.type", "ValueError"),
                        kv("exception.message", "bad input"),
                    ]
                )
    return req


def load_fixture(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


# --- Normalising OTLP/JSON for comparisons --------------------------------------------------
# Two OTLP/JSON documents are "equal" when they hold the same data: hex ids in
# lowercase, 64-bit integers spelled as strings, default-valued fields omitted
# (protobuf's JSON mapping), and spans of a scope in spanId order.


def _strip(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v not in ("", 0, "0", [], {}, None)}


def _any_value(v: dict[str, Any]) -> dict[str, Any]:
    v = dict(v)
    if "intValue" in v:
        v["intValue"] = str(int(v["intValue"]))
    if "arrayValue" in v:
        v["arrayValue"] = {"values": [_any_value(x) for x in v["arrayValue"].get("values", [])]}
    if "kvlistValue" in v:
        v["kvlistValue"] = {"values": _attrs(v["kvlistValue"].get("values", []))}
    return v


def _attrs(items: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return [{"key": kv["key"], "value": _any_value(kv.get("value", {}))} for kv in items or []]


def _g(d: dict[str, Any], camel: str) -> Any:
    snake = "".join("_" + c.lower() if c.isupper() else c for c in camel)
    return d.get(camel, d.get(snake))


def _int_str(v: Any) -> str:
    return str(int(v)) if v not in (None, "") else ""


def _id(v: Any) -> str:
    return (v or "").lower()


def _norm_event(e: dict[str, Any]) -> dict[str, Any]:
    return _strip(
        {
            "timeUnixNano": _int_str(_g(e, "timeUnixNano")),
            "name": e.get("name"),
            "attributes": _attrs(e.get("attributes")),
            "droppedAttributesCount": _g(e, "droppedAttributesCount"),
        }
    )


def _norm_link(link: dict[str, Any]) -> dict[str, Any]:
    return _strip(
        {
            "traceId": _id(_g(link, "traceId")),
            "spanId": _id(_g(link, "spanId")),
            "traceState": _g(link, "traceState"),
            "attributes": _attrs(link.get("attributes")),
            "droppedAttributesCount": _g(link, "droppedAttributesCount"),
            "flags": link.get("flags"),
        }
    )


def _norm_span(s: dict[str, Any]) -> dict[str, Any]:
    return _strip(
        {
            "traceId": _id(_g(s, "traceId")),
            "spanId": _id(_g(s, "spanId")),
            "traceState": _g(s, "traceState"),
            "parentSpanId": _id(_g(s, "parentSpanId")),
            "flags": s.get("flags"),
            "name": s.get("name"),
            "kind": s.get("kind"),
            "startTimeUnixNano": _int_str(_g(s, "startTimeUnixNano")),
            "endTimeUnixNano": _int_str(_g(s, "endTimeUnixNano")),
            "attributes": _attrs(s.get("attributes")),
            "droppedAttributesCount": _g(s, "droppedAttributesCount"),
            "events": [_norm_event(e) for e in s.get("events") or []],
            "droppedEventsCount": _g(s, "droppedEventsCount"),
            "links": [_norm_link(link) for link in s.get("links") or []],
            "droppedLinksCount": _g(s, "droppedLinksCount"),
            "status": _strip(dict(s.get("status") or {})),
        }
    )


def normalize_traces(doc: dict[str, Any]) -> dict[str, Any]:
    """A canonical form of an OTLP/JSON TracesData / ExportTraceServiceRequest dict."""
    out = []
    for rs in _g(doc, "resourceSpans") or []:
        res = rs.get("resource") or {}
        scopes = []
        for ss in _g(rs, "scopeSpans") or []:
            scope = ss.get("scope") or {}
            spans = sorted(
                (_norm_span(s) for s in ss.get("spans") or []), key=lambda s: s["spanId"]
            )
            scopes.append(
                _strip(
                    {
                        "scope": _strip(
                            {
                                "name": scope.get("name"),
                                "version": scope.get("version"),
                                "attributes": _attrs(scope.get("attributes")),
                                "droppedAttributesCount": _g(scope, "droppedAttributesCount"),
                            }
                        ),
                        "spans": spans,
                        "schemaUrl": _g(ss, "schemaUrl"),
                    }
                )
            )
        out.append(
            _strip(
                {
                    "resource": _strip(
                        {
                            "attributes": _attrs(res.get("attributes")),
                            "droppedAttributesCount": _g(res, "droppedAttributesCount"),
                        }
                    ),
                    "scopeSpans": scopes,
                    "schemaUrl": _g(rs, "schemaUrl"),
                }
            )
        )
    return {"resourceSpans": out}


# --- A request using every OTLP feature the store must keep --------------------------------

EVERY_VALUE: list[tuple[str, Any]] = [
    ("s", "text"),
    ("s.empty", ""),
    ("s.unicode", 'héllo wörld ✓ \x00 "quoted"'),
    ("s.long", "x" * 300),
    ("b.true", True),
    ("b.false", False),
    ("i.zero", 0),
    ("i.neg", -42),
    ("i.max", 2**63 - 1),
    ("i.min", -(2**63)),
    ("d.tenth", 0.1),
    ("d.big", 1e300),
    ("d.neg", -2.5),
    ("d.zero", 0.0),
    ("d.nan", float("nan")),
    ("d.inf", float("inf")),
    ("d.ninf", float("-inf")),
    ("bytes", b"\x00\x01\xfe\xff"),
    ("bytes.empty", b""),
    ("array", ["a", 1, 2.5, True, None, b"\x01", ["nested", {"k": "v"}]]),
    ("array.empty", []),
    ("kvlist", {"a": "x", "n": {"deep": [1, 2]}, "e": None}),
    ("kvlist.empty", {}),
    ("empty", None),
]


def every_feature_request() -> ExportTraceServiceRequest:
    """Two resources, three scopes, spans with every AnyValue type, events, links,
    dropped counts, trace state, flags and schema URLs."""
    req = ExportTraceServiceRequest()
    for r in range(2):
        rs = req.resource_spans.add()
        rs.schema_url = f"https://opentelemetry.io/schemas/1.2{r}.0"
        rs.resource.attributes.extend([kv("service.name", f"svc-{r}"), kv("host.cpus", 8)])
        rs.resource.dropped_attributes_count = r
        for s in range(2 if r == 0 else 1):
            ss = rs.scope_spans.add()
            ss.scope.name = f"lib-{s}"
            ss.scope.version = "1.0" if s else ""
            ss.scope.attributes.extend([kv("scope.attr", s)])
            ss.scope.dropped_attributes_count = s
            ss.schema_url = "https://example.com/scope" if s else ""
            for i in range(3):
                span = ss.spans.add()
                span.trace_id = bytes([r + 1] * 16)
                span.span_id = bytes([r + 1, s + 1, i + 1] + [7] * 5)
                if i:
                    span.parent_span_id = bytes([r + 1, s + 1, 1] + [7] * 5)
                span.trace_state = "ot=th:8;rv:abcdef" if i == 1 else ""
                span.flags = 0x301 if i == 2 else 0x100
                span.name = "" if i == 2 else f"op-{i}"
                span.kind = i + 1  # type: ignore[assignment]
                span.start_time_unix_nano = 1_700_000_000_123_456_789 + i
                span.end_time_unix_nano = span.start_time_unix_nano + (0 if i == 2 else 12345)
                span.attributes.extend(kv(k, v) for k, v in EVERY_VALUE)
                span.dropped_attributes_count = i
                ev = span.events.add(time_unix_nano=span.start_time_unix_nano + 5, name="ev")
                ev.attributes.extend([kv("ev.i", i), kv("ev.arr", [1, "x"])])
                ev.dropped_attributes_count = 1
                span.events.add(time_unix_nano=span.start_time_unix_nano + 6)
                span.dropped_events_count = 2
                link = span.links.add(
                    trace_id=bytes([9] * 16), span_id=bytes([8] * 8), trace_state="k=v", flags=1
                )
                link.attributes.extend([kv("opentracing.ref_type", "follows_from"), kv("l", 1.5)])
                link.dropped_attributes_count = 3
                span.dropped_links_count = 4
                span.status.code = i % 3  # type: ignore[assignment]
                span.status.message = "boom" if i == 2 else ""
    return req
