"""What goes into a store comes back exactly, on every backend."""

from __future__ import annotations

import threading
from typing import Any

import pyarrow as pa
import pytest

from tinct.errors import StorageError
from tinct.spans import SPAN_COLUMNS, SPAN_SCHEMA, TraceQuery, dump_attrs, tag_entry
from tinct.storage import InvalidBatchError

from .spanrows import BASE_NS, MS, batch, span, trace_id

# Text a user could send that is awkward for SQL literals and escaping.
AWKWARD = 'it\'s \\ "q" \t tab \n nl \x1f sep \x00 nul ünïcødé 日本 🚀 %s %(x)s {p0:String}'


def full_span() -> dict[str, Any]:
    """A span with every column set to something non-default."""
    tid = bytes(range(240, 256))  # not UTF-8
    return span(
        trace_id=tid,
        span_id=b"\x00\xff\x00\xff\x10\x20\x30\x40",
        parent_span_id=b"\xfe\x00\x01\x02\x03\x04\x05\x06",
        trace_state="ot=th:8;rv:1,vendor=x",
        flags=0x301,
        service="chéckout-服务",
        name=AWKWARD,
        kind=3,
        start_ns=2**63 + 123_456_789,
        duration_ns=-42,
        status_code=2,
        status_message=AWKWARD,
        http_route="/users/{id}",
        http_method="POST",
        http_status_code=503,
        peer_service="payments",
        server_address="db.example:5432",
        db_system="postgresql",
        enduser_id="alice@example.com",
        dye="user:alice",
        sampling_probability=0.125,
        attr_keys=["http.method", "empty", AWKWARD, "n"],
        attr_types=[1, 0, 1, 3],
        attr_values=["POST", "", AWKWARD, "-7"],
        dropped_attributes_count=3,
        resource_keys=["service.name", "host.name"],
        resource_types=[1, 1],
        resource_values=["chéckout-服务", "h1"],
        resource_dropped=1,
        resource_schema_url="https://opentelemetry.io/schemas/1.21.0",
        scope_name="io.tinct.test",
        scope_version="1.2.3",
        scope_keys=["scope.k"],
        scope_types=[4],
        scope_values=["72.5"],
        scope_dropped=2,
        scope_schema_url="https://example/scope",
        event_times=[2**63 + 123_456_790, 0, 2**64 - 1],
        event_names=["exception", "", "ünï"],
        event_attrs=[dump_attrs(["exception.message"], [1], [AWKWARD]), "", ""],
        event_dropped=[0, 1, 4_000_000_000],
        dropped_events_count=5,
        link_trace_ids=[b"\x00" * 16, b"\xff" * 16],
        link_span_ids=[b"\x01" * 8, b"\x80" * 8],
        link_trace_states=["", "a=b"],
        link_flags=[1, 0],
        link_attrs=["", dump_attrs(["k"], [2], ["true"])],
        link_dropped=[0, 9],
        dropped_links_count=6,
        tags=[tag_entry("http.method", "POST"), tag_entry(AWKWARD, AWKWARD), tag_entry("e", "")],
    )


def test_every_column_round_trips_exactly(store):
    rich = full_span()
    bare = span(trace_id=rich["trace_id"], start_ns=rich["start_ns"] + 1, service="other")
    store.write_spans(batch(bare, rich))

    got = store.get_trace(rich["trace_id"])

    assert got == [rich, bare]
    assert [list(row) for row in got] == [list(SPAN_COLUMNS)] * 2
    assert all(type(row[c]) is bytes for row in got for c in ("trace_id", "span_id"))
    assert got[1]["event_times"] == [] and got[1]["link_trace_ids"] == []


@pytest.mark.parametrize("start", [0, 1, BASE_NS, 2**63 - 1, 2**63, 2**64 - 1])
def test_extreme_start_times_round_trip(store, start):
    row = span(start_ns=start, duration_ns=2**63 - 1)
    store.write_spans(batch(row))
    assert store.get_trace(row["trace_id"]) == [row]


