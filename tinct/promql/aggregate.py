"""Aggregation operators (docs "Operators" → "Aggregation operators").

Every aggregation groups rows by the ``by`` labels (or all labels but the
``without`` ones and ``__name__``) and combines, step by step, the rows
present at that step. Sums are compensated (Kahan–Neumaier, as
Prometheus's ``kahanSumInc``); ``min``/``max`` let any number replace NaN;
``quantile`` interpolates as Prometheus's ``quantile``; ``topk``/``bottomk``
keep the chosen input series whole.
"""

from __future__ import annotations

import numpy as np

from tinct.metrics import NAME_LABEL, Labels
from tinct.promql.result import BadQueryError, ExecutionError
from tinct.promql.values import Scalar, String, Value, Vector

__all__ = ["aggregate", "format_value"]

_LABEL_NAME_OK = __import__("re").compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")


def format_value(v: float) -> str:
    """A float as Go's ``strconv.FormatFloat(v, 'f', -1, 64)`` writes it."""
    if np.isnan(v):
        return "NaN"
    if np.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return np.format_float_positional(v, trim="-")


def _group_key(labels: Labels, grouping: list[str] | None, without: bool) -> Labels:
    if grouping is None:
        return ()
    if without:
        drop = set(grouping) | {NAME_LABEL}
        return tuple(p for p in labels if p[0] not in drop)
    keep = set(grouping)
    return tuple(p for p in labels if p[0] in keep)


def _groups(vec: Vector, grouping: list[str] | None, without: bool) -> dict[Labels, list[int]]:
    groups: dict[Labels, list[int]] = {}
    for i, lab in enumerate(vec.labels):
        groups.setdefault(_group_key(lab, grouping, without), []).append(i)
    return groups


def _kahan(v: np.ndarray, p: np.ndarray) -> np.ndarray:
    s = np.zeros(v.shape[1])
    c = np.zeros(v.shape[1])
    with np.errstate(all="ignore"):
        for x, m in zip(v, p, strict=True):
            x = np.where(m, x, 0.0)
            t = s + x
            comp = np.where(np.abs(s) >= np.abs(x), (s - t) + x, (x - t) + s)
            c = np.where(np.isinf(t), 0.0, c + comp)
            s = t
        return s + c


