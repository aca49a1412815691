"""Resolving a dashboard's variables: their options, their current values.

:func:`resolve_variables` does what Grafana does when a dashboard opens or
its time range changes (``public/app/features/variables/`` and the scenes
variables of Grafana 10-12):

* a query variable runs its Prometheus variable query, in Grafana's forms
  (``packages/grafana-prometheus/src/metric_find_query.ts``):
  ``label_values(label)``, ``label_values(selector, label)``, ``label_names()``,
  ``label_names(selector)``, ``metrics(regex)``, ``query_result(expr)`` (each
  sample as ``name{labels} value timestamp``) or a bare selector (its series);
  its ``regex`` then filters and rewrites the options (a capture group, or
  named groups ``text``/``value``) and ``sort`` orders them
  (``metricNamesToVariableValues``, ``sortVariableValues``);
* a query that refers to other variables (``label_values(up{job="$job"},
  instance)``) is interpolated with their current values first, so variables
  are resolved in dependency order;
* the selection (from the URL, else the saved ``current``) is kept if it is
  among the options, else Grafana's rule picks: All when it was All and the
  variable has All, otherwise the first option;
* a datasource variable has the one option ``tinct``: tinct is the data
  source, of Prometheus type.

:class:`VariableScope` then turns the resolved variables (and a repeated
panel's own value) into what ``interpolate`` takes. Interpolation and Grafana's
intervals live in ``tinct.dashboards.interpolate`` and
``tinct.dashboards.intervals`` and are re-exported here; laying out repeated
panels and rows is ``tinct.dashboards.repeats.expand_repeats``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from tinct.dashboards.interpolate import builtins_for, interpolate, variable_names
from tinct.dashboards.intervals import (
    format_interval,
    interval_for,
    parse_interval,
    rate_interval,
)
from tinct.dashboards.model import ALL_VALUE, Dashboard, Variable
from tinct.dashboards.templating import custom_options
from tinct.dashboards.variable_options import filter_options, format_sample, sort_options
from tinct.dashboards.variable_source import InMemoryVariableSource, VariableSource

__all__ = [
    "ALL_VALUE",
    "DATASOURCE",
    "InMemoryVariableSource",
    "ResolvedVariable",
    "VariableScope",
    "VariableSource",
    "builtins_for",
    "format_interval",
    "interpolate",
    "interval_for",
    "parse_interval",
    "rate_interval",
    "resolve_variables",
    "variable_query_options",
]

logger = logging.getLogger(__name__)

# The one data source a datasource variable offers.
DATASOURCE = "tinct"
_PROMETHEUS_TYPES = ("prometheus", "")
# metric_find_query.ts and migrations/variableMigration.ts, applied after interpolation.
_LABEL_NAMES = re.compile(r"^label_names\(\)\s*$")
_LABEL_NAMES_MATCH = re.compile(r"^label_names\((.+)\)\s*$")
_LABEL_VALUES = re.compile(r"^label_values\((?:(.+),\s*)?([a-zA-Z_][a-zA-Z0-9_]*)\)\s*$")
_METRICS = re.compile(r"^metrics\((.+)\)\s*$")
_QUERY_RESULT = re.compile(r"^query_result\((.+)\)\s*$")


@dataclass(frozen=True)
class ResolvedVariable:
    """A variable with its options and current values, ready to draw and interpolate.

    Attributes:
        options: ``(text, value)`` pairs, ``("All", "$__all")`` first when the
            variable has All.
        current: the selected values (``["$__all"]`` for All).
        all_value: the custom value of All ("" for all options).
        auto_value: an interval variable's "auto" interval (``"5m"``).
        error: why the options could not be found ("" when they were).
    """

    name: str
    label: str
    type: str
    hide: int
    multi: bool
    include_all: bool
    options: list[tuple[str, str]] = field(default_factory=list)
    current: list[str] = field(default_factory=list)
    all_value: str = ""
    auto_value: str = ""
    description: str = ""
    error: str = ""

    @property
    def is_all(self) -> bool:
        """Whether All is selected."""
        return bool(self.current) and self.current[0] == ALL_VALUE

    def values(self) -> list[str]:
        """The selected values expanded: All as every option, "auto" as its interval."""
        if self.is_all:
            return self.option_values()
        if self.auto_value and self.current == [_auto_name(self.name)]:
            return [self.auto_value]
        return list(self.current)

    def option_values(self) -> list[str]:
        """The options' values, without All."""
        return [value for _, value in self.options if value != ALL_VALUE]

    def text(self, value: str) -> str:
        """The display text of ``value``."""
        return next((t for t, v in self.options if v == value), value)


