"""OTLP protobuf and JSON decoding into SPAN_SCHEMA batches."""

from __future__ import annotations

import base64
import json
import random
from typing import Any

import pyarrow as pa
import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from tinct.errors import DecodeError
from tinct.spans import SPAN_SCHEMA, TAG_SEPARATOR, ValueType, dump_attrs, load_attrs
from tinct.tracing import otlp_wire
from tinct.tracing.batch import _dump
from tinct.tracing.otlp_decode import decode_json, decode_protobuf, decode_request
from tinct.tracing.otlp_json import transcode
from tinct.tracing.otlp_wire import OTLP_WIRE, any_value_text, decode_attributes

from ._codec_samples import EVERY_VALUE, every_feature_request, kv, realistic_request

TID = bytes(range(1, 17))
SID = bytes(range(1, 9))


def one_span_request(**span: Any) -> ExportTraceServiceRequest:
    """A request with one resource (service "svc"), one scope and the given span fields."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(kv("service.name", "svc"))
    ss = rs.scope_spans.add()
    attributes = span.pop("attributes", [])
    s = ss.spans.add(**{"trace_id": TID, "span_id": SID, "name": "op", **span})
    s.attributes.extend(kv(k, v) for k, v in attributes)
    return req


def row_of(req: ExportTraceServiceRequest) -> dict[str, Any]:
    result = decode_protobuf(req.SerializeToString())
    assert (result.rejected, result.message) == (0, "")
    (row,) = result.batch.to_pylist()
    out: dict[str, Any] = row
    return out


def test_realistic_request_decodes_every_span_with_its_columns() -> None:
    req = realistic_request(1000)
    result = decode_protobuf(req.SerializeToString())
    assert result.batch.schema == SPAN_SCHEMA
    assert (result.batch.num_rows, result.rejected, result.message) == (1000, 0, "")
    rows = result.batch.to_pylist()
    span = req.resource_spans[1].scope_spans[0].spans[0]
    row = rows[500]
    assert row["trace_id"] == span.trace_id and row["span_id"] == span.span_id
    assert row["service"] == "shop-1"
    assert row["scope_name"] == "opentelemetry.instrumentation.flask"
    assert row["resource_schema_url"] == "https://opentelemetry.io/schemas/1.24.0"
    assert row["start_ns"] == span.start_time_unix_nano
    assert row["duration_ns"] == span.end_time_unix_nano - span.start_time_unix_nano
    assert row["http_route"] == "/api/users/{id}"
    assert row["http_method"] == "GET"
    assert row["http_status_code"] == 500
    assert row["server_address"] == "shop.example.com"
    assert (row["status_code"], row["status_message"]) == (2, "Internal Server Error")
    assert row["attr_keys"] == [a.key for a in span.attributes]
    assert row["event_names"] == ["exception"]
    assert load_attrs(row["event_attrs"][0]) == (
        ["exception.type", "exception.message"],
        [1, 1],
        ["ValueError", "bad input"],
    )
    # Only event and link attributes go to the search column; span and
    # resource attributes are searched in their own arrays.
    assert sorted(row["tags"]) == [
        "exception.message" + TAG_SEPARATOR + "bad input",
        "exception.type" + TAG_SEPARATOR + "ValueError",
    ]
    # Spans keep request order, the parent is empty for roots.
    assert [r["span_id"] for r in rows[:3]] == [
        s.span_id for s in req.resource_spans[0].scope_spans[0].spans[:3]
    ]
    assert rows[0]["parent_span_id"] == b""


def test_every_attribute_type_has_its_text_form() -> None:
    row = row_of(one_span_request(attributes=EVERY_VALUE))
    got = dict(
        zip(row["attr_keys"], zip(row["attr_types"], row["attr_values"], strict=True), strict=True)
    )
    assert got["s"] == (ValueType.STRING, "text")
    assert got["s.unicode"] == (ValueType.STRING, 'héllo wörld ✓ \x00 "quoted"')
    assert got["b.false"] == (ValueType.BOOL, "false")
    assert got["i.min"] == (ValueType.INT, str(-(2**63)))
    assert got["d.tenth"] == (ValueType.DOUBLE, "0.1")
    assert got["d.big"] == (ValueType.DOUBLE, "1e+300")
    assert got["d.nan"] == (ValueType.DOUBLE, "NaN")
    assert got["d.ninf"] == (ValueType.DOUBLE, "-Infinity")
    assert got["bytes"] == (ValueType.BYTES, base64.b64encode(b"\x00\x01\xfe\xff").decode())
    assert got["empty"] == (ValueType.EMPTY, "")
    assert got["array.empty"] == (ValueType.ARRAY, '{"arrayValue":{}}')
    vtype, text = got["array"]
    assert vtype == ValueType.ARRAY
    assert json.loads(text)["arrayValue"]["values"][:3] == [
        {"stringValue": "a"},
        {"intValue": "1"},
        {"doubleValue": 2.5},
    ]
    assert json.loads(got["kvlist"][1]) == {
        "kvlistValue": {
            "values": [
                {"key": "a", "value": {"stringValue": "x"}},
                {"key": "n", "value": {"kvlistValue": {"values": [
                    {"key": "deep", "value": {"arrayValue": {"values": [
                        {"intValue": "1"}, {"intValue": "2"}]}}}]}}},
                {"key": "e", "value": {}},
            ]
        }
    }  # fmt: skip


@pytest.mark.parametrize(
    "key,value",
    [
        ("k" * 127, "v"),  # the longest key with a one-byte length
        ("k" * 128, "v"),  # two-byte length: the general parser
        ("k", "v" * 125),
        ("k", "v" * 126),
        ("k", "v" * 200),
        ("ключ", "значение ✓"),
        ("", ""),
        ("k", "\x12\x0a\x00"),  # bytes that look like protobuf tags
    ],
)
def test_string_attributes_decode_the_same_on_both_decoder_paths(key: str, value: str) -> None:
    raw = KeyValue(key=key, value=AnyValue(string_value=value)).SerializeToString()
    assert decode_attributes([raw]) == [(key, ValueType.STRING, value)]
    assert decode_attributes([raw]) == [(key, ValueType.STRING, value)]  # from the cache


def test_attribute_with_reordered_fields_is_decoded_by_the_general_parser() -> None:
    value = AnyValue(string_value="v").SerializeToString()
    raw = b"\x12" + bytes([len(value)]) + value + b"\x0a\x01k"  # value before key
    assert decode_attributes([raw]) == [("k", ValueType.STRING, "v")]


def test_invalid_utf8_attribute_makes_the_request_invalid_as_protobuf_says() -> None:
    good = KeyValue(key="k", value=AnyValue(string_value="ab")).SerializeToString()
    bad = good.replace(b"ab", b"\xff\xfe")
    with pytest.raises(DecodeError, match="attribute"):
        decode_attributes([bad])
    body = (
        one_span_request(attributes=[("k", "ab")]).SerializeToString().replace(b"ab", b"\xff\xfe")
    )
    with pytest.raises(Exception):  # noqa: B017 - protobuf's own verdict on the same bytes
        ExportTraceServiceRequest.FromString(body)
    with pytest.raises(DecodeError):
        decode_protobuf(body)


@pytest.mark.parametrize("body", [b"\xff\xff\xff", b"\x0a\x05abc", b"\x0a\x80"])
def test_malformed_protobuf_raises_decode_error(body: bytes) -> None:
    with pytest.raises(DecodeError, match="ExportTraceServiceRequest"):
        decode_protobuf(body)


def test_empty_request_is_an_empty_batch() -> None:
    result = decode_protobuf(b"")
    assert result.batch.schema == SPAN_SCHEMA
    assert (result.batch.num_rows, result.rejected, result.message) == (0, 0, "")


def _bad_spans_request() -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    for r in range(2):
        ss = req.resource_spans.add().scope_spans.add()
        for i in range(5):
            ss.spans.add(trace_id=TID, span_id=bytes([r, i + 1] + [0] * 6), name=f"ok-{r}-{i}")
    spans = req.resource_spans[1].scope_spans[0].spans
    spans[3].trace_id = TID[:15]
    spans[1].span_id = bytes(8)
    spans[2].parent_span_id = b"\x01\x02\x03"
    spans[4].links.add(trace_id=TID, span_id=b"\x01")
    req.resource_spans[0].scope_spans[0].spans[0].trace_id = bytes(16)
    return req


def test_invalid_spans_are_refused_and_named_the_rest_kept() -> None:
    result = decode_protobuf(_bad_spans_request().SerializeToString())
    assert result.rejected == 5
    assert result.batch.num_rows == 5
    assert sorted(result.batch.column("name").to_pylist()) == [
        "ok-0-1", "ok-0-2", "ok-0-3", "ok-0-4", "ok-1-0",
    ]  # fmt: skip
    assert result.message.split("; ") == [
        "span 0 of scope 0 of resource 0: trace_id must not be all zeros",
        "span 1 of scope 0 of resource 1: span_id must not be all zeros",
        "span 2 of scope 0 of resource 1: parent_span_id must be empty or 8 bytes, got 3",
        "span 3 of scope 0 of resource 1: trace_id must be 16 bytes, got 15",
        "span 4 of scope 0 of resource 1: link 0: span_id must be 8 bytes, got 1",
    ]


def test_message_lists_ten_problems_and_counts_the_rest() -> None:
    req = ExportTraceServiceRequest()
    ss = req.resource_spans.add().scope_spans.add()
    for _ in range(25):
        ss.spans.add(trace_id=b"x", span_id=SID)
    result = decode_protobuf(req.SerializeToString())
    assert result.rejected == 25 and result.batch.num_rows == 0
    assert result.message.count("trace_id must be 16 bytes, got 1") == 10
    assert result.message.endswith("; and 15 more")


def test_out_of_range_kind_and_status_are_refused() -> None:
    req = one_span_request(kind=300)
    spans = req.resource_spans[0].scope_spans[0].spans
    spans.add(trace_id=TID, span_id=b"\x02" * 8).status.code = 300  # type: ignore[assignment]
    spans.add(trace_id=TID, span_id=b"\x03" * 8).status.code = 7  # type: ignore[assignment]
    result = decode_protobuf(req.SerializeToString())
    assert result.message.split("; ") == [
        "span 0 of scope 0 of resource 0: kind 300 is out of range",
        "span 1 of scope 0 of resource 0: status code 300 is out of range",
    ]
    # Open enums: an unknown code that fits the column is kept as sent.
    assert result.batch.column("status_code").to_pylist() == [7]


def test_zero_parent_is_a_root_and_empty_name_is_kept() -> None:
    row = row_of(one_span_request(parent_span_id=bytes(8), name=""))
    assert row["parent_span_id"] == b"" and row["name"] == ""


def test_missing_service_name_is_unknown_service_resource_kept_as_sent() -> None:
    req = one_span_request()
    del req.resource_spans[0].resource.attributes[:]
    req.resource_spans[0].resource.attributes.append(kv("host.name", "h"))
    row = row_of(req)
    assert row["service"] == "unknown_service"
    assert row["resource_keys"] == ["host.name"]


@pytest.mark.parametrize(
    "attributes,column,expected",
    [
        ([("http.method", "GET")], "http_method", "GET"),
        ([("http.method", "GET"), ("http.request.method", "POST")], "http_method", "POST"),
        ([("http.request.method", "POST"), ("http.method", "GET")], "http_method", "POST"),
        ([("http.status_code", 404)], "http_status_code", 404),
        ([("http.response.status_code", "503")], "http_status_code", 503),
        ([("http.response.status_code", 70000)], "http_status_code", 0),
        ([("http.response.status_code", -1)], "http_status_code", 0),
        ([("http.response.status_code", "abc")], "http_status_code", 0),
        ([], "http_status_code", 0),
        ([("net.peer.name", "db1")], "server_address", "db1"),
        ([("server.address", "a"), ("net.peer.name", "b")], "server_address", "a"),
        ([("db.system.name", "postgresql")], "db_system", "postgresql"),
        ([("db.system", "mysql")], "db_system", "mysql"),
        ([("peer.service", "billing")], "peer_service", "billing"),
        ([("enduser.id", "u-1")], "enduser_id", "u-1"),
        ([("tinct.dye", "user:42")], "dye", "user:42"),
        ([("tinct.sampling.probability", 0.25)], "sampling_probability", 0.25),
        ([("tinct.sampling.probability", 1)], "sampling_probability", 1.0),
        ([("tinct.sampling.probability", 7.5)], "sampling_probability", 0.0),
        ([], "sampling_probability", 0.0),
        ([("http.route", "/a/{id}")], "http_route", "/a/{id}"),
        ([], "http_route", ""),
    ],
)
def test_promoted_columns(attributes: list[tuple[str, Any]], column: str, expected: Any) -> None:
    row = row_of(one_span_request(attributes=attributes))
    assert row[column] == expected
    assert row["attr_keys"] == [k for k, _ in attributes]  # still all there, as sent


def test_promoted_columns_follow_each_span_in_a_batch() -> None:
    req = one_span_request(attributes=[("http.route", "/x"), ("http.response.status_code", 201)])
    spans = req.resource_spans[0].scope_spans[0].spans
    for i in range(1, 4):
        s = spans.add(trace_id=TID, span_id=bytes([i] * 8))
        if i != 2:
            s.attributes.extend([kv("http.method", f"M{i}"), kv("http.route", f"/r{i}")])
    batch = decode_protobuf(req.SerializeToString()).batch
    assert batch.column("http_route").to_pylist() == ["/x", "/r1", "", "/r3"]
    assert batch.column("http_method").to_pylist() == ["", "M1", "", "M3"]
    assert batch.column("http_status_code").to_pylist() == [201, 0, 0, 0]


def test_tags_hold_event_and_link_attributes_only() -> None:
    req = one_span_request(attributes=[("a", 1)])
    rs = req.resource_spans[0]
    rs.scope_spans[0].scope.attributes.append(kv("sc", True))
    span = rs.scope_spans[0].spans[0]
    span.events.add(time_unix_nano=5, name="e").attributes.append(kv("ev", 2.5))
    span.links.add(trace_id=TID, span_id=SID).attributes.append(kv("lk", [1]))
    row = row_of(req)
    sep = TAG_SEPARATOR
    assert sorted(row["tags"]) == sorted(
        ["ev" + sep + "2.5", "lk" + sep + '{"arrayValue":{"values":[{"intValue":"1"}]}}']
    )
    assert (row["attr_keys"], row["attr_values"]) == (["a"], ["1"])
    assert (row["scope_keys"], row["scope_values"]) == (["sc"], ["true"])
    assert load_attrs(row["link_attrs"][0]) == (
        ["lk"],
        [ValueType.ARRAY],
        ['{"arrayValue":{"values":[{"intValue":"1"}]}}'],
    )


def test_event_and_link_attribute_text_is_dump_attrs() -> None:
    attrs = [("k", 1, 'v "é"\n'), ("x", 3, "12"), ("ü", 6, '{"arrayValue":{}}')]
    assert _dump(attrs) == dump_attrs(*map(list, zip(*attrs, strict=True)))
    assert _dump([]) == dump_attrs([], [], [])


def test_decode_request_matches_decode_protobuf() -> None:
    req = realistic_request(50)
    assert decode_request(req).batch.equals(decode_protobuf(req.SerializeToString()).batch)


# --- OTLP/JSON ------------------------------------------------------------------------------


def _json_doc(**span: Any) -> dict[str, Any]:
    base = {"traceId": TID.hex(), "spanId": SID.hex(), "name": "op"}
    base.update(span)
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "j"}}]
                },
                "scopeSpans": [{"scope": {"name": "lib"}, "spans": [base]}],
            }
        ]
    }


def test_json_hex_ids_numbers_and_enum_names() -> None:
    doc = _json_doc(
        parentSpanId=SID[::-1].hex().upper(),
        kind="SPAN_KIND_CLIENT",
        startTimeUnixNano=1_700_000_000_000_000_000,  # a number is fine too
        endTimeUnixNano="1700000000000001000",
        status={"code": "STATUS_CODE_ERROR", "message": "x"},
        attributes=[{"key": "n", "value": {"intValue": 5}}],
        links=[{"traceId": TID.hex(), "spanId": SID.hex()}],
        somethingNew={"ignored": True},
    )
    result = decode_json(json.dumps(doc).encode())
    assert (result.rejected, result.message) == (0, "")
    (row,) = result.batch.to_pylist()
    assert row["trace_id"] == TID and row["parent_span_id"] == SID[::-1]
    assert (row["kind"], row["status_code"], row["duration_ns"]) == (3, 2, 1000)
    assert row["attr_values"] == ["5"] and row["link_span_ids"] == [SID]


def test_json_accepts_snake_case_names() -> None:
    doc = {
        "resource_spans": [
            {"scope_spans": [{"spans": [{"trace_id": TID.hex(), "span_id": SID.hex(), "kind": 2}]}]}
        ]
    }
    (row,) = decode_json(json.dumps(doc).encode()).batch.to_pylist()
    assert (row["trace_id"], row["kind"]) == (TID, 2)


def test_json_invalid_hex_refuses_only_that_span() -> None:
    doc = _json_doc()
    spans = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans.append({"traceId": "zz" * 16, "spanId": SID.hex()})
    spans.append({"traceId": TID.hex()[:30], "spanId": SID.hex()})
    spans.append({"traceId": TID.hex(), "spanId": SID.hex(), "links": [{"traceId": "0x12"}]})
    result = decode_json(json.dumps(doc).encode())
    assert (result.batch.num_rows, result.rejected) == (1, 3)
    assert result.message.split("; ") == [
        'span 1 of scope 0 of resource 0: trace_id is not a hex string: "' + "z" * 32 + '"',
        "span 2 of scope 0 of resource 0: trace_id must be 16 bytes, got 15",
        'span 3 of scope 0 of resource 0: link 0: trace_id is not a hex string: "0x12"',
    ]


@pytest.mark.parametrize(
    "body,match",
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe{}", "not valid JSON"),
        (b"[]", "must be an object"),
        (b'"x"', "must be an object"),
        (b'{"resourceSpans": 5}', "invalid OTLP/JSON"),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"kind": {}}]}]}]}', "invalid OTLP/JSON"),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "x"}]}]}]}',
            "invalid",
        ),
    ],
)
def test_json_malformed_or_wrong_shape_raises(body: bytes, match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        decode_json(body)


def otlp_json(req: ExportTraceServiceRequest, **options: Any) -> dict[str, Any]:
    """protobuf's JSON mapping of ``req`` with the OTLP change: hex ids."""
    doc = json_format.MessageToDict(req, **options)
    snake = bool(options)
    for rs in doc.get("resource_spans" if snake else "resourceSpans", []):
        for ss in rs.get("scope_spans" if snake else "scopeSpans", []):
            for span in ss.get("spans", []):
                for obj in (span, *span.get("links", [])):
                    for name in ("traceId", "spanId", "parentSpanId", "trace_id", "span_id",
                                 "parent_span_id"):  # fmt: skip
                        if name in obj:
                            obj[name] = base64.b64decode(obj[name]).hex()
    return doc


