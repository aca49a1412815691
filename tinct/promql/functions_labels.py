"""PromQL functions that work on labels and order: ``label_replace``,
``label_join``, ``sort*``, ``absent``, ``absent_over_time`` and ``info``.

``label_replace``/``label_join`` keep ``__name__`` and merge series that end
up with the same labels, failing as Prometheus does ("vector cannot contain
metrics with the same labelset") when two of them have a sample at the same
step. The ``sort`` family only orders instant results: rows are ordered by
the last step. ``absent`` and ``absent_over_time`` need the argument's label
matchers (``CallInfo.matchers``); ``info`` needs the info series the engine
selected (``CallInfo.info_series``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from tinct.goregex import compile_go_regex, expand
from tinct.metrics import Labels, Matcher
from tinct.promql.result import ExecutionError
from tinct.promql.values import NAME_LABEL, EvalContext, String, Value, Vector, Window

if TYPE_CHECKING:
    from tinct.promql.functions import CallInfo

__all__ = [
    "label_replace",
    "label_join",
    "sort",
    "sort_desc",
    "sort_by_label",
    "sort_by_label_desc",
    "absent",
    "absent_over_time",
    "absent_labels",
    "info",
    "natural_less",
]

_IDENTIFYING_LABELS = ("instance", "job")  # target_info's, as Prometheus's info()


def _string(value: Value) -> str:
    if isinstance(value, String):
        return value.value
    raise TypeError(f"expected a string argument, got {type(value).__name__}")


def _vector(value: Value) -> Vector:
    if isinstance(value, Vector):
        return value
    raise TypeError(f"expected an instant vector argument, got {type(value).__name__}")


def _set_label(labels: Labels, name: str, value: str) -> Labels:
    """``labels`` with ``name`` set (removed when ``value`` is empty)."""
    kept = dict(labels)
    if value:
        kept[name] = value
    else:
        kept.pop(name, None)
    return tuple(sorted(kept.items()))


def merge_same_labels(labels: Sequence[Labels], vec: Vector) -> Vector:
    """Rows relabelled to ``labels`` merged; overlapping samples are an error."""
    groups: dict[Labels, list[int]] = {}
    for row, lb in enumerate(labels):
        groups.setdefault(lb, []).append(row)
    if len(groups) == len(labels):
        return Vector(list(labels), vec.values.copy(), vec.present.copy())
    out_labels, out_values, out_present = [], [], []
    for lb, rows in groups.items():
        present = vec.present[rows]
        if (present.sum(axis=0) > 1).any():
            raise ExecutionError("vector cannot contain metrics with the same labelset")
        out_labels.append(lb)
        out_values.append(np.where(present, vec.values[rows], 0.0).sum(axis=0))
        out_present.append(present.any(axis=0))
    steps = vec.values.shape[1]
    return Vector(
        out_labels,
        np.array(out_values, dtype=np.float64).reshape(len(out_labels), steps),
        np.array(out_present, dtype=bool).reshape(len(out_labels), steps),
    )


def _check_label_name(name: str, func: str, what: str) -> None:
    if not name:
        raise ExecutionError(f"invalid {what} label name in {func}(): {name}")


def label_replace(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    vec = _vector(args[0])
    dst, repl, src, pattern = (_string(a) for a in args[1:5])
    try:
        regex = compile_go_regex(f"(?s:{pattern})")
    except ValueError:
        raise ExecutionError(f"invalid regular expression in label_replace(): {pattern}") from None
    _check_label_name(dst, "label_replace", "destination")
    labels = []
    for lb in vec.labels:
        match = regex.fullmatch(dict(lb).get(src, ""))
        labels.append(_set_label(lb, dst, expand(repl, match)) if match else lb)
    return merge_same_labels(labels, vec)


def label_join(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    vec = _vector(args[0])
    dst, sep = _string(args[1]), _string(args[2])
    sources = [_string(a) for a in args[3:]]
    for src in sources:
        _check_label_name(src, "label_join", "source")
    _check_label_name(dst, "label_join", "destination")
    labels = []
    for lb in vec.labels:
        have = dict(lb)
        labels.append(_set_label(lb, dst, sep.join(have.get(s, "") for s in sources)))
    return merge_same_labels(labels, vec)


def _reorder(vec: Vector, rows: Sequence[int]) -> Vector:
    index = np.asarray(rows, dtype=np.int64)
    return Vector([vec.labels[i] for i in index], vec.values[index], vec.present[index])


def _sort_by_value(vec: Vector, descending: bool) -> Vector:
    if not len(vec):
        return vec
    last = vec.values[:, -1]
    present = vec.present[:, -1]
    key = -last if descending else last
    # Prometheus puts NaN last either way; rows absent at the last step go after.
    rank = np.where(~present, 2, np.where(np.isnan(last), 1, 0))
    order = np.lexsort((np.where(np.isnan(key), 0.0, key), rank))
    return _reorder(vec, order.tolist())


def sort(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    return _sort_by_value(_vector(args[0]), descending=False)


def sort_desc(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    return _sort_by_value(_vector(args[0]), descending=True)


_CHUNK = re.compile(r"([0-9]+|[^0-9]+)")
_INT64_MAX = 2**63 - 1


def _atoi(chunk: str) -> int | None:
    """Go's ``strconv.Atoi`` on a chunk: None unless a digit run fitting int64."""
    if chunk[:1].isdigit() and int(chunk) <= _INT64_MAX:
        return int(chunk)
    return None


