"""The PromQL engine: instant and range queries over a :class:`MetricReader`.

Semantics are Prometheus 3.x (promql/engine.go and the docs "Querying
basics"): left-open lookback and range windows, staleness markers ending a
series, ``offset`` and ``@`` (``start()``/``end()`` are the query's own
start and end, even inside subqueries), subqueries stepping at absolute
multiples of their step. Every node is evaluated once for all the steps it
is needed at (an instant query is a range query of one step), so each
selector costs one store round trip.

Threading: an :class:`Engine` may be shared by threads; at most
``max_concurrent`` queries run at once, the others wait up to the timeout.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

from tinct.promql import ast
from tinct.promql.aggregate import aggregate
from tinct.promql.binops import merge_rows, scalar_op, vector_scalar, vector_vector
from tinct.promql.functions import FUNCTIONS, CallInfo
from tinct.promql.result import (
    BadQueryError,
    ExecutionError,
    PromQLError,
    QueryResult,
    QueryTimeoutError,
    TooManySamplesError,
)
from tinct.promql.select import fetch, instant_vector, range_window
from tinct.promql.values import EvalContext, Scalar, String, Value, Vector, Window, drop_name
from tinct.storage.base import MetricReader

__all__ = ["Engine"]

_SAME_LABELSET = "vector cannot contain metrics with the same labelset"


class _Evaluation:
    """The state of one query's evaluation."""

    def __init__(self, engine: Engine, start_ms: int, end_ms: int, interval_ms: int) -> None:
        self.engine = engine
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.interval_ms = interval_ms
        self.deadline = engine._clock() + engine._timeout_s
        self.samples = 0
        self.warnings: list[str] = []
        self.infos: list[str] = []

    def _check(self) -> None:
        if self.engine._clock() > self.deadline:
            raise QueryTimeoutError("query timed out in query execution")

    def _count(self, n: int) -> None:
        self.samples += n
        if self.samples > self.engine._max_samples:
            raise TooManySamplesError(
                "query processing would load too many samples into memory in query execution"
            )

    def _at_ms(self, at: ast.At) -> int:
        if at.kind == "start":
            return self.start_ms
        if at.kind == "end":
            return self.end_ms
        return at.ms

    def ctx(self, steps: np.ndarray) -> EvalContext:
        return EvalContext(
            steps=steps,
            lookback_ms=self.engine._lookback_ms,
            warnings=self.warnings,
            infos=self.infos,
        )

    def eval(self, node: ast.Expr, steps: np.ndarray) -> Value:
        self._check()
        n = len(steps)
        if isinstance(node, ast.NumberLit):
            return Scalar(np.full(n, node.value))
        if isinstance(node, ast.StringLit):
            return String(node.value)
        if isinstance(node, ast.Selector):
            return self._selector(node, steps)[0]
        if isinstance(node, ast.Subquery):
            return self._subquery(node, steps)
        if isinstance(node, ast.Aggregate):
            return self._aggregate(node, steps)
        if isinstance(node, ast.Binary):
            return self._binary(node, steps)
        if isinstance(node, ast.Unary):
            value = self.eval(node.expr, steps)
            if isinstance(value, Scalar):
                return Scalar(-value.values)
            if isinstance(value, Vector):
                return Vector([drop_name(lb) for lb in value.labels], -value.values, value.present)
            raise BadQueryError("unary minus needs a scalar or an instant vector")
        if isinstance(node, ast.Call):
            return self._call(node, steps)
        raise BadQueryError(f"unsupported expression {type(node).__name__}")

    def _refs(self, node: ast.Selector | ast.Subquery, steps: np.ndarray) -> np.ndarray:
        if node.at is not None:
            base = np.full(len(steps), self._at_ms(node.at), dtype=np.int64)
        else:
            base = steps.astype(np.int64)
        return base - node.offset_ms

    def _selector(self, node: ast.Selector, steps: np.ndarray) -> tuple[Value, np.ndarray | None]:
        refs = self._refs(node, steps)
        width = node.range_ms if node.range_ms is not None else self.engine._lookback_ms
        lo, hi = int(refs.min()) - width + 1, int(refs.max())
        series = fetch(
            self.engine._store, node.matchers, node.or_matchers, lo, hi, _windows(refs, width)
        )
        self._count(sum(len(s.times) for s in series))
        if node.range_ms is None:
            return instant_vector(series, refs, width)
        return range_window(series, refs, width), None

    def _subquery(self, node: ast.Subquery, steps: np.ndarray) -> Window:
        ends = self._refs(node, steps)
        interval = node.step_ms or self.engine._subquery_step_ms
        first = int(ends.min()) - node.range_ms
        start = (first // interval) * interval
        if start <= first:
            start += interval
        inner_steps = np.arange(start, int(ends.max()) + 1, interval, dtype=np.int64)
        n = len(ends)
        if not len(inner_steps):
            z = np.zeros((0, n), dtype=np.int64)
            return Window([], [], [], z, z.copy(), ends, node.range_ms)
        inner = self.eval(node.expr, inner_steps)
        if isinstance(inner, Scalar):
            inner = Vector([()], inner.values[None, :], np.ones((1, len(inner_steps)), bool))
        if not isinstance(inner, Vector):
            raise BadQueryError("subquery is only allowed on instant vector")
        inner = merge_rows(inner, _SAME_LABELSET)
        labels, times, values, los, his = [], [], [], [], []
        for lab, v, p in zip(inner.labels, inner.values, inner.present, strict=True):
            t = inner_steps[p]
            lo = np.searchsorted(t, ends - node.range_ms, side="right")
            hi = np.searchsorted(t, ends, side="right")
            if not (hi > lo).any():
                continue
            labels.append(lab)
            times.append(t)
            values.append(v[p])
            los.append(lo)
            his.append(hi)
        self._count(sum(len(t) for t in times))
        lo_a = np.vstack(los) if los else np.zeros((0, n), dtype=np.int64)
        hi_a = np.vstack(his) if his else np.zeros((0, n), dtype=np.int64)
        return Window(labels, times, values, lo_a, hi_a, ends, node.range_ms)

    def _aggregate(self, node: ast.Aggregate, steps: np.ndarray) -> Vector:
        param = self.eval(node.param, steps) if node.param is not None else None
        vec = self.eval(node.expr, steps)
        if not isinstance(vec, Vector):
            raise BadQueryError(f"expected an instant vector in {node.op}()")
        return aggregate(node.op, vec, param, node.grouping, node.without, len(steps))

    def _binary(self, node: ast.Binary, steps: np.ndarray) -> Value:
        lhs = self.eval(node.lhs, steps)
        rhs = self.eval(node.rhs, steps)
        if isinstance(lhs, Scalar) and isinstance(rhs, Scalar):
            vals, keep = scalar_op(node.op, lhs.values, rhs.values)
            if node.op in ("==", "!=", ">", "<", ">=", "<="):
                vals = keep.astype(np.float64)
            return Scalar(vals)
        if isinstance(lhs, Vector) and isinstance(rhs, Scalar):
            return vector_scalar(node, lhs, rhs, swap=False)
        if isinstance(lhs, Scalar) and isinstance(rhs, Vector):
            return vector_scalar(node, rhs, lhs, swap=True)
        if isinstance(lhs, Vector) and isinstance(rhs, Vector):
            return vector_vector(node, lhs, rhs)
        raise BadQueryError("binary expression must contain only scalar and instant vector types")

    def _call(self, node: ast.Call, steps: np.ndarray) -> Value:
        spec = FUNCTIONS.get(node.name)
        if spec is None:
            raise BadQueryError(f"unknown function {node.name}()")
        args: list[Value] = []
        timestamps = None
        for i, arg in enumerate(node.args):
            if isinstance(arg, ast.Selector) and arg.range_ms is None:
                value, times = self._selector(arg, steps)
                if i == 0:
                    timestamps = times
                args.append(value)
            else:
                args.append(self.eval(arg, steps))
        info = _call_info(node, timestamps)
        result: Value = spec.impl(self.ctx(steps), args, info)
        return result


def _call_info(node: ast.Call, timestamps: np.ndarray | None) -> CallInfo:
    first = node.args[0] if node.args else None
    matchers = list(first.matchers) if isinstance(first, ast.Selector) else []
    return CallInfo(matchers=matchers, timestamps=timestamps)


class Engine:
    """Evaluates PromQL against ``store``.

    Args:
        store: where series and samples are read.
        lookback_delta_ms: how far back an instant selector looks (5 minutes).
        timeout_s: a query running longer fails with QueryTimeoutError.
        max_samples: a query reading more samples fails with TooManySamplesError.
        max_concurrent: queries evaluated at once; others wait.
        clock: seconds since the epoch (injectable for tests).
        subquery_step_ms: the step of subqueries that give none (Prometheus
            uses the global evaluation interval, 1 minute by default).
    """

    def __init__(
        self,
        store: MetricReader,
        *,
        lookback_delta_ms: int = 300_000,
        timeout_s: float = 120.0,
        max_samples: int = 50_000_000,
        max_concurrent: int = 20,
        clock: Callable[[], float] = time.time,
        subquery_step_ms: int = 60_000,
    ) -> None:
        self._store = store
        self._lookback_ms = lookback_delta_ms
        self._timeout_s = timeout_s
        self._max_samples = max_samples
        self._clock = clock
        self._subquery_step_ms = subquery_step_ms
        self._slots = threading.BoundedSemaphore(max_concurrent)

    def instant(self, query: str | ast.Expr, time_ms: int) -> QueryResult:
        """Evaluate ``query`` at ``time_ms``: a vector, scalar, string or (for a
        range selector or subquery) matrix result. Blocks.

        Raises:
            PromQLError: BadQueryError, ExecutionError, QueryTimeoutError, ...
        """
        expr = ast.parse(query) if isinstance(query, str) else query
        with self._slot():
            ev = _Evaluation(self, time_ms, time_ms, 0)
            value = self._run(ev, expr, np.array([time_ms], dtype=np.int64))
            return _instant_result(ev, value, time_ms)

    def range(self, query: str | ast.Expr, start_ms: int, end_ms: int, step_ms: int) -> QueryResult:
        """Evaluate ``query`` at ``start_ms, start_ms + step_ms, … ≤ end_ms``: a
        matrix, series sorted by labels. Blocks.

        Raises:
            PromQLError: as :meth:`instant`; BadQueryError for a non-positive
            step, an end before the start, or a range-vector or string query.
        """
        if step_ms <= 0:
            raise BadQueryError("zero or negative query resolution step widths are not accepted")
        if end_ms < start_ms:
            raise BadQueryError("end timestamp must not be before start time")
        expr = ast.parse(query) if isinstance(query, str) else query
        if isinstance(expr, ast.Subquery) or (
            isinstance(expr, ast.Selector) and expr.range_ms is not None
        ):
            raise BadQueryError(
                'invalid expression type "range vector" for range query, '
                "must be Scalar or instant Vector"
            )
        if isinstance(expr, ast.StringLit):
            raise BadQueryError(
                'invalid expression type "string" for range query, must be Scalar or instant Vector'
            )
        with self._slot():
            ev = _Evaluation(self, start_ms, end_ms, step_ms)
            steps = np.arange(start_ms, end_ms + 1, step_ms, dtype=np.int64)
            value = self._run(ev, expr, steps)
            return _range_result(ev, value, steps)

    def _slot(self) -> _Slot:
        return _Slot(self._slots, self._timeout_s)

    def _run(self, ev: _Evaluation, expr: ast.Expr, steps: np.ndarray) -> Value:
        try:
            value = ev.eval(expr, steps)
        except PromQLError:
            raise
        except (ValueError, TypeError, IndexError, KeyError) as exc:
            raise ExecutionError(str(exc)) from exc
        if isinstance(value, Vector):
            value = merge_rows(value, _SAME_LABELSET)
        return value


class _Slot:
    def __init__(self, sem: threading.BoundedSemaphore, timeout_s: float) -> None:
        self._sem = sem
        self._timeout_s = timeout_s

    def __enter__(self) -> None:
        if not self._sem.acquire(timeout=self._timeout_s):
            raise QueryTimeoutError("query timed out in query queue")

    def __exit__(self, *exc: object) -> None:
        self._sem.release()


def _labels_dict(labels: tuple[tuple[str, str], ...]) -> dict[str, str]:
    return dict(labels)


def _instant_result(ev: _Evaluation, value: Value, t: int) -> QueryResult:
    if isinstance(value, Scalar):
        return QueryResult("scalar", (t, float(value.values[0])), ev.warnings, ev.infos, ev.samples)
    if isinstance(value, String):
        return QueryResult("string", (t, value.value), ev.warnings, ev.infos, ev.samples)
    if isinstance(value, Window):
        series = []
        for i, lab in enumerate(value.labels):
            lo, hi = int(value.lo[i, 0]), int(value.hi[i, 0])
            if hi > lo:
                pts = [
                    (int(ts), float(v))
                    for ts, v in zip(value.times[i][lo:hi], value.values[i][lo:hi], strict=True)
                ]
                series.append((_labels_dict(lab), pts))
        series.sort(key=lambda s: sorted(s[0].items()))
        return QueryResult("matrix", series, ev.warnings, ev.infos, ev.samples)
    rows = [
        (_labels_dict(lab), (t, float(value.values[i, 0])))
        for i, lab in enumerate(value.labels)
        if value.present[i, 0]
    ]
    return QueryResult("vector", rows, ev.warnings, ev.infos, ev.samples)


def _range_result(ev: _Evaluation, value: Value, steps: np.ndarray) -> QueryResult:
    if isinstance(value, Scalar):
        value = Vector([()], value.values[None, :], np.ones((1, len(steps)), bool))
    if not isinstance(value, Vector):
        raise BadQueryError("range queries need a scalar or an instant vector")
    series = []
    for i, lab in enumerate(value.labels):
        idx = np.flatnonzero(value.present[i])
        if len(idx):
            pts = [(int(steps[j]), float(value.values[i, j])) for j in idx]
            series.append((_labels_dict(lab), pts))
    series.sort(key=lambda s: sorted(s[0].items()))
    ev._count(sum(len(p) for _, p in series))
    return QueryResult("matrix", series, ev.warnings, ev.infos, ev.samples)


def _windows(refs: np.ndarray, width: int) -> tuple[int, int, int] | None:
    """(first end, step, width) when the steps are evenly spaced further apart
    than their windows: the store then reads only the samples in windows."""
    if len(refs) < 3:
        return None
    steps = np.diff(refs)
    step = int(steps[0])
    if step <= width or not bool(np.all(steps == step)):
        return None
    return int(refs[0]), step, width