def test_get_trace_unknown_or_malformed_id_is_empty(store):
    store.write_spans(batch(span()))
    assert store.get_trace(trace_id()) == []
    assert store.get_trace(b"") == []
    assert store.get_trace(b"\x01" * 8) == []


def test_get_trace_orders_by_start_and_spans_batches(store):
    tid = trace_id()
    late = span(trace_id=tid, start_ns=BASE_NS + 5 * MS, name="late")
    early = span(trace_id=tid, start_ns=BASE_NS - 3 * 86_400 * 10**9, name="early")
    middle = span(trace_id=tid, start_ns=BASE_NS, name="middle", service="b")
    store.write_spans(batch(late, span()))
    store.write_spans(batch(middle))
    store.write_spans(batch(early))
    assert [r["name"] for r in store.get_trace(tid)] == ["early", "middle", "late"]


def test_batches_with_extra_or_nullable_columns_are_normalized(store):
    row = span()
    loose = pa.Table.from_pylist([row])  # inferred types, nullable fields
    loose = loose.append_column("extra", pa.array([1]))
    store.write_spans(loose.cast(loose.schema))  # not SPAN_SCHEMA; castable
    assert store.get_trace(row["trace_id"]) == [row]


@pytest.mark.parametrize(
    ("column", "value"), [("trace_id", b"\x01" * 15), ("span_id", b"\x01" * 9)]
)
def test_ids_of_wrong_length_are_rejected(store, column, value):
    with pytest.raises(InvalidBatchError, match=column):
        store.write_spans(batch(span(**{column: value})))


def test_missing_column_is_rejected(store):
    table = batch(span()).drop_columns(["tags"])
    with pytest.raises(InvalidBatchError, match="tags"):
        store.write_spans(table)


def test_empty_batch_is_a_no_op(store):
    store.write_spans(SPAN_SCHEMA.empty_table())
    assert store.services() == []


def test_services_and_operations(store):
    store.write_spans(
        batch(
            span(service="web", name="GET /", kind=2),
            span(service="web", name="GET /", kind=2),
            span(service="web", name="GET /", kind=3),
            span(service="web", name="render", kind=1),
            span(service="db", name="SELECT", kind=2),
        )
    )
    store.write_spans(batch(span(service="web", name="GET /", kind=2, start_ns=BASE_NS + 1)))
    store.write_spans(batch(span(service=AWKWARD, name=AWKWARD, kind=5)))

    assert store.services() == sorted(["web", "db", AWKWARD])
    assert store.operations("web") == [("GET /", 2), ("GET /", 3), ("render", 1)]
    assert store.operations("web", 2) == [("GET /", 2)]
    assert store.operations("web", 4) == []
    assert store.operations(AWKWARD) == [(AWKWARD, 5)]
    assert store.operations("nope") == []
    assert store.operations("web", 999) == []


def test_operations_have_no_duplicates_before_merges(open_store):
    """A reopened store has no memory of written operations and writes them
    again; reads must still list each once."""
    for _ in range(3):
        store = open_store()
        store.write_spans(batch(span(service="s", name="a", kind=2), span(service="s", name="b")))
        store.close()
    store = open_store()
    assert store.services() == ["s"]
    assert store.operations("s") == [("a", 2), ("b", 0)]


def test_closed_store_refuses_reads_and_writes(open_store):
    store = open_store()
    store.close()
    store.close()  # idempotent
    with pytest.raises(StorageError):
        store.get_trace(trace_id())
    with pytest.raises(StorageError):
        store.write_spans(batch(span()))


def test_reads_run_while_another_thread_writes(store):
    tid = trace_id()
    errors: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        try:
            while not done.is_set():
                store.get_trace(tid)
                store.find_traces(TraceQuery(service="svc", limit=5))
                store.services()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(4)]
    for t in readers:
        t.start()
    try:
        for i in range(20):
            rows = [span(trace_id=tid, start_ns=BASE_NS + i) for _ in range(50)]
            store.write_spans(batch(*rows))
    finally:
        done.set()
        for t in readers:
            t.join()
    assert errors == []
    assert len(store.get_trace(tid)) == 1000
