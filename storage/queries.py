"""The read queries, written once for both backends.

Each function returns a :class:`~tinct.storage.sql.Sql` for a
:class:`~tinct.storage.schema.SchemaTarget`; the store runs it on whichever
backend it has. The SQL sticks to what ClickHouse 18.16 understands.
Trace ids travel as hex text through ``unhex()``, which keeps binary values
out of both parameter mechanisms' text escaping.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from tinct.spans import SPAN_COLUMNS, TraceQuery, ValueType, tag_entry
from tinct.storage import schema
from tinct.storage.schema import SchemaTarget
from tinct.storage.sql import Sql, SqlBuilder

__all__ = [
    "trace_bounds",
    "spans_of_traces",
    "matching_traces",
    "services",
    "operations",
    "active_partitions",
    "table_engine",
    "table_sizes",
    "dependencies",
    "PARENT_MARGIN_NS",
    "finite_float",
    "optimize_final",
    "is_empty_search",
    "UINT64_MAX",
    "INT64_MIN",
    "INT64_MAX",
]

UINT64_MAX = 2**64 - 1
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
_UINT32_MAX = 2**32 - 1

_SPAN_SELECT = ", ".join(SPAN_COLUMNS)


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def _ids_in(b: SqlBuilder, trace_ids: Sequence[bytes]) -> str:
    return ", ".join(f"unhex({b.param(t.hex(), 'String')})" for t in trace_ids)


def trace_bounds(target: SchemaTarget, trace_ids: Sequence[bytes]) -> Sql:
    """Index rows found, earliest start and latest end of the given traces."""
    b = SqlBuilder()
    return b.build(
        "SELECT count() AS n, min(start_ns) AS lo, max(end_ns) AS hi "
        f"FROM {target.table(schema.TRACE_INDEX)} WHERE trace_id IN ({_ids_in(b, trace_ids)})"
    )


def spans_of_traces(target: SchemaTarget, trace_ids: Sequence[bytes], lo: int, hi: int) -> Sql:
    """Every span of the traces, restricted to their time range so that only
    the partitions holding them are read; ordered by start time."""
    b = SqlBuilder()
    return b.build(
        f"SELECT {_SPAN_SELECT} FROM {target.table(schema.SPANS)} "
        f"WHERE trace_id IN ({_ids_in(b, trace_ids)}) "
        f"AND start_ns >= {b.param(lo, 'UInt64')} AND start_ns <= {b.param(hi, 'UInt64')} "
        "ORDER BY start_ns, span_id"
    )


def is_empty_search(query: TraceQuery) -> bool:
    """True when no span can match, e.g. ``start_max_ns < 0``; saves a query."""
    return (
        query.limit <= 0
        or (query.span_kind is not None and not 0 <= query.span_kind <= 255)
        or (query.start_max_ns is not None and query.start_max_ns < 0)
        or (query.start_min_ns is not None and query.start_min_ns > UINT64_MAX)
        or (query.duration_max_ns is not None and query.duration_max_ns < INT64_MIN)
        or (query.duration_min_ns is not None and query.duration_min_ns > INT64_MAX)
    )


# Jaeger's tag rule: a tag matches when the span, its resource, its scope, one
# of its events or one of its links has that attribute with that text. The
# first three are searched in their typed arrays; event and link attributes
# sit in the ``tags`` column as tag_entry() strings.
_TAG_ARRAYS = (
    ("attr_keys", "attr_types", "attr_values"),
    ("resource_keys", "resource_types", "resource_values"),
    ("scope_keys", "scope_types", "scope_values"),
)


def _tag_condition(b: SqlBuilder, key: str, value: str) -> str:
    """One tag of a search, as a condition on a span row.

    Values compare as text, except that a numeric query value also matches a
    double attribute of the same value: Jaeger prints doubles with Go's
    ``%g`` (72.0 as ``72``) where tinct keeps ``repr`` (``72.0``) to stay
    lossless, so ``tags={"x":72}`` must find ``x=72.0`` as it does in Jaeger.
    """
    k, v = b.param(key, "String"), b.param(value, "String")
    same = f"v = {v}"
    number = finite_float(value)
    if number is not None:
        same = (
            f"(v = {v} OR (t = {int(ValueType.DOUBLE)} "
            f"AND toFloat64OrZero(v) = toFloat64({b.param(repr(number), 'String')})))"
        )
    places = [
        f"arrayExists((k, t, v) -> k = {k} AND {same}, {keys}, {types}, {values})"
        for keys, types, values in _TAG_ARRAYS
    ]
    places.append(f"has(tags, {b.param(tag_entry(key, value), 'String')})")
    return "(" + " OR ".join(places) + ")"


def finite_float(text: str) -> float | None:
    """``text`` as a finite float, or None: which tag values also compare as numbers."""
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def matching_traces(target: SchemaTarget, query: TraceQuery) -> Sql:
    """Ids of traces with a span matching every condition, newest first.

    Jaeger's FindTraces rule: all conditions hold for one span. A trace is
    ranked by the start of its newest matching span. Bounds are inclusive and
    clamped to the column types (call :func:`is_empty_search` first).
    """
    b = SqlBuilder()
    where = [f"service = {b.param(query.service, 'String')}"]
    if query.operation:
        where.append(f"name = {b.param(query.operation, 'String')}")
    if query.span_kind is not None:
        where.append(f"kind = {b.param(query.span_kind, 'UInt8')}")
    if query.start_min_ns is not None:
        where.append(f"start_ns >= {b.param(_clamp(query.start_min_ns, 0, UINT64_MAX), 'UInt64')}")
    if query.start_max_ns is not None:
        where.append(f"start_ns <= {b.param(_clamp(query.start_max_ns, 0, UINT64_MAX), 'UInt64')}")
    if query.duration_min_ns is not None:
        low = _clamp(query.duration_min_ns, INT64_MIN, INT64_MAX)
        where.append(f"duration_ns >= {b.param(low, 'Int64')}")
    if query.duration_max_ns is not None:
        high = _clamp(query.duration_max_ns, INT64_MIN, INT64_MAX)
        where.append(f"duration_ns <= {b.param(high, 'Int64')}")
    for key, value in sorted(query.tags.items()):
        where.append(_tag_condition(b, key, value))
    limit = b.param(_clamp(query.limit, 0, _UINT32_MAX), "UInt32")
    return b.build(
        f"SELECT trace_id, max(start_ns) AS newest FROM {target.table(schema.SPANS)} "
        f"WHERE {' AND '.join(where)} "
        f"GROUP BY trace_id ORDER BY newest DESC, trace_id LIMIT {limit}"
    )


def services(target: SchemaTarget) -> Sql:
    """Distinct services, sorted; GROUP BY so unmerged duplicates don't show."""
    return Sql(
        f"SELECT service FROM {target.table(schema.OPERATIONS)} GROUP BY service ORDER BY service"
    )


