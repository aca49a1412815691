"""Prometheus's PromQL test-script language, run against tinct's engine.

The language is promqltest's (prometheus/prometheus ``promql/promqltest``,
README and ``test.go``): ``load``/``clear``/``eval`` commands with indented
series lines. The runner behaves as Prometheus's: every instant eval is
also run with ``@`` pinned to the eval time from other query times, and as
a one-minute-step range query around the eval time; values compare with a
relative tolerance of 1e-6 (``util/almost``).
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from tinct.metrics import STALE_NAN, SampleBuilder
from tinct.promql import ast
from tinct.promql.engine import Engine
from tinct.promql.result import PromQLError, QueryResult

EPSILON = 1e-6
MIN_NORMAL = sys.float_info.min

_DUR = re.compile(r"(\d+)(ms|y|w|d|h|m|s)")
_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_UNITS["y"] = 365 * _UNITS["d"]

_EVAL_INSTANT = re.compile(
    r"^eval(?:_(fail|warn|ordered|info))?\s+instant\s+(?:at\s+(.+?))?\s+(.+)$"
)
_EVAL_RANGE = re.compile(
    r"^eval(?:_(fail|warn|info))?\s+range\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+?)\s+(.+)$"
)
_EXPECT = re.compile(r"^expect\s+(ordered|fail|warn|no_warn|info|no_info)(?:\s+(regex|msg):(.+))?$")
_EXPECT_RANGE = re.compile(r"^expect range vector\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+)$")
_LOAD = re.compile(r"^load(?:_(with_nhcb))?\s+(.+?)$")
_SERIES_ITEM = re.compile(
    r"^(?P<a>[+-]?(?:[0-9.]+(?:[eE][+-]?\d+)?|Inf|NaN|inf|nan))"
    r"(?:(?P<op>[+-])(?P<b>(?:[0-9.]+(?:[eE][+-]?\d+)?|Inf|NaN)))?x(?P<n>\d+)$"
)
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")

# Functions whose result varies with the evaluation time (promql.AtModifierUnsafeFunctions).
AT_UNSAFE = {
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "hour",
    "minute",
    "month",
    "year",
    "predict_linear",
    "time",
    "timestamp",
    # The query-context functions (start(), end(), range(), step()) are the
    # query's own times, so pinning @ cannot keep their value either.
    "start",
    "end",
    "range",
    "step",
}
_QUERY_CONTEXT = re.compile(r"(start|end|range|step)\(\)")

# Prometheus's experimental functions and aggregations (parser/functions.go).
EXPERIMENTAL = {
    "double_exponential_smoothing",
    "info",
    "limitk",
    "limit_ratio",
    "mad_over_time",
    "sort_by_label",
    "sort_by_label_desc",
    "ts_of_min_over_time",
    "ts_of_max_over_time",
    "ts_of_last_over_time",
    "ts_of_first_over_time",
    "first_over_time",
}


def parse_duration(text: str) -> int:
    """A Prometheus duration (``1h30m``, ``0``, ``10s53ms``) in milliseconds."""
    text = text.strip()
    if text == "0":
        return 0
    total, pos = 0, 0
    for m in _DUR.finditer(text):
        if m.start() != pos:
            raise ValueError(f"bad duration {text!r}")
        total += int(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or pos == 0:
        raise ValueError(f"bad duration {text!r}")
    return total


def _unquote(s: str) -> str:
    out = []
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            n = s[i + 1]
            simple = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'", "r": "\r"}
            if n in simple:
                out.append(simple[n])
                i += 2
                continue
            if n == "x":
                out.append(chr(int(s[i + 2 : i + 4], 16)))
                i += 4
                continue
            if n == "u":
                out.append(chr(int(s[i + 2 : i + 6], 16)))
                i += 6
                continue
        out.append(c)
        i += 1
    return "".join(out)


def parse_metric(text: str) -> tuple[dict[str, str], str]:
    """``name{a="b"}`` → (labels, rest of the line)."""
    text = text.strip()
    labels: dict[str, str] = {}
    m = _IDENT.match(text)
    pos = 0
    if m and (len(text) == m.end() or text[m.end()] in "{ \t"):
        labels["__name__"] = m.group(0)
        pos = m.end()
    if pos < len(text) and text[pos] == "{":
        pos += 1
        while True:
            while pos < len(text) and text[pos] in " \t,":
                pos += 1
            if text[pos] == "}":
                pos += 1
                break
            if text[pos] in "\"'":
                name, pos = _read_string(text, pos)
            else:
                mm = _IDENT.match(text, pos)
                if not mm:
                    raise ValueError(f"bad series {text!r}")
                name, pos = mm.group(0), mm.end()
            while text[pos] in " \t":
                pos += 1
            if text[pos] != "=":
                labels["__name__"] = name
                continue
            pos += 1
            while text[pos] in " \t":
                pos += 1
            value, pos = _read_string(text, pos)
            labels[name] = value
    return labels, text[pos:].strip()


def _read_string(text: str, pos: int) -> tuple[str, int]:
    quote = text[pos]
    end = pos + 1
    while text[end] != quote:
        end += 2 if text[end] == "\\" else 1
    return _unquote(text[pos + 1 : end]), end + 1


class HistogramValue(Exception):
    """A series line holds native histograms."""


def parse_values(text: str) -> list[float | None]:
    """Expand ``1 2+3x2 _ _x3 stale`` to values (None: no sample)."""
    if "{{" in text:
        raise HistogramValue(text)
    out: list[float | None] = []
    for tok in text.split():
        if tok == "_":
            out.append(None)
        elif tok.startswith("_x"):
            out.extend([None] * int(tok[2:]))
        elif tok == "stale":
            out.append(STALE_NAN)
        else:
            m = _SERIES_ITEM.match(tok)
            if m:
                a = float(m.group("a"))
                b = float(m.group("b")) if m.group("b") else 0.0
                if m.group("op") == "-":
                    b = -b
                for i in range(int(m.group("n")) + 1):
                    out.append(a + i * b if b else a)
            else:
                out.append(float(tok))
    return out


@dataclass
class Load:
    line: int
    interval_ms: int
    series: list[tuple[dict[str, str], list[float | None]]]
    histogram_names: set[str]


@dataclass
class Clear:
    line: int


@dataclass
class Eval:
    line: int
    expr: str
    instant: bool
    start_ms: int
    end_ms: int = 0
    step_ms: int = 0
    fail: bool = False
    fail_msg: str | None = None
    fail_regex: str | None = None
    ordered: bool = False
    expect_scalar: bool = False
    scalar: float = 0.0
    expected: list[tuple[dict[str, str], list[float | None]]] = field(default_factory=list)
    expected_string: str | None = None
    range_vector: bool = False
    histograms: bool = False


Command = Load | Clear | Eval


def parse_script(text: str) -> list[Command]:
    """The commands of a ``.test`` file, with 1-based line numbers."""
    lines = ["" if ln.strip().startswith("#") else ln.strip() for ln in text.split("\n")]
    cmds: list[Command] = []
    i = 0
    while i < len(lines):
        ln = lines[i]
        if not ln:
            i += 1
            continue
        word = ln.split()[0].lower()
        if word == "clear":
            cmds.append(Clear(i + 1))
            i += 1
        elif word.startswith("load"):
            m = _LOAD.match(ln)
            if not m:
                raise ValueError(f"line {i + 1}: bad load {ln!r}")
            load = Load(i + 1, parse_duration(m.group(2)), [], set())
            nhcb = m.group(1) == "with_nhcb"
            i += 1
            while i < len(lines) and lines[i]:
                labels, rest = parse_metric(lines[i])
                name = labels.get("__name__", "")
                try:
                    load.series.append((labels, parse_values(rest)))
                except HistogramValue:
                    load.histogram_names.add(name)
                if nhcb:
                    load.histogram_names.add(re.sub(r"_(bucket|count|sum)$", "", name))
                i += 1
            cmds.append(load)
        elif word.startswith("eval"):
            ev, i = _parse_eval(lines, i)
            cmds.append(ev)
        else:
            raise ValueError(f"line {i + 1}: unknown command {ln!r}")
    return cmds


def _parse_eval(lines: list[str], i: int) -> tuple[Eval, int]:
    ln = lines[i]
    mi = _EVAL_INSTANT.match(ln)
    mr = _EVAL_RANGE.match(ln)
    if mi:
        mod = mi.group(1)
        ev = Eval(i + 1, mi.group(3), True, parse_duration(mi.group(2) or "0"))
    elif mr:
        mod = mr.group(1)
        ev = Eval(
            i + 1,
            mr.group(5),
            False,
            parse_duration(mr.group(2)),
            parse_duration(mr.group(3)),
            parse_duration(mr.group(4)),
        )
    else:
        raise ValueError(f"line {i + 1}: bad eval {ln!r}")
    ev.fail = mod == "fail"
    ev.ordered = mod == "ordered"
    i += 1
    while i < len(lines) and lines[i]:
        d = lines[i]
        i += 1
        if ev.fail and d.startswith("expected_fail_message"):
            ev.fail_msg = d[len("expected_fail_message") :].strip()
            break
        if ev.fail and d.startswith("expected_fail_regexp"):
            ev.fail_regex = d[len("expected_fail_regexp") :].strip()
            break
        if d.startswith("expect range vector"):
            m = _EXPECT_RANGE.match(d)
            if not m:
                raise ValueError(f"line {i}: bad {d!r}")
            ev.start_ms = parse_duration(m.group(1))
            ev.end_ms = parse_duration(m.group(2))
            ev.step_ms = parse_duration(m.group(3))
            ev.range_vector = True
            continue
        if d.startswith("expect string"):
            ev.expected_string = _read_string(d[len("expect string") :].strip(), 0)[0]
            continue
        if d.split(" ")[0] == "expect":
            m = _EXPECT.match(d)
            if not m:
                raise ValueError(f"line {i}: bad {d!r}")
            if m.group(1) == "fail":
                ev.fail = True
                if m.group(2) == "msg":
                    ev.fail_msg = m.group(3).strip()
                elif m.group(2) == "regex":
                    ev.fail_regex = m.group(3).strip()
            elif m.group(1) == "ordered":
                ev.ordered = True
            continue  # warn/info expectations are not checked
        try:
            ev.scalar = _parse_number(d)
            ev.expect_scalar = True
            break
        except ValueError:
            pass
        labels, rest = parse_metric(d)
        try:
            ev.expected.append((labels, parse_values(rest)))
        except HistogramValue:
            ev.histograms = True
    return ev, i


def _parse_number(s: str) -> float:
    try:
        return float(int(s, 0))
    except ValueError:
        return float(s)


def almost_equal(a: float, b: float) -> bool:
    """Prometheus's ``almost.Equal`` with the test epsilon."""
    if math.isnan(a) and math.isnan(b):
        return True
    if a == b:
        return True
    abs_sum = abs(a) + abs(b)
    diff = abs(a - b)
    if a == 0 or b == 0 or abs_sum < MIN_NORMAL:
        return diff < EPSILON * MIN_NORMAL
    return diff / min(abs_sum, sys.float_info.max) < EPSILON


