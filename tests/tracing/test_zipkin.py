"""Zipkin v2 JSON span lists into SPAN_SCHEMA batches."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tinct.errors import DecodeError
from tinct.spans import SPAN_SCHEMA, ValueType, load_attrs
from tinct.tracing.zipkin import decode_zipkin_json

TRACE = "5af7183fb1d4cf5f"
SERVER = {
    "traceId": TRACE,
    "parentId": "6b221d5bc9e6496c",
    "id": "352bff9a74ca9ad2",
    "kind": "SERVER",
    "name": "get /api",
    "timestamp": 1556604172355737,
    "duration": 1431,
    "localEndpoint": {"serviceName": "backend", "ipv4": "192.168.99.1", "port": 9000},
    "remoteEndpoint": {"ipv4": "172.19.0.2", "port": 58648},
    "tags": {"http.method": "GET", "http.path": "/api", "http.status_code": "200"},
    "annotations": [{"timestamp": 1556604172355800, "value": "wr"}],
}
CLIENT = {
    "traceId": "463ac35c9f6413ad48485a3953bb6124",
    "id": "a2fb4a1d1a96d312",
    "kind": "CLIENT",
    "name": "query",
    "timestamp": 1556604172355000,
    "duration": 20,
    "localEndpoint": {"serviceName": "frontend"},
    "remoteEndpoint": {"serviceName": "mysql", "ipv6": "::1", "port": 3306},
    "tags": {"error": "connection refused", "otel.scope.name": "jdbc", "w3c.tracestate": "a=b"},
    "shared": True,
    "debug": True,
}


def decode(spans: Any) -> tuple[list[dict[str, Any]], int, str]:
    result = decode_zipkin_json(json.dumps(spans).encode())
    assert result.batch.schema == SPAN_SCHEMA
    return result.batch.to_pylist(), result.rejected, result.message


def attrs(row: dict[str, Any]) -> dict[str, tuple[int, str]]:
    return {
        k: (t, v)
        for k, t, v in zip(row["attr_keys"], row["attr_types"], row["attr_values"], strict=True)
    }


def test_server_span() -> None:
    (row,), rejected, message = decode([SERVER])
    assert (rejected, message) == (0, "")
    assert row["trace_id"] == bytes.fromhex("0" * 16 + TRACE)  # 64-bit id, left-padded
    assert row["span_id"] == bytes.fromhex("352bff9a74ca9ad2")
    assert row["parent_span_id"] == bytes.fromhex("6b221d5bc9e6496c")
    assert (row["kind"], row["name"], row["service"]) == (2, "get /api", "backend")
    assert row["start_ns"] == 1556604172355737000 and row["duration_ns"] == 1431000
    assert row["resource_keys"] == ["service.name"] and row["resource_values"] == ["backend"]
    a = attrs(row)
    assert a["http.method"] == (ValueType.STRING, "GET")
    assert a["network.local.address"] == (ValueType.STRING, "192.168.99.1")
    assert a["network.local.port"] == (ValueType.INT, "9000")
    assert a["network.peer.address"] == (ValueType.STRING, "172.19.0.2")
    assert "server.address" not in a  # the remote end of a server span is the client
    assert row["http_method"] == "GET" and row["http_status_code"] == 200  # string tag counts
    assert row["event_names"] == ["wr"] and row["event_times"] == [1556604172355800000]
    assert row["status_code"] == 0


def test_client_span_error_scope_and_flags() -> None:
    (row,), _, _ = decode([CLIENT])
    assert row["trace_id"].hex() == CLIENT["traceId"]
    assert row["parent_span_id"] == b""
    assert (row["status_code"], row["status_message"]) == (2, "connection refused")
    assert row["scope_name"] == "jdbc" and row["trace_state"] == "a=b"
    a = attrs(row)
    assert "error" not in a and "otel.scope.name" not in a
    assert a["peer.service"] == (ValueType.STRING, "mysql")
    assert a["network.peer.address"] == (ValueType.STRING, "::1")
    assert a["server.address"] == (ValueType.STRING, "::1")
    assert a["server.port"] == (ValueType.INT, "3306")
    assert a["zipkin.shared"] == a["zipkin.debug"] == (ValueType.BOOL, "true")
    assert row["peer_service"] == "mysql" and row["server_address"] == "::1"


def test_error_true_sets_status_without_message() -> None:
    span = dict(CLIENT, tags={"error": "true"})
    (row,), _, _ = decode([span])
    assert (row["status_code"], row["status_message"]) == (2, "")


def test_spans_group_by_service_and_scope_keep_count() -> None:
    spans = [SERVER, CLIENT, dict(SERVER, id="1"), {"traceId": "1", "id": "2"}]
    rows, rejected, _ = decode(spans)
    assert rejected == 0
    assert sorted(r["service"] for r in rows) == [
        "backend", "backend", "frontend", "unknown_service",
    ]  # fmt: skip
    no_service = [r for r in rows if r["service"] == "unknown_service"][0]
    assert no_service["resource_keys"] == []
    assert no_service["span_id"] == bytes(7) + b"\x02"
    assert no_service["start_ns"] == 0 and no_service["kind"] == 0


def test_internal_kind_from_tag_and_parent_equal_to_id() -> None:
    span = {"traceId": TRACE, "id": "2", "parentId": "2", "tags": {"span.kind": "internal"}}
    (row,), _, _ = decode([span])
    assert row["kind"] == 1 and row["parent_span_id"] == b""
    assert "span.kind" not in row["attr_keys"]


def test_invalid_spans_are_refused_by_position() -> None:
    spans = [
        SERVER,
        dict(SERVER, traceId="xyz"),
        dict(SERVER, id=None),
        "not a span",
        dict(SERVER, kind="SIDEWAYS"),
        dict(SERVER, timestamp="soon"),
        dict(SERVER, traceId="0" * 32),
        dict(SERVER, traceId="1" * 33),
        dict(SERVER, annotations=[{"timestamp": 1}]),
        dict(SERVER, tags={"k": ["list"]}),
    ]
    rows, rejected, message = decode(spans)
    assert len(rows) == 1 and rejected == 9
    assert message.split("; ") == [
        'span 1: traceId is not hex: "xyz"',
        "span 2: id must be 1 to 16 hex characters, got null",
        "span 3: must be an object",
        "span 4: kind must be CLIENT, SERVER, PRODUCER or CONSUMER, got 'SIDEWAYS'",
        "span 5: timestamp must be a non-negative integer (microseconds)",
        'span 7: traceId must be 1 to 32 hex characters, got "' + "1" * 33 + '"',
        "span 8: an annotation must be an object with a string value",
        'span 9: tag "k" must be a string',
        "span 6: trace_id must not be all zeros",
    ]


@pytest.mark.parametrize(
    "body,match",
    [(b"{", "not valid JSON"), (b"{}", "must be a list"), (b'"x"', "must be a list")],
)
def test_malformed_body_raises(body: bytes, match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        decode_zipkin_json(body)


def test_empty_list_is_an_empty_batch() -> None:
    assert decode([]) == ([], 0, "")


def test_numeric_tags_are_kept_as_strings() -> None:
    (row,), _, _ = decode([dict(SERVER, tags={"n": 5, "b": True})])
    assert attrs(row)["n"] == (ValueType.STRING, "5")
    assert attrs(row)["b"] == (ValueType.STRING, "true")
    assert load_attrs("") == ([], [], [])