@dataclass(frozen=True)
class VariableScope:
    """The variable values one query or title is interpolated with."""

    values: dict[str, list[str]]
    texts: dict[str, list[str]]
    multi: frozenset[str]
    all_values: dict[str, list[str]]
    custom_all: dict[str, str]

    @classmethod
    def of(
        cls, resolved: Sequence[ResolvedVariable], scoped: Mapping[str, str] | None = None
    ) -> VariableScope:
        """The scope of ``resolved`` variables, ``scoped`` ones (a repeat's) overriding."""
        values: dict[str, list[str]] = {}
        texts: dict[str, list[str]] = {}
        for r in resolved:
            values[r.name] = list(r.current)
            if r.auto_value and r.current == [_auto_name(r.name)]:
                values[r.name] = [r.auto_value]
            texts[r.name] = [r.text(v) for v in r.current]
        by_name = {r.name: r for r in resolved}
        for name, value in (scoped or {}).items():
            values[name] = [value]
            texts[name] = [by_name[name].text(value) if name in by_name else value]
        return cls(
            values=values,
            texts=texts,
            multi=frozenset(r.name for r in resolved if r.multi or r.include_all),
            all_values={r.name: r.option_values() for r in resolved},
            custom_all={r.name: r.all_value for r in resolved if r.all_value},
        )

    def interpolate(
        self,
        text: str,
        builtins: Mapping[str, str] | None = None,
        default_format: str | None = None,
    ) -> str:
        """``text`` interpolated in this scope (see ``tinct.dashboards.interpolate``)."""
        return interpolate(
            text,
            self.values,
            builtins,
            all_values=self.all_values,
            multi=self.multi,
            texts=self.texts,
            custom_all=self.custom_all,
            default_format=default_format,
        )


def _auto_name(name: str) -> str:
    # The value Grafana gives an interval variable's "auto" option.
    return f"$__auto_interval_{name}"


def resolve_variables(
    dashboard: Dashboard,
    selected: Mapping[str, Sequence[str]],
    source: VariableSource,
    start_s: float,
    end_s: float,
    *,
    scrape_interval_s: float = 15.0,
) -> list[ResolvedVariable]:
    """The dashboard's variables with options and current values, in dashboard order.

    Blocks while ``source`` answers (one call per query variable). A failing
    query does not raise: that variable gets no options and its ``error``.

    Args:
        dashboard: the dashboard.
        selected: the values picked (the URL's ``var-<name>``), by name.
        source: the Prometheus API the queries go to.
        start_s, end_s: the time range, Unix seconds.
        scrape_interval_s: the ``$__interval`` of variable queries (Grafana's
            data source interval).
    """
    builtins = builtins_for(start_s, end_s, scrape_interval_s, scrape_interval_s)
    variables = {v.name: v for v in dashboard.variables}
    done: dict[str, ResolvedVariable] = {}
    visiting: set[str] = set()

    def visit(variable: Variable) -> None:
        if variable.name in done or variable.name in visiting:
            return  # resolved, or a cycle: the later one sees the name uninterpolated
        visiting.add(variable.name)
        for name in sorted(variable_names(variable.query) | variable_names(variable.regex)):
            if name in variables and name != variable.name:
                visit(variables[name])
        earlier = [done[v.name] for v in dashboard.variables if v.name in done]
        scope = VariableScope.of(earlier)
        done[variable.name] = _resolve(
            variable, selected.get(variable.name), scope, builtins, source, start_s, end_s
        )
        visiting.discard(variable.name)

    for variable in dashboard.variables:
        visit(variable)
    return [done[v.name] for v in dashboard.variables]