def _avg(v: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Prometheus's avg: a compensated sum, switching to an incremental mean
    where the sum would overflow."""
    n = v.shape[1]
    total = np.zeros(n)
    comp = np.zeros(n)
    mean = np.zeros(n)
    mcomp = np.zeros(n)
    incremental = np.zeros(n, dtype=bool)
    count = np.zeros(n)
    with np.errstate(all="ignore"):
        for x, m in zip(v, p, strict=True):
            count = count + m
            first = m & (count == 1)
            later = m & (count > 1)
            total = np.where(first, x, total)
            comp = np.where(first, 0.0, comp)
            ns, nc = _kahan_inc(x, total, comp)
            plain = later & ~incremental & ~np.isinf(ns)
            total = np.where(plain, ns, total)
            comp = np.where(plain, nc, comp)
            switch = later & ~incremental & np.isinf(ns)
            prev = np.maximum(count - 1, 1)
            mean = np.where(switch, total / prev, mean)
            mcomp = np.where(switch, comp / prev, mcomp)
            incremental = incremental | switch
            step = later & incremental
            q = (count - 1) / np.maximum(count, 1)
            nm, nmc = _kahan_inc(x / np.maximum(count, 1), q * mean, q * mcomp)
            mean = np.where(step, nm, mean)
            mcomp = np.where(step, nmc, mcomp)
        plain_result = total / np.maximum(count, 1) + comp / np.maximum(count, 1)
        inc_result = mean + mcomp
    return np.where(incremental, inc_result, plain_result)


def _kahan_inc(inc: np.ndarray, s: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = s + inc
    comp = np.where(np.abs(s) >= np.abs(inc), (s - t) + inc, (inc - t) + s)
    return t, np.where(np.isinf(t), 0.0, c + comp)


def _minmax(v: np.ndarray, p: np.ndarray, is_max: bool) -> np.ndarray:
    cur = np.full(v.shape[1], np.nan)
    for x, m in zip(v, p, strict=True):
        better = x > cur if is_max else x < cur
        cur = np.where(m & (better | np.isnan(cur)), x, cur)
    return cur


def _stdvar(v: np.ndarray, p: np.ndarray) -> np.ndarray:
    mean = np.zeros(v.shape[1])
    acc = np.zeros(v.shape[1])
    k = np.zeros(v.shape[1])
    with np.errstate(all="ignore"):
        for x, m in zip(v, p, strict=True):
            k = k + m
            delta = x - mean
            new_mean = mean + delta / np.maximum(k, 1)
            acc = np.where(m, acc + delta * (x - new_mean), acc)
            mean = np.where(m, new_mean, mean)
        return acc / k


def quantile(q: float, values: np.ndarray) -> float:
    """Prometheus's ``quantile`` (NaNs sort first, as Go's ``sort.Float64s``)."""
    if len(values) == 0 or np.isnan(q):
        return float("nan")
    if q < 0:
        return float("-inf")
    if q > 1:
        return float("inf")
    nan = np.isnan(values)
    ordered = np.concatenate((values[nan], np.sort(values[~nan])))
    n = len(ordered)
    rank = q * (n - 1)
    lower = max(0, int(np.floor(rank)))
    upper = min(n - 1, lower + 1)
    weight = rank - np.floor(rank)
    return float(ordered[lower] * (1 - weight) + ordered[upper] * weight)


def aggregate(
    op: str,
    vec: Vector,
    param: Value | None,
    grouping: list[str] | None,
    without: bool,
    steps: int,
) -> Vector:
    """Apply aggregation ``op`` to ``vec``; ``param`` for topk/bottomk/quantile/count_values."""
    if op in ("topk", "bottomk"):
        assert isinstance(param, Scalar)
        return _topk(vec, param.values, grouping, without, op == "topk", steps)
    if op in ("limitk", "limit_ratio"):
        assert isinstance(param, Scalar)
        if np.isnan(param.values).any():
            what = "Parameter" if op == "limitk" else "Ratio"
            raise ExecutionError(f"{what} value is NaN")
        raise BadQueryError(f"{op}() is experimental and not supported")
    if op == "count_values":
        assert isinstance(param, String)
        return _count_values(vec, param.value, grouping, without, steps)
    if not len(vec):
        return Vector.empty(steps)
    labels: list[Labels] = []
    values: list[np.ndarray] = []
    present: list[np.ndarray] = []
    for key, rows in _groups(vec, grouping, without).items():
        v, p = vec.values[rows], vec.present[rows]
        any_p: np.ndarray = np.asarray(p.any(axis=0))
        if not any_p.any():
            continue
        if op == "sum":
            out = _kahan(v, p)
        elif op == "avg":
            out = _avg(v, p)
        elif op == "count":
            out = p.sum(axis=0).astype(np.float64)
        elif op == "group":
            out = np.ones(steps)
        elif op == "min":
            out = _minmax(v, p, False)
        elif op == "max":
            out = _minmax(v, p, True)
        elif op in ("stddev", "stdvar"):
            out = _stdvar(v, p)
            if op == "stddev":
                out = np.sqrt(out)
        elif op == "quantile":
            assert isinstance(param, Scalar)
            out = np.array(
                [
                    quantile(float(param.values[i]), v[p[:, i], i]) if any_p[i] else 0.0
                    for i in range(steps)
                ]
            )
        else:
            raise BadQueryError(f"unknown aggregation {op!r}")
        labels.append(key)
        values.append(np.where(any_p, out, 0.0))
        present.append(any_p)
    if not labels:
        return Vector.empty(steps)
    return Vector(labels, np.vstack(values), np.vstack(present))


def _topk(
    vec: Vector,
    ks: np.ndarray,
    grouping: list[str] | None,
    without: bool,
    top: bool,
    steps: int,
) -> Vector:
    if np.isnan(ks).any():
        raise ExecutionError("Parameter value is NaN")
    if not len(vec):
        return Vector.empty(steps)
    chosen = np.zeros(vec.present.shape, dtype=bool)
    rank = np.zeros(vec.present.shape)
    for rows in _groups(vec, grouping, without).values():
        ra = np.array(rows)
        for i in range(steps):
            k = int(ks[i]) if abs(ks[i]) < 2**62 else (2**62 if ks[i] > 0 else 0)
            if k < 1:
                continue
            here = ra[vec.present[ra, i]]
            if not len(here):
                continue
            vals = vec.values[here, i]
            key = np.where(np.isnan(vals), -np.inf if top else np.inf, vals)
            order = np.argsort(-key if top else key, kind="stable")
            # NaN always loses: after every number, including ±Inf.
            nan_last = np.isnan(vals[order])
            order = np.concatenate((order[~nan_last], order[nan_last]))
            pick = here[order[:k]]
            chosen[pick, i] = True
            rank[pick, i] = np.arange(len(pick))
    keep = chosen.any(axis=1)
    idx = np.flatnonzero(keep)
    if steps == 1 and len(idx):
        # An instant query lists each group's picks best first.
        idx = np.array(
            sorted(idx, key=lambda r: (_first_group(vec, grouping, without, int(r)), rank[r, 0]))
        )
    return Vector([vec.labels[i] for i in idx], vec.values[idx], chosen[idx])


def _first_group(vec: Vector, grouping: list[str] | None, without: bool, row: int) -> int:
    key = _group_key(vec.labels[row], grouping, without)
    for i, lab in enumerate(vec.labels):
        if _group_key(lab, grouping, without) == key:
            return i
    return row


def _count_values(
    vec: Vector, label: str, grouping: list[str] | None, without: bool, steps: int
) -> Vector:
    if not _LABEL_NAME_OK.match(label):
        raise ExecutionError(f"invalid label name {label!r}")
    counts: dict[Labels, np.ndarray] = {}
    for i, lab in enumerate(vec.labels):
        key = dict(_group_key(lab, grouping, without))
        for s in np.flatnonzero(vec.present[i]):
            d = dict(key)
            d[label] = format_value(float(vec.values[i, s]))
            out = tuple(sorted(d.items()))
            counts.setdefault(out, np.zeros(steps))[s] += 1
    if not counts:
        return Vector.empty(steps)
    labels = list(counts)
    values = np.vstack([counts[k] for k in labels])
    return Vector(labels, values, values > 0)
