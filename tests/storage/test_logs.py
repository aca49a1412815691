"""Log records: DDL, round trip, trace lookup and retention on every backend."""

from __future__ import annotations

import time
from typing import Any

import pyarrow as pa
import pytest

from tinct.logs import LOG_COLUMNS, LOG_SCHEMA, LogQuery
from tinct.storage import InvalidBatchError, log_batch_writer, schema
from tinct.storage.schema import Capabilities, SchemaTarget

DAY_NS = 86_400 * 10**9
T0 = 1_714_564_800 * 10**9  # 2024-05-01T12:00:00Z
TRACE = bytes(range(240, 256))  # not UTF-8
OTHER = bytes(16 * [7])
SPAN = b"\x00\xff\x00\xff\x10\x20\x30\x40"
AWKWARD = 'it\'s \\ "q" \t tab \n nl \x00 nul ünïcødé 日本 🚀 %s %(x)s {p0:String}'


def record(**fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "time_ns": T0,
        "observed_time_ns": T0 + 5,
        "trace_id": TRACE,
        "span_id": SPAN,
        "flags": 1,
        "severity_number": 5,
        "severity_text": "DEBUG",
        "body_type": 1,
        "body": "hello",
        "event_name": "",
        "service": "shop",
        "dye": "user:42",
        "attr_keys": ["tinct.dye", "n"],
        "attr_types": [1, 3],
        "attr_values": ["user:42", "-7"],
        "dropped_attributes_count": 0,
        "resource_keys": ["service.name"],
        "resource_types": [1],
        "resource_values": ["shop"],
        "scope_name": "shop.cache",
        "scope_version": "1.0",
    }
    row.update(fields)
    return row


def logs(*rows: dict[str, Any]) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=LOG_SCHEMA)


def test_log_columns_match_the_log_schema() -> None:
    assert tuple(schema.LOG_COLUMN_TYPES) == LOG_COLUMNS


def test_logs_ddl_per_server() -> None:
    old = schema.logs_table(SchemaTarget("db", Capabilities.from_version("18.16.1"), 7))
    for feature in ("LowCardinality", "CODEC", "TTL", "INDEX"):
        assert feature not in old
    assert "ORDER BY (service, time_ns)" in old
    assert "PARTITION BY toDate(toDateTime(least(intDiv(time_ns" in old
    new = schema.logs_table(SchemaTarget("db", Capabilities.from_version("26.9.2.1"), 7))
    assert "INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1" in new
    assert new.rstrip().endswith("+ toIntervalDay(8)")


def test_round_trip_and_trace_lookup(store: Any) -> None:
    full = record(
        body=AWKWARD,
        severity_text=AWKWARD,
        attr_keys=[AWKWARD],
        attr_types=[1],
        attr_values=[AWKWARD],
        time_ns=2**63 + 9,
        observed_time_ns=2**64 - 1,
    )
    later = record(time_ns=T0 + 2, span_id=b"", body="later", body_type=3)
    first = record(time_ns=T0 + 1, body="first")
    other = record(trace_id=OTHER)
    untraced = record(trace_id=b"", span_id=b"")
    store.write_logs(logs(full, later, first, other, untraced))

    assert store.find_logs(LogQuery(TRACE)) == [first, later, full]
    assert store.find_logs(LogQuery(TRACE, span_id=SPAN)) == [first, full]
    assert store.find_logs(LogQuery(TRACE, limit=1)) == [first]
    assert store.find_logs(LogQuery(OTHER)) == [other]
    assert store.find_logs(LogQuery(bytes(16))) == []
    assert store.find_logs(LogQuery(b"short")) == []


def test_bad_batches_are_refused(store: Any) -> None:
    with pytest.raises(InvalidBatchError, match="trace_id"):
        store.write_logs(logs(record(trace_id=b"\x01\x02")))
    with pytest.raises(InvalidBatchError, match="lacks columns"):
        store.write_logs(pa.table({"time_ns": [1]}))


def test_a_log_batch_writer_flushes_into_the_store(store: Any) -> None:
    writer = log_batch_writer(store, max_delay=0.05)
    try:
        writer.submit(logs(record(), record(time_ns=T0 + 1)))
        with pytest.raises(InvalidBatchError):
            writer.submit(logs(record(span_id=b"\x01")))
        assert writer.flush(10)
        assert len(store.find_logs(LogQuery(TRACE))) == 2
    finally:
        writer.close(10)


def test_retention_drops_old_log_days(open_store: Any) -> None:
    now = time.time_ns()
    store = open_store(retention_days=3)
    old, recent = record(time_ns=now - 10 * DAY_NS), record(time_ns=now)
    store.write_logs(logs(old, recent))
    dropped = store.apply_retention(now)
    assert store.find_logs(LogQuery(TRACE)) == [recent]
    if not store.capabilities.ttl:
        old_day = time.strftime("%Y%m%d", time.gmtime(old["time_ns"] // 10**9))
        assert (schema.LOGS, old_day) in dropped