class CaseFailure(Exception):
    """One eval did not give Prometheus's answer."""


def _fmt(labels: dict[str, str]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def _key(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in labels.items() if v != ""))


def compare(ev: Eval, res: QueryResult) -> None:
    """Raise CaseFailure when ``res`` is not what ``ev`` expects."""
    if res.result_type == "string":
        if ev.expected_string != res.result[1]:
            raise CaseFailure(f"expected string {ev.expected_string!r}, got {res.result[1]!r}")
        return
    if res.result_type == "scalar":
        if not ev.expect_scalar:
            raise CaseFailure(f"expected a vector or matrix, got scalar {res.result[1]}")
        if not almost_equal(ev.scalar, res.result[1]):
            raise CaseFailure(f"expected scalar {ev.scalar}, got {res.result[1]}")
        return
    if ev.expect_scalar:
        raise CaseFailure(f"expected scalar, got {res.result_type} {res.result}")
    expected = {_key(lb): (pos, vals) for pos, (lb, vals) in enumerate(ev.expected)}
    seen = set()
    if res.result_type == "matrix":
        if ev.ordered:
            raise CaseFailure("expected ordered result, but query returned a matrix")
        for labels, points in res.result:
            k = _key(labels)
            if k not in expected:
                raise CaseFailure(f"unexpected series {_fmt(labels)}: {points}")
            seen.add(k)
            want = [
                (ev.start_ms + j * ev.step_ms, v)
                for j, v in enumerate(expected[k][1])
                if v is not None
            ]
            if len(want) != len(points):
                raise CaseFailure(f"{_fmt(labels)}: expected {want}, got {points}")
            for (wt, wv), (gt, gv) in zip(want, points, strict=True):
                if wt != gt or not almost_equal(wv, gv):
                    raise CaseFailure(f"{_fmt(labels)}: expected {want}, got {points}")
    else:
        for pos, (labels, (_, value)) in enumerate(res.result):
            k = _key(labels)
            if k not in expected:
                raise CaseFailure(f"unexpected series {_fmt(labels)} {value}")
            seen.add(k)
            want_pos, vals = expected[k]
            if ev.ordered and want_pos != pos:
                raise CaseFailure(f"{_fmt(labels)} at position {pos + 1}, expected {want_pos + 1}")
            first = vals[0]
            if first is None or not almost_equal(first, value):
                raise CaseFailure(f"{_fmt(labels)}: expected {first}, got {value}")
    missing = [k for k in expected if k not in seen]
    if missing:
        raise CaseFailure(f"expected series not found: {[_fmt(dict(k)) for k in missing]}")


