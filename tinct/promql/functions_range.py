"""PromQL's range-vector functions: ``rate`` and friends, the ``*_over_time`` family.

Each takes a :class:`~tinct.promql.values.Window` and computes every
(series, step) window at once. The series' samples are concatenated into
one array, so a window is an index range ``[lo, hi)`` in it:

* quantities that only look at a window's ends (``rate``, ``irate``,
  ``last_over_time``, ``count_over_time``) are plain numpy indexing;
* counts of events (``resets``, ``changes``, counter resets for ``rate``)
  use cumulative sums over the events;
* sums and recurrences (``sum_over_time``, ``avg_over_time``, ``deriv``,
  ``double_exponential_smoothing``) walk the k-th sample of every window
  together (:class:`WindowCells`), in the order Prometheus adds them, with the
  same Kahan–Neumaier compensation (``util/kahansum``), so results match
  Prometheus to the last bit rather than to a tolerance.

Semantics follow ``promql/functions.go`` (Prometheus 3.x): a window is
``(end - range, end]``; ``rate``/``increase``/``delta`` extrapolate as
``extrapolatedRate`` does; results drop ``__name__`` except
``first_over_time`` and ``last_over_time``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np

from tinct.promql.functions_math import scalar_arg
from tinct.promql.result import ExecutionError
from tinct.promql.values import NAME_LABEL, EvalContext, Value, Vector, Window, drop_name

if TYPE_CHECKING:
    from tinct.promql.functions import CallInfo

__all__ = [
    "RANGE_FUNCTIONS",
    "FlatWindow",
    "WindowCells",
    "kahan_inc",
    "window_arg",
    "window_result",
]

_COUNTER_SUFFIXES = ("_total", "_sum", "_count", "_bucket")


def kahan_inc(inc: np.ndarray, s: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Prometheus's ``kahansum.Inc`` (Neumaier's variant), element-wise."""
    with np.errstate(all="ignore"):
        t = s + inc
        c = np.where(
            np.isinf(t),
            0.0,
            np.where(np.abs(s) >= np.abs(inc), c + ((s - t) + inc), c + ((inc - t) + s)),
        )
    return t, c


class FlatWindow:
    """A window's samples concatenated, with global ``lo``/``hi`` per (series, step)."""

    def __init__(self, w: Window) -> None:
        sizes = np.array([len(t) for t in w.times], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)])[:-1].astype(np.int64)
        # One padding sample so that indexing an empty window's ``lo`` is safe.
        self.times = np.concatenate([*[np.asarray(t, np.int64) for t in w.times], [0]])
        self.values = np.concatenate([*[np.asarray(v, np.float64) for v in w.values], [0.0]])
        shape = (len(w.labels), len(w.ends))
        self.lo = (np.asarray(w.lo, np.int64) + offsets[:, None]).reshape(shape)
        self.hi = (np.asarray(w.hi, np.int64) + offsets[:, None]).reshape(shape)
        self.count = self.hi - self.lo
        self.last = np.maximum(self.hi - 1, self.lo)


class WindowCells:
    """The (series, step) cells sorted by window size, longest first.

    ``walk(start)`` yields ``(k, m, idx)``: the first ``m`` cells (in this
    order) have a k-th sample, at global indices ``idx``; state arrays kept
    in this order are updated as ``state[:m]``.
    """

    def __init__(self, f: FlatWindow) -> None:
        cnt = f.count.ravel()
        self.shape = f.count.shape
        self.order = np.argsort(-cnt, kind="stable")
        self.cnt = cnt[self.order]
        self.lo = f.lo.ravel()[self.order]
        self._neg = -self.cnt
        self.max = int(self.cnt[0]) if cnt.size else 0

    def walk(self, start: int = 0) -> Iterator[tuple[int, int, np.ndarray]]:
        for k in range(start, self.max):
            m = int(np.searchsorted(self._neg, -k, side="left"))
            yield k, m, self.lo[:m] + k

    def pick(self, grid: np.ndarray) -> np.ndarray:
        """A (series, step) array in cell order."""
        return np.broadcast_to(grid, self.shape).ravel()[self.order]

    def unsort(self, a: np.ndarray) -> np.ndarray:
        out = np.empty(a.shape[0], dtype=a.dtype)
        out[self.order] = a
        return out.reshape(self.shape)


def window_arg(value: Value) -> Window:
    if isinstance(value, Window):
        return value
    raise TypeError(f"expected a range vector argument, got {type(value).__name__}")


def window_result(w: Window, values: np.ndarray, ok: np.ndarray, keep_name: bool = False) -> Vector:
    rows = np.flatnonzero(ok.any(axis=1)) if ok.size else np.zeros(0, dtype=np.int64)
    labels = [w.labels[i] if keep_name else drop_name(w.labels[i]) for i in rows]
    with np.errstate(all="ignore"):
        out = np.where(ok, values, np.nan)
    return Vector(labels, out[rows].reshape(len(rows), len(w.ends)), ok[rows].copy())