def natural_less(a: str, b: str) -> bool:
    """``natsort.Compare`` (github.com/facette/natsort), which Prometheus uses."""
    chunks_a: list[str] = _CHUNK.findall(a)
    chunks_b: list[str] = _CHUNK.findall(b)
    for i, ca in enumerate(chunks_a):
        if i >= len(chunks_b):
            return False
        cb = chunks_b[i]
        if _atoi(ca) is not None and _atoi(cb) is not None:
            if int(ca) != int(cb):
                return bool(int(ca) < int(cb))
        elif ca != cb:
            return ca < cb
        if i == len(chunks_a) - 1:
            return True
        if i == len(chunks_b) - 1:
            return False
    return False


def _sort_by_label(vec: Vector, names: list[str], descending: bool) -> Vector:
    sign = -1 if descending else 1

    def compare(i: int, j: int) -> int:
        a, b = dict(vec.labels[i]), dict(vec.labels[j])
        for name in names:
            va, vb = a.get(name, ""), b.get(name, "")
            if va == vb:
                continue
            return -sign if natural_less(va, vb) else sign
        la, lb = vec.labels[i], vec.labels[j]
        return sign * ((la > lb) - (la < lb))

    return _reorder(vec, sorted(range(len(vec)), key=functools.cmp_to_key(compare)))