def _resolve(
    variable: Variable,
    wanted: Sequence[str] | None,
    scope: VariableScope,
    builtins: Mapping[str, str],
    source: VariableSource,
    start_s: float,
    end_s: float,
) -> ResolvedVariable:
    error = ""
    auto_value = ""
    kind = variable.type
    options: list[tuple[str, str]] = list(variable.options)
    if kind == "query":
        if variable.refresh != 0 or not options:
            try:
                found = variable_query_options(
                    scope.interpolate(variable.query, builtins), source, start_s, end_s
                )
                regex = scope.interpolate(variable.regex, builtins, "regex")
                options = sort_options(filter_options(found, regex), variable.sort)
            except Exception as exc:  # a bad query is shown on the variable, not raised
                logger.warning("variable %s: %s", variable.name, exc)
                options, error = [], str(exc) or type(exc).__name__
    elif kind == "custom" and "$" in variable.query:
        options = list(custom_options(scope.interpolate(variable.query, builtins, "raw")))
    elif kind == "datasource":
        options = [(DATASOURCE, DATASOURCE)] if variable.query in _PROMETHEUS_TYPES else []
        if not options:
            error = f"tinct has no data source of type {variable.query!r}"
    elif kind == "interval" and variable.auto:
        try:
            minimum = parse_interval(variable.auto_min) if variable.auto_min else 0.0
        except ValueError as exc:
            minimum, error = 0.0, f"auto_min: {exc}"
        auto_value = format_interval(interval_for(end_s - start_s, variable.auto_count, minimum))
        options.insert(0, ("auto", _auto_name(variable.name)))
    elif not variable.supported:
        options, error = [], f"variables of type {kind!r} are not supported"
    if variable.include_all and kind not in ("constant", "textbox", "datasource"):
        options.insert(0, ("All", ALL_VALUE))
    if isinstance(wanted, str):  # one value given bare rather than as a list
        wanted = [wanted]
    chosen = list(wanted) if wanted is not None else list(variable.current)
    return ResolvedVariable(
        name=variable.name,
        label=variable.label,
        type=kind,
        hide=variable.hide,
        multi=variable.multi,
        include_all=variable.include_all,
        options=options,
        current=_current(variable, options, chosen),
        all_value=variable.all_value,
        auto_value=auto_value,
        description=variable.description,
        error=error,
    )


def _current(variable: Variable, options: list[tuple[str, str]], wanted: list[str]) -> list[str]:
    if variable.type == "constant":
        return [variable.query]
    if variable.type == "textbox":
        return [wanted[0]] if wanted else [variable.query]
    values = [v for _, v in options if v != ALL_VALUE]
    by_text = {t: v for t, v in options if v != ALL_VALUE}
    if wanted and wanted[0] == ALL_VALUE and variable.include_all:
        return [ALL_VALUE]
    # A selection may name an option by its value or, as Grafana's URL sync
    # allows, by its text.
    kept: list[str] = []
    for w in wanted:
        value = w if w in values else by_text.get(w)
        if value is not None and value not in kept:
            kept.append(value)
    if kept:
        return kept if variable.multi else kept[:1]
    return values[:1]


def variable_query_options(
    query: str, source: VariableSource, start_s: float, end_s: float
) -> list[tuple[str, str]]:
    """The ``(text, value)`` options of an interpolated Prometheus variable query.

    Raises:
        Exception: whatever ``source`` raises for a bad query or an unreachable API.
    """
    query = query.strip()
    if not query:
        return []
    if _LABEL_NAMES.match(query):
        return _same(source.label_names([], start_s, end_s))
    named = _LABEL_NAMES_MATCH.match(query)
    if named:
        arg = named.group(1).strip()
        # Grafana reads label_names(x) as metric names containing x; a
        # selector (up{job="a"}) is used as one.
        selector = arg if "{" in arg else f'{{__name__=~".*{arg}.*"}}'
        return _same(source.label_names([selector], start_s, end_s))
    values = _LABEL_VALUES.match(query)
    if values:
        selector = (values.group(1) or "").strip()
        matchers = [selector] if selector.replace(" ", "") not in ("", "{}") else []
        return _same(source.label_values(values.group(2), matchers, start_s, end_s))
    metrics = _METRICS.match(query)
    if metrics:
        pattern = re.compile(metrics.group(1))
        names = source.label_values("__name__", [], start_s, end_s)
        return _same([n for n in names if pattern.search(n)])
    result = _QUERY_RESULT.match(query)
    if result:
        return _same(
            [
                format_sample(labels, value, end_s)
                for labels, value in source.query(result.group(1), end_s)
            ]
        )
    if query in ("label_values()", "metrics()", "query_result()"):
        return []
    # A bare selector: its series, as name{labels} (metricNameAndLabelsQuery).
    return _same([format_sample(labels, None, end_s) for labels, _ in source.query(query, end_s)])


def _same(texts: Sequence[str]) -> list[tuple[str, str]]:
    return [(t, t) for t in texts]
