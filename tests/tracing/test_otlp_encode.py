"""Stored rows back to OTLP: lossless JSON and protobuf round trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from google.protobuf import json_format

from tests.peer_suites import require_peer_suite
from tinct.tracing.otlp_decode import decode_json, decode_request
from tinct.tracing.otlp_encode import any_value_json, encode_request, encode_traces_data

from ._codec_samples import TRACE_FIXTURES, every_feature_request, normalize_traces


def test_fixtures_are_present() -> None:
    require_peer_suite("jaeger-storage")
    assert len(TRACE_FIXTURES) >= 30


@pytest.mark.parametrize("path", TRACE_FIXTURES, ids=lambda p: p.name)
def test_jaeger_fixture_round_trips_through_the_store_record(path: Path) -> None:
    fixture = json.loads(path.read_text())
    result = decode_json(path.read_bytes())
    assert (result.rejected, result.message) == (0, "")
    rows = result.batch.to_pylist()
    encoded = encode_traces_data(rows)
    json.dumps(encoded, allow_nan=False)  # plain JSON
    assert normalize_traces(encoded) == normalize_traces(fixture)


def test_protobuf_round_trip_keeps_every_feature() -> None:
    req = every_feature_request()
    result = decode_request(req)
    assert (result.rejected, result.message) == (0, "")
    out = encode_request(result.batch.to_pylist())
    assert normalize_traces(json_format.MessageToDict(out)) == normalize_traces(
        json_format.MessageToDict(req)
    )
    # And the encoded request decodes to the same batch.
    assert decode_request(out).batch.equals(result.batch)


def test_json_encoding_follows_otlp_json() -> None:
    rows = decode_request(every_feature_request()).batch.to_pylist()
    doc = encode_traces_data(rows)
    text = json.dumps(doc, allow_nan=False)
    assert '"NaN"' in text and '"-Infinity"' in text
    rs = doc["resourceSpans"]
    assert [r["schemaUrl"] for r in rs] == [
        "https://opentelemetry.io/schemas/1.20.0",
        "https://opentelemetry.io/schemas/1.21.0",
    ]
    assert [len(r["scopeSpans"]) for r in rs] == [2, 1]
    first = rs[0]["scopeSpans"][0]
    assert "version" not in first["scope"] and "schemaUrl" not in first
    root, child, last = first["spans"]
    assert root["traceId"] == "01" * 16 and root["spanId"] == "010101" + "07" * 5
    assert "parentSpanId" not in root and child["parentSpanId"] == root["spanId"]
    assert root["startTimeUnixNano"] == "1700000000123456789"
    assert isinstance(root["kind"], int) and root["flags"] == 0x100
    assert root["status"] == {}  # set by every SDK, so always written
    assert last["status"] == {"message": "boom", "code": 2}
    assert "name" not in last  # empty name is the default
    values = {a["key"]: a["value"] for a in root["attributes"]}
    assert values["i.min"] == {"intValue": "-9223372036854775808"}
    assert values["d.tenth"] == {"doubleValue": 0.1}
    assert values["b.false"] == {"boolValue": False}
    assert values["empty"] == {}
    assert values["bytes"] == {"bytesValue": "AAH+/w=="}


@pytest.mark.parametrize(
    "vtype,text,expected",
    [
        (1, "x", {"stringValue": "x"}),
        (2, "true", {"boolValue": True}),
        (3, "-1", {"intValue": "-1"}),
        (4, "1e+300", {"doubleValue": 1e300}),
        (4, "Infinity", {"doubleValue": "Infinity"}),
        (5, "AA==", {"bytesValue": "AA=="}),
        (6, '{"arrayValue":{"values":[{}]}}', {"arrayValue": {"values": [{}]}}),
        (0, "", {}),
    ],
)
def test_any_value_json(vtype: int, text: str, expected: dict[str, object]) -> None:
    assert any_value_json(vtype, text) == expected


def test_no_rows_is_an_empty_document() -> None:
    assert encode_traces_data([]) == {"resourceSpans": []}