def _check_failure(ev: Eval, exc: Exception) -> None:
    msg = str(exc)
    if ev.fail_msg is not None and ev.fail_msg != msg:
        raise CaseFailure(f"expected error {ev.fail_msg!r}, got {msg!r}")
    if ev.fail_regex is not None and not re.search(ev.fail_regex, msg):
        raise CaseFailure(f"expected error matching {ev.fail_regex!r}, got {msg!r}")


def pin_at(expr: ast.Expr, ts: int) -> ast.Expr:
    """``expr`` with ``@ ts`` on every selector and subquery that lacks one
    (not inside a subquery that has one), as promqltest's atModifierTestCases."""
    if isinstance(expr, ast.Selector):
        return expr if expr.at else dataclasses.replace(expr, at=ast.At("at", ts))
    if isinstance(expr, ast.Subquery):
        return expr if expr.at else dataclasses.replace(expr, at=ast.At("at", ts))
    if isinstance(expr, ast.Aggregate):
        param = pin_at(expr.param, ts) if expr.param is not None else None
        return dataclasses.replace(expr, expr=pin_at(expr.expr, ts), param=param)
    if isinstance(expr, ast.Binary):
        return dataclasses.replace(expr, lhs=pin_at(expr.lhs, ts), rhs=pin_at(expr.rhs, ts))
    if isinstance(expr, ast.Unary):
        return dataclasses.replace(expr, expr=pin_at(expr.expr, ts))
    if isinstance(expr, ast.Call):
        return dataclasses.replace(expr, args=[pin_at(a, ts) for a in expr.args])
    return expr


