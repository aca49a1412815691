"""Jaeger's storage integration suite through a running `tinct up`'s HTTP APIs.

Every trace fixture goes in over OTLP/HTTP JSON, as an instrumented app would
send it; every query case is asked through ``GET /api/traces`` the way Jaeger
UI and Grafana's Jaeger data source ask (typed tags as a JSON object, times in
microseconds, durations in Go's syntax). A case passes when exactly the
expected fixture traces come back, each equal to an independent reading of
the fixture in Jaeger's v1 shape, and whole (every span and attribute)
through the lossless ``/api/v3/traces/{id}``. One process per backend.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.otlp_compare import canonical_spans
from tests.peer.jaeger_fixtures import (
    QueryCase,
    day_shift_ns,
    expected_v1_spans,
    fixture_names,
    load_fixture,
    query_cases,
    tag_order,
    trace_ids_of,
)
from tests.servers import TinctProcess

pytestmark = pytest.mark.server

DELTA_NS = day_shift_ns()
CASES = query_cases(DELTA_NS)
FIXTURES = {name: load_fixture(name, DELTA_NS) for name in fixture_names()}
FIXTURE_OF_TRACE = {tid: name for name, data in FIXTURES.items() for tid in trace_ids_of(data)}
SPAN_COUNT = sum(len(expected_v1_spans(data)) for data in FIXTURES.values())


def _written_rows(main: str) -> float:
    text = httpx.get(f"{main}/metrics").text
    for family in text_string_to_metric_families(text):
        if family.name == "tinct_writer_written_rows":
            return sum(s.value for s in family.samples if s.labels.get("signal") == "spans")
    return 0.0


@pytest.fixture(
    scope="module", params=["chdb", pytest.param("clickhouse", marks=pytest.mark.clickhouse)]
)
def tinct(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TinctProcess]:
    """A `tinct up` on one backend with every fixture loaded over OTLP/HTTP JSON."""
    extra: list[str] = []
    if request.param == "clickhouse":
        port = request.getfixturevalue("clickhouse_port")
        extra = ["--store", f"clickhouse://127.0.0.1:{port}/jaeger_http"]
    proc = TinctProcess(Path(tmp_path_factory.mktemp(f"jaeger-http-{request.param}")), *extra)
    try:
        proc.wait_ready()
        with httpx.Client(timeout=10) as client:
            for name, data in FIXTURES.items():
                response = client.post(
                    proc.urls["OTLP/HTTP"],
                    content=json.dumps(data).encode(),
                    headers={"Content-Type": "application/json"},
                )
                assert response.status_code == 200, (name, response.text)
                partial = response.json().get("partialSuccess", {})
                assert not partial.get("rejectedSpans"), (name, partial)
        deadline = time.monotonic() + 10
        while _written_rows(proc.main) < SPAN_COUNT:
            assert time.monotonic() < deadline, "spans were not written within 10 s"
            time.sleep(0.05)
        yield proc
    finally:
        assert proc.stop() == 0, "".join(proc.lines)


def _go_duration(ns: int, spelling: int) -> str:
    # Both spellings Jaeger UI users type: whole nanoseconds, or decimal microseconds.
    if spelling == 0:
        return f"{ns}ns"
    return f"{ns / 1000:g}{'us' if spelling == 1 else 'µs'}"


def _search_params(case: QueryCase, index: int) -> list[tuple[str, Any]]:
    raw, query = case.raw, case.query
    params: list[tuple[str, Any]] = [("service", query.service)]
    if query.operation:
        params.append(("operation", query.operation))
    if raw["Tags"]:
        # Typed values as they are in the fixture query (123, 72.5, true).
        params.append(("tags", json.dumps(raw["Tags"], separators=(",", ":"))))
    assert query.start_min_ns is not None and query.start_max_ns is not None
    params += [("start", str(query.start_min_ns // 1000)), ("end", str(query.start_max_ns // 1000))]
    if query.duration_min_ns:
        params.append(("minDuration", _go_duration(query.duration_min_ns, index % 3)))
    if query.duration_max_ns:
        params.append(("maxDuration", _go_duration(query.duration_max_ns, (index + 1) % 3)))
    params.append(("limit", str(query.limit)))
    return params


def _trace_id(text: str) -> str:
    # Jaeger prints ids whose high half is zero in 16 digits; tinct may use 32.
    return text.lower().rjust(32, "0")


def _v1_spans(trace: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A v1 trace's spans in :func:`expected_v1_spans`'s form."""
    out = {}
    for span in trace["spans"]:
        process = trace["processes"][span["processID"]]
        out[span["spanID"]] = {
            "traceID": _trace_id(span["traceID"]),
            "operationName": span["operationName"],
            "references": [
                {**ref, "traceID": _trace_id(ref["traceID"])} for ref in span["references"]
            ],
            "startTime": span["startTime"],
            "duration": span["duration"],
            "tags": tag_order(span["tags"]),
            "logs": span["logs"],
            "process": {"serviceName": process["serviceName"], "tags": tag_order(process["tags"])},
        }
    return out


