"""The OpenTelemetry Collector ClickHouse exporter's trace layout, for comparison.

Benchmarks load the same spans into tinct's tables and into this layout
(``otel_traces`` plus its ``otel_traces_trace_id_ts`` lookup, as the
Collector's ``clickhouseexporter`` creates them: Map attributes, hex-string
ids, DateTime64 timestamps, ZSTD codecs, bloom-filter skip indexes) and compare
bytes on disk per span. It needs current ClickHouse (Map, DateTime64, codecs),
so it is only used on chdb. Nothing in tinct reads from it.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pyarrow as pa

from tinct.spans import load_attrs
from tinct.storage import queries
from tinct.storage.sql import Sql, ident
from tinct.storage.sqlstore import SqlSpanStore, _text

__all__ = ["load_otel_layout", "OTEL_DATABASE"]

OTEL_DATABASE = "otel_reference"

_KINDS = ("Unspecified", "Internal", "Server", "Client", "Producer", "Consumer")
_STATUS = ("Unset", "Ok", "Error")


def _ddl(db: str) -> list[str]:
    attrs = "Map(LowCardinality(String), String)"
    return [
        f"CREATE DATABASE IF NOT EXISTS {db}",
        f"""CREATE TABLE IF NOT EXISTS {db}.otel_traces (
            Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
            TraceId String CODEC(ZSTD(1)),
            SpanId String CODEC(ZSTD(1)),
            ParentSpanId String CODEC(ZSTD(1)),
            TraceState String CODEC(ZSTD(1)),
            SpanName LowCardinality(String) CODEC(ZSTD(1)),
            SpanKind LowCardinality(String) CODEC(ZSTD(1)),
            ServiceName LowCardinality(String) CODEC(ZSTD(1)),
            ResourceAttributes {attrs} CODEC(ZSTD(1)),
            ScopeName String CODEC(ZSTD(1)),
            ScopeVersion String CODEC(ZSTD(1)),
            SpanAttributes {attrs} CODEC(ZSTD(1)),
            Duration UInt64 CODEC(T64, ZSTD(1)),
            StatusCode LowCardinality(String) CODEC(ZSTD(1)),
            StatusMessage String CODEC(ZSTD(1)),
            Events Nested (Timestamp DateTime64(9), Name LowCardinality(String),
                           Attributes {attrs}) CODEC(ZSTD(1)),
            Links Nested (TraceId String, SpanId String, TraceState String,
                          Attributes {attrs}) CODEC(ZSTD(1)),
            INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
            INDEX idx_res_attr_key mapKeys(ResourceAttributes)
                TYPE bloom_filter(0.01) GRANULARITY 1,
            INDEX idx_res_attr_value mapValues(ResourceAttributes)
                TYPE bloom_filter(0.01) GRANULARITY 1,
            INDEX idx_span_attr_key mapKeys(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
            INDEX idx_span_attr_value mapValues(SpanAttributes)
                TYPE bloom_filter(0.01) GRANULARITY 1,
            INDEX idx_duration Duration TYPE minmax GRANULARITY 1
        ) ENGINE = MergeTree
        PARTITION BY toDate(Timestamp)
        ORDER BY (ServiceName, SpanName, toDateTime(Timestamp))
        SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1""",
        f"""CREATE TABLE IF NOT EXISTS {db}.otel_traces_trace_id_ts (
            TraceId String CODEC(ZSTD(1)),
            Start DateTime CODEC(Delta, ZSTD(1)),
            End DateTime CODEC(Delta, ZSTD(1)),
            INDEX idx_trace_id TraceId TYPE bloom_filter(0.01) GRANULARITY 1
        ) ENGINE = MergeTree
        PARTITION BY toDate(Start)
        ORDER BY (TraceId, Start)""",
    ]


def _attr_map(keys: list[str], texts: list[str]) -> list[tuple[str, str]]:
    return list(zip(keys, texts, strict=True))


def _otel_rows(batch: pa.Table) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
    spans: dict[str, list[Any]] = defaultdict(list)
    bounds: dict[str, tuple[int, int]] = {}
    for r in batch.to_pylist():
        trace_id = r["trace_id"].hex()
        start, end = r["start_ns"], r["start_ns"] + max(r["duration_ns"], 0)
        lo, hi = bounds.get(trace_id, (start, end))
        bounds[trace_id] = (min(lo, start), max(hi, end))
        spans["Timestamp"].append(start)
        spans["TraceId"].append(trace_id)
        spans["SpanId"].append(r["span_id"].hex())
        spans["ParentSpanId"].append(r["parent_span_id"].hex())
        spans["TraceState"].append(r["trace_state"])
        spans["SpanName"].append(r["name"])
        spans["SpanKind"].append(_KINDS[r["kind"]] if r["kind"] < len(_KINDS) else "Unspecified")
        spans["ServiceName"].append(r["service"])
        spans["ResourceAttributes"].append(_attr_map(r["resource_keys"], r["resource_values"]))
        spans["ScopeName"].append(r["scope_name"])
        spans["ScopeVersion"].append(r["scope_version"])
        spans["SpanAttributes"].append(_attr_map(r["attr_keys"], r["attr_values"]))
        spans["Duration"].append(max(r["duration_ns"], 0))
        spans["StatusCode"].append(_STATUS[r["status_code"]] if r["status_code"] < 3 else "Unset")
        spans["StatusMessage"].append(r["status_message"])
        spans["Events.Timestamp"].append(r["event_times"])
        spans["Events.Name"].append(r["event_names"])
        spans["Events.Attributes"].append([_attr_map(*_keys_texts(a)) for a in r["event_attrs"]])
        spans["Links.TraceId"].append([t.hex() for t in r["link_trace_ids"]])
        spans["Links.SpanId"].append([s.hex() for s in r["link_span_ids"]])
        spans["Links.TraceState"].append(r["link_trace_states"])
        spans["Links.Attributes"].append([_attr_map(*_keys_texts(a)) for a in r["link_attrs"]])
    ids: dict[str, list[Any]] = {
        "TraceId": list(bounds),
        "Start": [lo // 10**9 for lo, _ in bounds.values()],
        "End": [hi // 10**9 for _, hi in bounds.values()],
    }
    return spans, ids


def _keys_texts(dumped: str) -> tuple[list[str], list[str]]:
    keys, _, texts = load_attrs(dumped)
    return keys, texts


_MAP = pa.map_(pa.string(), pa.string())
_SPAN_TYPES: dict[str, pa.DataType] = {
    "Timestamp": pa.timestamp("ns"),
    "ResourceAttributes": _MAP,
    "SpanAttributes": _MAP,
    "Duration": pa.uint64(),
    "Events.Timestamp": pa.list_(pa.timestamp("ns")),
    "Events.Name": pa.list_(pa.string()),
    "Events.Attributes": pa.list_(_MAP),
    "Links.TraceId": pa.list_(pa.string()),
    "Links.SpanId": pa.list_(pa.string()),
    "Links.TraceState": pa.list_(pa.string()),
    "Links.Attributes": pa.list_(_MAP),
}
_ID_TYPES: dict[str, pa.DataType] = {"Start": pa.timestamp("s"), "End": pa.timestamp("s")}


def _arrow(columns: dict[str, list[Any]], types: dict[str, pa.DataType]) -> pa.Table:
    return pa.table({k: pa.array(v, type=types.get(k)) for k, v in columns.items()})


def load_otel_layout(store: SqlSpanStore, batch: pa.Table) -> dict[str, tuple[int, int]]:
    """Load ``batch`` into the reference layout beside ``store``; merge; return sizes.

    Returns ``{table: (rows, bytes on disk)}`` of the reference tables after
    ``OPTIMIZE FINAL``, comparable with ``store.compact(); store.table_sizes()``.
    """
    backend = store._backend  # same package: the reference shares the store's connection
    db = ident(OTEL_DATABASE)
    for statement in _ddl(db):
        backend.execute(Sql(statement))
    spans, ids = _otel_rows(batch)
    backend.insert(f"{db}.otel_traces", _arrow(spans, _SPAN_TYPES))
    backend.insert(f"{db}.otel_traces_trace_id_ts", _arrow(ids, _ID_TYPES))
    for table in ("otel_traces", "otel_traces_trace_id_ts"):
        backend.execute(Sql(f"OPTIMIZE TABLE {db}.{table} FINAL"))
    target = store.target.__class__(OTEL_DATABASE, store.target.caps, 0)
    result = backend.select(queries.table_sizes(target))
    return {_text(r["table"]): (int(r["rows"]), int(r["bytes"])) for r in result.to_pylist()}
