"""Arrow-side work on span batches: validation, derived rows, result rows.

Everything here is columnar (pyarrow compute), so a 50k-span batch costs a
few vectorised passes rather than a Python loop per span. Both backends use
the same functions, which keeps what is stored and what is read back
identical between chdb and a ClickHouse server.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from tinct.errors import StorageError
from tinct.spans import SPAN_COLUMNS, SPAN_SCHEMA
from tinct.storage.base import SpanRow

__all__ = [
    "InvalidBatchError",
    "normalize_batch",
    "trace_index_rows",
    "operation_rows",
    "to_span_rows",
    "TRACE_INDEX_SCHEMA",
    "OPERATION_SCHEMA",
]

_UINT64_MAX = 2**64 - 1
# FixedString columns: a shorter id would be silently zero-padded by ClickHouse.
_FIXED_IDS = (("trace_id", 16), ("span_id", 8))

TRACE_INDEX_SCHEMA = pa.schema(
    [
        pa.field("trace_id", pa.binary(), nullable=False),
        pa.field("start_ns", pa.uint64(), nullable=False),
        pa.field("end_ns", pa.uint64(), nullable=False),
        pa.field("span_count", pa.uint32(), nullable=False),
    ]
)

OPERATION_SCHEMA = pa.schema(
    [
        pa.field("service", pa.string(), nullable=False),
        pa.field("name", pa.string(), nullable=False),
        pa.field("kind", pa.uint8(), nullable=False),
        pa.field("last_seen_ns", pa.uint64(), nullable=False),
    ]
)


class InvalidBatchError(StorageError):
    """A batch does not fit SPAN_SCHEMA (missing column, wrong type, bad id length).

    Retrying cannot help; a receiver answers it as a client error.
    """


def normalize_batch(batch: pa.Table) -> pa.Table:
    """``batch`` with exactly SPAN_SCHEMA's columns, order and types.

    Extra columns are dropped; compatible types (e.g. nullable fields without
    nulls, ``large_string``) are cast. Cheap when the batch already matches.

    Raises:
        InvalidBatchError: a column is missing or uncastable, holds nulls, or
            an id has the wrong length.
    """
    # The receivers' batches already match exactly: skip select and cast (this
    # runs once per request on the ingest path; the id checks below stay).
    table = batch if batch.schema.equals(SPAN_SCHEMA) else _conform(batch)
    if table.num_rows:
        for column, size in _FIXED_IDS:
            lengths = pc.min_max(pc.binary_length(table.column(column)))
            if lengths["min"].as_py() != size or lengths["max"].as_py() != size:
                raise InvalidBatchError(f"every {column} must be {size} bytes long")
    return table


def _conform(batch: pa.Table) -> pa.Table:
    """``batch`` reduced to SPAN_SCHEMA's columns, in order, cast to its types."""
    present = set(batch.column_names)
    missing = [c for c in SPAN_COLUMNS if c not in present]
    if missing:
        raise InvalidBatchError(f"span batch lacks columns {missing}")
    table = batch.select(list(SPAN_COLUMNS))
    if not table.schema.equals(SPAN_SCHEMA):
        try:
            table = table.cast(SPAN_SCHEMA)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
            raise InvalidBatchError(f"span batch does not match SPAN_SCHEMA: {exc}") from exc
    return table


def _end_ns(batch: pa.Table) -> pa.ChunkedArray:
    """start + max(duration, 0), saturating at 2**64-1 instead of wrapping."""
    start = batch.column("start_ns")
    duration = pc.max_element_wise(batch.column("duration_ns"), pa.scalar(0, pa.int64()))
    duration = duration.cast(pa.uint64())
    headroom = pc.subtract(pa.scalar(_UINT64_MAX, pa.uint64()), start)
    return pc.if_else(
        pc.greater(duration, headroom), pa.scalar(_UINT64_MAX, pa.uint64()), pc.add(start, duration)
    )


def trace_index_rows(batch: pa.Table) -> pa.Table:
    """One trace-index row per trace in a normalized batch.

    ``end_ns`` is at least every ``start_ns`` of the group (negative durations
    count as 0), so ``start_ns BETWEEN start AND end`` finds all its spans.
    """
    keyed = pa.table(
        {
            "trace_id": batch.column("trace_id"),
            "start_ns": batch.column("start_ns"),
            "end_ns": _end_ns(batch),
        }
    )
    grouped = keyed.group_by(["trace_id"], use_threads=False).aggregate(
        [("start_ns", "min"), ("end_ns", "max"), ("start_ns", "count")]
    )
    return pa.table(
        [
            grouped.column("trace_id"),
            grouped.column("start_ns_min"),
            grouped.column("end_ns_max"),
            grouped.column("start_ns_count").cast(pa.uint32()),
        ],
        schema=TRACE_INDEX_SCHEMA,
    )


def operation_rows(batch: pa.Table) -> pa.Table:
    """One row per (service, name, kind) of a normalized batch, newest start."""
    grouped = batch.group_by(["service", "name", "kind"], use_threads=False).aggregate(
        [("start_ns", "max")]
    )
    return pa.table(
        [
            grouped.column("service"),
            grouped.column("name"),
            grouped.column("kind"),
            grouped.column("start_ns_max"),
        ],
        schema=OPERATION_SCHEMA,
    )


def to_span_rows(result: pa.Table) -> list[SpanRow]:
    """Span dicts from a backend result holding SPAN_SCHEMA's columns.

    Backends return String as ``binary`` (ids are not UTF-8) and FixedString
    as ``fixed_size_binary``; one cast per column brings them back to
    SPAN_SCHEMA (and checks text columns are valid UTF-8).

    Raises:
        StorageError: the result does not fit SPAN_SCHEMA.
    """
    if result.num_rows == 0:
        return []
    try:
        return result.select(list(SPAN_COLUMNS)).cast(SPAN_SCHEMA).to_pylist()  # type: ignore[no-any-return]
    except (KeyError, pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
        raise StorageError(f"stored spans do not match SPAN_SCHEMA: {exc}") from exc
