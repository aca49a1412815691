"""Quantiles: ``histogram_quantile`` and ``histogram_fraction`` on classic
(``le``-labelled) buckets, and the float quantile ``quantile_over_time`` uses.

Follows Prometheus's ``promql/quantile.go``: ``BucketQuantile`` sorts the
buckets, merges equal bounds, ignores relative differences below 1e-12
between neighbours and forces the counts monotonic, then interpolates
linearly in the bucket holding the rank (from 0 in the first bucket when its
bound is positive; the second-highest bound when the rank is in +Inf). NaN
when there is no +Inf bucket, fewer than two buckets or no observations;
-Inf/+Inf for q < 0 / q > 1. tinct stores no native histograms, so the
functions that only read them (``histogram_count`` …) return nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING

import numpy as np

from tinct.metrics import Labels
from tinct.promql.result import ExecutionError
from tinct.promql.values import EvalContext, Scalar, String, Value, Vector, drop_name

if TYPE_CHECKING:
    from tinct.promql.functions import CallInfo

__all__ = [
    "HISTOGRAM_FUNCTIONS",
    "NATIVE_ONLY_FUNCTIONS",
    "bucket_quantile",
    "bucket_fraction",
    "float_quantile",
    "quantile_warning",
    "go_float",
    "openmetrics_float",
]

_SMALL_DELTA = 1e-12  # quantile.go's smallDeltaTolerance
_MIN_NORMAL = 2.2250738585072014e-308
_BUCKET_LABEL = "le"


def go_float(x: float) -> str:
    """``strconv.FormatFloat(x, 'g', -1, 64)`` (Go's ``%g`` in annotations)."""
    x = float(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    if x == 0:
        return "-0" if math.copysign(1, x) < 0 else "0"
    sign, digits, exp = Decimal(repr(x)).normalize().as_tuple()
    assert isinstance(exp, int)
    text = "".join(map(str, digits))
    point = len(text) + exp - 1  # decimal exponent of the first digit
    prefix = "-" if sign else ""
    if point < -4 or point >= 21:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{prefix}{mantissa}e{'-' if point < 0 else '+'}{abs(point):02d}"
    if point < 0:
        return f"{prefix}0.{'0' * (-point - 1)}{text}"
    if point + 1 >= len(text):
        return prefix + text + "0" * (point + 1 - len(text))
    return f"{prefix}{text[: point + 1]}.{text[point + 1 :]}"


def openmetrics_float(x: float) -> str:
    """Prometheus's ``labels.FormatOpenMetricsFloat``: ``1`` is ``1.0``."""
    text = go_float(x)
    if text in ("NaN", "+Inf", "-Inf") or "e" in text or "." in text:
        return text
    return text + ".0"


def quantile_warning(ctx: EvalContext, q: np.ndarray) -> None:
    """Prometheus's invalid-quantile warning, once per distinct bad value."""
    for bad in q[np.isnan(q) | (q < 0) | (q > 1)]:
        text = f"PromQL warning: quantile value should be between 0 and 1, got {go_float(bad)}"
        if text not in ctx.warnings:
            ctx.warnings.append(text)


def float_quantile(q: float, values: np.ndarray) -> float:
    """quantile.go's ``quantile``: NaNs sort first, linear between neighbours."""
    if len(values) == 0 or math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    nan = np.isnan(values)
    ordered = np.concatenate([values[nan], np.sort(values[~nan])])
    n = float(len(ordered))
    rank = q * (n - 1)
    lower = max(0.0, math.floor(rank))
    upper = min(n - 1, lower + 1)
    weight = rank - math.floor(rank)
    return float(ordered[int(lower)] * (1 - weight) + ordered[int(upper)] * weight)


def _almost_equal(a: float, b: float, epsilon: float) -> bool:
    """Prometheus's ``util/almost.Equal``."""
    if math.isnan(a) and math.isnan(b):
        return True
    if a == b:
        return True
    abs_sum = abs(a) + abs(b)
    diff = abs(a - b)
    if a == 0 or b == 0 or abs_sum < _MIN_NORMAL:
        return diff < epsilon * _MIN_NORMAL
    return diff / min(abs_sum, 1.7976931348623157e308) < epsilon


def _prepare(buckets: list[tuple[float, float]]) -> tuple[list[float], list[float]] | None:
    """Sorted, coalesced (upper bound, count) lists; None without a +Inf bucket."""
    buckets = sorted(buckets, key=lambda b: b[0])
    if not buckets or buckets[-1][0] != math.inf:
        return None
    les: list[float] = []
    counts: list[float] = []
    for le, count in buckets:
        if les and le == les[-1]:
            counts[-1] += count
        else:
            les.append(le)
            counts.append(count)
    return les, counts


def _search(n: int, pred: Callable[[int], bool]) -> int:
    """Go's ``sort.Search``."""
    i, j = 0, n
    while i < j:
        h = (i + j) // 2
        if not pred(h):
            i = h + 1
        else:
            j = h
    return i


def bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> tuple[float, bool]:
    """quantile.go's ``BucketQuantile``: (quantile, monotonicity was forced)."""
    if math.isnan(q):
        return math.nan, False
    if q < 0:
        return -math.inf, False
    if q > 1:
        return math.inf, False
    prepared = _prepare(buckets)
    if prepared is None:
        return math.nan, False
    les, counts = prepared
    forced = False
    prev = counts[0]
    for i in range(1, len(counts)):
        curr = counts[i]
        if curr == prev:
            continue
        if _almost_equal(prev, curr, _SMALL_DELTA):
            counts[i] = prev
            continue
        if curr < prev:
            counts[i] = prev
            forced = True
            continue
        prev = curr
    if len(les) < 2:
        return math.nan, False
    observations = counts[-1]
    if observations == 0:
        return math.nan, False
    rank = q * observations
    b = _search(len(les) - 1, lambda i: counts[i] >= rank)
    if b == len(les) - 1:
        return les[-2], forced
    if b == 0 and les[0] <= 0:
        return les[0], forced
    start, end, count = 0.0, les[b], counts[b]
    if b > 0:
        start = les[b - 1]
        count -= counts[b - 1]
        rank -= counts[b - 1]
    return start + (end - start) * (rank / count), forced


def bucket_fraction(lower: float, upper: float, buckets: list[tuple[float, float]]) -> float:
    """The share of observations in ``(lower, upper]``, interpolating linearly
    inside buckets as ``HistogramFraction`` does for custom-bucket histograms."""
    prepared = _prepare(buckets)
    if prepared is None:
        return math.nan
    les, counts = prepared
    total = counts[-1]
    if total == 0 or math.isnan(lower) or math.isnan(upper):
        return math.nan
    if lower >= upper:
        return 0.0
    rank = 0.0
    lower_rank = upper_rank = 0.0
    lower_set = upper_set = False
    for i, b_upper in enumerate(les):
        b_lower = les[i - 1] if i else -math.inf
        b_count = counts[i] - (counts[i - 1] if i else 0.0)
        if b_lower <= 0 <= b_upper:
            b_lower = 0.0  # only positive buckets: 0 is the natural lower bound
        if not lower_set and b_lower >= lower:
            lower_rank, lower_set = rank, True
        if not upper_set and b_lower >= upper:
            upper_rank, upper_set = rank, True
        if lower_set and upper_set:
            break
        # No interpolation inside a bucket of infinite width: a bound in the
        # first (-Inf, le] bucket counts none of it, one in (le, +Inf] none.
        if not lower_set and b_lower < lower < b_upper:
            if math.isinf(b_lower):
                lower_rank = rank + b_count
            elif math.isinf(b_upper):
                lower_rank = rank
            else:
                lower_rank = rank + b_count * (lower - b_lower) / (b_upper - b_lower)
            lower_set = True
        if not upper_set and b_lower < upper < b_upper:
            if math.isinf(b_lower):
                upper_rank = rank + b_count
            elif math.isinf(b_upper):
                upper_rank = rank
            else:
                upper_rank = rank + b_count * (upper - b_lower) / (b_upper - b_lower)
            upper_set = True
        if lower_set and upper_set:
            break
        rank += b_count
    if not lower_set or lower_rank > total:
        lower_rank = total
    if not upper_set or upper_rank > total:
        upper_rank = total
    return (upper_rank - lower_rank) / total


def _parse_le(text: str) -> float | None:
    """Go's ``strconv.ParseFloat`` on an ``le`` value; None when malformed."""
    if not text or text != text.strip() or "_" in text:
        return None
    try:
        if text.lower().lstrip("+-").startswith("0x"):
            return float.fromhex(text)
        return float(text)
    except ValueError:
        return None


def _bucket_groups(ctx: EvalContext, vec: Vector) -> dict[Labels, list[tuple[float, int]]]:
    """Bucket rows grouped by their labels without ``le``: (bound, row)."""
    groups: dict[Labels, list[tuple[float, int]]] = {}
    for row, labels in enumerate(vec.labels):
        have = dict(labels)
        le = _parse_le(have.get(_BUCKET_LABEL, ""))
        if le is None:
            if vec.present[row].any():
                ctx.warnings.append(
                    f'PromQL warning: bucket label "{_BUCKET_LABEL}" is missing or has a '
                    f'malformed value of "{have.get(_BUCKET_LABEL, "")}"'
                )
            continue
        key = tuple(p for p in labels if p[0] != _BUCKET_LABEL)
        groups.setdefault(key, []).append((le, row))
    return groups


def _per_group(
    ctx: EvalContext,
    vec: Vector,
    fn: Callable[[int, list[tuple[float, float]]], float],
) -> Vector:
    labels: list[Labels] = []
    values: list[np.ndarray] = []
    present: list[np.ndarray] = []
    for key, members in _bucket_groups(ctx, vec).items():
        out = np.full(ctx.n, np.nan)
        rows = [row for _, row in members]
        has = np.asarray(vec.present[rows].any(axis=0), dtype=bool)
        for step in np.flatnonzero(has):
            buckets = [
                (le, float(vec.values[row, step])) for le, row in members if vec.present[row, step]
            ]
            out[step] = fn(int(step), buckets)
        labels.append(drop_name(key))
        values.append(out)
        present.append(has)
    if not labels:
        return Vector.empty(ctx.n)
    return Vector(labels, np.array(values), np.array(present, dtype=bool))


def _scalar(value: Value) -> np.ndarray:
    if isinstance(value, Scalar):
        return np.asarray(value.values, dtype=np.float64)
    raise TypeError(f"expected a scalar argument, got {type(value).__name__}")


def _vector(value: Value) -> Vector:
    if isinstance(value, Vector):
        return value
    raise TypeError(f"expected an instant vector argument, got {type(value).__name__}")


_MONOTONICITY_INFO = (
    "PromQL info: input to histogram_quantile needed to be fixed for monotonicity "
    "(see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) "
    'for metric name ""'
)


def _quantile_of(
    ctx: EvalContext, q: np.ndarray
) -> Callable[[int, list[tuple[float, float]]], float]:
    def fn(step: int, buckets: list[tuple[float, float]]) -> float:
        value, forced = bucket_quantile(float(q[step]), buckets)
        if forced and _MONOTONICITY_INFO not in ctx.infos:
            ctx.infos.append(_MONOTONICITY_INFO)
        return value

    return fn


def histogram_quantile(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    q = _scalar(args[0])
    quantile_warning(ctx, q)
    return _per_group(ctx, _vector(args[1]), _quantile_of(ctx, q))


def histogram_quantiles(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    """``histogram_quantiles(v, "label", q0, q1, ...)``: one series per quantile."""
    vec = _vector(args[0])
    label = args[1].value if isinstance(args[1], String) else ""
    parts: list[Vector] = []
    for arg in args[2:]:
        q = _scalar(arg)
        quantile_warning(ctx, q)
        out = _per_group(ctx, vec, _quantile_of(ctx, q))
        # A quantile varying per step keeps the first step's value as label.
        text = openmetrics_float(float(q[0])) if len(q) else ""
        out.labels = [
            tuple(sorted((*(p for p in lb if p[0] != label), (label, text)))) for lb in out.labels
        ]
        parts.append(out)
    if not parts or not any(len(p) for p in parts):
        return Vector.empty(ctx.n)
    labels = [lb for p in parts for lb in p.labels]
    present = np.concatenate([p.present for p in parts])
    rows: dict[tuple[tuple[str, str], ...], int] = {}
    for i, lb in enumerate(labels):
        j = rows.setdefault(lb, i)
        # The quantile label replaced one the histograms told apart by.
        if j != i and bool(np.any(present[i] & present[j])):
            raise ExecutionError("vector cannot contain metrics with the same labelset")
    return Vector(labels, np.concatenate([p.values for p in parts]), present)


def histogram_fraction(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    lower, upper = _scalar(args[0]), _scalar(args[1])
    return _per_group(
        ctx,
        _vector(args[2]),
        lambda step, buckets: bucket_fraction(float(lower[step]), float(upper[step]), buckets),
    )


def _native_only(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    # These read native histograms only; tinct stores none, so floats give nothing.
    return Vector.empty(ctx.n)


NATIVE_ONLY_FUNCTIONS = (
    "histogram_count",
    "histogram_sum",
    "histogram_avg",
    "histogram_stddev",
    "histogram_stdvar",
)

HISTOGRAM_FUNCTIONS: dict[str, Callable[..., Value]] = {
    "histogram_quantile": histogram_quantile,
    "histogram_quantiles": histogram_quantiles,
    "histogram_fraction": histogram_fraction,
    **{name: _native_only for name in NATIVE_ONLY_FUNCTIONS},
}
