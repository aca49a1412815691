"""Binary operators over scalars and instant vectors, at every step at once.

Follows Prometheus's ``VectorBinop``/``VectorscalarBinop`` (promql/engine.go)
and the docs "Operators": arithmetic drops ``__name__``, comparisons keep it
unless ``bool``; one-to-one matching by all labels but ``__name__`` unless
``on``/``ignoring``; ``group_left``/``group_right`` copy the listed labels from
the "one" side; the matching errors use Prometheus's messages.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from tinct.metrics import NAME_LABEL, Labels
from tinct.promql.ast import Binary
from tinct.promql.result import ExecutionError
from tinct.promql.values import Scalar, Vector, drop_name

__all__ = ["scalar_op", "vector_scalar", "vector_vector", "format_labels", "merge_rows"]

_ARITH = {"+", "-", "*", "/", "%", "^", "atan2"}
_CMP = {"==", "!=", ">", "<", ">=", "<="}


def _go_mod(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.fmod(a, b)
    return out


def scalar_op(op: str, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``a op b`` elementwise: (values, keep). ``keep`` is the comparison result."""
    with np.errstate(all="ignore"):
        if op == "+":
            return a + b, np.ones(a.shape, bool)
        if op == "-":
            return a - b, np.ones(a.shape, bool)
        if op == "*":
            return a * b, np.ones(a.shape, bool)
        if op == "/":
            return a / b, np.ones(a.shape, bool)
        if op == "%":
            return _go_mod(a, b), np.ones(a.shape, bool)
        if op == "^":
            return np.power(a, b), np.ones(a.shape, bool)
        if op == "atan2":
            return np.arctan2(a, b), np.ones(a.shape, bool)
        if op == "==":
            return a, a == b
        if op == "!=":
            return a, a != b
        if op == ">":
            return a, a > b
        if op == "<":
            return a, a < b
        if op == ">=":
            return a, a >= b
        if op == "<=":
            return a, a <= b
    raise ExecutionError(f"operator {op!r} not allowed here")


def format_labels(labels: Labels) -> str:
    """Labels as Prometheus prints them: ``{__name__="x", a="b"}``."""
    return "{" + ", ".join(f'{k}="{v}"' for k, v in labels) + "}"


def merge_rows(vec: Vector, message: str) -> Vector:
    """Rows with the same labels joined into one; both present at a step is an error."""
    index: dict[Labels, int] = {}
    dup = False
    for i, lab in enumerate(vec.labels):
        if lab in index:
            dup = True
        else:
            index[lab] = i
    if not dup:
        return vec
    labels = list(index)
    pos = {lab: k for k, lab in enumerate(labels)}
    values = np.zeros((len(labels), vec.values.shape[1]))
    present = np.zeros((len(labels), vec.values.shape[1]), dtype=bool)
    for i, lab in enumerate(vec.labels):
        j = pos[lab]
        if (present[j] & vec.present[i]).any():
            raise ExecutionError(message)
        values[j] = np.where(vec.present[i], vec.values[i], values[j])
        present[j] |= vec.present[i]
    return Vector(labels, values, present)


def vector_scalar(node: Binary, vec: Vector, sc: Scalar, swap: bool) -> Vector:
    """``vec op sc`` (or ``sc op vec`` when ``swap``)."""
    if not len(vec):
        return vec
    s = np.broadcast_to(sc.values, vec.values.shape)
    lhs, rhs = (s, vec.values) if swap else (vec.values, s)
    vals, keep = scalar_op(node.op, lhs, rhs)
    if node.op in _CMP:
        vals = vec.values
        if node.return_bool:
            vals = keep.astype(np.float64)
            keep = np.ones_like(keep)
    present = vec.present & keep
    drop = node.op in _ARITH or node.return_bool
    labels = [drop_name(lab) for lab in vec.labels] if drop else list(vec.labels)
    out = Vector(labels, np.where(present, vals, 0.0), present)
    return _compact(out)


def _compact(vec: Vector) -> Vector:
    rows = vec.present.any(axis=1)
    if rows.all():
        return vec
    idx = np.flatnonzero(rows)
    return Vector([vec.labels[i] for i in idx], vec.values[idx], vec.present[idx])


def _signature(node: Binary, labels: Labels) -> Labels:
    if node.on is True:
        keep = set(node.matching)
        return tuple(p for p in labels if p[0] in keep)
    drop = set(node.matching) | {NAME_LABEL}
    return tuple(p for p in labels if p[0] not in drop)


