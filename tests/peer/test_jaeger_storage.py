"""Jaeger's storage integration suite, through tinct's store, on both backends.

Every trace fixture is loaded through the OTLP JSON path first, so the other
fixtures act as counter-examples for each query, as in Jaeger's runner.
A query case passes when the returned traces are exactly the expected fixture
traces, each equal to its fixture whole (every span and attribute).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.otlp_compare import canonical_spans
from tests.peer.jaeger_fixtures import (
    QueryCase,
    day_shift_ns,
    fixture_names,
    load_fixture,
    query_cases,
)
from tinct.spans import SpanKind
from tinct.storage import open_store
from tinct.storage.base import SpanStore
from tinct.tracing.otlp_decode import decode_json
from tinct.tracing.otlp_encode import encode_traces_data

DELTA_NS = day_shift_ns()
CASES = query_cases(DELTA_NS)


@pytest.fixture(scope="module", params=["chdb", "clickhouse"])
def loaded_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SpanStore]:
    if request.param == "chdb":
        url = f"chdb://{tmp_path_factory.mktemp('jaeger-chdb')}"
    else:
        port = request.getfixturevalue("clickhouse_port")
        url = f"clickhouse://127.0.0.1:{port}/jaeger_suite"
    store = open_store(url)
    for name in fixture_names():
        body = json.dumps(load_fixture(name, DELTA_NS)).encode()
        result = decode_json(body)
        assert result.rejected == 0, (name, result.message)
        store.write_spans(result.batch)
    try:
        yield store
    finally:
        store.close()


def _fixture(name: str) -> object:
    return canonical_spans(load_fixture(name, DELTA_NS))


@pytest.mark.parametrize("case", CASES, ids=[c.caption for c in CASES])
def test_find_traces(loaded_store: SpanStore, case: QueryCase) -> None:
    traces = loaded_store.find_traces(case.query)
    got = sorted((canonical_spans(encode_traces_data(rows)) for rows in traces), key=repr)
    want = sorted((_fixture(name) for name in case.expected), key=repr)
    assert len(got) == len(want), f"{case.caption}: {len(got)} traces, want {case.expected}"
    assert got == want


def test_get_trace_whole(loaded_store: SpanStore) -> None:
    for name in fixture_names():
        fixture = load_fixture(name, DELTA_NS)
        trace_ids = {
            s["traceId"]
            for rs in fixture["resourceSpans"]
            for ss in rs["scopeSpans"]
            for s in ss["spans"]
        }
        for trace_id in trace_ids:
            rows = loaded_store.get_trace(bytes.fromhex(trace_id))
            assert canonical_spans(encode_traces_data(rows)) == canonical_spans(fixture), name


def test_trace_not_found(loaded_store: SpanStore) -> None:
    assert loaded_store.get_trace(bytes.fromhex("ffff" * 8)) == []


def test_services(loaded_store: SpanStore) -> None:
    services = loaded_store.services()
    assert {"example-service-1", "example-service-2", "example-service-3"} <= set(services)
    assert {f"query{n:02d}-service" for n in range(1, 26)} <= set(services)
    assert services == sorted(services)


def test_operations_with_span_kinds(loaded_store: SpanStore) -> None:
    ops = loaded_store.operations("example-service-1")
    assert sorted(ops) == [
        ("example-operation-1", SpanKind.UNSPECIFIED),
        ("example-operation-3", SpanKind.SERVER),
        ("example-operation-4", SpanKind.CLIENT),
    ]
    assert loaded_store.operations("example-service-1", SpanKind.SERVER) == [
        ("example-operation-3", SpanKind.SERVER)
    ]
    assert loaded_store.operations("no-such-service") == []
