"""The span store, written once over a minimal backend interface.

:class:`SqlSpanStore` holds everything that is the same on chdb and on a
ClickHouse server: opening (capabilities, migrations, retention), what a
write inserts, and how reads are answered. A :class:`Backend` only runs
:class:`~tinct.storage.sql.Sql`, inserts an Arrow table and closes; the two
implementations live in ``chdb_store`` and ``clickhouse_store``.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import pyarrow as pa

from tinct.errors import ConfigError, SchemaError, StorageError
from tinct.logs import LogQuery, LogRow
from tinct.metrics import Matcher, MetricMetadata, Series
from tinct.spans import TraceQuery
from tinct.storage import alert_history, dye_rules, logs, metric_sql, queries, rum, schema, topology
from tinct.storage.base import SpanRow, StoredDyeRule
from tinct.storage.batches import normalize_batch, operation_rows, to_span_rows, trace_index_rows
from tinct.storage.metric_batches import SeriesLimit
from tinct.storage.migrations import MIGRATIONS, Migration, migrate
from tinct.storage.schema import Capabilities, SchemaTarget
from tinct.storage.sql import Sql, SqlRunner, ident

__all__ = ["Backend", "SqlSpanStore"]

logger = logging.getLogger(__name__)

_DAY_NS = 86_400 * 10**9
# An operation already written is written again only when seen this much
# later (span time), so last_seen_ns stays roughly current at ~no cost.
_OPERATION_REFRESH_NS = 3600 * 10**9
_PARTITION_ID = re.compile(r"(\d{4})(\d{2})(\d{2})\Z")
# Tables with a TTL, and the expression of the day a row belongs to.
_TIMED_TABLES = (
    (schema.SPANS, schema.day_expr("start_ns")),
    (schema.TRACE_INDEX, schema.day_expr("end_ns")),
    (schema.LOGS, schema.day_expr("time_ns")),
    (schema.SERIES, "day"),
    (schema.SAMPLES, schema.day_of_ms_expr("timestamp_ms")),
    (schema.RUM_EVENTS, schema.day_expr("time_ns")),
)
_TTL_DAYS = re.compile(r"\bTTL\b.*?toIntervalDay\((\d+)\)")


class Backend(SqlRunner, Protocol):
    """What :class:`SqlSpanStore` needs from an engine. Thread-safe; raises StorageError."""

    def insert(self, table: str, data: pa.Table) -> None:
        """Insert ``data`` into the qualified ``table``; columns by name."""

    def close(self) -> None:
        """Release connections. Idempotent."""


class SqlSpanStore:
    """A :class:`~tinct.storage.base.SpanStore` over any :class:`Backend`.

    Opening creates the database if missing, applies missing migrations,
    brings TTLs in line with ``retention_days`` and applies retention once.

    Args:
        backend: the engine; owned by the store from now on (closed with it).
        database: database holding the tables.
        retention_days: keep at least this many whole days of spans; 0 keeps
            everything, whatever its timestamps.
        migrations: schema steps (tests pass a prefix to simulate old stores).
        now_ns: wall clock in Unix nanoseconds, for retention and bookkeeping.
        max_series_per_metric: most series of one metric name per UTC day;
            more are dropped and counted in ``dropped_series``. 0: no limit.

    Raises:
        ConfigError: bad ``database`` or ``retention_days``.
        SchemaError: the schema cannot be created or migrated.
        StorageError: the backend failed.

    Threading: every public method may be called from any thread; writes
    from one writer thread run concurrently with reads.
    """

    def __init__(
        self,
        backend: Backend,
        database: str,
        *,
        retention_days: int = 0,
        migrations: Sequence[Migration] = MIGRATIONS,
        now_ns: Callable[[], int] = time.time_ns,
        max_series_per_metric: int = 0,
    ) -> None:
        self._backend = backend
        self._series_limit = SeriesLimit(max_series_per_metric)
        self._now_ns = now_ns
        self._closed = False
        self._ops_lock = threading.Lock()
        self._ops_written: dict[tuple[str, str, int], int] = {}
        try:
            if retention_days < 0:
                raise ConfigError(
                    f"retention_days must be >= 0 (0 keeps all), got {retention_days}"
                )
            try:
                ident(database)
            except ValueError as exc:
                raise ConfigError(f"store database name: {exc}") from exc
            version = backend.select(Sql("SELECT version() AS v")).column(0)[0].as_py()
            caps = Capabilities.from_version(_text(version))
            self.target = SchemaTarget(database, caps, retention_days)
            backend.execute(Sql(f"CREATE DATABASE IF NOT EXISTS {ident(database)}"))
            self.applied_migrations = migrate(backend, self.target, migrations, clock=now_ns)
            self._sync_ttl()
            self.apply_retention()
            if migrations and migrations[-1].version >= 5:
                metric_sql.preload_series(
                    backend, self.target, self._series_limit, now_ns() // 1_000_000
                )
        except BaseException:
            backend.close()
            raise

    @property
    def capabilities(self) -> Capabilities:
        """What the server supports, detected at open."""
        return self.target.caps

    # -- writes ---------------------------------------------------------------

    def write_spans(self, batch: pa.Table) -> None:
        """Insert a SPAN_SCHEMA batch with its trace-index and operation rows.

        Operations and index rows go first: if the spans insert then fails, a
        retry leaves only harmless duplicates there, never orphaned spans.

        Raises:
            InvalidBatchError: the batch does not fit SPAN_SCHEMA.
            StorageError: the backend failed; nothing or part was written.
        """
        table = normalize_batch(batch)
        if table.num_rows == 0:
            return
        ops = operation_rows(table)
        fresh = self._unwritten_operations(ops)
        if fresh:
            self._backend.insert(
                self.target.table(schema.OPERATIONS),
                pa.Table.from_pylist(fresh, schema=ops.schema),
            )
            with self._ops_lock:
                for row in fresh:
                    key = (row["service"], row["name"], row["kind"])
                    seen = self._ops_written.get(key, 0)
                    self._ops_written[key] = max(seen, row["last_seen_ns"])
        self._backend.insert(self.target.table(schema.TRACE_INDEX), trace_index_rows(table))
        self._backend.insert(self.target.table(schema.SPANS), table)

    def _unwritten_operations(self, ops: pa.Table) -> list[dict[str, Any]]:
        fresh = []
        with self._ops_lock:
            for row in ops.to_pylist():
                seen = self._ops_written.get((row["service"], row["name"], row["kind"]))
                if seen is None or row["last_seen_ns"] > seen + _OPERATION_REFRESH_NS:
                    fresh.append(row)
        return fresh

    # -- reads ----------------------------------------------------------------

    def get_trace(self, trace_id: bytes) -> list[SpanRow]:
        """Every stored span of the trace ordered by start; [] if unknown.

        Looks the trace up in the trace index first, then reads spans only in
        its time range (and so only the partitions holding it).
        """
        if len(trace_id) != 16:
            return []
        traces = self._read_traces([bytes(trace_id)])
        return traces.get(bytes(trace_id), [])

    def find_traces(self, query: TraceQuery) -> list[list[SpanRow]]:
        """Whole traces (all spans, all services) with a matching span, newest first."""
        if queries.is_empty_search(query):
            return []
        found = self._backend.select(queries.matching_traces(self.target, query))
        ids = [bytes(v) for v in found.column("trace_id").to_pylist()] if found.num_rows else []
        traces = self._read_traces(ids)
        return [traces[t] for t in ids if t in traces]

    def _read_traces(self, trace_ids: list[bytes]) -> dict[bytes, list[SpanRow]]:
        if not trace_ids:
            return {}
        bounds = self._backend.select(queries.trace_bounds(self.target, trace_ids)).to_pylist()
        if not bounds or not bounds[0]["n"]:
            return {}
        lo, hi = int(bounds[0]["lo"]), int(bounds[0]["hi"])
        result = self._backend.select(queries.spans_of_traces(self.target, trace_ids, lo, hi))
        traces: dict[bytes, list[SpanRow]] = {}
        for row in to_span_rows(result):
            traces.setdefault(row["trace_id"], []).append(row)
        return traces

    def dependencies(self, start_ns: int, end_ns: int) -> list[tuple[str, str, int]]:
        """(parent service, child service, calls) for children starting in the window."""
        if end_ns < start_ns or end_ns < 0:
            return []
        result = self._backend.select(queries.dependencies(self.target, start_ns, end_ns))
        return [
            (_text(r["parent_service"]), _text(r["child_service"]), int(r["calls"]))
            for r in result.to_pylist()
        ]

    def table_sizes(self) -> dict[str, tuple[int, int]]:
        """``{table: (rows, bytes on disk)}`` for this store's tables.

        Counts active parts, so right after an insert returns it counts what
        that insert wrote. Used by self-metrics and benchmarks.
        """
        result = self._backend.select(queries.table_sizes(self.target))
        return {_text(r["table"]): (int(r["rows"]), int(r["bytes"])) for r in result.to_pylist()}

    def compact(self) -> None:
        """Merge every table's parts (OPTIMIZE FINAL): for size measurements."""
        for table in (
            schema.SPANS,
            schema.TRACE_INDEX,
            schema.OPERATIONS,
            schema.LOGS,
            schema.SERIES,
            schema.SAMPLES,
        ):
            self._backend.execute(queries.optimize_final(self.target, table))

    def services(self) -> list[str]:
        """Service names seen, sorted."""
        result = self._backend.select(queries.services(self.target))
        return [_text(v) for v in result.column(0).to_pylist()] if result.num_rows else []

    def operations(self, service: str, span_kind: int | None = None) -> list[tuple[str, int]]:
        """(span name, OTLP span kind) pairs seen for ``service``, sorted."""
        if span_kind is not None and not 0 <= span_kind <= 255:
            return []
        result = self._backend.select(queries.operations(self.target, service, span_kind))
        return [(_text(r["name"]), int(r["kind"])) for r in result.to_pylist()]

    # -- dye rules -------------------------------------------------------------

    def add_dye_rule(self, rule: StoredDyeRule) -> None:
        """Store a new dye rule."""
        dye_rules.add_rule(self._backend, self.target, rule)

    def dye_rules(self, now_s: float, service: str | None = None) -> list[StoredDyeRule]:
        """Live dye rules (not ended, ``expires_at > now_s``), oldest first;
        with ``service``, that service's and the service-less ones."""
        return dye_rules.live_rules(self._backend, self.target, now_s, service)

    def end_dye_rule(self, rule_id: str, now_s: float) -> bool:
        """End a live dye rule; False when unknown, already ended or expired."""
        return dye_rules.end_rule(self._backend, self.target, rule_id, now_s)

    # -- logs --------------------------------------------------------------------

    def write_logs(self, batch: pa.Table) -> None:
        """Insert a LOG_SCHEMA batch.

        Raises:
            InvalidBatchError: the batch does not fit LOG_SCHEMA.
            StorageError: the backend failed.
        """
        logs.write_logs(self._backend, self.target, batch)

    def find_logs(self, query: LogQuery) -> list[LogRow]:
        """The log records ``query`` selects, oldest first."""
        return logs.find_logs(self._backend, self.target, query)

    # -- browser error events -------------------------------------------------------

    def write_rum_events(self, batch: pa.Table) -> None:
        """Insert a RUM_EVENT_SCHEMA batch (:mod:`tinct.storage.rum`).

        Raises:
            InvalidBatchError: the batch does not fit RUM_EVENT_SCHEMA.
            StorageError: the backend failed.
        """
        rum.write_rum_events(self._backend, self.target, batch)

    def find_rum_events(self, query: rum.RumEventQuery) -> list[rum.RumEventRow]:
        """The browser error events ``query`` selects, newest first."""
        return rum.find_rum_events(self._backend, self.target, query)

    # -- alert history ------------------------------------------------------------

    def write_alert_events(self, events: Sequence[alert_history.AlertEvent]) -> None:
        """Record alert transitions (:mod:`tinct.storage.alert_history`).

        Raises:
            StorageError: the backend failed.
        """
        alert_history.write_alert_events(self._backend, self.target, events)

    def find_alert_events(
        self, query: alert_history.AlertEventQuery
    ) -> list[alert_history.AlertEvent]:
        """The alert transitions ``query`` selects, newest first."""
        return alert_history.find_alert_events(self._backend, self.target, query)

    # -- topology -----------------------------------------------------------------

    def write_topology_edges(self, batch: pa.Table) -> None:
        """Insert pre-aggregated edges (:mod:`tinct.storage.topology`). Raises StorageError."""
        topology.write_edges(self._backend, self.target, batch)

    def topology_edges(self, query: topology.EdgeQuery) -> list[topology.EdgeRow]:
        """The window's edges summed per node pair."""
        return topology.find_edges(self._backend, self.target, query)

    def save_topology_pending(self, batch: pa.Table, checkpoint: int) -> None:
        """Replace the saved pending spans (a complete checkpoint or none)."""
        topology.save_pending(self._backend, self.target, batch, checkpoint)

    def load_topology_pending(self) -> tuple[pa.Table, int]:
        """The newest complete checkpoint of pending spans."""
        return topology.load_pending(self._backend, self.target)

    # -- metrics ------------------------------------------------------------------

    @property
    def dropped_series(self) -> dict[str, int]:
        """Series refused by the per-metric series limit, per metric, since open."""
        return self._series_limit.dropped

    def write_samples(self, batch: pa.Table) -> None:
        """Insert a SAMPLE_SCHEMA batch (new series first, then samples).

        Raises:
            InvalidBatchError: the batch does not fit SAMPLE_SCHEMA.
            StorageError: the backend failed.
        """
        metric_sql.write_samples(self._backend, self.target, self._series_limit, batch)

    def write_metadata(self, rows: Sequence[MetricMetadata]) -> None:
        """Record HELP/TYPE/UNIT of metric families (the latest wins)."""
        metric_sql.write_metadata(self._backend, self.target, rows, self._now_ns() // 1_000_000)

    def series(
        self, matchers: Sequence[Matcher], start_ms: int, end_ms: int, limit: int = 0
    ) -> list[Series]:
        """Series matching every matcher, seen on a day of the window, sorted by labels."""
        return metric_sql.find_series(self._backend, self.target, matchers, start_ms, end_ms, limit)

    def samples(
        self,
        fingerprints: Sequence[int],
        start_ms: int,
        end_ms: int,
        windows: tuple[int, int, int] | None = None,
    ) -> pa.Table:
        """Samples of the series in ``[start_ms, end_ms]``, sorted, one per
        timestamp; with ``windows``, only those inside the windows (see
        :func:`tinct.storage.metric_sql.read_samples`)."""
        return metric_sql.read_samples(
            self._backend, self.target, fingerprints, start_ms, end_ms, windows
        )

    def label_names(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[str]:
        """Label names of matching series, sorted."""
        return metric_sql.label_names(self._backend, self.target, matchers, start_ms, end_ms)

    def label_values(
        self, name: str, matchers: Sequence[Matcher], start_ms: int, end_ms: int
    ) -> list[str]:
        """Non-empty values of label ``name`` over matching series, sorted."""
        return metric_sql.label_values(self._backend, self.target, name, matchers, start_ms, end_ms)

    def metadata(self, metric: str | None = None) -> list[MetricMetadata]:
        """Recorded metric metadata, sorted by metric."""
        return metric_sql.read_metadata(self._backend, self.target, metric)

    # -- retention and lifecycle -------------------------------------------------

    def apply_retention(self, now_ns: int | None = None) -> list[tuple[str, str]]:
        """Drop daily partitions (spans, trace index, logs) wholly older than ``retention_days``.

        Needed where the server has no TTL (18.16); elsewhere it makes expiry
        prompt and deterministic. Partition ``d`` goes when
        ``d < today - retention_days`` (UTC), matching the tables' TTL.
        Does nothing when ``retention_days`` is 0. Safe to call periodically
        from a background thread.

        Args:
            now_ns: "now" in Unix nanoseconds; defaults to the store's clock.

        Returns:
            The dropped ``(table, partition_id)`` pairs.
        """
        days = self.target.retention_days
        if days <= 0:
            return []
        now = self._now_ns() if now_ns is None else now_ns
        oldest_kept = dt.date(1970, 1, 1) + dt.timedelta(days=now // _DAY_NS - days)
        dropped = []
        for table in schema.RETENTION_TABLES:
            parts = self._backend.select(queries.active_partitions(self.target, table))
            for value in parts.column(0).to_pylist() if parts.num_rows else []:
                partition = _text(value)
                match = _PARTITION_ID.match(partition)
                if not match:
                    continue
                day = dt.date(*(int(g) for g in match.groups()))
                if day < oldest_kept:
                    # Checked digits only: ALTER takes no query parameters.
                    self._backend.execute(
                        Sql(
                            f"ALTER TABLE {self.target.table(table)} "
                            f"DROP PARTITION ID '{partition}'"
                        )
                    )
                    dropped.append((table, partition))
        if dropped:
            logger.info("retention dropped %d daily partitions: %s", len(dropped), dropped)
        return dropped

    def _sync_ttl(self) -> None:
        """Align table TTLs with retention_days when it changed since creation."""
        if not self.target.caps.ttl:
            return
        for table, day in _TIMED_TABLES:
            rows = self._backend.select(queries.table_engine(self.target, table)).to_pylist()
            if not rows:
                continue
            found = _TTL_DAYS.search(_text(rows[0]["engine_full"]))
            current = int(found.group(1)) if found else None
            wanted = schema.ttl_clause(self.target, day)
            wanted_days = self.target.retention_days + 1 if wanted else None
            if current == wanted_days:
                continue
            name = self.target.table(table)
            change = f"MODIFY TTL {wanted}" if wanted else "REMOVE TTL"
            statement = f"ALTER TABLE {name} {change}"
            try:
                self._backend.execute(Sql(statement))
            except StorageError as exc:
                raise SchemaError(f"cannot change the TTL of {name}: {exc}") from exc
            logger.info("table %s TTL set for %d retention days", name, self.target.retention_days)

    def close(self) -> None:
        """Release connections and files. Idempotent."""
        if not self._closed:
            self._closed = True
            self._backend.close()


def _text(value: object) -> str:
    """Backends return String as bytes; text columns are UTF-8."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return str(value)
