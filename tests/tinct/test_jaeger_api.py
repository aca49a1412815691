"""The Jaeger query API over an in-memory store: routes, envelopes, parameters."""

from __future__ import annotations

from typing import Any

import pytest

from tests.asgi import AppClient
from tests.fakes import span_row, span_table
from tinct.main_app import create_main_app, set_store
from tinct.selfmetrics import SelfMetrics
from tinct.storage import InMemorySpanStore

NOW_NS = 1_700_000_100_000_000_000  # the pinned clock
T0 = NOW_NS - 60 * 10**9  # a minute ago
TID_A = bytes(15) + b"\x0a"
TID_B = bytes(15) + b"\x0b"
TID_C = bytes(15) + b"\x0c"


@pytest.fixture
def store() -> InMemorySpanStore:
    s = InMemorySpanStore()
    rows = [
        # Trace A: frontend server span, backend client span with tags.
        span_row(trace_id=TID_A, span_id=b"\x00" * 7 + b"\x01", service="frontend",
                 name="GET /cart", kind=2, start_ns=T0, duration_ns=5_000_000,
                 attrs={"http.status_code": "200"}),
        span_row(trace_id=TID_A, span_id=b"\x00" * 7 + b"\x02",
                 parent_span_id=b"\x00" * 7 + b"\x01", service="backend", name="SELECT",
                 kind=3, start_ns=T0 + 1000, duration_ns=1_000_000,
                 attrs={"db.system": "postgresql", "ratio": "72.5"}),
        # Trace B: newer, slower, error tag.
        span_row(trace_id=TID_B, service="frontend", name="POST /pay", kind=2,
                 start_ns=T0 + 10**9, duration_ns=900_000_000, attrs={"error": "true"}),
        # Trace C: three days old (outside the default two-day lookback).
        span_row(trace_id=TID_C, service="frontend", name="GET /cart", kind=2,
                 start_ns=NOW_NS - 3 * 86_400 * 10**9, duration_ns=1_000),
    ]  # fmt: skip
    s.write_spans(span_table(rows))
    return s


@pytest.fixture
def metrics() -> SelfMetrics:
    return SelfMetrics(process_collectors=False)


@pytest.fixture
def client(store: InMemorySpanStore, metrics: SelfMetrics) -> AppClient:
    return AppClient(create_main_app(store, metrics=metrics, clock=lambda: NOW_NS))


def trace_ids(body: dict[str, Any]) -> list[str]:
    return [t["traceID"] for t in body["data"]]


def test_services_envelope(client: AppClient) -> None:
    r = client.get("/api/services")
    assert r.status_code == 200
    assert r.json() == {
        "data": ["backend", "frontend"],
        "total": 2,
        "limit": 0,
        "offset": 0,
        "errors": None,
    }


def test_operations(client: AppClient) -> None:
    body = client.get("/api/services/frontend/operations").json()
    assert body["data"] == ["GET /cart", "POST /pay"]
    body = client.get("/api/operations", params={"service": "backend"}).json()
    assert body["data"] == [{"name": "SELECT", "spanKind": "client"}]
    body = client.get(
        "/api/operations", params={"service": "frontend", "spanKind": "client"}
    ).json()
    assert body["data"] == []
    r = client.get("/api/operations")
    assert r.status_code == 400
    assert r.json()["errors"] == [{"code": 400, "msg": "parameter 'service' is required"}]
    r = client.get("/api/operations", params={"service": "x", "spanKind": "sideways"})
    assert r.status_code == 400 and "'spanKind'" in r.json()["errors"][0]["msg"]


