"""GET /api/tinct/logs: a trace's log records, in the documented shape."""

from __future__ import annotations

import pyarrow as pa

from tests.asgi import AppClient
from tests.tracing.test_otlp_logs import SPAN, T0, TRACE, logs_request
from tinct.logs import LOG_SCHEMA
from tinct.main_app import create_main_app
from tinct.storage import InMemorySpanStore
from tinct.tracing.otlp_logs import decode_logs_protobuf

PATH = "/api/tinct/logs"


def client() -> tuple[AppClient, InMemorySpanStore]:
    store = InMemorySpanStore()
    store.write_logs(decode_logs_protobuf(logs_request(3).SerializeToString()).batch)
    return AppClient(create_main_app(store)), store


def test_a_traces_records_in_the_documented_shape() -> None:
    c, store = client()
    later = {
        "time_ns": T0 + 123_456_789,
        "observed_time_ns": 0,
        "trace_id": TRACE,
        "span_id": b"",
        "flags": 0,
        "severity_number": 17,
        "severity_text": "ERROR",
        "body_type": 7,
        "body": '{"kvlistValue":{"values":[{"key":"a","value":{"intValue":"3"}}]}}',
        "event_name": "checkout.failed",
        "service": "shop",
        "dye": "",
        "attr_keys": ["ok", "ratio", "tags"],
        "attr_types": [2, 4, 6],
        "attr_values": [
            "true",
            "NaN",
            '{"arrayValue":{"values":[{"stringValue":"x"},{"intValue":"1"}]}}',
        ],
        "dropped_attributes_count": 0,
        "resource_keys": [],
        "resource_types": [],
        "resource_values": [],
        "scope_name": "",
        "scope_version": "",
    }
    store.write_logs(pa.Table.from_pylist([later], schema=LOG_SCHEMA))
    r = c.get(PATH, params={"trace_id": TRACE.hex()})
    assert r.status_code == 200, r.text
    first, second = r.json()["logs"]
    assert first == {
        "time": "2023-11-14T22:13:20.000000000Z",
        "time_unix_nano": str(T0),
        "observed_time_unix_nano": str(T0 + 1000),
        "trace_id": TRACE.hex(),
        "span_id": SPAN.hex(),
        "flags": 1,
        "severity_number": 5,
        "severity_text": "DEBUG",
        "body": "record 0",
        "event_name": "",
        "attributes": {"tinct.dye": "user:42", "n": 7},
        "resource": {"service.name": "shop"},
        "service": "shop",
        "scope": {"name": "shop.cache", "version": "1.2"},
        "dye": "user:42",
    }
    assert second["time"] == "2023-11-14T22:13:20.123456789Z"
    assert second["body"] == {"a": 3}
    assert second["attributes"] == {"ok": True, "ratio": "NaN", "tags": ["x", 1]}
    assert second["span_id"] == ""


def test_span_filter_and_limit() -> None:
    c, store = client()
    more = decode_logs_protobuf(logs_request(1).SerializeToString()).batch
    store.write_logs(more)  # a second record of SPAN, at T0 too
    assert len(c.get(PATH, params={"trace_id": TRACE.hex()}).json()["logs"]) == 2
    only = c.get(PATH, params={"trace_id": TRACE.hex(), "span_id": SPAN.hex(), "limit": "1"})
    assert [row["span_id"] for row in only.json()["logs"]] == [SPAN.hex()]
    assert c.get(PATH, params={"trace_id": "ab" * 16}).json() == {"logs": []}


def test_bad_parameters_are_400_naming_them() -> None:
    c, _ = client()
    cases = [
        ({}, "trace_id: is required"),
        ({"trace_id": "xyz"}, "trace_id: must be 32 hex digits"),
        ({"trace_id": TRACE.hex(), "span_id": "12"}, "span_id: must be 16 hex digits"),
        ({"trace_id": TRACE.hex(), "limit": "0"}, "limit: must be between 1 and 10000"),
        ({"trace_id": TRACE.hex(), "limit": "10001"}, "limit: must be between 1 and 10000"),
        ({"trace_id": TRACE.hex(), "limit": "many"}, "limit: must be an integer"),
    ]
    for params, message in cases:
        r = c.get(PATH, params=params)
        assert r.status_code == 400, params
        assert r.json()["error"].startswith(message), r.json()


def test_503_while_the_store_opens() -> None:
    r = AppClient(create_main_app(None)).get(PATH, params={"trace_id": TRACE.hex()})
    assert r.status_code == 503
