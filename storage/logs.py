"""Log records in ClickHouse: the SQL and Arrow work behind :class:`~tinct.storage.base.LogStore`.

Batches arrive as :data:`tinct.logs.LOG_SCHEMA` tables and are inserted as
they are (the backend's Arrow insert; no SQL text); reads are parameterized
queries on ``schema.logs_table``. :class:`LogWriterAdapter` lets the span
:class:`~tinct.storage.writer.BatchWriter` batch logs too: the ingest path for
logs is a second ``BatchWriter`` (see :func:`log_batch_writer`), so the
future durable queue sits in front of both the same way.
"""

from __future__ import annotations

from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc

from tinct.errors import StorageError
from tinct.logs import LOG_COLUMNS, LOG_SCHEMA, LogQuery, LogRow
from tinct.storage import schema
from tinct.storage.base import LogWriter
from tinct.storage.batches import InvalidBatchError
from tinct.storage.schema import SchemaTarget
from tinct.storage.sql import Sql, SqlBuilder, SqlRunner
from tinct.storage.writer import BatchWriter

__all__ = [
    "normalize_log_batch",
    "to_log_rows",
    "logs_query",
    "write_logs",
    "find_logs",
    "LogWriterAdapter",
    "log_batch_writer",
]

# Allowed id lengths: a record outside any span has none.
_IDS = (("trace_id", 16), ("span_id", 8))
_SELECT = ", ".join(LOG_COLUMNS)
_UINT32_MAX = 2**32 - 1


class _Inserter(SqlRunner, Protocol):
    """The part of ``sqlstore.Backend`` these functions use."""

    def insert(self, table: str, data: pa.Table) -> None: ...


def normalize_log_batch(batch: pa.Table) -> pa.Table:
    """``batch`` with exactly LOG_SCHEMA's columns, order and types.

    Raises:
        InvalidBatchError: a column is missing or uncastable, or an id is
            neither empty nor of its OTLP length.
    """
    table = batch
    if not batch.schema.equals(LOG_SCHEMA):
        missing = [c for c in LOG_COLUMNS if c not in set(batch.column_names)]
        if missing:
            raise InvalidBatchError(f"log batch lacks columns {missing}")
        try:
            table = batch.select(list(LOG_COLUMNS)).cast(LOG_SCHEMA)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
            raise InvalidBatchError(f"log batch does not match LOG_SCHEMA: {exc}") from exc
    for column, size in _IDS:
        lengths = pc.binary_length(table.column(column))
        bad = pc.and_(pc.not_equal(lengths, 0), pc.not_equal(lengths, size))
        if pc.any(bad).as_py():
            raise InvalidBatchError(f"every {column} must be empty or {size} bytes long")
    return table


def to_log_rows(result: pa.Table) -> list[LogRow]:
    """Log dicts from a backend result holding LOG_SCHEMA's columns.

    Raises:
        StorageError: the result does not fit LOG_SCHEMA.
    """
    if result.num_rows == 0:
        return []
    try:
        return result.select(list(LOG_COLUMNS)).cast(LOG_SCHEMA).to_pylist()  # type: ignore[no-any-return]
    except (KeyError, pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
        raise StorageError(f"stored logs do not match LOG_SCHEMA: {exc}") from exc


def logs_query(target: SchemaTarget, query: LogQuery) -> Sql:
    """A trace's records (optionally one span's), oldest first, at most ``limit``.

    Ids are compared through ``unhex`` so the text parameters stay ASCII.
    """
    b = SqlBuilder()
    limit = b.param(min(max(0, query.limit), _UINT32_MAX), "UInt32")
    where = [f"trace_id = unhex({b.param(query.trace_id.hex(), 'String')})"]
    if query.span_id:
        where.append(f"span_id = unhex({b.param(query.span_id.hex(), 'String')})")
    return b.build(
        f"SELECT {_SELECT} FROM {target.table(schema.LOGS)} "
        f"WHERE {' AND '.join(where)} "
        f"ORDER BY time_ns, observed_time_ns LIMIT {limit}"
    )


def write_logs(db: _Inserter, target: SchemaTarget, batch: pa.Table) -> None:
    """Insert a LOG_SCHEMA batch. Raises InvalidBatchError, StorageError."""
    table = normalize_log_batch(batch)
    if table.num_rows:
        db.insert(target.table(schema.LOGS), table)


def find_logs(db: SqlRunner, target: SchemaTarget, query: LogQuery) -> list[LogRow]:
    """The records ``query`` asks for. Raises StorageError."""
    if query.limit <= 0 or len(query.trace_id) != 16:
        return []
    return to_log_rows(db.select(logs_query(target, query)))


class LogWriterAdapter:
    """A log store seen as the ``write_spans`` writer a :class:`BatchWriter` drives."""

    def __init__(self, store: LogWriter) -> None:
        self._store = store

    def write_spans(self, batch: pa.Table) -> None:
        """Write a LOG_SCHEMA batch to the store (the BatchWriter's worker calls this)."""
        self._store.write_logs(batch)


def log_batch_writer(store: LogWriter, **options: Any) -> BatchWriter:
    """A :class:`BatchWriter` batching log records into ``store.write_logs``.

    ``options`` are BatchWriter's (``max_rows``, ``max_delay``, ...); records
    are checked against LOG_SCHEMA on submit.
    """
    return BatchWriter(
        LogWriterAdapter(store), normalize=normalize_log_batch, rows_name="log", **options
    )
