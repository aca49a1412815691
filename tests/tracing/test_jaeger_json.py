"""Stored rows as Jaeger query API v1 traces (what jaeger-ui and Grafana read)."""

from __future__ import annotations

import json
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tinct.tracing.jaeger_json import encode_trace
from tinct.tracing.otlp_decode import decode_json, decode_request

from ._codec_samples import TRACE_FIXTURES, every_feature_request, kv

TID = bytes(range(1, 17))


def fixture_trace(name: str) -> dict[str, Any]:
    (path,) = [p for p in TRACE_FIXTURES if p.name == name]
    trace: dict[str, Any] = encode_trace(decode_json(path.read_bytes()).batch.to_pylist())
    return trace


def tags(items: list[dict[str, Any]]) -> dict[str, tuple[str, Any]]:
    return {t["key"]: (t["type"], t["value"]) for t in items}


def test_trace_shape_and_processes_per_resource() -> None:
    trace = fixture_trace("example_trace.json")
    assert set(trace) == {"traceID", "spans", "processes", "warnings"}
    assert trace["traceID"] == "00000000000000000000000000000011"
    assert trace["warnings"] is None
    assert len(trace["spans"]) == 5
    span = trace["spans"][0]
    assert set(span) == {
        "traceID", "spanID", "operationName", "references", "flags", "startTime",
        "duration", "tags", "logs", "processID", "warnings",
    }  # fmt: skip
    assert (span["spanID"], span["operationName"]) == ("0000000000000004", "example-operation-2")
    assert (span["startTime"], span["duration"]) == (1485449191639875, 100)
    assert span["logs"] == [
        {"timestamp": 1485449191639875, "fields": []},
        {"timestamp": 1485449191639875, "fields": []},
    ]
    services = {p["serviceName"] for p in trace["processes"].values()}
    assert services == {"example-service-1", "example-service-2", "example-service-3"}
    assert sorted(trace["processes"]) == ["p1", "p2", "p3"]
    by_id = {s["spanID"]: s for s in trace["spans"]}
    pid = by_id["0000000000000006"]["processID"]
    assert trace["processes"][pid]["serviceName"] == "example-service-1"
    assert by_id["0000000000000003"]["processID"] == pid  # one process per resource
    assert tags(by_id["0000000000000006"]["tags"])["span.kind"] == ("string", "server")
    assert tags(by_id["0000000000000007"]["tags"])["span.kind"] == ("string", "client")
    json.dumps(trace, allow_nan=False)


def test_links_become_references_with_their_ref_type() -> None:
    (span,) = fixture_trace("link_attributes_trace.json")["spans"]
    assert span["references"] == [
        {"refType": "CHILD_OF", "traceID": "000000000000000000000000000000ff",
         "spanID": "00000000000000ff"},
        {"refType": "CHILD_OF", "traceID": "00000000000000000000000000000001",
         "spanID": "0000000000000002"},
        {"refType": "FOLLOWS_FROM", "traceID": "00000000000000000000000000000001",
         "spanID": "0000000000000002"},
    ]  # fmt: skip


def test_typed_tags_logs_and_process_tags() -> None:
    trace = fixture_trace("log_tags_trace.json")
    (span,) = trace["spans"]
    assert span["logs"][0]["fields"] == [
        {"key": "sameplacetag1", "type": "string", "value": "sameplacevalue"},
        {"key": "sameplacetag2", "type": "int64", "value": 123},
        {"key": "sameplacetag4", "type": "bool", "value": True},
        {"key": "sameplacetag3", "type": "float64", "value": 72.5},
        {"key": "blob", "type": "binary", "value": "AAAwOQ=="},
    ]
    process = fixture_trace("process_tags_trace.json")["processes"]["p1"]
    assert "service.name" not in tags(process["tags"])
    scope = tags(fixture_trace("scope_name_version_trace.json")["spans"][0]["tags"])
    assert scope["otel.scope.name"][0] == "string" and "otel.scope.version" in scope


def test_translator_tags_parent_reference_and_events() -> None:
    rows = decode_request(every_feature_request()).batch.to_pylist()
    trace = encode_trace([r for r in rows if r["trace_id"] == bytes([1] * 16)])
    root, child, last = trace["spans"][:3]
    assert root["references"] == [
        {"refType": "FOLLOWS_FROM", "traceID": "09" * 16, "spanID": "08" * 8}
    ]
    assert child["references"][0] == {
        "refType": "CHILD_OF", "traceID": "01" * 16, "spanID": root["spanID"],
    }  # fmt: skip
    t = tags(last["tags"])
    assert t["otel.status_code"] == ("string", "ERROR")
    assert t["error"] == ("bool", True)
    assert t["otel.status_description"] == ("string", "boom")
    assert t["otel.scope.name"] == ("string", "lib-0")
    assert t["span.kind"] == ("string", "client")
    assert t["i.max"] == ("int64", str(2**63 - 1))  # beyond JavaScript's safe integers
    assert t["i.neg"] == ("int64", -42)
    assert t["d.nan"] == ("float64", "NaN")
    assert t["array"][0] == "string"
    assert json.loads(t["array"][1])[:3] == ["a", 1, 2.5]
    assert json.loads(t["kvlist"][1]) == {"a": "x", "n": {"deep": [1, 2]}, "e": None}
    assert tags(child["tags"])["otel.status_code"] == ("string", "OK")
    assert tags(child["tags"])["w3c.tracestate"] == ("string", "ot=th:8;rv:abcdef")
    assert root["flags"] == 0 and last["flags"] == 1  # W3C trace-flags byte only
    ev = root["logs"][0]
    assert ev["fields"][0] == {"key": "event", "type": "string", "value": "ev"}
    assert ev["timestamp"] == (1_700_000_000_123_456_789 + 5) // 1000
    json.dumps(trace, allow_nan=False)


def test_link_to_the_parent_retypes_the_parent_reference() -> None:
    req = ExportTraceServiceRequest()
    span = (
        req.resource_spans.add()
        .scope_spans.add()
        .spans.add(trace_id=TID, span_id=b"\x02" * 8, parent_span_id=b"\x01" * 8)
    )
    link = span.links.add(trace_id=TID, span_id=b"\x01" * 8)
    link.attributes.append(kv("opentracing.ref_type", "follows_from"))
    (out,) = encode_trace(decode_request(req).batch.to_pylist())["spans"]
    assert out["references"] == [
        {"refType": "FOLLOWS_FROM", "traceID": TID.hex(), "spanID": "01" * 8}
    ]


def test_event_attribute_named_event_wins() -> None:
    req = ExportTraceServiceRequest()
    span = req.resource_spans.add().scope_spans.add().spans.add(trace_id=TID, span_id=b"\x02" * 8)
    span.events.add(time_unix_nano=3000, name="n").attributes.append(kv("event", "own"))
    (out,) = encode_trace(decode_request(req).batch.to_pylist())["spans"]
    assert out["logs"] == [
        {"timestamp": 3, "fields": [{"key": "event", "type": "string", "value": "own"}]}
    ]