# --- rate, increase, delta -------------------------------------------------


def _add_counter_resets(f: FlatWindow, result: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """``result`` plus, for each reset in a window, the value before it, added
    in sample order as Prometheus does."""
    v = f.values
    dec = np.zeros(len(v), dtype=bool)
    with np.errstate(invalid="ignore"):
        dec[1:] = v[1:] < v[:-1]
    resets = np.flatnonzero(dec)
    if resets.size == 0:
        return result
    a = np.searchsorted(resets, f.lo, side="right")
    b = np.searchsorted(resets, f.last, side="right")
    out = result.copy()
    for cell in np.flatnonzero(((b > a) & ok).ravel()):
        acc = float(out.flat[cell])
        for j in resets[a.flat[cell] : b.flat[cell]]:
            acc += float(v[j - 1])
        out.flat[cell] = acc
    return out


def _non_counter_info(ctx: EvalContext, w: Window) -> None:
    seen: set[str] = set()
    for labels, hi, lo in zip(w.labels, w.hi, w.lo, strict=True):
        name = dict(labels).get(NAME_LABEL, "")
        if name and name not in seen and not name.endswith(_COUNTER_SUFFIXES) and (hi > lo).any():
            seen.add(name)
            ctx.infos.append(
                "PromQL info: metric might not be a counter, name does not end in "
                f'_total/_sum/_count/_bucket: "{name}"'
            )


def _extrapolated_rate(ctx: EvalContext, w: Window, is_counter: bool, is_rate: bool) -> Vector:
    """Prometheus's ``extrapolatedRate``."""
    f = FlatWindow(w)
    ok = f.count >= 2
    t0, t1 = f.times[f.lo], f.times[f.last]
    v0, v1 = f.values[f.lo], f.values[f.last]
    with np.errstate(all="ignore"):
        result = v1 - v0
        if is_counter:
            result = _add_counter_resets(f, result, ok)
        range_start = (np.asarray(w.ends, np.int64) - w.range_ms)[None, :]
        range_end = np.asarray(w.ends, np.int64)[None, :]
        to_start = (t0 - range_start) / 1000.0
        to_end = (range_end - t1) / 1000.0
        sampled = (t1 - t0) / 1000.0
        average = sampled / np.maximum(f.count - 1, 1)
        # Extrapolate to a boundary only when the first/last sample is
        # within 110% of the average interval of it; else by half an interval.
        threshold = average * 1.1
        to_start = np.where(to_start >= threshold, average / 2, to_start)
        if is_counter:
            # Never extrapolate a counter below zero.
            to_zero = np.where((result > 0) & (v0 >= 0), sampled * (v0 / result), to_start)
            to_start = np.where(to_zero < to_start, to_zero, to_start)
        to_end = np.where(to_end >= threshold, average / 2, to_end)
        factor = (sampled + to_start + to_end) / sampled
        if is_rate:
            factor = factor / (w.range_ms / 1000.0)
        result = result * factor
    return window_result(w, result, ok)


def rate(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    w = window_arg(args[0])
    _non_counter_info(ctx, w)
    return _extrapolated_rate(ctx, w, is_counter=True, is_rate=True)


def increase(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    w = window_arg(args[0])
    _non_counter_info(ctx, w)
    return _extrapolated_rate(ctx, w, is_counter=True, is_rate=False)


def delta(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    return _extrapolated_rate(ctx, window_arg(args[0]), is_counter=False, is_rate=False)


def _instant_value(w: Window, is_rate: bool) -> Vector:
    """Prometheus's ``instantValue``: the last two samples of each window."""
    f = FlatWindow(w)
    i1 = f.last
    i0 = np.maximum(f.hi - 2, f.lo)
    interval = f.times[i1] - f.times[i0]
    ok = (f.count >= 2) & (interval != 0)
    v0, v1 = f.values[i0], f.values[i1]
    with np.errstate(all="ignore"):
        if is_rate:
            # After a counter reset the last value is the increase.
            result = np.where(v1 < v0, v1, v1 - v0) / (interval / 1000.0)
        else:
            result = v1 - v0
    return window_result(w, result, ok)


def irate(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    return _instant_value(window_arg(args[0]), is_rate=True)


def idelta(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    return _instant_value(window_arg(args[0]), is_rate=False)


def _count_events(w: Window, event: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Vector:
    """How many consecutive sample pairs in each window are an ``event``."""
    f = FlatWindow(w)
    hits = np.zeros(len(f.values), dtype=np.int64)
    with np.errstate(invalid="ignore"):
        hits[1:] = event(f.values[:-1], f.values[1:])
    cum = np.cumsum(hits)
    counts = (cum[f.last] - cum[f.lo]).astype(np.float64)
    return window_result(w, counts, f.count >= 1)


def resets(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    return _count_events(window_arg(args[0]), lambda prev, cur: cur < prev)


def changes(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    return _count_events(
        window_arg(args[0]),
        lambda prev, cur: (cur != prev) & ~(np.isnan(cur) & np.isnan(prev)),
    )


# --- deriv, predict_linear, double_exponential_smoothing ----------------------


def _linear_regression(
    f: FlatWindow, cells: WindowCells, intercept_ms: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Prometheus's ``linearRegression``: (slope, intercept at ``intercept_ms``) per cell."""
    size = cells.cnt.size
    t_ref = cells.pick(intercept_ms)
    init_y = f.values[cells.lo]
    const_y = np.ones(size, dtype=bool)
    sx, cx, sy, cy = (np.zeros(size) for _ in range(4))
    sxy, cxy, sx2, cx2 = (np.zeros(size) for _ in range(4))
    for k, m, idx in cells.walk():
        y = f.values[idx]
        x = (f.times[idx] - t_ref[:m]).astype(np.float64) / 1e3
        if k > 0:
            const_y[:m] &= ~(y != init_y[:m])
        with np.errstate(all="ignore"):
            sx[:m], cx[:m] = kahan_inc(x, sx[:m], cx[:m])
            sy[:m], cy[:m] = kahan_inc(y, sy[:m], cy[:m])
            sxy[:m], cxy[:m] = kahan_inc(x * y, sxy[:m], cxy[:m])
            sx2[:m], cx2[:m] = kahan_inc(x * x, sx2[:m], cx2[:m])
    n = cells.cnt.astype(np.float64)
    with np.errstate(all="ignore"):
        sx, sy, sxy, sx2 = sx + cx, sy + cy, sxy + cxy, sx2 + cx2
        cov_xy = sxy - sx * sy / n
        var_x = sx2 - sx * sx / n
        slope = cov_xy / var_x
        intercept = sy / n - slope * sx / n
    inf_y = np.isinf(init_y)
    slope = np.where(const_y, np.where(inf_y, np.nan, 0.0), slope)
    intercept = np.where(const_y, np.where(inf_y, np.nan, init_y), intercept)
    return cells.unsort(slope), cells.unsort(intercept)


def deriv(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    w = window_arg(args[0])
    f = FlatWindow(w)
    # x relative to the first sample, for precision (prometheus#2674).
    slope, _ = _linear_regression(f, WindowCells(f), f.times[f.lo])
    return window_result(w, slope, f.count >= 2)


def predict_linear(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    w = window_arg(args[0])
    duration = scalar_arg(args[1], ctx.n)
    f = FlatWindow(w)
    # Prometheus anchors the intercept at the evaluation time (enh.Ts).
    slope, intercept = _linear_regression(
        f, WindowCells(f), np.asarray(ctx.steps, np.int64)[None, :]
    )
    with np.errstate(all="ignore"):
        result = slope * duration[None, :] + intercept
    return window_result(w, result, f.count >= 2)


def double_exponential_smoothing(
    ctx: EvalContext, args: list[Value], call: CallInfo | None = None
) -> Value:
    w = window_arg(args[0])
    sf_steps, tf_steps = scalar_arg(args[1], ctx.n), scalar_arg(args[2], ctx.n)
    f = FlatWindow(w)
    used = (f.count >= 1).any(axis=0)
    for name, label, factor in (("smoothing", "sf", sf_steps), ("trend", "tf", tf_steps)):
        bad = used & ~((factor > 0) & (factor < 1))
        if bad.any():
            got = float(factor[np.argmax(bad)])
            raise ExecutionError(f"invalid {name} factor. Expected: 0 < {label} < 1, got: {got:f}")
    cells = WindowCells(f)
    sf, tf = cells.pick(sf_steps[None, :]), cells.pick(tf_steps[None, :])
    first = f.values[cells.lo]
    s0 = np.zeros(cells.cnt.size)
    s1 = first.copy()
    b = f.values[np.minimum(cells.lo + 1, len(f.values) - 1)] - first
    with np.errstate(all="ignore"):
        for k, m, idx in cells.walk(1):
            x = sf[:m] * f.values[idx]
            if k > 1:  # calcTrendValue(i-1, ...) returns b unchanged for i-1 == 0
                b[:m] = tf[:m] * (s1[:m] - s0[:m]) + (1 - tf[:m]) * b[:m]
            y = (1 - sf[:m]) * (s1[:m] + b[:m])
            s0[:m], s1[:m] = s1[:m], x + y
    return window_result(w, cells.unsort(s1), f.count >= 2)


RANGE_FUNCTIONS: dict[str, Callable[..., Value]] = {
    "rate": rate,
    "increase": increase,
    "delta": delta,
    "irate": irate,
    "idelta": idelta,
    "resets": resets,
    "changes": changes,
    "deriv": deriv,
    "predict_linear": predict_linear,
    "double_exponential_smoothing": double_exponential_smoothing,
}