def test_find_traces_default_window_newest_first(client: AppClient) -> None:
    body = client.get("/api/traces", params={"service": "frontend"}).json()
    assert trace_ids(body) == [
        "0000000000000000000000000000000b",
        "0000000000000000000000000000000a",
    ]
    assert body["total"] == 2 and body["errors"] is None
    # A whole trace comes back, spans of other services included.
    spans = body["data"][1]["spans"]
    assert {s["operationName"] for s in spans} == {"GET /cart", "SELECT"}
    body = client.get("/api/traces", params={"service": "frontend", "lookback": "7d"}).json()
    assert len(body["data"]) == 3


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"operation": "GET /cart"}, ["a"]),
        ({"minDuration": "100ms"}, ["b"]),
        ({"maxDuration": "5ms"}, ["a"]),
        ({"minDuration": "4.5ms", "maxDuration": "1s"}, ["b", "a"]),
        ({"tags": '{"error": true}'}, ["b"]),
        ({"tag": "http.status_code:200"}, ["a"]),
        ({"tags": '{"http.status_code": 200}'}, ["a"]),
        ({"tags": '{"http.status_code": 404}'}, []),
        ({"limit": "1"}, ["b"]),
        ({"spanKind": "server", "operation": "POST /pay"}, ["b"]),
        ({"start": str((T0 + 500_000_000) // 1000)}, ["b"]),
        ({"end": str((T0 + 500_000_000) // 1000), "lookback": "1h"}, ["a"]),
    ],
)
def test_find_traces_filters(
    client: AppClient, params: dict[str, str], expected: list[str]
) -> None:
    r = client.get("/api/traces", params={"service": "frontend", **params})
    assert r.status_code == 200, r.text
    assert trace_ids(r.json()) == ["0" * 31 + x for x in expected]


def test_tags_match_on_one_span_of_the_service(client: AppClient) -> None:
    body = client.get(
        "/api/traces", params={"service": "backend", "tags": '{"ratio": 72.5}'}
    ).json()
    assert trace_ids(body) == ["0" * 31 + "a"]


def test_find_traces_by_trace_id_params(client: AppClient) -> None:
    r = client.get("/api/traces", params=[("traceID", "a"), ("traceID", "ff")])
    assert trace_ids(r.json()) == ["0" * 31 + "a"]


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({}, "service"),
        ({"service": "frontend", "minDuration": "10"}, "minDuration"),
        ({"service": "frontend", "maxDuration": "1y"}, "maxDuration"),
        ({"service": "frontend", "minDuration": "2s", "maxDuration": "1s"}, "maxDuration"),
        ({"service": "frontend", "start": "yesterday"}, "start"),
        ({"service": "frontend", "end": "1.5"}, "end"),
        ({"service": "frontend", "start": "20", "end": "10"}, "start"),
        ({"service": "frontend", "limit": "-1"}, "limit"),
        ({"service": "frontend", "limit": "100000"}, "limit"),
        ({"service": "frontend", "lookback": "later"}, "lookback"),
        ({"service": "frontend", "tags": "{bad"}, "tags"),
        ({"service": "frontend", "tag": "nocolon"}, "tag"),
    ],
)
def test_bad_parameters_are_400_naming_them(
    client: AppClient, params: dict[str, str], param: str
) -> None:
    r = client.get("/api/traces", params=params)
    assert r.status_code == 400
    body = r.json()
    assert body["data"] is None and body["total"] == 0
    [error] = body["errors"]
    assert error["code"] == 400
    assert f"'{param}'" in error["msg"]


def test_get_trace(client: AppClient, metrics: SelfMetrics) -> None:
    r = client.get("/api/traces/a")  # left-padded to 32 hex digits
    assert r.status_code == 200
    [trace] = r.json()["data"]
    assert trace["traceID"] == "0" * 31 + "a"
    assert len(trace["spans"]) == 2
    assert {p["serviceName"] for p in trace["processes"].values()} == {"frontend", "backend"}
    r = client.get("/api/traces/" + "f" * 32)
    assert r.status_code == 404
    assert r.json() == {
        "data": None,
        "total": 0,
        "limit": 0,
        "offset": 0,
        "errors": [{"code": 404, "msg": "trace not found"}],
    }
    r = client.get("/api/traces/xyz")
    assert r.status_code == 400 and "'traceID'" in r.json()["errors"][0]["msg"]
    text = metrics.exposition()[0].decode()
    assert 'tinct_store_query_duration_seconds_count{operation="get_trace"} 2.0' in text


def test_get_trace_v3_is_otlp_json(client: AppClient) -> None:
    r = client.get("/api/v3/traces/" + "0" * 31 + "a")
    assert r.status_code == 200
    resource_spans = r.json()["result"]["resourceSpans"]
    names = {
        span["name"] for rs in resource_spans for ss in rs["scopeSpans"] for span in ss["spans"]
    }
    assert names == {"GET /cart", "SELECT"}
    span = resource_spans[0]["scopeSpans"][0]["spans"][0]
    assert span["traceId"] == "0" * 31 + "a"  # OTLP/JSON hex ids
    r = client.get("/api/v3/traces/" + "e" * 32)
    assert r.status_code == 404
    assert r.json() == {"error": {"httpCode": 404, "message": "trace not found"}}
    assert client.get("/api/v3/traces/nothex").status_code == 400


def test_store_not_open_yet(metrics: SelfMetrics, store: InMemorySpanStore) -> None:
    app = create_main_app(None, metrics=metrics)
    client = AppClient(app)
    assert client.get("/-/healthy").text == "tinct is Healthy.\n"
    assert client.get("/-/ready").status_code == 503
    r = client.get("/api/services")
    assert r.status_code == 503 and r.json()["errors"][0]["code"] == 503
    set_store(app, store)
    assert client.get("/-/ready").text == "tinct is Ready.\n"
    assert client.get("/api/services").json()["data"] == ["backend", "frontend"]


def test_dependencies_count_calls_between_services(client: AppClient) -> None:
    r = client.get("/api/dependencies", params={"endTs": str(NOW_NS // 10**6)})
    assert r.status_code == 200
    assert r.json()["data"] == [{"parent": "frontend", "child": "backend", "callCount": 1}]
    # A window ending before the call sees nothing; lookback is in milliseconds.
    early = client.get(
        "/api/dependencies", params={"endTs": str(T0 // 10**6 - 1), "lookback": "1000"}
    )
    assert early.json()["data"] == []
    bad = client.get("/api/dependencies", params={"lookback": "soon"})
    assert bad.status_code == 400 and "lookback" in bad.json()["errors"][0]["msg"]
