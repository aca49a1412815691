"""Browser error events in ClickHouse: the SQL behind :class:`RumEventStore`.

The browser beacon (``tinct/rum.js``, posting to ``POST /api/tinct/rum``)
reports JavaScript errors, resources that failed to load and unhandled
promise rejections. Their counts become user-layer series; the errors
themselves, with the user id that must never be a series label, are rows of
``schema.rum_events_table``, written here once for both backends the way
``tinct.storage.logs`` writes log records: batches arrive as
:data:`RUM_EVENT_SCHEMA` tables and are inserted as they are (the backend's
Arrow insert, no SQL text), reads are parameterized queries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import pyarrow as pa

from tinct.errors import StorageError
from tinct.storage import schema
from tinct.storage.batches import InvalidBatchError
from tinct.storage.schema import SchemaTarget
from tinct.storage.sql import Sql, SqlBuilder, SqlRunner

__all__ = [
    "RUM_EVENT_SCHEMA",
    "RUM_EVENT_COLUMNS",
    "MAX_RUM_EVENT_LIMIT",
    "RumEventRow",
    "RumEventQuery",
    "RumEventStore",
    "normalize_rum_batch",
    "to_rum_rows",
    "rum_events_query",
    "write_rum_events",
    "find_rum_events",
]

# One stored event; keys are RUM_EVENT_COLUMNS, values plain Python.
RumEventRow = dict[str, Any]

RUM_EVENT_SCHEMA = pa.schema(
    [
        pa.field("time_ns", pa.uint64(), nullable=False),
        pa.field("app", pa.string(), nullable=False),
        # The page's path, without query or fragment.
        pa.field("page", pa.string(), nullable=False),
        # "" when the page named no user.
        pa.field("user_id", pa.string(), nullable=False),
        # js, resource or promise.
        pa.field("kind", pa.string(), nullable=False),
        pa.field("message", pa.string(), nullable=False),
        # The script (js) or the resource's URL (resource).
        pa.field("source", pa.string(), nullable=False),
        pa.field("line", pa.uint32(), nullable=False),
        pa.field("col", pa.uint32(), nullable=False),
        pa.field("stack", pa.string(), nullable=False),
        pa.field("user_agent", pa.string(), nullable=False),
    ]
)
RUM_EVENT_COLUMNS = tuple(RUM_EVENT_SCHEMA.names)

# Most events one query returns (GET /api/tinct/rum/errors's limit bound).
MAX_RUM_EVENT_LIMIT = 10_000
_SELECT = ", ".join(RUM_EVENT_COLUMNS)
_UINT64_MAX = 2**64 - 1


@dataclass(frozen=True)
class RumEventQuery:
    """Which events to read: ``start_ns <= time_ns <= end_ns``, newest first.

    Attributes:
        start_ns, end_ns: the window, Unix nanoseconds, both ends included.
        app: only this app's events; "" for every app.
        kind: only this kind (``js``, ``resource``, ``promise``); "" for all.
        user_id: only this user's events; "" for everyone's.
        limit: at most this many (newest first).
    """

    start_ns: int
    end_ns: int
    app: str = ""
    kind: str = ""
    user_id: str = ""
    limit: int = 1000


@runtime_checkable
class RumEventStore(Protocol):
    """Where browser error events are kept: both SQL stores and
    :class:`~tinct.storage.memory_rum.InMemoryRumEventStore`."""

    def write_rum_events(self, batch: pa.Table) -> None:
        """Insert a RUM_EVENT_SCHEMA ``batch`` synchronously. Blocks; raises
        StorageError (InvalidBatchError when it does not fit the schema)."""

    def find_rum_events(self, query: RumEventQuery) -> list[RumEventRow]:
        """The events ``query`` selects, newest first, at most ``query.limit``."""


class _Inserter(SqlRunner, Protocol):
    """The part of ``sqlstore.Backend`` these functions use."""

    def insert(self, table: str, data: pa.Table) -> None: ...


def normalize_rum_batch(batch: pa.Table) -> pa.Table:
    """``batch`` with exactly RUM_EVENT_SCHEMA's columns, order and types.

    Raises:
        InvalidBatchError: a column is missing or cannot be cast.
    """
    if batch.schema.equals(RUM_EVENT_SCHEMA):
        return batch
    missing = [c for c in RUM_EVENT_COLUMNS if c not in set(batch.column_names)]
    if missing:
        raise InvalidBatchError(f"browser event batch lacks columns {missing}")
    try:
        return batch.select(list(RUM_EVENT_COLUMNS)).cast(RUM_EVENT_SCHEMA)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
        raise InvalidBatchError(
            f"browser event batch does not match RUM_EVENT_SCHEMA: {exc}"
        ) from exc


def to_rum_rows(result: pa.Table) -> list[RumEventRow]:
    """Event dicts from a backend result holding RUM_EVENT_SCHEMA's columns.

    Raises:
        StorageError: the result does not fit RUM_EVENT_SCHEMA.
    """
    if result.num_rows == 0:
        return []
    try:
        return result.select(list(RUM_EVENT_COLUMNS)).cast(RUM_EVENT_SCHEMA).to_pylist()  # type: ignore[no-any-return]
    except (KeyError, pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
        raise StorageError(f"stored browser events do not match RUM_EVENT_SCHEMA: {exc}") from exc


def _clamp(value: int, high: int) -> int:
    return min(max(0, value), high)


def rum_events_query(target: SchemaTarget, query: RumEventQuery) -> Sql:
    """The events of the window (and app, kind, user when given), newest first.

    Ties in time are ordered by app, kind, page and message, so every
    backend answers in the same order.
    """
    b = SqlBuilder()
    start = b.param(_clamp(query.start_ns, _UINT64_MAX), "UInt64")
    end = b.param(_clamp(query.end_ns, _UINT64_MAX), "UInt64")
    where = [f"time_ns >= {start}", f"time_ns <= {end}"]
    for column, value in (("app", query.app), ("kind", query.kind), ("user_id", query.user_id)):
        if value:
            where.append(f"{column} = {b.param(value, 'String')}")
    limit = b.param(_clamp(query.limit, MAX_RUM_EVENT_LIMIT), "UInt32")
    return b.build(
        f"SELECT {_SELECT} FROM {target.table(schema.RUM_EVENTS)} "
        f"WHERE {' AND '.join(where)} "
        f"ORDER BY time_ns DESC, app, kind, page, message LIMIT {limit}"
    )


def write_rum_events(db: _Inserter, target: SchemaTarget, batch: pa.Table) -> None:
    """Insert a RUM_EVENT_SCHEMA batch. Raises InvalidBatchError, StorageError."""
    table = normalize_rum_batch(batch)
    if table.num_rows:
        db.insert(target.table(schema.RUM_EVENTS), table)


def find_rum_events(db: SqlRunner, target: SchemaTarget, query: RumEventQuery) -> list[RumEventRow]:
    """The events ``query`` asks for. Raises StorageError."""
    if query.limit <= 0 or query.end_ns < query.start_ns or query.end_ns < 0:
        return []
    return to_rum_rows(db.select(rum_events_query(target, query)))
