"""Topology edges and pending spans in ClickHouse: the SQL behind :class:`TopologyStore`.

The topology aggregator (``tinct.topology.aggregator``) turns spans into
calls between nodes and writes them here pre-aggregated per minute
(``schema.topology_edges_table``); a topology query groups those rows over
its window, never reading raw spans. The spans it still waits on (a caller
whose callee has not arrived yet) are saved as a checkpoint in
``schema.topology_pending_table`` so a restart resumes pairing them.
Written once for both backends, like ``tinct.storage.alert_history``: rows
go in through the backend's Arrow insert, reads are parameterized queries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import pyarrow as pa

from tinct.errors import StorageError
from tinct.storage import schema
from tinct.storage.batches import InvalidBatchError
from tinct.storage.schema import SchemaTarget
from tinct.storage.sql import Sql, SqlBuilder, SqlRunner

__all__ = [
    "EDGE_SCHEMA",
    "PENDING_SCHEMA",
    "EdgeQuery",
    "EdgeRow",
    "TopologyStore",
    "edge_rows",
    "write_edges",
    "find_edges",
    "save_pending",
    "load_pending",
]

_str = pa.string()
EDGE_SCHEMA = pa.schema(
    [
        # Start of the minute the calls were counted in, Unix milliseconds.
        pa.field("minute_ms", pa.int64(), nullable=False),
        pa.field("source_service", _str, nullable=False),
        pa.field("source_interface", _str, nullable=False),
        pa.field("source_kind", _str, nullable=False),
        pa.field("target_service", _str, nullable=False),
        pa.field("target_interface", _str, nullable=False),
        pa.field("target_kind", _str, nullable=False),
        # The traces' dye (tinct.dye), "" for undyed ones.
        pa.field("dye", _str, nullable=False),
        pa.field("calls", pa.uint64(), nullable=False),
        pa.field("errors", pa.uint64(), nullable=False),
        # Calls and errors weighted by 1 / tinct.sampling.probability.
        pa.field("weighted_calls", pa.float64(), nullable=False),
        pa.field("weighted_errors", pa.float64(), nullable=False),
        # Sparse latency histogram: tinct.topology.latency buckets, counts.
        pa.field("latency_buckets", pa.list_(pa.int16()), nullable=False),
        pa.field("latency_counts", pa.list_(pa.uint64()), nullable=False),
    ]
)

PENDING_SCHEMA = pa.schema(
    [
        pa.field("trace_id", pa.binary(), nullable=False),
        pa.field("span_id", pa.binary(), nullable=False),
        pa.field("parent_span_id", pa.binary(), nullable=False),
        pa.field("service", _str, nullable=False),
        pa.field("interface", _str, nullable=False),
        pa.field("kind", pa.uint8(), nullable=False),
        pa.field("start_ns", pa.uint64(), nullable=False),
        pa.field("duration_ns", pa.int64(), nullable=False),
        pa.field("error", pa.uint8(), nullable=False),
        pa.field("peer", _str, nullable=False),
        pa.field("peer_kind", _str, nullable=False),
        pa.field("probability", pa.float64(), nullable=False),
        pa.field("dye", _str, nullable=False),
        # When its trace last received a span (a restart gives a fresh wait).
        pa.field("arrived_ms", pa.int64(), nullable=False),
    ]
)
_PENDING_COLUMNS = ", ".join(PENDING_SCHEMA.names)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_MINUTE_MS = 60_000


@dataclass(frozen=True)
class EdgeQuery:
    """Which edges to read: calls counted in minutes overlapping
    ``[start_ms, end_ms]``, grouped per node pair.

    Attributes:
        start_ms, end_ms: the window, Unix milliseconds, both ends included;
            edges are kept per minute, so the window widens to whole minutes.
        interfaces: group by interface (True) or by service only.
        dye: only calls of traces with this dye; None for all.
        services: only edges with one end in these services; () for all.
    """

    start_ms: int
    end_ms: int
    interfaces: bool = False
    dye: str | None = None
    services: tuple[str, ...] = ()


@dataclass
class EdgeRow:
    """The calls from one node to another over a query's window.

    Interfaces are "" when grouped by service.
    """

    source_service: str
    source_interface: str
    source_kind: str
    target_service: str
    target_interface: str
    target_kind: str
    calls: int
    errors: int
    weighted_calls: float
    weighted_errors: float
    latency: dict[int, int] = field(default_factory=dict)


@runtime_checkable
class TopologyStore(Protocol):
    """Where topology edges and pending spans are kept: both SQL stores and
    :class:`~tinct.storage.memory_topology.InMemoryTopologyStore`."""

    def write_topology_edges(self, batch: pa.Table) -> None:
        """Insert an EDGE_SCHEMA batch. Blocks; raises StorageError."""

    def topology_edges(self, query: EdgeQuery) -> list[EdgeRow]:
        """Edges of the window, summed per node pair, sorted by source then target."""

    def save_topology_pending(self, batch: pa.Table, checkpoint: int) -> None:
        """Replace the saved pending spans by ``batch`` (PENDING_SCHEMA),
        under ``checkpoint``, greater than every earlier one. Blocks."""

    def load_topology_pending(self) -> tuple[pa.Table, int]:
        """The newest completely saved pending spans and their checkpoint;
        an empty table and 0 when none were saved."""


class _Inserter(SqlRunner, Protocol):
    """The part of ``sqlstore.Backend`` these functions use."""

    def insert(self, table: str, data: pa.Table) -> None: ...


def _conform(batch: pa.Table, wanted: pa.Schema, what: str) -> pa.Table:
    try:
        return batch.select(wanted.names).cast(wanted)
    except (KeyError, pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
        raise InvalidBatchError(f"{what} batch does not fit its schema: {exc}") from exc


def write_edges(db: _Inserter, target: SchemaTarget, batch: pa.Table) -> None:
    """Insert an EDGE_SCHEMA batch. Raises InvalidBatchError, StorageError."""
    if batch.num_rows:
        db.insert(target.table(schema.TOPOLOGY_EDGES), _conform(batch, EDGE_SCHEMA, "edge"))


def _clamp(value: int, low: int, high: int) -> int:
    return min(max(low, value), high)


def edges_query(target: SchemaTarget, query: EdgeQuery) -> Sql:
    """Sum the window's minutes per node pair; ``sumMap`` merges the histograms."""
    b = SqlBuilder()
    first = query.start_ms - query.start_ms % _MINUTE_MS
    lo = b.param(_clamp(first, _INT64_MIN, _INT64_MAX), "Int64")
    hi = b.param(_clamp(query.end_ms, _INT64_MIN, _INT64_MAX), "Int64")
    where = [f"minute_ms >= {lo}", f"minute_ms <= {hi}"]
    if query.dye is not None:
        where.append(f"dye = {b.param(query.dye, 'String')}")
    if query.services:
        names = ", ".join(b.param(s, "String") for s in query.services)
        where.append(f"(source_service IN ({names}) OR target_service IN ({names}))")
    group = (
        "source_service, source_interface, source_kind, "
        "target_service, target_interface, target_kind"
    )
    keys = group
    if not query.interfaces:
        # The aliases shadow the columns, so GROUP BY folds the interfaces.
        keys = (
            "source_service, '' AS source_interface, source_kind, "
            "target_service, '' AS target_interface, target_kind"
        )
    return b.build(
        f"SELECT {keys}, sum(calls) AS calls, sum(errors) AS errors, "
        "sum(weighted_calls) AS weighted_calls, sum(weighted_errors) AS weighted_errors, "
        "sumMap(latency_buckets, latency_counts) AS latency "
        f"FROM {target.table(schema.TOPOLOGY_EDGES)} WHERE {' AND '.join(where)} "
        f"GROUP BY {group} ORDER BY {group}"
    )


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def edge_rows(result: pa.Table) -> list[EdgeRow]:
    """EdgeRows from :func:`edges_query`'s result."""
    rows = []
    for r in result.to_pylist():
        latency = r["latency"]  # a (keys, values) tuple: a dict from chdb's Arrow
        buckets, counts = latency.values() if isinstance(latency, dict) else latency
        rows.append(
            EdgeRow(
                _text(r["source_service"]),
                _text(r["source_interface"]),
                _text(r["source_kind"]),
                _text(r["target_service"]),
                _text(r["target_interface"]),
                _text(r["target_kind"]),
                int(r["calls"]),
                int(r["errors"]),
                float(r["weighted_calls"]),
                float(r["weighted_errors"]),
                {int(k): int(v) for k, v in zip(buckets, counts, strict=True) if v},
            )
        )
    return rows