@pytest.mark.parametrize("request_of", [lambda: realistic_request(40), every_feature_request])
@pytest.mark.parametrize(
    "options",
    [{}, {"preserving_proto_field_name": True, "use_integers_for_enums": True}],
    ids=["camel-enum-names", "snake-enum-ints"],
)
def test_json_transcodes_to_the_same_protobuf(request_of: Any, options: dict[str, Any]) -> None:
    req = request_of()
    body = json.dumps(otlp_json(req, **options)).encode()
    encoded, problems = transcode(body)
    assert problems == {}
    assert ExportTraceServiceRequest.FromString(encoded) == req
    assert decode_json(body).batch.equals(decode_protobuf(req.SerializeToString()).batch)


def test_json_value_spellings() -> None:
    attributes = [
        {"key": "i", "value": {"intValue": 7}},
        {"key": "i2", "value": {"intValue": "-7"}},
        {"key": "i3", "value": {"intValue": 7.0}},
        {"key": "d", "value": {"doubleValue": "Infinity"}},
        {"key": "d2", "value": {"doubleValue": 3}},
        {"key": "d3", "value": {"doubleValue": "2.5"}},
        {"key": "b", "value": {"bytesValue": "-_8"}},  # URL-safe, unpadded
        {"key": "n", "value": {"stringValue": None, "boolValue": False}},
        {"key": "e", "value": {}},
        {"key": "none"},
    ]
    doc = _json_doc(attributes=attributes, flags="257", droppedAttributesCount=None, kind=None)
    (row,) = decode_json(json.dumps(doc).encode()).batch.to_pylist()
    assert row["attr_values"] == ["7", "-7", "7", "Infinity", "3.0", "2.5", "+/8=", "false", "", ""]
    assert row["attr_types"] == [3, 3, 3, 4, 4, 4, 5, 2, 0, 0]
    assert (row["flags"], row["kind"], row["dropped_attributes_count"]) == (257, 0, 0)


