"""PromQL's ``*_over_time`` functions, on every (series, step) window at once.

See :mod:`tinct.promql.functions_range` for how windows are walked; sums
use Prometheus's Kahan–Neumaier compensation in Prometheus's order, and
``avg_over_time`` switches to an incremental mean where the sum would
overflow, as ``promql/functions.go`` does. Only ``first_over_time`` and
``last_over_time`` keep ``__name__``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from tinct.promql.functions_histogram import float_quantile, quantile_warning
from tinct.promql.functions_math import scalar_arg
from tinct.promql.functions_range import (
    FlatWindow,
    WindowCells,
    kahan_inc,
    window_arg,
    window_result,
)
from tinct.promql.values import EvalContext, Value, Vector, Window

if TYPE_CHECKING:
    from tinct.promql.functions import CallInfo

__all__ = ["OVER_TIME_FUNCTIONS"]


def sum_over_time(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    w = window_arg(args[0])
    f = FlatWindow(w)
    cells = WindowCells(f)
    s, c = np.zeros(cells.cnt.size), np.zeros(cells.cnt.size)
    for _, m, idx in cells.walk():
        s[:m], c[:m] = kahan_inc(f.values[idx], s[:m], c[:m])
    with np.errstate(all="ignore"):
        total = np.where(np.isinf(s), s, s + c)
    return window_result(w, cells.unsort(total), f.count >= 1)


def avg_over_time(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    """A Kahan-compensated sum divided by the count, switching to an
    incremental mean where the sum would overflow (as Prometheus does)."""
    w = window_arg(args[0])
    f = FlatWindow(w)
    cells = WindowCells(f)
    size = cells.cnt.size
    s = f.values[cells.lo].copy()
    c, mean = np.zeros(size), np.zeros(size)
    incremental = np.zeros(size, dtype=bool)
    with np.errstate(all="ignore"):
        for k, m, idx in cells.walk(1):
            count = float(k + 1)
            x = f.values[idx]
            inc = incremental[:m]
            new_s, new_c = kahan_inc(x, s[:m], c[:m])
            overflow = ~inc & np.isinf(new_s)
            direct = ~inc & ~overflow
            s[:m] = np.where(direct, new_s, s[:m])
            cm = np.where(direct, new_c, c[:m])
            mean[:m] = np.where(overflow, s[:m] / (count - 1), mean[:m])
            cm = np.where(overflow, cm / (count - 1), cm)
            inc = inc | overflow
            q = (count - 1) / count
            new_mean, new_cm = kahan_inc(x / count, q * mean[:m], q * cm)
            mean[:m] = np.where(inc, new_mean, mean[:m])
            c[:m] = np.where(inc, new_cm, cm)
            incremental[:m] = inc
        n = cells.cnt.astype(np.float64)
        avg = np.where(incremental, mean + c, s / n + c / n)
    return window_result(w, cells.unsort(avg), f.count >= 1)


def _variance(w: Window) -> tuple[np.ndarray, np.ndarray]:
    f = FlatWindow(w)
    cells = WindowCells(f)
    size = cells.cnt.size
    mean, c_mean, aux, c_aux = (np.zeros(size) for _ in range(4))
    with np.errstate(all="ignore"):
        for k, m, idx in cells.walk():
            count = float(k + 1)
            x = f.values[idx]
            d = x - (mean[:m] + c_mean[:m])
            mean[:m], c_mean[:m] = kahan_inc(d / count, mean[:m], c_mean[:m])
            aux[:m], c_aux[:m] = kahan_inc(d * (x - (mean[:m] + c_mean[:m])), aux[:m], c_aux[:m])
        variance = (aux + c_aux) / cells.cnt
    return cells.unsort(variance), f.count >= 1


def stdvar_over_time(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    w = window_arg(args[0])
    variance, ok = _variance(w)
    return window_result(w, variance, ok)


def stddev_over_time(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    w = window_arg(args[0])
    variance, ok = _variance(w)
    with np.errstate(all="ignore"):
        return window_result(w, np.sqrt(variance), ok)


def _compare_over_time(
    w: Window, better: Callable[[np.ndarray, np.ndarray], np.ndarray], want_time: bool
) -> Vector:
    """Prometheus's ``compareOverTime``: a NaN so far is replaced by any value."""
    f = FlatWindow(w)
    cells = WindowCells(f)
    best = f.values[cells.lo].copy()
    best_t = f.times[cells.lo].copy()
    with np.errstate(invalid="ignore"):
        for _, m, idx in cells.walk(1):
            x = f.values[idx]
            take = better(x, best[:m]) | np.isnan(best[:m])
            best[:m] = np.where(take, x, best[:m])
            best_t[:m] = np.where(take, f.times[idx], best_t[:m])
    out = best_t.astype(np.float64) / 1000.0 if want_time else best
    return window_result(w, cells.unsort(out), f.count >= 1)