def _check_traces(tinct: TinctProcess, response: httpx.Response, case: QueryCase) -> None:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["errors"] is None
    traces = body["data"]
    got = [_trace_id(t["traceID"]) for t in traces]
    want = set().union(*(trace_ids_of(FIXTURES[name]) for name in case.expected))
    assert len(got) == len(set(got)), f"{case.caption}: a trace came back twice: {got}"
    assert set(got) == want, f"{case.caption}: got {sorted(got)}, want {case.expected}"
    for trace, trace_id in zip(traces, got, strict=True):
        fixture = FIXTURES[FIXTURE_OF_TRACE[trace_id]]
        assert _v1_spans(trace) == expected_v1_spans(fixture), (case.caption, trace_id)
        v3 = httpx.get(f"{tinct.main}/api/v3/traces/{trace_id}")
        assert v3.status_code == 200, v3.text
        assert canonical_spans(v3.json()["result"]) == canonical_spans(fixture), trace_id


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c.caption for c in CASES])
def test_find_traces(tinct: TinctProcess, index: int) -> None:
    case = CASES[index]
    response = httpx.get(f"{tinct.main}/api/traces", params=_search_params(case, index))
    _check_traces(tinct, response, case)


@pytest.mark.parametrize("caption", ["Tags in one spot - Logs", "Link Attributes"])
def test_find_traces_repeated_tag_form(tinct: TinctProcess, caption: str) -> None:
    """Tags as repeated ``tag=key:value`` (Jaeger's other form), values as text."""
    case = next(c for c in CASES if c.caption == caption)
    params = [p for p in _search_params(case, 0) if p[0] != "tags"]
    params += [("tag", f"{key}:{value}") for key, value in case.query.tags.items()]
    response = httpx.get(f"{tinct.main}/api/traces", params=params)
    _check_traces(tinct, response, case)


def test_duration_spellings_agree(tinct: TinctProcess) -> None:
    """``4500ns``, ``4.5us`` and ``4.5µs`` are one duration; 4.6us excludes the trace."""
    case = next(c for c in CASES if c.caption == "Duration range")
    base = [p for p in _search_params(case, 0) if not p[0].endswith("Duration")]
    for low, high in (("4500ns", "5500ns"), ("4.5us", "5.5us"), ("4.5µs", "0.0055ms")):
        response = httpx.get(
            f"{tinct.main}/api/traces",
            params=[*base, ("minDuration", low), ("maxDuration", high)],
        )
        _check_traces(tinct, response, case)
    narrow = httpx.get(
        f"{tinct.main}/api/traces",
        params=[*base, ("minDuration", "5001ns"), ("maxDuration", "5.5us")],
    )
    assert narrow.status_code == 200
    assert narrow.json()["data"] == []  # dur_trace lasts exactly 5 µs


def test_get_trace_v1(tinct: TinctProcess) -> None:
    fixture = FIXTURES["example_trace"]
    [trace_id] = trace_ids_of(fixture)
    for spelled in (trace_id, trace_id.lstrip("0"), trace_id.upper()):
        response = httpx.get(f"{tinct.main}/api/traces/{spelled}")
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["total"], body["errors"]) == (1, None)
        [trace] = body["data"]
        assert _trace_id(trace["traceID"]) == trace_id
        assert _v1_spans(trace) == expected_v1_spans(fixture)
        assert sorted(p["serviceName"] for p in trace["processes"].values()) == [
            "example-service-1",
            "example-service-2",
            "example-service-3",
        ]


def test_get_every_fixture_whole(tinct: TinctProcess) -> None:
    for name, fixture in FIXTURES.items():
        for trace_id in trace_ids_of(fixture):
            v1 = httpx.get(f"{tinct.main}/api/traces/{trace_id}")
            assert v1.status_code == 200, (name, v1.text)
            [trace] = v1.json()["data"]
            assert _v1_spans(trace) == expected_v1_spans(fixture), name
            v3 = httpx.get(f"{tinct.main}/api/v3/traces/{trace_id}")
            assert canonical_spans(v3.json()["result"]) == canonical_spans(fixture), name


def test_unknown_trace_is_404(tinct: TinctProcess) -> None:
    response = httpx.get(f"{tinct.main}/api/traces/{'ffff' * 8}")
    assert response.status_code == 404
    assert response.json()["errors"] == [{"code": 404, "msg": "trace not found"}]
    v3 = httpx.get(f"{tinct.main}/api/v3/traces/{'ffff' * 8}")
    assert v3.status_code == 404
    assert v3.json() == {"error": {"httpCode": 404, "message": "trace not found"}}


def test_services(tinct: TinctProcess) -> None:
    body = httpx.get(f"{tinct.main}/api/services").json()
    services = body["data"]
    fixture_services = {
        span["process"]["serviceName"]
        for data in FIXTURES.values()
        for span in expected_v1_spans(data).values()
    }
    assert fixture_services <= set(services)
    assert {"example-service-1", "query25-service"} <= fixture_services
    assert (body["total"], body["errors"]) == (len(services), None)


def test_operations(tinct: TinctProcess) -> None:
    names = httpx.get(f"{tinct.main}/api/services/example-service-1/operations").json()
    assert names["data"] == ["example-operation-1", "example-operation-3", "example-operation-4"]
    assert (names["total"], names["errors"]) == (3, None)

    url = f"{tinct.main}/api/operations"
    every = httpx.get(url, params={"service": "example-service-1"}).json()
    assert sorted(every["data"], key=lambda op: op["name"]) == [
        {"name": "example-operation-1", "spanKind": ""},
        {"name": "example-operation-3", "spanKind": "server"},
        {"name": "example-operation-4", "spanKind": "client"},
    ]
    assert every["total"] == 3
    server = httpx.get(url, params={"service": "example-service-1", "spanKind": "server"}).json()
    assert server["data"] == [{"name": "example-operation-3", "spanKind": "server"}]
    assert server["total"] == 1
    client = httpx.get(url, params={"service": "example-service-1", "spanKind": "client"}).json()
    assert client["data"] == [{"name": "example-operation-4", "spanKind": "client"}]
    none = httpx.get(url, params={"service": "no-such-service"}).json()
    assert (none["data"], none["total"]) == ([], 0)
