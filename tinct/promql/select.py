"""Reading series for selectors: one store round trip per selector.

A selector is evaluated for all of a query's steps at once: the engine asks
the store for the matching series over the whole span the steps need
(earliest step − range or lookback − offset … latest step − offset) and
then picks, per step, the samples of that step's window. Windows are
left-open, ``(t − range, t]`` and ``(t − lookback, t]`` (Prometheus 3,
docs "Querying basics", "Range Vector Selectors", "Staleness").
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tinct.metrics import STALE_NAN_BITS, Labels, Matcher
from tinct.promql.values import Vector, Window
from tinct.storage.base import MetricReader

__all__ = ["RawSeries", "fetch", "instant_vector", "range_window"]

_STALE_U64 = np.uint64(STALE_NAN_BITS)
assert struct.calcsize("<Q") == 8


@dataclass
class RawSeries:
    """One series' samples as stored, staleness markers included."""

    labels: Labels
    times: np.ndarray  # int64 ms, ascending
    values: np.ndarray  # float64
    stale: np.ndarray  # bool


def fetch(
    store: MetricReader,
    matchers: Sequence[Matcher],
    or_matchers: Sequence[Sequence[Matcher]],
    start_ms: int,
    end_ms: int,
    windows: tuple[int, int, int] | None = None,
) -> list[RawSeries]:
    """The series matching the selector with their samples in ``[start_ms, end_ms]``;
    with ``windows`` (first window end, step, width) only those the steps' windows
    hold, filtered by the store (a 7-day query with a 10-minute step over 5-minute
    windows then reads half the samples, not all)."""
    groups = [list(matchers) + list(g) for g in or_matchers] if or_matchers else [list(matchers)]
    found: dict[int, Labels] = {}
    for group in groups:
        for s in store.series(group, start_ms, end_ms):
            found.setdefault(s.fingerprint, tuple(sorted(s.labels.items())))
    if not found:
        return []
    table = store.samples(list(found), start_ms, end_ms, windows)
    fps = table.column("fingerprint").to_numpy()
    times = table.column("timestamp_ms").to_numpy().astype(np.int64)
    values = table.column("value").to_numpy().astype(np.float64)
    order = np.lexsort((times, fps))
    fps, times, values = fps[order], times[order], values[order]
    stale = values.view(np.uint64) == _STALE_U64
    out: list[RawSeries] = []
    if len(fps):
        cuts = np.flatnonzero(np.diff(fps)) + 1
        starts = np.concatenate(([0], cuts))
        ends = np.concatenate((cuts, [len(fps)]))
        for a, b in zip(starts, ends, strict=True):
            fp = int(fps[a])
            if fp in found:
                out.append(RawSeries(found[fp], times[a:b], values[a:b], stale[a:b]))
    out.sort(key=lambda s: s.labels)
    return out


def instant_vector(
    series: list[RawSeries], refs: np.ndarray, lookback_ms: int
) -> tuple[Vector, np.ndarray]:
    """The latest sample in ``(t − lookback, t]`` for each ``t`` in ``refs``,
    and the chosen samples' timestamps (series × steps, int64 ms).

    A staleness marker as the latest sample means the series is absent.
    """
    n = len(refs)
    labels: list[Labels] = []
    rows_v: list[np.ndarray] = []
    rows_p: list[np.ndarray] = []
    rows_t: list[np.ndarray] = []
    for s in series:
        idx = np.searchsorted(s.times, refs, side="right") - 1
        ok = idx >= 0
        safe = np.where(ok, idx, 0)
        if len(s.times):
            ok &= s.times[safe] > refs - lookback_ms
            ok &= ~s.stale[safe]
            vals = s.values[safe]
            ts = s.times[safe]
        else:
            ts = np.zeros(n, dtype=np.int64)
            ok[:] = False
            vals = np.zeros(n)
        if not ok.any():
            continue
        labels.append(s.labels)
        rows_v.append(np.where(ok, vals, 0.0))
        rows_p.append(ok)
        rows_t.append(ts)
    if not labels:
        return Vector.empty(n), np.zeros((0, n), dtype=np.int64)
    return Vector(labels, np.vstack(rows_v), np.vstack(rows_p)), np.vstack(rows_t)


def range_window(series: list[RawSeries], ends: np.ndarray, range_ms: int) -> Window:
    """The samples of each series in ``(t − range, t]`` for each ``t`` in ``ends``
    (staleness markers dropped)."""
    labels: list[Labels] = []
    times: list[np.ndarray] = []
    values: list[np.ndarray] = []
    los: list[np.ndarray] = []
    his: list[np.ndarray] = []
    for s in series:
        keep = ~s.stale
        t, v = s.times[keep], s.values[keep]
        lo = np.searchsorted(t, ends - range_ms, side="right")
        hi = np.searchsorted(t, ends, side="right")
        if not (hi > lo).any():
            continue
        labels.append(s.labels)
        times.append(t)
        values.append(v)
        los.append(lo)
        his.append(hi)
    n = len(ends)
    lo_a = np.vstack(los) if los else np.zeros((0, n), dtype=np.int64)
    hi_a = np.vstack(his) if his else np.zeros((0, n), dtype=np.int64)
    return Window(labels, times, values, lo_a, hi_a, ends.astype(np.int64), range_ms)
