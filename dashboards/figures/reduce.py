"""Grafana's reducers ("Calculation"): a series down to the one value a stat shows.

Follows grafana/packages/grafana-data/src/transformations/fieldReducer.ts
(``doStandardCalcs``, ``calculateLastNotNull`` …): ``lastNotNull`` (alias
``current``), ``last``, ``first``, ``firstNotNull``, ``mean`` (``avg``),
``max``, ``min``, ``sum`` (``total``), ``count``, ``range``, ``diff``,
``delta`` (counter-reset aware), ``logmin``.

tinct's series mark "no sample here" with NaN (``SeriesData.values``), where
Grafana has null, so NaN counts as null: skipped by the not-null reducers,
``last`` of a series ending in NaN is None, and ``count`` counts samples.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["REDUCERS", "reduce_value"]

REDUCERS = (
    "lastNotNull",
    "last",
    "first",
    "firstNotNull",
    "mean",
    "max",
    "min",
    "sum",
    "count",
    "range",
    "diff",
    "delta",
    "logmin",
)
_ALIASES = {"current": "lastNotNull", "avg": "mean", "total": "sum"}


def _delta(v: np.ndarray) -> float:
    """``doStandardCalcs``' delta: increases summed, a drop counts as a reset."""
    steps = np.diff(v)
    resets = steps < 0
    # The rise after a reset counts from 0 (the new value itself); a drop adds
    # nothing, except on the very last sample, where Grafana adds that sample.
    after = np.concatenate(([True], ~resets[:-1])) if len(steps) else np.array([], bool)
    up = np.where(after, steps, v[1:])
    total = float(up[~resets].sum())
    if len(steps) and resets[-1]:
        total += float(v[-1])
    return total


def reduce_value(values: Sequence[float], reducer: str = "lastNotNull") -> float | None:
    """One of Grafana's reducers over a series' values.

    Args:
        values: the samples, NaN where there is none.
        reducer: Grafana's reducer id (``lastNotNull``, ``mean``, ``max``…;
            ``current``/``avg``/``total`` aliases accepted).

    Returns:
        The value, or None where Grafana gives null (no samples, ``last`` on
        a gap); ``sum`` and ``count`` of nothing are 0.

    Raises:
        ValueError: an unknown reducer, naming the ones supported.
    """
    reducer = _ALIASES.get(reducer, reducer)
    if reducer not in REDUCERS:
        raise ValueError(f"reduce: unknown reducer {reducer!r}; supported: {', '.join(REDUCERS)}")
    arr = np.asarray(values, dtype=float)
    if reducer in ("last", "first"):
        if not len(arr):
            return None
        v = float(arr[-1] if reducer == "last" else arr[0])
        return None if np.isnan(v) else v
    present = arr[~np.isnan(arr)]
    if reducer == "count":
        return float(len(present))
    if reducer == "sum":
        return float(present.sum())
    if not len(present):
        return None
    if reducer == "lastNotNull":
        return float(present[-1])
    if reducer == "firstNotNull":
        return float(present[0])
    if reducer == "mean":
        return float(present.mean())
    if reducer == "max":
        return float(present.max())
    if reducer == "min":
        return float(present.min())
    if reducer == "range":
        return float(present.max() - present.min())
    if reducer == "diff":
        return float(present[-1] - present[0])
    if reducer == "logmin":
        positive = present[present > 0]
        return float(positive.min()) if len(positive) else None
    return _delta(present)