def _set_op(node: Binary, lhs: Vector, rhs: Vector) -> Vector:
    n = lhs.values.shape[1] if len(lhs) else rhs.values.shape[1]
    rsig: dict[Labels, np.ndarray] = {}
    for lab, pres in zip(rhs.labels, rhs.present, strict=True):
        sig = _signature(node, lab)
        rsig[sig] = rsig.get(sig, np.zeros(n, bool)) | pres
    if node.op == "and":
        present = np.array(
            [
                p & rsig.get(_signature(node, lab), np.zeros(n, bool))
                for lab, p in zip(lhs.labels, lhs.present, strict=True)
            ],
            dtype=bool,
        ).reshape(len(lhs), n)
        return _compact(Vector(list(lhs.labels), lhs.values, present))
    if node.op == "unless":
        present = np.array(
            [
                p & ~rsig.get(_signature(node, lab), np.zeros(n, bool))
                for lab, p in zip(lhs.labels, lhs.present, strict=True)
            ],
            dtype=bool,
        ).reshape(len(lhs), n)
        return _compact(Vector(list(lhs.labels), lhs.values, present))
    # or
    lsig: dict[Labels, np.ndarray] = {}
    for lab, pres in zip(lhs.labels, lhs.present, strict=True):
        sig = _signature(node, lab)
        lsig[sig] = lsig.get(sig, np.zeros(n, bool)) | pres
    rpres = np.array(
        [
            p & ~lsig.get(_signature(node, lab), np.zeros(n, bool))
            for lab, p in zip(rhs.labels, rhs.present, strict=True)
        ],
        dtype=bool,
    ).reshape(len(rhs), n)
    out = Vector(
        list(lhs.labels) + list(rhs.labels),
        np.vstack([lhs.values.reshape(len(lhs), n), rhs.values.reshape(len(rhs), n)]),
        np.vstack([lhs.present.reshape(len(lhs), n), rpres]),
    )
    return merge_rows(_compact(out), "vector cannot contain metrics with the same labelset")


def _result_labels(node: Binary, many: Labels, one: Labels) -> Labels:
    d = dict(many)
    if node.op in _ARITH or node.return_bool:
        d.pop(NAME_LABEL, None)
    if node.card == "one-to-one":
        if node.on:
            d = {k: v for k, v in d.items() if k in set(node.matching)}
        else:
            for k in node.matching:
                d.pop(k, None)
    if node.include:
        od = dict(one)
        for k in node.include:
            if od.get(k):
                d[k] = od[k]
            else:
                d.pop(k, None)
    return tuple(sorted(d.items()))


def vector_vector(node: Binary, lhs: Vector, rhs: Vector) -> Vector:
    """``lhs op rhs`` with vector matching."""
    if node.op in ("and", "or", "unless"):
        return _set_op(node, lhs, rhs)
    n = lhs.values.shape[1] if len(lhs) else rhs.values.shape[1]
    if not len(lhs) or not len(rhs):
        return Vector.empty(n)
    many, one = (rhs, lhs) if node.card == "one-to-many" else (lhs, rhs)
    one_side = "left" if node.card == "one-to-many" else "right"
    osig: dict[Labels, list[int]] = defaultdict(list)
    for j, lab in enumerate(one.labels):
        osig[_signature(node, lab)].append(j)
    for sig, rows in osig.items():
        if len(rows) > 1:
            counts = one.present[rows].sum(axis=0)
            if (counts > 1).any():
                step = int(np.argmax(counts > 1))
                dups = sorted(one.labels[r] for r in rows if one.present[r, step])
                raise ExecutionError(
                    f"found duplicate series for the match group {format_labels(sig)} on the "
                    f"{one_side} hand-side of the operation: [{format_labels(dups[0])}, "
                    f"{format_labels(dups[1])}];many-to-many matching not allowed: matching "
                    "labels must be unique on one side"
                )
    one_present: dict[Labels, np.ndarray] = {
        sig: np.asarray(one.present[rows].any(axis=0)) for sig, rows in osig.items()
    }
    if node.card == "one-to-one":
        msig: dict[Labels, list[int]] = defaultdict(list)
        for i, lab in enumerate(many.labels):
            msig[_signature(node, lab)].append(i)
        for sig, rows in msig.items():
            if len(rows) > 1 and sig in one_present:
                counts = many.present[rows].sum(axis=0)
                if ((counts > 1) & one_present[sig]).any():
                    raise ExecutionError(
                        "multiple matches for labels: many-to-one matching must be explicit "
                        "(group_left/group_right)"
                    )
    out_labels: list[Labels] = []
    out_vals: list[np.ndarray] = []
    out_pres: list[np.ndarray] = []
    for i, lab in enumerate(many.labels):
        sig = _signature(node, lab)
        for j in osig.get(sig, ()):
            both = many.present[i] & one.present[j]
            if not both.any():
                continue
            lv, rv = many.values[i], one.values[j]
            if node.card == "one-to-many":
                lv, rv = rv, lv
            vals, keep = scalar_op(node.op, lv, rv)
            if node.op in _CMP:
                if node.return_bool:
                    vals = keep.astype(np.float64)
                    keep = np.ones_like(keep)
                else:
                    vals = many.values[i]
            pres = both & keep
            if not pres.any():
                continue
            out_labels.append(_result_labels(node, lab, one.labels[j]))
            out_vals.append(np.where(pres, vals, 0.0))
            out_pres.append(pres)
    if not out_labels:
        return Vector.empty(n)
    out = Vector(out_labels, np.vstack(out_vals), np.vstack(out_pres))
    message = (
        "multiple matches for labels: many-to-one matching must be explicit "
        "(group_left/group_right)"
        if node.card == "one-to-one"
        else "multiple matches for labels: grouping labels must ensure unique matches"
    )
    return merge_rows(out, message)
