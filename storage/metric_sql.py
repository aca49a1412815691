"""Metric series and samples in ClickHouse: the writes and the typed reads.

Written once for both backends (each function takes the backend and the
schema target, as :mod:`tinct.storage.logs` does). A selector is answered in
two steps, as PromHouse and qryn do: label matchers select fingerprints from
the series table (partition-pruned by day, primary-key-pruned by metric
name), then samples are read for those fingerprints only, so the cost
follows the result, not the raw data.

Label matchers become SQL with every value a query parameter; a label
absent from a series reads as ``""`` (``arr[indexOf(keys, k)]`` is the
default value when ``indexOf`` returns 0), which is PromQL's rule. Regexes
are RE2 in ClickHouse as in Prometheus, anchored the way Prometheus 3
anchors them: ``^(?s:re)$``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from tinct.metrics import NAME_LABEL, Matcher, MetricMetadata, Series
from tinct.storage import schema
from tinct.storage.metric_batches import (
    DAY_MS,
    SAMPLE_READ_SCHEMA,
    SeriesLimit,
    normalize_samples,
    sample_days,
)
from tinct.storage.schema import SchemaTarget
from tinct.storage.sql import SqlBuilder, SqlRunner

__all__ = [
    "write_samples",
    "write_metadata",
    "find_series",
    "read_samples",
    "label_names",
    "label_values",
    "read_metadata",
    "preload_series",
]

# One insert touches at most this many daily partitions (ClickHouse refuses
# more than max_partitions_per_insert_block = 100 by default).
_MAX_DAYS_PER_INSERT = 90
_MAX_DAY_SECONDS = 4102444800


class _Inserter(SqlRunner, Protocol):
    """The part of ``sqlstore.Backend`` these functions use."""

    def insert(self, table: str, data: pa.Table) -> None: ...


# -- writes -----------------------------------------------------------------------


def write_samples(db: _Inserter, target: SchemaTarget, limit: SeriesLimit, batch: pa.Table) -> None:
    """Insert a SAMPLE_SCHEMA batch: series rows new for their day, then samples.

    Series go first, so a failed samples insert leaves at worst a series
    without samples for a day, never samples without a series. If the
    series insert fails, the bookkeeping forgets them so a retry writes them.

    Raises:
        InvalidBatchError: the batch does not fit SAMPLE_SCHEMA.
        StorageError: the backend failed.
    """
    table = normalize_samples(batch)
    if table.num_rows == 0:
        return
    keep, new = limit.admit(table)
    if new:
        fresh = table.take(pa.array(new, pa.int64()))
        try:
            for chunk in _by_partition_groups(fresh):
                db.insert(target.table(schema.SERIES), _series_rows(chunk))
        except BaseException:
            limit.forget(fresh)
            raise
    if not all(keep):
        table = table.filter(pa.array(keep))
    samples = table.select(["fingerprint", "timestamp_ms", "value"])
    for chunk in _by_partition_groups(samples):
        db.insert(target.table(schema.SAMPLES), chunk)


def _series_rows(rows: pa.Table) -> pa.Table:
    days = sample_days(rows).clip(0, _MAX_DAY_SECONDS // 86400)
    return pa.table(
        {
            "day": pa.array(days.astype("int32"), pa.int32()).cast(pa.date32()),
            "fingerprint": rows.column("fingerprint"),
            "metric_name": rows.column("metric_name"),
            "label_keys": rows.column("label_keys"),
            "label_values": rows.column("label_values"),
        }
    )


def _by_partition_groups(samples: pa.Table) -> list[pa.Table]:
    """Rows with ``timestamp_ms`` split into inserts of at most
    _MAX_DAYS_PER_INSERT days (daily partitions) each."""
    days = sample_days(samples)
    unique = np.unique(days)
    if len(unique) <= _MAX_DAYS_PER_INSERT:
        return [samples]
    order = np.argsort(days, kind="stable")
    sorted_days = days[order]
    chunks = []
    for i in range(0, len(unique), _MAX_DAYS_PER_INSERT):
        group = unique[i : i + _MAX_DAYS_PER_INSERT]
        lo = np.searchsorted(sorted_days, group[0], "left")
        hi = np.searchsorted(sorted_days, group[-1], "right")
        chunks.append(samples.take(pa.array(order[lo:hi])))
    return chunks


def write_metadata(
    db: _Inserter, target: SchemaTarget, rows: Sequence[MetricMetadata], now_ms: int | None = None
) -> None:
    """Record HELP/TYPE/UNIT per family; a later write replaces an earlier one."""
    if not rows:
        return
    stamp = int(time.time() * 1000) if now_ms is None else now_ms
    table = pa.table(
        {
            "metric_name": [r.metric for r in rows],
            "type": [r.type for r in rows],
            "help": [r.help for r in rows],
            "unit": [r.unit for r in rows],
            "updated_ms": pa.array([stamp] * len(rows), pa.int64()),
        }
    )
    db.insert(target.table(schema.METRIC_METADATA), table)


def preload_series(db: SqlRunner, target: SchemaTarget, limit: SeriesLimit, now_ms: int) -> None:
    """Teach ``limit`` the series already recorded for yesterday and today."""
    b = SqlBuilder()
    since = b.param(max(0, now_ms // 1000 - 86400), "UInt32")
    result = db.select(
        b.build(
            f"SELECT toUInt16(day) AS d, metric_name, fingerprint "
            f"FROM {target.table(schema.SERIES)} "
            f"WHERE day >= toDate(toDateTime({since}, 'UTC')) "
            f"GROUP BY d, metric_name, fingerprint"
        )
    )
    if result.num_rows == 0:
        return
    limit.preload(
        zip(
            result.column("d").to_pylist(),
            (_text(v) for v in result.column("metric_name").to_pylist()),
            result.column("fingerprint").to_pylist(),
            strict=True,
        )
    )


# -- reads ------------------------------------------------------------------------


def _day_bounds(b: SqlBuilder, start_ms: int, end_ms: int) -> str:
    lo = min(max(start_ms // DAY_MS, 0) * 86400, _MAX_DAY_SECONDS)
    hi = min(max(end_ms // DAY_MS, 0) * 86400, _MAX_DAY_SECONDS)
    return (
        f"day >= toDate(toDateTime({b.param(lo, 'UInt32')}, 'UTC')) "
        f"AND day <= toDate(toDateTime({b.param(hi, 'UInt32')}, 'UTC'))"
    )


def _matcher_sql(b: SqlBuilder, m: Matcher) -> str:
    if m.name == NAME_LABEL:
        column = "metric_name"
    else:
        column = f"label_values[indexOf(label_keys, {b.param(m.name, 'String')})]"
    if m.op in ("=", "!="):
        return f"{column} {m.op} {b.param(m.value, 'String')}"
    test = f"match({column}, {b.param('^(?s:' + m.value + ')$', 'String')})"
    return test if m.op == "=~" else f"NOT {test}"


def _series_where(b: SqlBuilder, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> str:
    parts = [_day_bounds(b, start_ms, end_ms)]
    parts.extend(_matcher_sql(b, m) for m in matchers)
    return " AND ".join(parts)


def find_series(
    db: SqlRunner,
    target: SchemaTarget,
    matchers: Sequence[Matcher],
    start_ms: int,
    end_ms: int,
    limit: int = 0,
) -> list[Series]:
    """Series matching every matcher, seen on a day of ``[start_ms, end_ms]``."""
    if end_ms < start_ms or end_ms < 0:
        return []
    b = SqlBuilder()
    where = _series_where(b, matchers, start_ms, end_ms)
    result = db.select(
        b.build(
            f"SELECT fingerprint, any(metric_name) AS name, any(label_keys) AS keys, "
            f"any(label_values) AS vals FROM {target.table(schema.SERIES)} "
            f"WHERE {where} GROUP BY fingerprint"
        )
    )
    found = []
    for row in result.to_pylist():
        labels = {_text(k): _text(v) for k, v in zip(row["keys"], row["vals"], strict=True)}
        labels[NAME_LABEL] = _text(row["name"])
        found.append(Series(int(row["fingerprint"]), labels))
    found.sort(key=lambda s: sorted(s.labels.items()))
    return found[:limit] if limit > 0 else found


def read_samples(
    db: SqlRunner,
    target: SchemaTarget,
    fingerprints: Sequence[int],
    start_ms: int,
    end_ms: int,
    windows: tuple[int, int, int] | None = None,
) -> pa.Table:
    """Samples of ``fingerprints`` in ``[start_ms, end_ms]``, one per timestamp.

    ``windows`` = ``(first_end, step, length)``: keep only samples inside some
    window ``(first_end + k*step - length, first_end + k*step]``. A PromQL
    range query with a step longer than its windows (``rate(x[5m])`` every
    hour, or the 5-minute lookback) then reads what its steps use, not every
    sample in between: the filter runs in ClickHouse.
    """
    fps = sorted({int(fp) for fp in fingerprints})
    if not fps or end_ms < start_ms:
        return SAMPLE_READ_SCHEMA.empty_table()
    b = SqlBuilder()
    windowed = ""
    if windows is not None and 0 < windows[2] < windows[1]:
        first_end, step, length = (b.param(int(v), "Int64") for v in windows)
        # Distance from the sample to the next window end; % keeps the
        # dividend's sign in ClickHouse, hence the second modulo.
        windowed = f"AND ((({first_end} - timestamp_ms) % {step}) + {step}) % {step} < {length} "
    sql = b.build(
        f"SELECT fingerprint, timestamp_ms, value FROM {target.table(schema.SAMPLES)} "
        f"WHERE fingerprint IN (SELECT arrayJoin({b.param(fps, 'Array(UInt64)')})) "
        f"AND timestamp_ms >= {b.param(start_ms, 'Int64')} "
        f"AND timestamp_ms <= {b.param(end_ms, 'Int64')} {windowed}"
        f"ORDER BY fingerprint, timestamp_ms LIMIT 1 BY fingerprint, timestamp_ms"
    )
    result = db.select(sql)
    if result.num_rows == 0:
        return SAMPLE_READ_SCHEMA.empty_table()
    return pa.table(
        [
            result.column(name).cast(field.type)
            for name, field in zip(
                ("fingerprint", "timestamp_ms", "value"), SAMPLE_READ_SCHEMA, strict=True
            )
        ],
        schema=SAMPLE_READ_SCHEMA,
    )


def label_names(
    db: SqlRunner, target: SchemaTarget, matchers: Sequence[Matcher], start_ms: int, end_ms: int
) -> list[str]:
    """Label names of matching series (``__name__`` when any match), sorted."""
    if end_ms < start_ms or end_ms < 0:
        return []
    b = SqlBuilder()
    where = _series_where(b, matchers, start_ms, end_ms)
    result = db.select(
        b.build(
            f"SELECT DISTINCT arrayJoin(arrayConcat([{b.param(NAME_LABEL, 'String')}], "
            f"label_keys)) AS name FROM {target.table(schema.SERIES)} WHERE {where}"
        )
    )
    return sorted(_text(v) for v in result.column(0).to_pylist()) if result.num_rows else []


def label_values(
    db: SqlRunner,
    target: SchemaTarget,
    name: str,
    matchers: Sequence[Matcher],
    start_ms: int,
    end_ms: int,
) -> list[str]:
    """Non-empty values of label ``name`` over matching series, sorted."""
    if end_ms < start_ms or end_ms < 0:
        return []
    b = SqlBuilder()
    if name == NAME_LABEL:
        column = "metric_name"
    else:
        column = f"label_values[indexOf(label_keys, {b.param(name, 'String')})]"
    where = _series_where(b, matchers, start_ms, end_ms)
    result = db.select(
        b.build(
            f"SELECT DISTINCT {column} AS v FROM {target.table(schema.SERIES)} "
            f"WHERE {where} AND v != ''"
        )
    )
    return sorted(_text(v) for v in result.column(0).to_pylist()) if result.num_rows else []


def read_metadata(db: SqlRunner, target: SchemaTarget, metric: str | None) -> list[MetricMetadata]:
    """The latest metadata per family, sorted by name."""
    b = SqlBuilder()
    where = f"WHERE metric_name = {b.param(metric, 'String')}" if metric is not None else ""
    result = db.select(
        b.build(
            f"SELECT metric_name, argMax(type, updated_ms) AS t, argMax(help, updated_ms) AS h, "
            f"argMax(unit, updated_ms) AS u FROM {target.table(schema.METRIC_METADATA)} "
            f"{where} GROUP BY metric_name ORDER BY metric_name"
        )
    )
    return [
        MetricMetadata(_text(r["metric_name"]), _text(r["t"]), _text(r["h"]), _text(r["u"]))
        for r in result.to_pylist()
    ]


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