def max_over_time(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    return _compare_over_time(window_arg(args[0]), np.greater, want_time=False)


def min_over_time(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    return _compare_over_time(window_arg(args[0]), np.less, want_time=False)


def ts_of_max_over_time(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    return _compare_over_time(window_arg(args[0]), np.greater_equal, want_time=True)


def ts_of_min_over_time(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    return _compare_over_time(window_arg(args[0]), np.less_equal, want_time=True)


def count_over_time(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    w = window_arg(args[0])
    f = FlatWindow(w)
    return window_result(w, f.count.astype(np.float64), f.count >= 1)


def present_over_time(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    w = window_arg(args[0])
    f = FlatWindow(w)
    return window_result(w, np.ones(f.count.shape), f.count >= 1)


def last_over_time(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    w = window_arg(args[0])
    f = FlatWindow(w)
    return window_result(w, f.values[f.last], f.count >= 1, keep_name=True)


def first_over_time(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    w = window_arg(args[0])
    f = FlatWindow(w)
    return window_result(w, f.values[f.lo], f.count >= 1, keep_name=True)


def ts_of_last_over_time(
    ctx: EvalContext, args: list[Value], call: CallInfo | None = None
) -> Value:
    w = window_arg(args[0])
    f = FlatWindow(w)
    return window_result(w, f.times[f.last] / 1000.0, f.count >= 1)


def ts_of_first_over_time(
    ctx: EvalContext, args: list[Value], call: CallInfo | None = None
) -> Value:
    w = window_arg(args[0])
    f = FlatWindow(w)
    return window_result(w, f.times[f.lo] / 1000.0, f.count >= 1)


def _perwindow_arg(w: Window, fn: Callable[[int, np.ndarray], float]) -> Vector:
    """``fn(step, window values)`` for every non-empty window, one at a time."""
    f = FlatWindow(w)
    out = np.full(f.count.shape, np.nan)
    for s, i in zip(*np.nonzero(f.count >= 1), strict=True):
        out[s, i] = fn(int(i), f.values[f.lo[s, i] : f.hi[s, i]])
    return window_result(w, out, f.count >= 1)


def quantile_over_time(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    q = scalar_arg(args[0], ctx.n)
    w = window_arg(args[1])
    quantile_warning(ctx, q)
    return _perwindow_arg(w, lambda i, vals: float_quantile(float(q[i]), vals))


def mad_over_time(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    def mad(_: int, vals: np.ndarray) -> float:
        median = float_quantile(0.5, vals)
        return float_quantile(0.5, np.abs(vals - median))

    return _perwindow_arg(window_arg(args[0]), mad)


OVER_TIME_FUNCTIONS: dict[str, Callable[..., Value]] = {
    "sum_over_time": sum_over_time,
    "avg_over_time": avg_over_time,
    "min_over_time": min_over_time,
    "max_over_time": max_over_time,
    "count_over_time": count_over_time,
    "stddev_over_time": stddev_over_time,
    "stdvar_over_time": stdvar_over_time,
    "quantile_over_time": quantile_over_time,
    "mad_over_time": mad_over_time,
    "last_over_time": last_over_time,
    "first_over_time": first_over_time,
    "present_over_time": present_over_time,
    "ts_of_max_over_time": ts_of_max_over_time,
    "ts_of_min_over_time": ts_of_min_over_time,
    "ts_of_last_over_time": ts_of_last_over_time,
    "ts_of_first_over_time": ts_of_first_over_time,
}
