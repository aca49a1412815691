"""Rule unit tests in ``promtool test rules`` format, run on tinct's engine and evaluator.

A team's rule tests written for Prometheus must pass or fail the same way
against tinct (docs "Unit testing for rules",
https://prometheus.io/docs/prometheus/latest/configuration/unit_testing_rules/;
behaviour of ``cmd/promtool/unittest.go``)::

    rule_files: [alerts.yml]          # globs, relative to this file
    evaluation_interval: 1m           # default 1m
    group_eval_order: [g1, g2]        # default: file order
    tests:
      - interval: 1m                  # input series step; default evaluation_interval
        name: optional
        external_labels: {...}
        external_url: http://...
        input_series:
          - series: 'up{job="a"}'
            values: '1+0x10 _ stale 0x5'
        alert_rule_test:
          - eval_time: 10m
            alertname: InstanceDown
            exp_alerts: [{exp_labels: {...}, exp_annotations: {...}}]
        promql_expr_test:
          - expr: job:up:sum
            eval_time: 1m
            exp_samples: [{labels: 'job:up:sum{job="a"}', value: 1}]

Each test loads its series into a fresh :class:`InMemoryMetricStore`, then
evaluates every group at 0, interval, 2*interval... up to the largest
``eval_time``, writing rule output back into the store (so recording rules
feed alerts and later queries). Alerts are compared at the last evaluation at
or before their ``eval_time``, only the firing ones, labels (``alertname``
added) and annotations as sets. Sample values compare with a relative
tolerance of 1e-6, as newer promtools do (2.42 compared exactly).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tinct.alerting.rules import AlertingRule, RuleFileError, RuleGroup, load_rule_files
from tinct.durations import format_duration, parse_duration
from tinct.metrics import STALE_NAN, SampleBuilder, sorted_labels
from tinct.promql import ast
from tinct.promql.engine import Engine
from tinct.promql.result import PromQLError

__all__ = ["UnitTestError", "expand_values", "parse_series", "run_test_file"]

_EPSILON = 1e-6
_FILE_KEYS = {"rule_files", "evaluation_interval", "group_eval_order", "tests"}
_TEST_KEYS = {
    "interval",
    "input_series",
    "alert_rule_test",
    "promql_expr_test",
    "external_labels",
    "external_url",
    "name",
}
_NUM = r"[+-]?(?:[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?|Inf|inf|NaN|nan)"
_ITEM = re.compile(rf"^(?P<a>{_NUM})(?:(?P<op>[+-])(?P<b>{_NUM}))?x(?P<n>[0-9]+)$")


class UnitTestError(ValueError):
    """The test file itself is invalid (not a failing test)."""


def expand_values(text: str) -> list[float | None]:
    """Expand promtool's ``values`` (``1+2x3 _ _x2 stale 5``); None is no sample.

    ``a+bxn`` is n+1 values a, a+b, ... a+n*b; ``_xn`` is n gaps; ``stale``
    is a staleness marker (promql/parser's series description grammar).

    Raises:
        UnitTestError: an item is not one of these forms.
    """
    out: list[float | None] = []
    for tok in str(text).split():
        if tok == "_":
            out.append(None)
        elif tok.startswith("_x") and tok[2:].isdigit():
            out.extend([None] * int(tok[2:]))
        elif tok == "stale":
            out.append(STALE_NAN)
        elif (m := _ITEM.match(tok)) is not None:
            a = float(m.group("a"))
            b = float(m.group("b")) if m.group("b") else 0.0
            b = -b if m.group("op") == "-" else b
            out.extend(a + i * b for i in range(int(m.group("n")) + 1))
        else:
            try:
                out.append(float(tok))
            except ValueError:
                raise UnitTestError(f"invalid value {tok!r} in series values {text!r}") from None
    return out


def parse_series(text: str) -> dict[str, str]:
    """Labels of a series written as a selector: ``up{job="a"}`` or ``{__name__="up"}``.

    Raises:
        UnitTestError: not a selector of ``=`` matchers.
    """
    try:
        node = ast.parse(text)
    except PromQLError as exc:
        raise UnitTestError(f"labels {text!r}: {exc}") from None
    if not isinstance(node, ast.Selector) or node.range_ms is not None:
        raise UnitTestError(f"labels {text!r}: not a series selector")
    labels: dict[str, str] = {}
    for m in node.matchers:
        if m.op != "=":
            raise UnitTestError(f"labels {text!r}: only = matchers are allowed")
        labels[m.name] = m.value
    return labels


@dataclass
class _Alert:
    labels: tuple[tuple[str, str], ...]
    annotations: tuple[tuple[str, str], ...]


def _duration(value: Any, what: str) -> int:
    try:
        return int(round(parse_duration("0" if value is None else str(value)) * 1000))
    except ValueError as exc:
        raise UnitTestError(f"{what}: {exc}") from None


def _labels_text(labels: Sequence[tuple[str, str]]) -> str:
    def q(v: str) -> str:
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

    return "{" + ", ".join(f"{k}={q(v)}" for k, v in labels) + "}"


def _alerts_text(alerts: list[_Alert]) -> str:
    if not alerts:
        return "[]"
    parts = []
    for i, a in enumerate(alerts):
        body = f"Labels:{_labels_text(a.labels)}\nAnnotations:{_labels_text(a.annotations)}"
        parts.append(f"{i}:" + _indent("\n" + body, "  "))
    return "[\n" + ",\n".join(parts) + "\n]"


def _indent(text: str, indent: str) -> str:
    return text.replace("\n", "\n" + indent)


def _float_e(v: float) -> str:
    """``strconv.FormatFloat(v, 'E', -1, 64)``, as promtool prints sample values."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    for prec in range(17):
        text = f"{v:.{prec}E}"
        if float(text) == v:
            return text
    return f"{v:.17E}"


def _samples_text(samples: list[tuple[tuple[tuple[str, str], ...], float]]) -> str:
    return ", ".join(f"{_labels_text(lb)} {_float_e(v)}" for lb, v in samples)


def _close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or abs(a - b) <= _EPSILON * max(abs(a), abs(b))


def _order_groups(groups: list[RuleGroup], order: list[str]) -> list[RuleGroup]:
    if not order:
        return groups
    rank = {name: i for i, name in enumerate(order)}
    return sorted(groups, key=lambda g: rank.get(g.name, 0))


def run_test_file(path: Path | str) -> list[str]:
    """Run one promtool unit test file; returns the failures (empty: passed).

    Each failure is promtool's text for it (``    alertname: X, time: 10m, ...``).
    Problems with the file itself (bad YAML, unknown keys, bad rule files)
    are returned as failures too, as promtool reports them.
    """
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        return [str(exc)]
    # Template failures are part of the expected annotations (promtool logs nowhere).
    quiet = logging.getLogger("tinct.alerting")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        return _run(doc, path)
    except (UnitTestError, RuleFileError) as exc:
        return [str(exc)]
    finally:
        quiet.setLevel(level)


def _run(doc: Any, path: Path) -> list[str]:
    if not isinstance(doc, dict):
        raise UnitTestError("a test file is a mapping (rule_files, tests...)")
    unknown = set(doc) - _FILE_KEYS
    if unknown:
        raise UnitTestError(f"field {sorted(unknown)[0]} not found in unit test file")
    eval_ms = _duration(doc.get("evaluation_interval"), "evaluation_interval") or 60_000
    order = [str(g) for g in doc.get("group_eval_order") or []]
    if len(set(order)) != len(order):
        dup = next(g for g in order if order.count(g) > 1)
        raise UnitTestError(f"group name repeated in evaluation order: {dup}")
    rule_files = [str(f) for f in doc.get("rule_files") or []]
    errors: list[str] = []
    for test in doc.get("tests") or []:
        if not isinstance(test, dict) or set(test) - _TEST_KEYS:
            extra = sorted(set(test) - _TEST_KEYS) if isinstance(test, dict) else ["?"]
            raise UnitTestError(f"field {extra[0]} not found in test group")
        groups = load_rule_files(rule_files, base_dir=path.parent)
        errors.extend(_run_test(test, eval_ms, _order_groups(groups, order)))
    return errors


def _run_test(test: dict[str, Any], eval_ms: int, groups: list[RuleGroup]) -> list[str]:
    from tinct.alerting.evaluator import RuleEvaluator
    from tinct.storage.memory_metrics import InMemoryMetricStore

    interval_ms = _duration(test.get("interval"), "interval") or eval_ms
    store = InMemoryMetricStore()
    builder = SampleBuilder()
    for item in test.get("input_series") or []:
        labels = parse_series(str(item.get("series", "")))
        key = sorted_labels(labels)
        for i, value in enumerate(expand_values(item.get("values", ""))):
            if value is not None:
                builder.add(key, i * interval_ms, value)
    if len(builder):
        store.write_samples(builder.take())
    engine = Engine(store)
    name = test.get("name") or ""
    alert_tests = list(test.get("alert_rule_test") or [])
    expr_tests = list(test.get("promql_expr_test") or [])
    for case in alert_tests:
        if not case.get("alertname"):
            where = f" (in TestGroup {name})" if name else ""
            raise UnitTestError(
                "an item under alert_rule_test misses required attribute alertname at "
                f"eval_time {case.get('eval_time')}{where}"
            )
    alert_times = sorted({_duration(c.get("eval_time"), "eval_time") for c in alert_tests})
    max_ms = max(
        [*alert_times, *(_duration(c.get("eval_time"), "eval_time") for c in expr_tests), 0]
    )
    evaluator = RuleEvaluator(
        engine,
        groups,
        sink=store.write_samples,
        external_labels={str(k): str(v) for k, v in (test.get("external_labels") or {}).items()},
        external_url=str(test.get("external_url") or ""),
        default_interval_s=interval_ms / 1000,
    )
    errors: list[str] = []
    current = 0
    prefix = f"    name: {name},\n" if name else ""
    ts = 0
    while ts <= max_ms:
        eval_errors: list[str] = []
        for group in groups:
            evaluator.evaluate(group, ts)
        for status in evaluator.groups():
            for rule in status.rules:
                if rule.health == "err":
                    rule_name = (
                        rule.rule.alert if isinstance(rule.rule, AlertingRule) else rule.rule.record
                    )
                    eval_errors.append(
                        f"    rule: {rule_name}, time: {format_duration(ts / 1000)}, "
                        f"err: {rule.last_error}"
                    )
        if eval_errors:
            return errors + eval_errors
        while current < len(alert_times) and ts <= alert_times[current] < ts + eval_ms:
            at = alert_times[current]
            errors.extend(_check_alerts(evaluator, alert_tests, at, prefix))
            current += 1
        ts += eval_ms
    for case in expr_tests:
        errors.extend(_check_expr(engine, case, prefix))
    return errors


def _check_alerts(
    evaluator: Any, cases: list[dict[str, Any]], at_ms: int, prefix: str
) -> list[str]:
    got: dict[str, list[_Alert]] = {}
    for status in evaluator.groups():
        for rule in status.rules:
            alert_name = getattr(rule.rule, "alert", None)
            if alert_name is None:
                continue
            for alert in rule.alerts:
                if alert.state == "firing":
                    got.setdefault(alert_name, []).append(
                        _Alert(tuple(alert.labels), sorted_labels(alert.annotations))
                    )
    errors = []
    for case in cases:
        if _duration(case.get("eval_time"), "eval_time") != at_ms:
            continue
        alert_name = str(case["alertname"])
        exp = []
        for a in case.get("exp_alerts") or []:
            labels = {str(k): str(v) for k, v in (a.get("exp_labels") or {}).items()}
            labels["alertname"] = alert_name
            annotations = {str(k): str(v) for k, v in (a.get("exp_annotations") or {}).items()}
            exp.append(_Alert(sorted_labels(labels), sorted_labels(annotations)))
        have = sorted(got.get(alert_name, []), key=lambda x: (x.labels, x.annotations))
        exp.sort(key=lambda x: (x.labels, x.annotations))
        if exp != have:
            errors.append(
                f"{prefix}    alertname: {alert_name}, time: {format_duration(at_ms / 1000)}, \n"
                f"        exp:{_indent(_alerts_text(exp), '            ')}, \n"
                f"        got:{_indent(_alerts_text(have), '            ')}"
            )
    return errors


def _check_expr(engine: Engine, case: dict[str, Any], prefix: str) -> list[str]:
    expr = str(case.get("expr", ""))
    at_ms = _duration(case.get("eval_time"), "eval_time")
    head = f'{prefix}    expr: "{expr}", time: {format_duration(at_ms / 1000)}'
    try:
        result = engine.instant(expr, at_ms)
    except PromQLError as exc:
        return [f"{head}, err: {exc}"]
    if result.result_type == "vector":
        got = [(sorted_labels(lb), float(p[1])) for lb, p in result.result]
    elif result.result_type == "scalar":
        got = [((), float(result.result[1]))]
    else:
        return [f"{head}, err: rule result is not a vector or scalar"]
    exp = []
    for s in case.get("exp_samples") or []:
        try:
            labels = parse_series(str(s.get("labels", "{}")))
        except UnitTestError as exc:
            return [f"{head}, err: {exc}"]
        exp.append((sorted_labels(labels), float(s.get("value", 0))))
    got.sort(key=lambda x: x[0])
    exp.sort(key=lambda x: x[0])
    same = len(got) == len(exp) and all(
        g[0] == e[0] and _close(g[1], e[1]) for g, e in zip(got, exp, strict=True)
    )
    if same:
        return []
    return [f"{head},\n        exp: {_samples_text(exp)}\n        got: {_samples_text(got)}"]