def sort_by_label(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    return _sort_by_label(_vector(args[0]), [_string(a) for a in args[1:]], descending=False)


def sort_by_label_desc(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    return _sort_by_label(_vector(args[0]), [_string(a) for a in args[1:]], descending=True)


def absent_labels(matchers: Sequence[Matcher]) -> Labels:
    """Prometheus's ``createLabelsForAbsentFunction``: the labels set by
    equality matchers; a label matched twice, or not by ``=``, is left out."""
    out: dict[str, str] = {}
    has: set[str] = set()
    for m in matchers:
        if m.name == NAME_LABEL:
            continue
        if m.op == "=" and m.name not in has:
            if m.value:
                out[m.name] = m.value
            else:
                out.pop(m.name, None)
            has.add(m.name)
        else:
            out.pop(m.name, None)
    return tuple(sorted(out.items()))


def _absent_where(ctx: EvalContext, missing: np.ndarray, call: CallInfo | None) -> Vector:
    labels = absent_labels(call.matchers) if call is not None else ()
    if not missing.any():
        return Vector.empty(ctx.n)
    return Vector([labels], np.ones((1, ctx.n)), missing.reshape(1, ctx.n).copy())


def absent(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    vec = _vector(args[0])
    return _absent_where(ctx, np.asarray(~vec.present.any(axis=0), dtype=bool), call)


def absent_over_time(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    w = args[0]
    if not isinstance(w, Window):
        raise TypeError(f"expected a range vector argument, got {type(w).__name__}")
    lo, hi = np.asarray(w.lo), np.asarray(w.hi)
    some = np.asarray((hi > lo).any(axis=0), dtype=bool) if lo.size else np.zeros(ctx.n, bool)
    return _absent_where(ctx, ~some, call)


# --- info ------------------------------------------------------------------------


def info(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value:
    """Adds the data labels of matching info series (``target_info`` by default).

    The engine passes, in ``call.info_series``, the info series selected by
    the second argument's ``__name__`` matchers (``target_info`` without
    one), and the second argument's matchers in ``call.info_matchers``. A
    series joins an info series present at the same step with the same
    ``instance`` and ``job``; labels it already has are kept; with data
    label matchers, only the labels they name are added, and a series left
    without a label whose matcher refuses "" is dropped.
    """
    vec = _vector(args[0])
    infos = call.info_series if call is not None else None
    matchers = list(call.info_matchers) if call is not None else []
    name_matchers = [m for m in matchers if m.name == NAME_LABEL]
    if not name_matchers:
        name_matchers = [Matcher(NAME_LABEL, "=", "target_info")]
    data_matchers = [m for m in matchers if m.name != NAME_LABEL]
    wanted = {m.name for m in data_matchers}
    info_rows: list[tuple[dict[str, str], int]] = []
    if infos is not None:
        for row, lb in enumerate(infos.labels):
            have = dict(lb)
            if all(m.matches(have.get(m.name, "")) for m in data_matchers):
                info_rows.append((have, row))
    out_labels: list[Labels] = []
    out_rows: list[int] = []
    out_present: list[np.ndarray] = []
    index: dict[tuple[Labels, int], int] = {}
    for row, lb in enumerate(vec.labels):
        base = dict(lb)
        is_info = all(m.matches(base.get(NAME_LABEL, "")) for m in name_matchers)
        ident = tuple(base.get(n, "") for n in _IDENTIFYING_LABELS)
        for step in np.flatnonzero(vec.present[row]):
            result: Labels | None = lb
            if not is_info:
                result = _enrich(base, ident, info_rows, infos, int(step), wanted, data_matchers)
            if result is None:
                continue
            key = (result, row)
            if key not in index:
                index[key] = len(out_labels)
                out_labels.append(result)
                out_rows.append(row)
                out_present.append(np.zeros(ctx.n, dtype=bool))
            out_present[index[key]][step] = True
    if not out_labels:
        return Vector.empty(ctx.n)
    out = Vector(
        out_labels, vec.values[out_rows], np.array(out_present, dtype=bool).reshape(-1, ctx.n)
    )
    return merge_same_labels(out.labels, out)


def _enrich(
    base: dict[str, str],
    ident: tuple[str, ...],
    info_rows: list[tuple[dict[str, str], int]],
    infos: Vector | None,
    step: int,
    wanted: set[str],
    data_matchers: list[Matcher],
) -> Labels | None:
    added: dict[str, str] = {}
    for have, row in info_rows:
        if infos is None or not infos.present[row, step]:
            continue
        if tuple(have.get(n, "") for n in _IDENTIFYING_LABELS) != ident:
            continue
        for name, value in have.items():
            if name == NAME_LABEL or name in _IDENTIFYING_LABELS:
                continue
            if wanted and name not in wanted:
                continue
            if name not in base:
                added.setdefault(name, value)
    for m in data_matchers:
        if m.name not in added and m.name not in base and not m.matches(""):
            return None
    if not added:
        return tuple(sorted(base.items()))
    return tuple(sorted({**base, **added}.items()))
