"""tinct's psycopg client spans (tracing.dbapi) against a real PostgreSQL.

The test harness starts a throwaway cluster (tests.servers.postgres_server);
without the Debian ``postgresql`` package the tests are skipped.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, Sampler, SamplingResult
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    StatusCode,
    TraceFlags,
)
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from tests.servers import postgres_server
from tinct.tracing import instrument_clients
from tinct.tracing.dbapi import PsycopgInstrumentor, operation_and_target, span_name

pytestmark = pytest.mark.server

_SCOPE = "tinct.tracing.dbapi"

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed (tinct[test])")


class CountingSampler(Sampler):
    """ParentBased(ALWAYS_ON), counting its decisions."""

    def __init__(self) -> None:
        self.calls = 0
        self._inner = ParentBased(ALWAYS_ON)

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        self.calls += 1
        return self._inner.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return "counting"


@pytest.fixture(scope="module")
def pg_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with postgres_server(Path(tmp_path_factory.mktemp("pg"))) as port:
        yield port


@pytest.fixture
def traced() -> Iterator[tuple[TracerProvider, InMemorySpanExporter, CountingSampler]]:
    sampler = CountingSampler()
    provider = TracerProvider(sampler=sampler)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = PsycopgInstrumentor(
        provider, peer_service=lambda host, port: "orders-db" if port == 1 else None
    )
    instrumentor.instrument()
    try:
        yield provider, exporter, sampler
    finally:
        instrumentor.uninstrument()
        provider.shutdown()


def _connect(port: int) -> Any:
    return psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True)


def _db_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    spans = exporter.get_finished_spans()
    return [s for s in spans if s.instrumentation_scope and s.instrumentation_scope.name == _SCOPE]


def test_insert_and_select_spans_carry_the_database_attributes(pg_port: int, traced) -> None:
    provider, exporter, _ = traced
    tracer = provider.get_tracer("test")
    with _connect(pg_port) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS orders (id serial PRIMARY KEY, sku text)")
        exporter.clear()
        with tracer.start_as_current_span("POST /orders", kind=SpanKind.SERVER) as parent:
            conn.execute("INSERT INTO orders (sku) VALUES (%s)", ("sku-secret-001",))
            with conn.cursor() as cur:
                cur.execute("SELECT id, sku FROM orders WHERE sku = %s", ("sku-secret-001",))
                assert cur.fetchall()
                cur.executemany("INSERT INTO orders (sku) VALUES (%s)", [("a",), ("b",)])
    insert, select, many = _db_spans(exporter)
    assert (insert.name, select.name, many.name) == (
        "INSERT orders",
        "SELECT orders",
        "INSERT orders",
    )
    for span in (insert, select, many):
        assert span.kind == SpanKind.CLIENT
        assert span.parent is not None
        assert span.parent.span_id == parent.get_span_context().span_id
        assert span.context.trace_id == parent.get_span_context().trace_id
        assert span.status.status_code == StatusCode.UNSET
    attrs = dict(select.attributes or {})
    assert attrs == {
        "db.system.name": "postgresql",
        "db.system": "postgresql",
        "db.namespace": "postgres",
        "db.operation.name": "SELECT",
        "db.collection.name": "orders",
        "db.query.text": "SELECT id, sku FROM orders WHERE sku = %s",
        "server.address": "127.0.0.1",
        "server.port": pg_port,
        "peer.service": "postgresql",
    }
    for span in (insert, select, many):  # parameter values are never recorded
        assert "sku-secret-001" not in repr(dict(span.attributes or {}))


def test_a_failing_statement_ends_its_span_in_error(pg_port: int, traced) -> None:
    _, exporter, _ = traced
    with _connect(pg_port) as conn, pytest.raises(psycopg.errors.UndefinedTable):
        conn.execute("SELECT * FROM no_such_table WHERE id = %s", (1,))
    [span] = _db_spans(exporter)
    assert span.name == "SELECT no_such_table"
    assert span.parent is None
    assert span.status.status_code == StatusCode.ERROR
    assert "no_such_table" in (span.status.description or "")
    attrs = dict(span.attributes or {})
    assert attrs["error.type"] == "UndefinedTable"
    assert attrs["db.response.status_code"] == "42P01"
    assert [e.name for e in span.events] == ["exception"]


def test_no_span_and_no_sampler_call_inside_an_unsampled_span(pg_port: int, traced) -> None:
    _, exporter, sampler = traced
    unsampled = NonRecordingSpan(SpanContext(1, 2, is_remote=False, trace_flags=TraceFlags(0)))
    with _connect(pg_port) as conn:
        with trace.use_span(unsampled):
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert sampler.calls == 0
        assert _db_spans(exporter) == []
        conn.execute("SELECT 2")  # a root: the sampler decides
    assert sampler.calls == 1
    [span] = _db_spans(exporter)
    assert span.name == "SELECT"


def test_async_cursors_are_traced(pg_port: int, traced) -> None:
    import asyncio

    _, exporter, _ = traced

    async def run() -> None:
        url = f"postgresql://postgres@127.0.0.1:{pg_port}/postgres"
        async with await psycopg.AsyncConnection.connect(url) as conn:
            await conn.execute("SELECT %s::int", (7,))

    asyncio.run(run())
    [span] = _db_spans(exporter)
    assert (
        span.name == "SELECT" and dict(span.attributes or {})["db.query.text"] == "SELECT %s::int"
    )


@pytest.mark.skipif(
    importlib.util.find_spec("opentelemetry.instrumentation.psycopg") is not None,
    reason="OpenTelemetry's psycopg instrumentation is installed: instrument_clients uses it",
)
def test_instrument_clients_falls_back_on_tinct_psycopg(pg_port: int) -> None:
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumented = instrument_clients(
        {f"127.0.0.1:{pg_port}": "orders-db"}, libraries=["psycopg"], tracer_provider=provider
    )
    try:
        assert instrumented.enabled == ("psycopg",)
        again = instrument_clients(libraries=["psycopg"])
        assert again.enabled == () and again.skipped == {"psycopg": "already instrumented"}
        with _connect(pg_port) as conn:
            conn.execute("SELECT 1")
        [span] = _db_spans(exporter)
        assert dict(span.attributes or {})["peer.service"] == "orders-db"
    finally:
        instrumented.uninstrument()
    assert not PsycopgInstrumentor.is_instrumented()
    with _connect(pg_port) as conn:
        conn.execute("SELECT 1")
    assert len(_db_spans(exporter)) == 1
    provider.shutdown()


@pytest.mark.parametrize(
    ("statement", "name"),
    [
        ("SELECT id FROM orders WHERE id = %s", "SELECT orders"),
        ('  -- note\n insert into shop."Users" (a) values (%s)', "INSERT Users"),
        ("UPDATE items SET stock = stock - 1 RETURNING sku", "UPDATE items"),
        ("DELETE FROM only carts", "DELETE carts"),
        ("SELECT a FROM x JOIN y ON x.id = y.id", "SELECT"),
        ("SELECT a FROM x, y", "SELECT"),
        ("CREATE TABLE t (a int)", "CREATE"),
        ("", "postgresql"),
    ],
)
def test_span_names(statement: str, name: str) -> None:
    assert span_name(*operation_and_target(statement)) == name