def operations(target: SchemaTarget, service: str, span_kind: int | None) -> Sql:
    """Distinct (name, kind) of a service, sorted; ``span_kind`` must fit UInt8."""
    b = SqlBuilder()
    where = f"service = {b.param(service, 'String')}"
    if span_kind is not None:
        where += f" AND kind = {b.param(span_kind, 'UInt8')}"
    return b.build(
        f"SELECT name, kind FROM {target.table(schema.OPERATIONS)} WHERE {where} "
        "GROUP BY name, kind ORDER BY name, kind"
    )


def active_partitions(target: SchemaTarget, table: str) -> Sql:
    """Partition ids holding active parts of one of tinct's tables."""
    b = SqlBuilder()
    return b.build(
        "SELECT DISTINCT partition_id FROM system.parts "
        f"WHERE database = {b.param(target.database, 'String')} "
        f"AND table = {b.param(table, 'String')} AND active"
    )


def table_engine(target: SchemaTarget, table: str) -> Sql:
    """``engine_full`` of a table (engine, keys, TTL, settings)."""
    b = SqlBuilder()
    return b.build(
        "SELECT engine_full FROM system.tables "
        f"WHERE database = {b.param(target.database, 'String')} "
        f"AND name = {b.param(table, 'String')}"
    )


def table_sizes(target: SchemaTarget) -> Sql:
    """Rows and bytes on disk of every table in the database (active parts)."""
    b = SqlBuilder()
    return b.build(
        "SELECT table, sum(rows) AS rows, sum(bytes_on_disk) AS bytes FROM system.parts "
        f"WHERE database = {b.param(target.database, 'String')} AND active "
        "GROUP BY table ORDER BY table"
    )


def optimize_final(target: SchemaTarget, table: str) -> Sql:
    """Merge a table's parts as far as they go (used before measuring size)."""
    return Sql(f"OPTIMIZE TABLE {target.table(table)} FINAL")


# How long before the window a parent span may have started and still be
# joined to a child in the window (a request's root usually precedes its
# calls by far less).
PARENT_MARGIN_NS = 3600 * 10**9


def dependencies(target: SchemaTarget, start_ns: int, end_ns: int) -> Sql:
    """Calls between services: children in the window joined to their parents.

    ``ALL INNER JOIN ... USING`` is the join syntax ClickHouse 18.16 and
    current versions share; both sides are cut to the window first.
    """
    b = SqlBuilder()
    table = target.table(schema.SPANS)
    lo = b.param(_clamp(start_ns, 0, UINT64_MAX), "UInt64")
    hi = b.param(_clamp(end_ns, 0, UINT64_MAX), "UInt64")
    parent_lo = b.param(_clamp(start_ns - PARENT_MARGIN_NS, 0, UINT64_MAX), "UInt64")
    return b.build(
        "SELECT parent_service, child_service, count() AS calls FROM ("
        # Compared as FixedString(8): toString(span_id) would drop trailing
        # zero bytes, losing the children of 1 parent in 256.
        f"SELECT trace_id, toFixedString(parent_span_id, 8) AS id, service AS child_service "
        f"FROM {table} WHERE start_ns >= {lo} AND start_ns <= {hi} "
        "AND length(parent_span_id) = 8"
        ") AS children ALL INNER JOIN ("
        f"SELECT trace_id, span_id AS id, service AS parent_service FROM {table} "
        f"WHERE start_ns >= {parent_lo} AND start_ns <= {hi}"
        ") AS parents USING (trace_id, id) "
        "WHERE parent_service != child_service "
        "GROUP BY parent_service, child_service ORDER BY parent_service, child_service"
    )