def find_edges(db: SqlRunner, target: SchemaTarget, query: EdgeQuery) -> list[EdgeRow]:
    """The edges ``query`` asks for. Raises StorageError."""
    if query.end_ms < query.start_ms:
        return []
    return edge_rows(db.select(edges_query(target, query)))


def save_pending(db: _Inserter, target: SchemaTarget, batch: pa.Table, checkpoint: int) -> None:
    """Save ``batch`` under ``checkpoint``, mark it complete, drop older ones.

    A crash before the marker leaves the previous checkpoint the newest
    complete one, so a load never sees half a save.
    """
    table = target.table(schema.TOPOLOGY_PENDING)
    rows = _conform(batch, PENDING_SCHEMA, "pending span")
    marker = pa.Table.from_pylist([_MARKER], schema=PENDING_SCHEMA)
    for part in (rows, marker):
        column = pa.array([checkpoint] * part.num_rows, pa.uint64())
        if part.num_rows:
            db.insert(table, part.add_column(0, "checkpoint", column))
    for old in _checkpoints(db, target):
        if old < checkpoint:
            # An integer from the table itself: ALTER takes no query parameters.
            db.execute(Sql(f"ALTER TABLE {table} DROP PARTITION {int(old)}"))


# The row that marks a checkpoint complete: no real span has an empty trace id.
_MARKER = {name: 0 for name in PENDING_SCHEMA.names} | {
    "trace_id": b"",
    "span_id": b"",
    "parent_span_id": b"",
    "service": "",
    "interface": "",
    "peer": "",
    "peer_kind": "",
    "dye": "",
    "probability": 0.0,
}


def _checkpoints(db: SqlRunner, target: SchemaTarget) -> list[int]:
    result = db.select(
        Sql(f"SELECT DISTINCT checkpoint FROM {target.table(schema.TOPOLOGY_PENDING)}")
    )
    return [int(v) for v in result.column(0).to_pylist()] if result.num_rows else []


def load_pending(db: SqlRunner, target: SchemaTarget) -> tuple[pa.Table, int]:
    """The newest complete checkpoint's spans. Raises StorageError."""
    table = target.table(schema.TOPOLOGY_PENDING)
    done = db.select(Sql(f"SELECT max(checkpoint) FROM {table} WHERE trace_id = ''"))
    newest = int(done.column(0)[0].as_py() or 0) if done.num_rows else 0
    if newest == 0:
        return PENDING_SCHEMA.empty_table(), 0
    b = SqlBuilder()
    where = f"checkpoint = {b.param(newest, 'UInt64')} AND trace_id != ''"
    result = db.select(b.build(f"SELECT {_PENDING_COLUMNS} FROM {table} WHERE {where}"))
    try:
        return result.cast(PENDING_SCHEMA), newest
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
        raise StorageError(f"saved pending spans do not match PENDING_SCHEMA: {exc}") from exc