def _calls(expr: ast.Expr) -> Iterator[str]:
    if isinstance(expr, ast.Call):
        yield expr.name
    for f in dataclasses.fields(expr):  # type: ignore[arg-type]
        v = getattr(expr, f.name)
        if isinstance(v, list):
            for x in v:
                if dataclasses.is_dataclass(x) and not isinstance(x, ast.At):
                    yield from _calls(x)  # type: ignore[arg-type]
        elif dataclasses.is_dataclass(v) and not isinstance(v, ast.At):
            yield from _calls(v)  # type: ignore[arg-type]


def _selectors(expr: ast.Expr) -> Iterator[ast.Selector]:
    if isinstance(expr, ast.Selector):
        yield expr
        return
    for f in dataclasses.fields(expr):  # type: ignore[arg-type]
        v = getattr(expr, f.name)
        for x in v if isinstance(v, list) else [v]:
            if dataclasses.is_dataclass(x) and not isinstance(x, ast.At | type):
                yield from _selectors(x)  # type: ignore[arg-type]


def run_eval(engine: Engine, ev: Eval) -> None:
    """Run one eval as promqltest does; raise CaseFailure on a wrong answer."""
    if not ev.instant:
        try:
            res = engine.range(ev.expr, ev.start_ms, ev.end_ms, ev.step_ms)
        except PromQLError as exc:
            if ev.fail:
                _check_failure(ev, exc)
                return
            raise CaseFailure(f"error: {exc}") from exc
        if ev.fail:
            raise CaseFailure("expected an error, got none")
        compare(ev, res)
        return
    t = ev.end_ms if ev.range_vector else ev.start_ms
    queries: list[tuple[str | ast.Expr, int]] = [(ev.expr, t)]
    try:
        parsed = ast.parse(ev.expr)
    except PromQLError:
        parsed = None
    if parsed is not None and not (set(_calls(parsed)) & AT_UNSAFE):
        pinned = pin_at(parsed, t)
        others = [-10 * t, 0, t // 5, t, 10 * t] if t else [-1000, 0, 1000]
        queries += [(pinned, et) for et in others]
    exclude_range = ev.range_vector or ev.expected_string is not None
    for query, at in queries:
        try:
            res = engine.instant(query, at)
        except PromQLError as exc:
            if ev.fail:
                _check_failure(ev, exc)
                continue
            raise CaseFailure(f"error at {at}: {exc}") from exc
        if ev.fail:
            raise CaseFailure(f"expected an error at {at}, got none")
        try:
            compare(ev, res)
        except CaseFailure as exc:
            raise CaseFailure(f"at {at}: {exc}") from None
        if exclude_range or _QUERY_CONTEXT.search(ev.expr):
            continue
        try:
            rres = engine.range(query, at - 60_000, at + 60_000, 60_000)
        except PromQLError as exc:
            raise CaseFailure(f"range mode at {at}: error {exc}") from exc
        if ev.ordered:
            continue
        if res.result_type == "scalar":
            pts = [p for _, ps in rres.result for p in ps if p[0] == at]
            rres = QueryResult("scalar", pts[0] if pts else (at, math.nan))
        else:
            rows = []
            for labels, ps in rres.result:
                for p in ps:
                    if p[0] == at:
                        rows.append((labels, p))
            rres = QueryResult("vector", rows)
        try:
            compare(ev, rres)
        except CaseFailure as exc:
            raise CaseFailure(f"range mode at {at}: {exc}") from None


@dataclass
class Outcome:
    line: int
    expr: str
    status: str  # passed, failed, skipped
    detail: str = ""


def skip_reason(ev: Eval, histogram_names: set[str]) -> str | None:
    """Why ``ev`` cannot run on tinct at all, or None."""
    if ev.histograms:
        return "native histograms"
    idents = set(_IDENT.findall(ev.expr))
    if idents & histogram_names:
        return "native histograms"
    try:
        parsed = ast.parse(ev.expr)
    except Exception:
        parsed = None
    if parsed is not None and histogram_names:
        for sel in _selectors(parsed):
            names = [m for m in sel.matchers if m.name == "__name__"]
            if names and any(all(m.matches(h) for m in names) for h in histogram_names):
                return "native histograms"
    if idents & EXPERIMENTAL:
        for name in idents & EXPERIMENTAL:
            if re.search(rf"\b{name}\s*\(", ev.expr):
                return "experimental functions"
    return None


def run_script(
    text: str,
    open_store: Callable[[], AbstractContextManager[Any]],
    engine_factory: Callable[[Any], Engine] | None = None,
) -> list[Outcome]:
    """Run a whole ``.test`` file; ``open_store`` gives a fresh store per ``clear``."""
    outcomes: list[Outcome] = []
    cmds = parse_script(text)
    make_engine = engine_factory or (lambda store: Engine(store))
    stack: list[AbstractContextManager[Any]] = []

    def fresh() -> Any:
        while stack:
            stack.pop().__exit__(None, None, None)
        cm = open_store()
        store = cm.__enter__()
        stack.append(cm)
        return store

    store = fresh()
    engine = make_engine(store)
    histogram_names: set[str] = set()
    try:
        for cmd in cmds:
            if isinstance(cmd, Clear):
                store = fresh()
                engine = make_engine(store)
                histogram_names = set()
            elif isinstance(cmd, Load):
                builder = SampleBuilder()
                for labels, values in cmd.series:
                    for j, v in enumerate(values):
                        if v is not None:
                            builder.add_mapping(labels, j * cmd.interval_ms, v)
                if len(builder):
                    store.write_samples(builder.take())
                histogram_names |= cmd.histogram_names
            else:
                reason = skip_reason(cmd, histogram_names)
                if reason:
                    outcomes.append(Outcome(cmd.line, cmd.expr, "skipped", reason))
                    continue
                try:
                    run_eval(engine, cmd)
                    outcomes.append(Outcome(cmd.line, cmd.expr, "passed"))
                except CaseFailure as exc:
                    outcomes.append(Outcome(cmd.line, cmd.expr, "failed", str(exc)))
                except Exception as exc:  # a crash is a failed case, not a failed run
                    detail = f"crash: {type(exc).__name__}: {exc}"
                    outcomes.append(Outcome(cmd.line, cmd.expr, "failed", detail))
    finally:
        while stack:
            stack.pop().__exit__(None, None, None)
    return outcomes
