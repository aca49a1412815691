"""Grafana's "Heatmap" panel for Prometheus histograms.

A ``rate(x_bucket[5m])`` query returns one cumulative series per ``le``
bound. Like Grafana's Prometheus "heatmap" format
(grafana/public/app/plugins/datasource/prometheus/result_transformer.ts,
``transformToHistogramOverTime``), buckets are sorted by ``le`` numerically
(``+Inf`` last) and each one's count is its cumulative value minus the one
below it, negatives (from counter resets or scrape skew) set to 0. Rows
are labelled by their upper bound in the field's unit ("100 ms", "+Inf").
Series without ``le`` are drawn one row each, named by the legend.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from ..frames import FieldConfig, SeriesData
from .theme import FONT_COLOR, base_layout, empty_figure, make_figure, offset_ms, time_axis, trace
from .units import format_value

__all__ = ["bucket_counts", "heatmap_figure"]

# Grafana's default heatmap scheme ("Oranges"), dark end first for a dark theme.
_COLORSCALE = [[0.0, "#2b1504"], [0.35, "#8a3b0a"], [0.7, "#f2761c"], [1.0, "#ffd9a8"]]


def _le(s: SeriesData) -> float | None:
    raw = s.labels.get("le")
    if raw is None:
        return None
    try:
        return float(raw)  # "+Inf" parses as inf
    except ValueError:
        return None


def _align(series: Sequence[SeriesData]) -> tuple[np.ndarray, np.ndarray]:
    """All the series' times (sorted, unique) and a row of values per series (NaN: none)."""
    times = [np.asarray(s.times, dtype=float) for s in series]
    values = [np.asarray(s.values, dtype=float) for s in series]
    for s, t, v in zip(series, times, values, strict=True):
        if t.shape != v.shape:
            raise ValueError(f"series {s.name!r}: {t.size} times but {v.size} values")
    all_t = np.unique(np.concatenate(times)) if times else np.array([])
    z = np.full((len(series), all_t.size), np.nan)
    for row, (t, v) in enumerate(zip(times, values, strict=True)):
        z[row, np.searchsorted(all_t, t)] = v
    return all_t, z


def bucket_counts(
    bounds: Sequence[float], cumulative: np.ndarray
) -> tuple[list[float], np.ndarray]:
    """Cumulative ``le`` buckets to per-bucket counts.

    Args:
        bounds: each row's ``le`` (in any order; duplicates are summed, as
            several instances' buckets are).
        cumulative: rows of cumulative values (buckets × times), NaN missing.

    Returns:
        (the sorted unique bounds, counts of the same shape: row 0 as is, each
        other row minus the row below (a missing one counting as 0), values
        under 1e-9 set to 0 as Grafana does; a missing value stays NaN).
    """
    uniq = sorted(set(bounds))
    rows = np.full((len(uniq), cumulative.shape[1]), np.nan)
    for i, b in enumerate(uniq):
        picked = cumulative[[j for j, x in enumerate(bounds) if x == b]]
        summed = np.nansum(picked, axis=0)
        summed[np.all(np.isnan(picked), axis=0)] = np.nan
        rows[i] = summed
    counts = rows.copy()
    # Grafana: top -= (bottom || 0); anything under 1e-9 becomes 0.
    counts[1:] -= np.nan_to_num(rows[:-1], nan=0.0)
    body = counts[1:]
    body[body < 1e-9] = 0.0
    return uniq, counts


def _bound_label(le: float, unit: str, decimals: int | None) -> str:
    return "+Inf" if math.isinf(le) else format_value(le, unit, decimals)


def heatmap_figure(
    series: Sequence[SeriesData],
    field: FieldConfig,
    *,
    time_range: tuple[float, float],
    timezone: str = "browser",
    utc_offset_min: int = 0,
) -> go.Figure:
    """A heatmap panel over ``time_range``: histogram buckets, or one row per series.

    Args:
        series: ``_bucket`` series (each with an ``le`` label), or any series.
        field: the unit and decimals of the bucket bounds; no_value text.
        time_range: the x range, Unix seconds (start, end).
        timezone: ``browser`` (shift by ``utc_offset_min``) or ``utc``.
        utc_offset_min: the browser's offset from UTC in minutes.

    Returns:
        A ``go.Heatmap`` figure; ``empty_figure(field.no_value)`` without values.

    Raises:
        ValueError: a series whose times and values differ in length.
    """
    if not series:
        return empty_figure(field.no_value)
    times, z = _align(series)
    if not np.isfinite(z).any():
        return empty_figure(field.no_value)
    bounds = [_le(s) for s in series]
    if all(b is not None for b in bounds):
        les, z = bucket_counts([b for b in bounds if b is not None], z)
        labels = [_bound_label(b, field.unit, field.decimals) for b in les]
        if len(set(labels)) < len(labels):  # formatting merged two bounds
            labels = ["+Inf" if math.isinf(b) else repr(b) for b in les]
        what = "count"
    else:
        labels = [s.name for s in series]
        if len(set(labels)) < len(labels):
            labels = [f"{name} ({i + 1})" for i, name in enumerate(labels)]
        what = "value"
    shift = offset_ms(timezone, utc_offset_min)
    heat = trace(
        "heatmap",
        x=times * 1000.0 + shift,
        y=labels,
        z=z,
        colorscale=_COLORSCALE,
        zmin=0 if what == "count" else None,
        xgap=1,
        ygap=1,
        hoverongaps=False,
        hovertemplate=f"%{{x}}<br>%{{y}}<br>{what}: %{{z:.4~g}}<extra></extra>",
        colorbar={
            "thickness": 10,
            "outlinewidth": 0,
            "tickfont": {"color": FONT_COLOR, "size": 10},
        },
    )
    layout = base_layout(
        xaxis=time_axis(time_range, shift),
        yaxis={
            "type": "category",
            "fixedrange": True,
            "showgrid": False,
            "automargin": True,
            "tickfont": {"color": FONT_COLOR, "size": 11},
        },
        hovermode="closest",
    )
    return make_figure([heat], layout)
