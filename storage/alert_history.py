"""Alert history in ClickHouse: the SQL behind :class:`AlertHistoryStore`.

Prometheus keeps no history of its alerts; the ``ALERTS`` series say what
was active at a moment, not when an alert started firing or resolved and
with which annotations. The rule evaluator (``tinct.alerting.evaluator``)
records every transition to ``firing`` and to ``resolved`` here, one row
each, in ``schema.alert_history_table``; ``GET /api/tinct/alerts/history``
reads it back. Written once for both backends the way ``tinct.storage.rum``
is: rows go in as an Arrow table (the backend's Arrow insert, no SQL text),
reads are parameterized queries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import pyarrow as pa

from tinct.errors import StorageError
from tinct.storage import schema
from tinct.storage.schema import SchemaTarget
from tinct.storage.sql import Sql, SqlBuilder, SqlRunner

__all__ = [
    "ALERT_EVENT_SCHEMA",
    "ALERT_EVENT_COLUMNS",
    "ALERT_STATES",
    "MAX_ALERT_EVENT_LIMIT",
    "AlertEvent",
    "AlertEventQuery",
    "AlertHistoryStore",
    "alert_events_table",
    "alert_events_query",
    "to_alert_events",
    "write_alert_events",
    "find_alert_events",
]

ALERT_EVENT_SCHEMA = pa.schema(
    [
        pa.field("time_ms", pa.int64(), nullable=False),
        pa.field("alertname", pa.string(), nullable=False),
        # firing or resolved.
        pa.field("state", pa.string(), nullable=False),
        # tinct.metrics.fingerprint of the alert's labels: one alert's rows.
        pa.field("fingerprint", pa.uint64(), nullable=False),
        # Sorted by key.
        pa.field("label_keys", pa.list_(pa.string()), nullable=False),
        pa.field("label_values", pa.list_(pa.string()), nullable=False),
        pa.field("value", pa.float64(), nullable=False),
        pa.field("annotation_keys", pa.list_(pa.string()), nullable=False),
        pa.field("annotation_values", pa.list_(pa.string()), nullable=False),
        # When the alert became active (pending), Unix milliseconds.
        pa.field("active_at_ms", pa.int64(), nullable=False),
    ]
)
ALERT_EVENT_COLUMNS = tuple(ALERT_EVENT_SCHEMA.names)
ALERT_STATES = ("firing", "resolved")

# Most events one query returns (the history API's limit bound).
MAX_ALERT_EVENT_LIMIT = 10_000
_SELECT = ", ".join(ALERT_EVENT_COLUMNS)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class AlertEvent:
    """One transition of one alert.

    Attributes:
        time_ms: when it happened (the evaluation time), Unix milliseconds.
        alertname: the alerting rule's name.
        state: ``firing`` or ``resolved``.
        labels: the alert's labels (``alertname`` included).
        value: the expression's value at the transition (the last one seen,
            for ``resolved``).
        annotations: the expanded annotations.
        active_at_ms: when the alert became pending.
        fingerprint: identifies the alert across its rows.
    """

    time_ms: int
    alertname: str
    state: str
    labels: Mapping[str, str]
    value: float
    annotations: Mapping[str, str] = field(default_factory=dict)
    active_at_ms: int = 0
    fingerprint: int = 0


@dataclass(frozen=True)
class AlertEventQuery:
    """Which events to read: ``start_ms <= time_ms <= end_ms``, newest first.

    Attributes:
        start_ms, end_ms: the window, Unix milliseconds, both ends included.
        alertname: only this alert's events; "" for all.
        limit: at most this many.
    """

    start_ms: int
    end_ms: int
    alertname: str = ""
    limit: int = 1000


@runtime_checkable
class AlertHistoryStore(Protocol):
    """Where alert transitions are kept: both SQL stores and
    :class:`~tinct.storage.memory_alerts.InMemoryAlertHistoryStore`."""

    def write_alert_events(self, events: Sequence[AlertEvent]) -> None:
        """Insert ``events`` synchronously. Blocks; raises StorageError."""

    def find_alert_events(self, query: AlertEventQuery) -> list[AlertEvent]:
        """The events ``query`` selects, newest first, at most ``query.limit``."""


class _Inserter(SqlRunner, Protocol):
    """The part of ``sqlstore.Backend`` these functions use."""

    def insert(self, table: str, data: pa.Table) -> None: ...


def alert_events_table(events: Sequence[AlertEvent]) -> pa.Table:
    """``events`` as an ALERT_EVENT_SCHEMA table (labels sorted by key)."""
    rows = []
    for e in events:
        labels = sorted(e.labels.items())
        annotations = sorted(e.annotations.items())
        rows.append(
            {
                "time_ms": e.time_ms,
                "alertname": e.alertname,
                "state": e.state,
                "fingerprint": e.fingerprint,
                "label_keys": [k for k, _ in labels],
                "label_values": [v for _, v in labels],
                "value": e.value,
                "annotation_keys": [k for k, _ in annotations],
                "annotation_values": [v for _, v in annotations],
                "active_at_ms": e.active_at_ms,
            }
        )
    return pa.Table.from_pylist(rows, schema=ALERT_EVENT_SCHEMA)


def to_alert_events(result: pa.Table) -> list[AlertEvent]:
    """Events from a backend result holding ALERT_EVENT_SCHEMA's columns.

    Raises:
        StorageError: the result does not fit ALERT_EVENT_SCHEMA.
    """
    if result.num_rows == 0:
        return []
    try:
        rows = result.select(list(ALERT_EVENT_COLUMNS)).cast(ALERT_EVENT_SCHEMA).to_pylist()
    except (KeyError, pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
        raise StorageError(f"stored alert events do not match ALERT_EVENT_SCHEMA: {exc}") from exc
    return [
        AlertEvent(
            time_ms=r["time_ms"],
            alertname=r["alertname"],
            state=r["state"],
            labels=dict(zip(r["label_keys"], r["label_values"], strict=True)),
            value=r["value"],
            annotations=dict(zip(r["annotation_keys"], r["annotation_values"], strict=True)),
            active_at_ms=r["active_at_ms"],
            fingerprint=r["fingerprint"],
        )
        for r in rows
    ]


def _clamp(value: int, low: int, high: int) -> int:
    return min(max(low, value), high)


def alert_events_query(target: SchemaTarget, query: AlertEventQuery) -> Sql:
    """The events of the window (and alert, when given), newest first.

    Ties in time are ordered by alert name, fingerprint and state, so every
    backend answers in the same order.
    """
    b = SqlBuilder()
    start = b.param(_clamp(query.start_ms, _INT64_MIN, _INT64_MAX), "Int64")
    end = b.param(_clamp(query.end_ms, _INT64_MIN, _INT64_MAX), "Int64")
    where = [f"time_ms >= {start}", f"time_ms <= {end}"]
    if query.alertname:
        where.append(f"alertname = {b.param(query.alertname, 'String')}")
    limit = b.param(_clamp(query.limit, 0, MAX_ALERT_EVENT_LIMIT), "UInt32")
    return b.build(
        f"SELECT {_SELECT} FROM {target.table(schema.ALERT_HISTORY)} "
        f"WHERE {' AND '.join(where)} "
        f"ORDER BY time_ms DESC, alertname, fingerprint, state LIMIT {limit}"
    )


def write_alert_events(db: _Inserter, target: SchemaTarget, events: Sequence[AlertEvent]) -> None:
    """Insert alert events. Raises StorageError."""
    if events:
        db.insert(target.table(schema.ALERT_HISTORY), alert_events_table(events))


def find_alert_events(
    db: SqlRunner, target: SchemaTarget, query: AlertEventQuery
) -> list[AlertEvent]:
    """The events ``query`` asks for. Raises StorageError."""
    if query.limit <= 0 or query.end_ms < query.start_ms:
        return []
    return to_alert_events(db.select(alert_events_query(target, query)))
