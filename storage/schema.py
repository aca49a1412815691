"""The one place tinct's ClickHouse tables are defined.

Every backend (embedded chdb, a ClickHouse server, later a cluster) gets its
DDL from here, rendered for what the server can do. :class:`Capabilities` is
detected from ``SELECT version()``: ClickHouse 18.16 (Debian's server) has no
column codecs, no TTL, LowCardinality only behind an experimental flag and
experimental skip indexes, so tables are created without them there; current
ClickHouse (chdb 26.x) gets all of them. The answers are the same either way,
only storage size and speed differ.

Each table has one function returning its ``CREATE TABLE``. They take a
:class:`SchemaTarget` that knows the database, the capabilities and how to
name an engine, so cluster DDL (``ON CLUSTER``, ``Replicated*`` engines,
``Distributed`` tables) can later be added in :class:`SchemaTarget` without
touching the column lists. Which DDL runs when is decided by
``tinct.storage.migrations``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tinct.storage.sql import ident

__all__ = [
    "Capabilities",
    "SchemaTarget",
    "SPANS",
    "TRACE_INDEX",
    "OPERATIONS",
    "DYE_RULES",
    "LOGS",
    "SCHEMA_VERSION",
    "SERIES",
    "SAMPLES",
    "METRIC_METADATA",
    "RUM_EVENTS",
    "ALERT_HISTORY",
    "TOPOLOGY_EDGES",
    "TOPOLOGY_PENDING",
    "RETENTION_TABLES",
    "SPAN_COLUMN_TYPES",
    "LOG_COLUMN_TYPES",
    "RUM_EVENT_COLUMN_TYPES",
    "day_expr",
    "day_of_ms_expr",
    "spans_table",
    "trace_index_table",
    "operations_table",
    "dye_rules_table",
    "logs_table",
    "schema_version_table",
    "series_table",
    "samples_table",
    "metric_metadata_table",
    "rum_events_table",
    "alert_history_table",
    "topology_edges_table",
    "topology_pending_table",
    "skip_indexes",
    "ttl_clause",
]

SPANS = "tinct_spans"
TRACE_INDEX = "tinct_trace_index"
OPERATIONS = "tinct_operations"
DYE_RULES = "tinct_dye_rules"
LOGS = "tinct_logs"
SCHEMA_VERSION = "tinct_schema_version"
SERIES = "tinct_series"
SAMPLES = "tinct_samples"
METRIC_METADATA = "tinct_metric_metadata"
RUM_EVENTS = "tinct_rum_events"
ALERT_HISTORY = "tinct_alert_history"
TOPOLOGY_EDGES = "tinct_topology_edges"
TOPOLOGY_PENDING = "tinct_topology_pending"
# Daily-partitioned tables that retention applies to.
RETENTION_TABLES = (SPANS, TRACE_INDEX, LOGS, SERIES, SAMPLES, RUM_EVENTS, TOPOLOGY_EDGES)

# Dates past 2100-01-01 are folded into that day: Date/DateTime on 18.16 end
# in 2105/2106 and wrap silently beyond, while start_ns may be near 2**64.
_MAX_DAY_SECONDS = 4102444800


def day_expr(column: str) -> str:
    """UTC day (``Date``) of a nanosecond timestamp column, same on every version."""
    return f"toDate(toDateTime(least(intDiv({column}, 1000000000), {_MAX_DAY_SECONDS}), 'UTC'))"


def day_of_ms_expr(column: str) -> str:
    """UTC day (``Date``) of a millisecond timestamp column; times before 1970
    fall on 1970-01-01 (Date cannot hold them)."""
    seconds = f"least(greatest(intDiv({column}, 1000), 0), {_MAX_DAY_SECONDS})"
    return f"toDate(toDateTime({seconds}, 'UTC'))"


@dataclass(frozen=True)
class Capabilities:
    """What the connected ClickHouse can do, from its version number.

    Attributes:
        version: ``(major, minor)``, e.g. ``(18, 16)`` or ``(26, 9)``.
        low_cardinality: ``LowCardinality(String)`` without experimental flags.
        codecs: per-column ``CODEC(...)``.
        ttl: table ``TTL`` expressions (and ``ALTER TABLE ... MODIFY TTL``).
        skip_indexes: data skipping indexes (``bloom_filter``, ``minmax``)
            outside experimental mode.
    """

    version: tuple[int, int]
    low_cardinality: bool
    codecs: bool
    ttl: bool
    skip_indexes: bool

    @classmethod
    def from_version(cls, version: str) -> Capabilities:
        """Capabilities of a server whose ``version()`` returned ``version``.

        Only 18.16 and current releases are tested, so the thresholds are
        deliberately on the late side of each feature's arrival in the 19.x
        series (skip indexes: the 20.3 LTS); a server in between merely gets
        the plainer DDL.

        Raises:
            ValueError: ``version`` does not start with ``major.minor``.
        """
        match = re.match(r"\s*(\d+)\.(\d+)", version)
        if not match:
            raise ValueError(f"unrecognised ClickHouse version {version!r}")
        v = (int(match.group(1)), int(match.group(2)))
        return cls(
            version=v,
            low_cardinality=v >= (19, 3),
            codecs=v >= (19, 11),
            ttl=v >= (19, 6),
            skip_indexes=v >= (20, 3),
        )


@dataclass(frozen=True)
class SchemaTarget:
    """Where and for what server DDL is rendered.

    Attributes:
        database: database holding tinct's tables (checked identifier).
        caps: server capabilities.
        retention_days: days of spans to keep; 0 keeps everything.
    """

    database: str
    caps: Capabilities
    retention_days: int = 0

    def table(self, name: str) -> str:
        """Qualified, quoted table name."""
        return f"{ident(self.database)}.{ident(name)}"

    def engine(self, family: str, *args: str) -> str:
        """Engine clause; the hook where a cluster target would add ``Replicated``."""
        return f"{family}({', '.join(args)})"

    def lc(self, inner: str = "String") -> str:
        """``LowCardinality(inner)`` where supported, else ``inner``."""
        return f"LowCardinality({inner})" if self.caps.low_cardinality else inner

    def codec(self, spec: str) -> str:
        """`` CODEC(spec)`` where supported, else nothing."""
        return f" CODEC({spec})" if self.caps.codecs else ""


_ZSTD = "ZSTD(1)"

# Column name -> (type with "{lc}" for a LowCardinality-able String, codec).
# This is schema version 1's spans table, in tinct.spans.SPAN_SCHEMA order;
# columns added later belong in a migration, not here.
SPAN_COLUMN_TYPES: dict[str, tuple[str, str]] = {
    "trace_id": ("FixedString(16)", _ZSTD),
    "span_id": ("FixedString(8)", _ZSTD),
    "parent_span_id": ("String", _ZSTD),
    "trace_state": ("String", _ZSTD),
    "flags": ("UInt32", ""),
    "service": ("{lc}", ""),
    "name": ("{lc}", ""),
    "kind": ("UInt8", ""),
    # Sorted within (service, name): deltas are small.
    "start_ns": ("UInt64", "Delta, " + _ZSTD),
    "duration_ns": ("Int64", _ZSTD),
    "status_code": ("UInt8", ""),
    "status_message": ("String", _ZSTD),
    "http_route": ("{lc}", ""),
    "http_method": ("{lc}", ""),
    "http_status_code": ("UInt16", ""),
    "peer_service": ("{lc}", ""),
    "server_address": ("{lc}", ""),
    "db_system": ("{lc}", ""),
    "enduser_id": ("String", _ZSTD),
    "dye": ("String", _ZSTD),
    "sampling_probability": ("Float64", ""),
    "attr_keys": ("Array({lc})", ""),
    "attr_types": ("Array(UInt8)", ""),
    "attr_values": ("Array(String)", _ZSTD),
    "dropped_attributes_count": ("UInt32", ""),
    "resource_keys": ("Array({lc})", ""),
    "resource_types": ("Array(UInt8)", ""),
    "resource_values": ("Array(String)", _ZSTD),
    "resource_dropped": ("UInt32", ""),
    "resource_schema_url": ("{lc}", ""),
    "scope_name": ("{lc}", ""),
    "scope_version": ("{lc}", ""),
    "scope_keys": ("Array({lc})", ""),
    "scope_types": ("Array(UInt8)", ""),
    "scope_values": ("Array(String)", _ZSTD),
    "scope_dropped": ("UInt32", ""),
    "scope_schema_url": ("{lc}", ""),
    "event_times": ("Array(UInt64)", _ZSTD),
    "event_names": ("Array({lc})", ""),
    "event_attrs": ("Array(String)", _ZSTD),
    "event_dropped": ("Array(UInt32)", ""),
    "dropped_events_count": ("UInt32", ""),
    "link_trace_ids": ("Array(String)", _ZSTD),
    "link_span_ids": ("Array(String)", _ZSTD),
    "link_trace_states": ("Array(String)", _ZSTD),
    "link_flags": ("Array(UInt32)", ""),
    "link_attrs": ("Array(String)", _ZSTD),
    "link_dropped": ("Array(UInt32)", ""),
    "dropped_links_count": ("UInt32", ""),
    "tags": ("Array(String)", _ZSTD),
}


def ttl_clause(target: SchemaTarget, day: str) -> str:
    """TTL expression keeping at least ``retention_days`` whole days, or "".

    A row of day ``d`` expires once ``today > d + retention_days``, which is
    exactly when :meth:`SqlSpanStore.apply_retention` drops partition ``d``.
    """
    if not target.caps.ttl or target.retention_days <= 0:
        return ""
    return f"{day} + toIntervalDay({int(target.retention_days) + 1})"


def _create(target: SchemaTarget, name: str, columns: list[str], tail: list[str]) -> str:
    body = ",\n    ".join(columns)
    return f"CREATE TABLE IF NOT EXISTS {target.table(name)} (\n    {body}\n)\n" + "\n".join(tail)


def _typed_columns(target: SchemaTarget, types: dict[str, tuple[str, str]]) -> list[str]:
    """Column definitions from ``{name: (type with {lc}, codec or "")}``."""
    return [
        f"{col} {type_.format(lc=target.lc())}{target.codec(codec) if codec else ''}"
        for col, (type_, codec) in types.items()
    ]


def _daily_merge_tree(target: SchemaTarget, time_column: str, order_by: str) -> list[str]:
    """Engine clauses of a MergeTree partitioned by the UTC day of a ns
    timestamp column, with the retention TTL where the server has TTL."""
    day = day_expr(time_column)
    tail = [f"ENGINE = {target.engine('MergeTree')}", f"PARTITION BY {day}", f"ORDER BY {order_by}"]
    ttl = ttl_clause(target, day)
    if ttl:
        tail.append(f"TTL {ttl}")
    return tail


def spans_table(target: SchemaTarget) -> str:
    """The spans table: one row per span, every SPAN_SCHEMA column.

    Daily partitions on the UTC day of ``start_ns`` (an expression, so the
    partition min/max index is on ``start_ns`` and ``start_ns`` bounds prune
    partitions); sorted like the OpenTelemetry Collector's ``otel_traces``.
    """
    columns = _typed_columns(target, SPAN_COLUMN_TYPES)
    tail = _daily_merge_tree(target, "start_ns", "(service, name, start_ns)")
    return _create(target, SPANS, columns, tail)


def trace_index_table(target: SchemaTarget) -> str:
    """trace id -> time range, one row per (batch, trace).

    Written by the store with each batch rather than by a materialized view,
    so both backends fill it the same way. Rows for one trace are combined
    with ``min``/``max`` at read time. Partitioned by the day of the newest
    span, so the index outlives the trace's oldest spans, never the reverse.
    """
    columns = [
        f"trace_id FixedString(16){target.codec(_ZSTD)}",
        f"start_ns UInt64{target.codec(_ZSTD)}",
        f"end_ns UInt64{target.codec(_ZSTD)}",
        "span_count UInt32",
    ]
    tail = _daily_merge_tree(target, "end_ns", "trace_id")
    return _create(target, TRACE_INDEX, columns, tail)


def operations_table(target: SchemaTarget) -> str:
    """(service, span name, kind) seen, with the newest start written.

    ReplacingMergeTree keeps one row per key after merges; reads group by the
    key so they are right before merges too.
    """
    columns = [
        f"service {target.lc()}",
        f"name {target.lc()}",
        "kind UInt8",
        "last_seen_ns UInt64",
    ]
    tail = [
        f"ENGINE = {target.engine('ReplacingMergeTree', 'last_seen_ns')}",
        "ORDER BY (service, name, kind)",
    ]
    return _create(target, OPERATIONS, columns, tail)


def dye_rules_table(target: SchemaTarget) -> str:
    """Dye rules, one row per (rule, version); the highest version is current.

    Ending a rule inserts its row again with ``ended_at`` set and a higher
    ``version``: ReplacingMergeTree keeps that row after merges, and reads
    take ``argMax(..., version)`` per id so they are right before merges too.
    Times are Unix seconds (``ended_at`` 0: not ended). A few rows a day at
    most, so no partitions, TTL or LowCardinality.
    """
    columns = [
        "id String",
        "match_kind String",
        "match_key String",
        "match_value String",
        "service String",
        "ratio Float64",
        "created_at Float64",
        "expires_at Float64",
        "ended_at Float64",
        "version UInt64",
    ]
    tail = [f"ENGINE = {target.engine('ReplacingMergeTree', 'version')}", "ORDER BY id"]
    return _create(target, DYE_RULES, columns, tail)


# The logs table's columns (schema version 4), in tinct.logs.LOG_SCHEMA order.
LOG_COLUMN_TYPES: dict[str, tuple[str, str]] = {
    # Sorted within service: deltas are small.
    "time_ns": ("UInt64", "Delta, " + _ZSTD),
    "observed_time_ns": ("UInt64", "Delta, " + _ZSTD),
    # String, not FixedString: a record outside any span has empty ids.
    "trace_id": ("String", _ZSTD),
    "span_id": ("String", _ZSTD),
    "flags": ("UInt32", ""),
    "severity_number": ("UInt8", ""),
    "severity_text": ("{lc}", ""),
    "body_type": ("UInt8", ""),
    "body": ("String", _ZSTD),
    "event_name": ("{lc}", ""),
    "service": ("{lc}", ""),
    "dye": ("String", _ZSTD),
    "attr_keys": ("Array({lc})", ""),
    "attr_types": ("Array(UInt8)", ""),
    "attr_values": ("Array(String)", _ZSTD),
    "dropped_attributes_count": ("UInt32", ""),
    "resource_keys": ("Array({lc})", ""),
    "resource_types": ("Array(UInt8)", ""),
    "resource_values": ("Array(String)", _ZSTD),
    "scope_name": ("{lc}", ""),
    "scope_version": ("{lc}", ""),
}


def logs_table(target: SchemaTarget) -> str:
    """The logs table: one row per OTLP log record, every LOG_SCHEMA column.

    Two reads matter: a trace's records (``GET /api/tinct/logs?trace_id=``)
    and a service's records over time (log search, later). The sort key
    serves the second; a ``trace_id`` bloom filter, where the server has
    skip indexes, serves the first (as on the spans table). On 18.16 a trace
    lookup scans the kept days, which logs' volume, far below spans', allows.
    Daily partitions on the UTC day of ``time_ns``, with retention and TTL
    like spans.
    """
    columns = _typed_columns(target, LOG_COLUMN_TYPES)
    if target.caps.skip_indexes:
        columns.append("INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1")
    tail = _daily_merge_tree(target, "time_ns", "(service, time_ns)")
    return _create(target, LOGS, columns, tail)


def series_table(target: SchemaTarget) -> str:
    """Metric series: one row per series per UTC day it had samples.

    The layout of PromHouse's and qryn's ``time_series``: a PromQL selector
    first finds fingerprints here (sorted by metric name, so ``__name__``
    matchers use the primary key), then reads only those series' samples.
    The day makes "series active in [start, end]" a partition-pruned read
    and lets retention drop series with their samples. ReplacingMergeTree
    folds the rows a restart writes again.
    """
    columns = [
        "day Date",
        "fingerprint UInt64",
        f"metric_name {target.lc()}",
        f"label_keys Array({target.lc()})",
        f"label_values Array(String){target.codec(_ZSTD)}",
    ]
    tail = [
        f"ENGINE = {target.engine('ReplacingMergeTree')}",
        "PARTITION BY day",
        "ORDER BY (metric_name, fingerprint)",
    ]
    ttl = ttl_clause(target, "day")
    if ttl:
        tail.append(f"TTL {ttl}")
    return _create(target, SERIES, columns, tail)


def samples_table(target: SchemaTarget) -> str:
    """Metric samples: (fingerprint, millisecond timestamp, float64 value).

    Sorted by series then time, so one series' window is one contiguous
    range (PromHouse's ``samples``). Values are stored bit for bit, which
    keeps Prometheus's staleness-marker NaN intact. ReplacingMergeTree folds
    a sample delivered twice (an agent re-sending after an outage); reads
    take one row per (series, timestamp) until the merge has run.
    DoubleDelta and Gorilla, where the server has codecs, are the codecs
    made for regular timestamps and slowly changing floats. Granules of 1,024
    rows rather than 8,192: a dashboard's last hour of many series reads a
    short range of each, and smaller granules read less around it.
    """
    columns = [
        "fingerprint UInt64",
        f"timestamp_ms Int64{target.codec('DoubleDelta, ' + _ZSTD)}",
        f"value Float64{target.codec('Gorilla, ' + _ZSTD)}",
    ]
    day = day_of_ms_expr("timestamp_ms")
    tail = [
        f"ENGINE = {target.engine('ReplacingMergeTree')}",
        f"PARTITION BY {day}",
        "ORDER BY (fingerprint, timestamp_ms)",
    ]
    ttl = ttl_clause(target, day)
    if ttl:
        tail.append(f"TTL {ttl}")
    tail.append("SETTINGS index_granularity = 1024")
    return _create(target, SAMPLES, columns, tail)


def metric_metadata_table(target: SchemaTarget) -> str:
    """HELP/TYPE/UNIT per metric family, the latest write winning."""
    columns = [
        "metric_name String",
        "type String",
        "help String",
        "unit String",
        "updated_ms Int64",
    ]
    tail = [
        f"ENGINE = {target.engine('ReplacingMergeTree', 'updated_ms')}",
        "ORDER BY metric_name",
    ]
    return _create(target, METRIC_METADATA, columns, tail)


# The browser error events table's columns (schema version 6), in
# tinct.storage.rum.RUM_EVENT_SCHEMA order.
RUM_EVENT_COLUMN_TYPES: dict[str, tuple[str, str]] = {
    # Sorted within app: deltas are small.
    "time_ns": ("UInt64", "Delta, " + _ZSTD),
    "app": ("{lc}", ""),
    # Paths and user ids are too many for LowCardinality's dictionaries.
    "page": ("String", _ZSTD),
    "user_id": ("String", _ZSTD),
    "kind": ("{lc}", ""),
    "message": ("String", _ZSTD),
    "source": ("String", _ZSTD),
    "line": ("UInt32", ""),
    "col": ("UInt32", ""),
    "stack": ("String", _ZSTD),
    "user_agent": ("String", _ZSTD),
}


def rum_events_table(target: SchemaTarget) -> str:
    """Browser errors the beacon reports (``POST /api/tinct/rum``), one row each.

    The read is an app's errors over a time window, newest first, so the
    sort key is ``(app, time_ns)``. The user id is kept here, never in a
    series label, so one user's errors can be found without a series per
    user. Daily partitions on the UTC day of ``time_ns``, with retention
    and TTL like logs.
    """
    columns = _typed_columns(target, RUM_EVENT_COLUMN_TYPES)
    tail = _daily_merge_tree(target, "time_ns", "(app, time_ns)")
    return _create(target, RUM_EVENTS, columns, tail)


def alert_history_table(target: SchemaTarget) -> str:
    """Alert transitions (to ``firing``, to ``resolved``), one row each.

    Columns in ``tinct.storage.alert_history.ALERT_EVENT_SCHEMA`` order. The
    reads are a time window, newest first, optionally of one alert, so the
    sort key is ``(alertname, time_ms)``. Monthly partitions: the table is
    small (a row per transition) and kept whole; span retention does not
    apply to it.
    """
    columns = [
        "time_ms Int64",
        f"alertname {target.lc()}",
        f"state {target.lc()}",
        "fingerprint UInt64",
        f"label_keys Array({target.lc()})",
        f"label_values Array(String){target.codec(_ZSTD)}",
        "value Float64",
        f"annotation_keys Array({target.lc()})",
        f"annotation_values Array(String){target.codec(_ZSTD)}",
        "active_at_ms Int64",
    ]
    tail = [
        f"ENGINE = {target.engine('MergeTree')}",
        f"PARTITION BY toYYYYMM({day_of_ms_expr('time_ms')})",
        "ORDER BY (alertname, time_ms)",
    ]
    return _create(target, ALERT_HISTORY, columns, tail)


def topology_edges_table(target: SchemaTarget) -> str:
    """Calls between topology nodes, pre-aggregated per minute.

    Columns in ``tinct.storage.topology.EDGE_SCHEMA`` order. One row per
    (minute, source node, target node, dye) per flush of the aggregator;
    reads group by the key, so several rows of one key (a key flushed twice,
    before a merge) add up. ``latency_buckets``/``latency_counts`` are a
    sparse histogram (``tinct.topology.latency``) that ``sumMap`` merges.
    Sorted by minute first: every read is a time window. Daily partitions
    with retention and TTL like spans.
    """
    columns = [
        f"minute_ms Int64{target.codec('DoubleDelta, ' + _ZSTD)}",
        f"source_service {target.lc()}",
        f"source_interface {target.lc()}",
        f"source_kind {target.lc()}",
        f"target_service {target.lc()}",
        f"target_interface {target.lc()}",
        f"target_kind {target.lc()}",
        f"dye String{target.codec(_ZSTD)}",
        "calls UInt64",
        "errors UInt64",
        "weighted_calls Float64",
        "weighted_errors Float64",
        f"latency_buckets Array(Int16){target.codec(_ZSTD)}",
        f"latency_counts Array(UInt64){target.codec(_ZSTD)}",
    ]
    day = day_of_ms_expr("minute_ms")
    tail = [
        f"ENGINE = {target.engine('MergeTree')}",
        f"PARTITION BY {day}",
        "ORDER BY (minute_ms, source_service, target_service)",
    ]
    ttl = ttl_clause(target, day)
    if ttl:
        tail.append(f"TTL {ttl}")
    return _create(target, TOPOLOGY_EDGES, columns, tail)


def topology_pending_table(target: SchemaTarget) -> str:
    """Spans the topology aggregator still waits on, kept across restarts.

    Columns in ``tinct.storage.topology.PENDING_SCHEMA`` order plus the
    ``checkpoint`` they were saved under. Each save writes the whole pending
    set under a new checkpoint, then a marker row (empty ``trace_id``) that
    says it is complete; loading reads the newest complete checkpoint, and
    older ones are dropped by partition, which is cheap on every version.
    """
    columns = [
        "checkpoint UInt64",
        "trace_id String",
        "span_id String",
        "parent_span_id String",
        "service String",
        "interface String",
        "kind UInt8",
        "start_ns UInt64",
        "duration_ns Int64",
        "error UInt8",
        "peer String",
        "peer_kind String",
        "probability Float64",
        "dye String",
        "arrived_ms Int64",
    ]
    tail = [
        f"ENGINE = {target.engine('MergeTree')}",
        "PARTITION BY checkpoint",
        "ORDER BY (checkpoint, trace_id)",
    ]
    return _create(target, TOPOLOGY_PENDING, columns, tail)


def schema_version_table(target: SchemaTarget) -> str:
    """Applied migrations, one row each; the schema version is ``max(version)``."""
    columns = ["version UInt32", "description String", "applied_ns UInt64"]
    tail = [f"ENGINE = {target.engine('MergeTree')}", "ORDER BY version"]
    return _create(target, SCHEMA_VERSION, columns, tail)


def skip_indexes(target: SchemaTarget) -> list[str]:
    """Data skipping indexes on the spans table, where the server supports them.

    ``trace_id`` lookups and tag searches would otherwise scan every granule
    of the searched partitions.
    """
    if not target.caps.skip_indexes:
        return []
    table = target.table(SPANS)
    return [
        f"ALTER TABLE {table} ADD INDEX IF NOT EXISTS idx_trace_id trace_id "
        "TYPE bloom_filter(0.001) GRANULARITY 1",
        f"ALTER TABLE {table} ADD INDEX IF NOT EXISTS idx_tags tags "
        "TYPE bloom_filter(0.01) GRANULARITY 1",
        f"ALTER TABLE {table} ADD INDEX IF NOT EXISTS idx_duration duration_ns "
        "TYPE minmax GRANULARITY 1",
    ]
