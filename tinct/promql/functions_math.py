"""PromQL's per-sample functions: math, clamping, rounding, dates and time.

Each maps an instant vector's values column by column, so all steps are
computed in one numpy call. Semantics follow Prometheus's
``promql/functions.go``: results drop ``__name__``; ``clamp`` with
``min > max`` returns nothing; ``round`` rounds ties up
(``floor(v / to_nearest + 0.5) * to_nearest``, computed with the inverse as
Prometheus does); the date functions read a value as Unix seconds
truncated towards zero, in UTC, and default to ``vector(time())``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from tinct.promql.values import EvalContext, Scalar, Value, Vector, drop_name

if TYPE_CHECKING:
    from tinct.promql.functions import CallInfo

__all__ = [
    "MATH_FUNCTIONS",
    "DATE_FUNCTIONS",
    "clamp",
    "clamp_max",
    "clamp_min",
    "round_",
    "sgn",
    "timestamp",
    "time_",
    "pi",
    "vector",
    "scalar",
    "query_start",
    "query_end",
    "query_step",
    "query_range",
    "min_of",
    "max_of",
    "scalar_arg",
    "go_max",
    "go_min",
]

Ufunc = Callable[[np.ndarray], np.ndarray]

MATH_FUNCTIONS: dict[str, Ufunc] = {
    "abs": np.abs,
    "ceil": np.ceil,
    "floor": np.floor,
    "exp": np.exp,
    "sqrt": np.sqrt,
    "ln": np.log,
    "log2": np.log2,
    "log10": np.log10,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "asin": np.arcsin,
    "acos": np.arccos,
    "atan": np.arctan,
    "sinh": np.sinh,
    "cosh": np.cosh,
    "tanh": np.tanh,
    "asinh": np.arcsinh,
    "acosh": np.arccosh,
    "atanh": np.arctanh,
    "rad": lambda v: v * np.pi / 180,
    "deg": lambda v: v * 180 / np.pi,
}


def scalar_arg(value: Value, n: int) -> np.ndarray:
    """A scalar argument as one float per step."""
    if isinstance(value, Scalar):
        return np.asarray(value.values, dtype=np.float64)
    raise TypeError(f"expected a scalar argument, got {type(value).__name__}")


def _vector_arg(value: Value) -> Vector:
    if isinstance(value, Vector):
        return value
    raise TypeError(f"expected an instant vector argument, got {type(value).__name__}")


def map_vector(vec: Vector, fn: Ufunc) -> Vector:
    """``fn`` over every value, ``__name__`` dropped (Prometheus's ``simpleFloatFunc``)."""
    with np.errstate(all="ignore"):
        values = np.asarray(fn(vec.values), dtype=np.float64)
    return Vector([drop_name(lb) for lb in vec.labels], values, vec.present.copy())


def math_impl(fn: Ufunc) -> Callable[..., Value]:
    """The table entry for a one-argument math function."""

    def impl(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
        return map_vector(_vector_arg(args[0]), fn)

    return impl


def go_max(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Go's ``math.Max``: +Inf wins over NaN, otherwise NaN propagates."""
    with np.errstate(all="ignore"):
        out = np.maximum(a, b)
    return np.where(np.isposinf(a) | np.isposinf(b), np.inf, out)


def go_min(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Go's ``math.Min``: -Inf wins over NaN, otherwise NaN propagates."""
    with np.errstate(all="ignore"):
        out = np.minimum(a, b)
    return np.where(np.isneginf(a) | np.isneginf(b), -np.inf, out)


def _clamp(ctx: EvalContext, vec: Vector, lo: np.ndarray, hi: np.ndarray) -> Vector:
    # Prometheus returns an empty vector at steps where max < min.
    keep = ~(hi < lo)
    values = go_max(lo[None, :], go_min(hi[None, :], vec.values))
    return Vector([drop_name(lb) for lb in vec.labels], values, vec.present & keep[None, :])


def clamp(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    vec = _vector_arg(args[0])
    return _clamp(ctx, vec, scalar_arg(args[1], ctx.n), scalar_arg(args[2], ctx.n))


def clamp_min(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    vec = _vector_arg(args[0])
    return _clamp(ctx, vec, scalar_arg(args[1], ctx.n), np.full(ctx.n, np.inf))


def clamp_max(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    vec = _vector_arg(args[0])
    return _clamp(ctx, vec, np.full(ctx.n, -np.inf), scalar_arg(args[1], ctx.n))


def round_(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    vec = _vector_arg(args[0])
    to_nearest = scalar_arg(args[1], ctx.n) if len(args) > 1 else np.ones(ctx.n)
    with np.errstate(all="ignore"):
        inverse = 1.0 / to_nearest
    return map_vector(vec, lambda v: np.floor(v * inverse[None, :] + 0.5) / inverse[None, :])


def sgn(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    # Go keeps 0, -0 and NaN as they are.
    return map_vector(
        _vector_arg(args[0]), lambda v: np.where(v < 0, -1.0, np.where(v > 0, 1.0, v))
    )


def timestamp(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    """The sample's timestamp in seconds: ``call.timestamps`` when the engine
    passes them (the argument is a plain selector), else the step time."""
    vec = _vector_arg(args[0])
    times = call.timestamps if call is not None else None
    if times is None:
        times = np.broadcast_to(ctx.steps[None, :], vec.values.shape)
    values = np.asarray(times, dtype=np.float64) / 1000.0
    return Vector([drop_name(lb) for lb in vec.labels], values, vec.present.copy())


def time_(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    return Scalar(ctx.steps.astype(np.float64) / 1000.0)


def pi(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    return Scalar(np.full(ctx.n, np.pi))


def query_start(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    return Scalar(np.full(ctx.n, float(ctx.steps[0]) / 1000.0))


def query_end(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    return Scalar(np.full(ctx.n, float(ctx.steps[-1]) / 1000.0))


def query_range(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    return Scalar(np.full(ctx.n, float(ctx.steps[-1] - ctx.steps[0]) / 1000.0))


def query_step(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    step = float(ctx.steps[1] - ctx.steps[0]) / 1000.0 if ctx.n > 1 else 0.0
    return Scalar(np.full(ctx.n, step))


def min_of(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    return Scalar(go_min(scalar_arg(args[0], ctx.n), scalar_arg(args[1], ctx.n)))


def max_of(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    return Scalar(go_max(scalar_arg(args[0], ctx.n), scalar_arg(args[1], ctx.n)))


def vector(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    values = scalar_arg(args[0], ctx.n)
    return Vector([()], values[None, :].copy(), np.ones((1, ctx.n), dtype=bool))


def scalar(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    """The single sample's value, NaN when there are none or several."""
    vec = _vector_arg(args[0])
    count = vec.present.sum(axis=0)
    picked = np.where(vec.present, vec.values, 0.0).sum(axis=0) if len(vec) else np.zeros(ctx.n)
    return Scalar(np.where(count == 1, picked, np.nan))


# --- dates ---------------------------------------------------------------

_MIN_S = -(2**62) // 1000  # keep datetime64[s] arithmetic far from overflow
_MAX_S = 2**62 // 1000


def _date_parts(seconds: np.ndarray) -> dict[str, np.ndarray]:
    """Calendar fields (UTC) of whole Unix seconds, as floats."""
    s = seconds.astype("datetime64[s]")
    days = s.astype("datetime64[D]")
    months = s.astype("datetime64[M]")
    years = s.astype("datetime64[Y]")
    next_month = (months + 1).astype("datetime64[D]")
    day_secs = (s - days).astype(np.int64)
    return {
        "year": years.astype(np.int64) + 1970.0,
        "month": (months.astype(np.int64) % 12) + 1.0,
        "day_of_month": (days - months.astype("datetime64[D]")).astype(np.int64) + 1.0,
        "day_of_year": (days - years.astype("datetime64[D]")).astype(np.int64) + 1.0,
        # 1970-01-01 was a Thursday (Go's Weekday 4).
        "day_of_week": ((days.astype(np.int64) + 4) % 7).astype(np.float64),
        "hour": (day_secs // 3600).astype(np.float64),
        "minute": ((day_secs // 60) % 60).astype(np.float64),
        "days_in_month": (next_month - months.astype("datetime64[D]")).astype(np.float64),
    }


def _date_of(field: str, values: np.ndarray) -> np.ndarray:
    finite = np.isfinite(values)
    with np.errstate(all="ignore"):
        secs = np.where(finite, np.trunc(np.clip(values, _MIN_S, _MAX_S)), 0).astype(np.int64)
    out = _date_parts(secs.ravel())[field].reshape(values.shape)
    # Go's int64(NaN/Inf) is undefined; tinct answers NaN.
    return np.where(finite, out, np.nan)


def date_impl(field: str) -> Callable[..., Value]:
    """The table entry for ``year()``, ``hour()`` and the other date functions."""

    def impl(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
        if not args:
            secs = ctx.steps / 1000.0  # truncated like Go's enh.Ts / 1000
            return Vector([()], _date_of(field, secs)[None, :], np.ones((1, ctx.n), dtype=bool))
        vec = _vector_arg(args[0])
        return map_vector(vec, lambda v: _date_of(field, v))

    return impl


DATE_FUNCTIONS = (
    "year",
    "month",
    "day_of_month",
    "day_of_year",
    "day_of_week",
    "hour",
    "minute",
    "days_in_month",
)