@pytest.mark.parametrize(
    "span,match",
    [
        ({"name": 5}, "name must be a string"),
        ({"kind": True}, "kind must be an integer"),
        ({"startTimeUnixNano": "1e9"}, "start must be an integer"),
        ({"startTimeUnixNano": -1}, "start is out of range"),
        ({"attributes": [{"key": "k", "value": {"intValue": 2**63}}]}, "out of range"),
        ({"attributes": [{"key": "k", "value": {"boolValue": 1}}]}, "true or false"),
        ({"attributes": [{"key": "k", "value": {"bytesValue": "%%"}}]}, "not base64"),
        ({"attributes": [{"key": "k", "value": {"stringValue": "\ud800"}}]}, "Unicode"),
        ({"attributes": {"k": "v"}}, "attributes must be a list"),
        ({"events": [5]}, "event must be an object"),
    ],
)
def test_json_wrong_value_types_raise(span: dict[str, Any], match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        decode_json(json.dumps(_json_doc(**span)).encode())


def test_json_cache_does_not_confuse_bool_and_int() -> None:
    ok = _json_doc(attributes=[{"key": "k", "value": {"boolValue": True}}])
    assert decode_json(json.dumps(ok).encode()).batch.column("attr_values").to_pylist() == [
        ["true"]
    ]
    bad = _json_doc(attributes=[{"key": "k", "value": {"boolValue": 1}}])
    with pytest.raises(DecodeError):
        decode_json(json.dumps(bad).encode())


def _random_key_values(rnd: random.Random) -> list[bytes]:
    alphabet = "abc.xyz_ü✓\x00\n"
    out = []
    for _ in range(400):
        key = "".join(
            rnd.choice(alphabet) for _ in range(rnd.choice([0, 1, 5, 60, 125, 126, 127, 200]))
        )
        kind = rnd.randrange(6)
        if kind < 3:
            text = "".join(
                rnd.choice(alphabet) for _ in range(rnd.choice([0, 1, 30, 123, 124, 125, 126, 300]))
            )
            value = AnyValue(string_value=text)
        elif kind == 3:
            value = AnyValue(int_value=rnd.randrange(-(2**63), 2**63))
        elif kind == 4:
            value = AnyValue(bytes_value=rnd.randbytes(rnd.randrange(20)))
        else:
            value = AnyValue(double_value=rnd.random())
        out.append(KeyValue(key=key, value=value).SerializeToString())
    return out


def test_batch_attribute_decoding_matches_protobuf() -> None:
    """The Arrow string fast path against the generated classes, on random attributes."""
    rnd = random.Random(7)
    raws = _random_key_values(rnd)
    expected = []
    for raw in raws:
        kv = KeyValue.FromString(raw)
        expected.append((kv.key, *any_value_text(kv.value)))
    array = pa.array([b"junk", *raws], pa.binary()).slice(1)  # a non-zero offset too
    keys, types, texts = OTLP_WIRE.attribute_columns(array)
    got = list(zip(keys.to_pylist(), types.to_pylist(), texts.to_pylist(), strict=True))
    assert got == expected


def test_string_attributes_take_the_batch_path(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = otlp_wire.decode_attributes

    def counting(raw: Any) -> Any:
        calls.append(1)
        return real(raw)

    monkeypatch.setattr(otlp_wire, "decode_attributes", counting)
    raws = [kv(f"k{i}", f"v{i}").SerializeToString() for i in range(100)]
    keys, _, texts = OTLP_WIRE.attribute_columns(pa.array(raws, pa.binary()))
    assert keys.to_pylist() == [f"k{i}" for i in range(100)] and texts[99].as_py() == "v99"
    assert calls == []
    OTLP_WIRE.attribute_columns(pa.array([*raws, kv("n", 1).SerializeToString()], pa.binary()))
    assert calls == [1]  # only for the int


@pytest.mark.parametrize("seed", range(5))
def test_batch_attribute_decoding_refuses_what_protobuf_refuses(seed: int) -> None:
    rnd = random.Random(seed)
    raws = _random_key_values(rnd)[:50]
    for i in range(0, 50, 5):  # corrupt some: flip a byte, truncate, or break UTF-8
        damaged = bytearray(raws[i])
        if damaged:
            damaged[rnd.randrange(len(damaged))] ^= 1 << rnd.randrange(8)
        cut = rnd.randrange(len(damaged) + 1)
        raws[i] = bytes(damaged[:cut]) if i % 10 else bytes(damaged)
    for raw in raws:
        try:
            kv = KeyValue.FromString(raw)
            want: Any = (kv.key, *any_value_text(kv.value))
        except Exception:
            want = DecodeError
        try:
            keys, types, texts = OTLP_WIRE.attribute_columns(pa.array([raw], pa.binary()))
            got: Any = (keys[0].as_py(), types[0].as_py(), texts[0].as_py())
        except DecodeError:
            got = DecodeError
        assert got == want, raw


def test_corrupt_bodies_raise_decode_error_or_refuse_the_damaged_span() -> None:
    """Random damage: never another exception; if protobuf's parser refuses the body,
    we either raise DecodeError or refuse spans (damage inside a span that is refused
    anyway is not looked at)."""
    bases = [realistic_request(20, seed=3).SerializeToString()]
    bases.append(every_feature_request().SerializeToString())
    rnd = random.Random(11)
    for _ in range(300):
        body = bytearray(rnd.choice(bases))
        for _ in range(rnd.randrange(1, 4)):
            i = rnd.randrange(len(body))
            op = rnd.randrange(3)
            if op == 0:
                body[i] ^= 1 << rnd.randrange(8)
            elif op == 1:
                del body[i : i + rnd.randrange(1, 8)]
            else:
                body[i:i] = rnd.randbytes(rnd.randrange(1, 4))
        try:
            ExportTraceServiceRequest.FromString(bytes(body))
            valid = True
        except Exception:
            valid = False
        try:
            result = decode_protobuf(bytes(body))
        except DecodeError:
            assert not valid
            continue
        assert valid or result.rejected
        assert result.batch.schema == SPAN_SCHEMA
