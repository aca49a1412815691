"""Grafana's "Table" panel as columns and rows for a Dash ``DataTable``.

Instant queries (and range queries with a reducer) give Grafana's Prometheus
"table" format (grafana/public/app/plugins/datasource/prometheus/
result_transformer.ts, ``transformMetricDataToTable``): one row per series,
a column per label (sorted), and ``Value``. Range queries without a reducer
give the "Time | series…" layout of Grafana's ``joinByField`` (outer join on
time, one column per series, oldest first).

Every formatted cell (``Value``, the series columns) carries a numeric twin
under ``<column id>__num`` (None when empty), so the page can sort numbers
as numbers (``sort_action="custom"``) while showing Grafana's text.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..frames import FieldConfig, SeriesData
from .reduce import reduce_value
from .units import format_value

__all__ = ["NUMERIC_SUFFIX", "table_data"]

NUMERIC_SUFFIX = "__num"

Column = dict[str, Any]
Row = dict[str, Any]


def _column(name: str) -> Column:
    # DataTable validates column dicts exactly: only its own keys go here.
    return {"name": name, "id": name, "type": "text"}


def _cell(value: float | None, field: FieldConfig) -> tuple[str, float | None]:
    if value is None or math.isnan(value):
        return "", None
    return format_value(value, field.unit, field.decimals), value


def _unique(names: Sequence[str], taken: set[str]) -> list[str]:
    out: list[str] = []
    for name in names:
        candidate, k = name or "Value", 2
        while candidate in taken:
            candidate, k = f"{name} ({k})", k + 1
        taken.add(candidate)
        out.append(candidate)
    return out


def _reduced(
    series: Sequence[SeriesData], field: FieldConfig, reducer: str
) -> tuple[list[Column], list[Row]]:
    keys = sorted({k for s in series for k in s.labels})
    columns = [_column(k) for k in keys] if keys else [_column("Series")]
    rows: list[Row] = []
    for s in series:
        row: Row = {k: s.labels.get(k, "") for k in keys} if keys else {"Series": s.name}
        text, number = _cell(reduce_value(s.values, reducer), field)
        row["Value"], row["Value" + NUMERIC_SUFFIX] = text, number
        rows.append(row)
    return [*columns, _column("Value")], rows


def _joined(
    series: Sequence[SeriesData], field: FieldConfig, shift_s: float
) -> tuple[list[Column], list[Row]]:
    ids = _unique([s.name for s in series], {"Time"})
    times = [np.asarray(s.times, dtype=float) for s in series]
    all_t = np.unique(np.concatenate(times)) if times else np.array([])
    stamps = [
        dt.datetime.fromtimestamp(t + shift_s, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        for t in all_t.tolist()
    ]
    rows: list[Row] = [{"Time": stamp} for stamp in stamps]
    for col, s, t in zip(ids, series, times, strict=True):
        v = np.asarray(s.values, dtype=float)
        if v.shape != t.shape:
            raise ValueError(f"series {s.name!r}: {t.size} times but {v.size} values")
        column = np.full(all_t.size, np.nan)
        column[np.searchsorted(all_t, t)] = v
        for row, value in zip(rows, column.tolist(), strict=True):
            row[col], row[col + NUMERIC_SUFFIX] = _cell(value, field)
    return [_column("Time"), *(_column(c) for c in ids)], rows


def table_data(
    series: Sequence[SeriesData],
    field: FieldConfig,
    *,
    instant: bool,
    reduce: str | None = None,
    utc_offset_min: int = 0,
) -> tuple[list[Column], list[Row]]:
    """A table panel's columns and rows for ``dash_table.DataTable``.

    Args:
        series: the query results.
        field: unit and decimals of the values.
        instant: an instant query: one row per series (its last value).
        reduce: for range queries, a reducer (``lastNotNull``, ``mean``…) to
            get one row per series too; None joins them by time instead.
        utc_offset_min: the page's offset from UTC, for the Time column
            (0 for UTC).

    Returns:
        (columns: ``{"name", "id", "type"}`` dicts; rows: dicts by column id,
        each formatted cell with its float under ``id + NUMERIC_SUFFIX``,
        which no column shows).

    Raises:
        ValueError: a series whose times and values differ in length.
    """
    if instant or reduce is not None:
        return _reduced(series, field, "lastNotNull" if reduce is None else reduce)
    return _joined(series, field, utc_offset_min * 60.0)
