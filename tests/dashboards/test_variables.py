"""Variables as Grafana resolves them: queries, regex, sort, interpolation, intervals, repeats."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import promql_parser
import pytest

from tests.peer_suites import peer_suites_dir
from tinct.dashboards.interpolate import builtins_for, interpolate
from tinct.dashboards.intervals import (
    format_interval,
    interval_for,
    parse_interval,
    rate_interval,
    round_interval,
)
from tinct.dashboards.model import Dashboard, GridPos, parse_dashboard
from tinct.dashboards.repeats import expand_repeats
from tinct.dashboards.variable_options import filter_options, sort_options
from tinct.dashboards.variables import (
    InMemoryVariableSource,
    ResolvedVariable,
    VariableScope,
    resolve_variables,
    variable_query_options,
)

NODE_EXPORTER_FULL = peer_suites_dir() / "grafana-dashboards" / "node-exporter-full.json"
HOUR = 3600.0

SERIES = [
    {"__name__": "up", "job": "node", "instance": "a:9100"},
    {"__name__": "up", "job": "node", "instance": "b:9100"},
    {"__name__": "up", "job": "api", "instance": "c:8080"},
    {"__name__": "node_load1", "job": "node", "instance": "a:9100", "extra": "x"},
    {"__name__": "process_cpu_seconds_total", "job": "api", "instance": "c:8080"},
]


def _values(options: Sequence[tuple[str, str]]) -> list[str]:
    return [value for _, value in options]


# --- the in-memory source ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("selectors", "instances"),
    [
        (['up{job="node"}'], ["a:9100", "b:9100"]),
        (['up{job=~"no"}'], []),  # regexes are anchored
        (['up{job=~"no.*"}'], ["a:9100", "b:9100"]),
        (['up{job!~"node"}'], ["c:8080"]),
        (['up{job!="node"}'], ["c:8080"]),
        (['{__name__=~"up|node_load1", job!="node"}'], ["c:8080"]),
        (['up{extra=""}'], ["a:9100", "b:9100", "c:8080"]),  # absent matches ""
        (['node_load1{extra!=""}', 'up{job="api"}'], ["a:9100", "c:8080"]),  # a union
        ([], ["a:9100", "b:9100", "c:8080"]),
    ],
)
def test_in_memory_source_matches_like_prometheus(
    selectors: list[str], instances: list[str]
) -> None:
    source = InMemoryVariableSource(SERIES)
    assert source.label_values("instance", selectors, 0, HOUR) == instances


def test_in_memory_source_rejects_invalid_selectors() -> None:
    with pytest.raises(Exception, match="parse error"):
        InMemoryVariableSource(SERIES).label_values("job", ["up{"], 0, HOUR)


# --- query forms ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("label_values(job)", ["api", "node"]),
        ('label_values(up{job="node"}, instance)', ["a:9100", "b:9100"]),
        ('label_values(up{job="node", instance=~"a.*"},instance)', ["a:9100"]),
        ("label_values({}, job)", ["api", "node"]),
        ("label_names()", ["__name__", "extra", "instance", "job"]),
        ('label_names(up{job="api"})', ["__name__", "instance", "job"]),
        ("label_names(load)", ["__name__", "extra", "instance", "job"]),
        ("metrics(^up|cpu)", ["process_cpu_seconds_total", "up"]),
        ("metrics(load)", ["node_load1"]),
        (
            "query_result(up == 1)",
            ['up{instance="a:9100",job="node"} 1 3600000', '{job="x"} 0.25 3600000'],
        ),
        ('up{job="api"}', ['up{instance="c:8080",job="api"}']),
        ("label_values()", []),
        ("", []),
    ],
)
def test_variable_query_forms(query: str, expected: list[str]) -> None:
    source = InMemoryVariableSource(
        SERIES,
        {
            "up == 1": [
                ({"__name__": "up", "job": "node", "instance": "a:9100"}, 1.0),
                ({"job": "x"}, 0.25),
            ],
            'up{job="api"}': [({"__name__": "up", "job": "api", "instance": "c:8080"}, 1.0)],
        },
    )
    options = variable_query_options(query, source, 0, HOUR)
    assert _values(options) == expected
    assert all(text == value for text, value in options)


# --- regex and sort ------------------------------------------------------------------------


def _opts(*values: str) -> list[tuple[str, str]]:
    return [(v, v) for v in values]


@pytest.mark.parametrize(
    ("regex", "values", "expected"),
    [
        ("/(.*):\\d+/", ["web1:9100", "db:9100", "nope"], [("web1", "web1"), ("db", "db")]),
        ("web.*", ["web1:9100", "xweb"], [("web1:9100", "web1:9100")]),  # bare: anchored
        ("/web/", ["web1:9100", "xweb", "db"], [("web1:9100", "web1:9100"), ("xweb", "xweb")]),
        ("/(?<text>[^:]+):(?<value>\\d+)/", ["web1:9100"], [("web1", "9100")]),
        ("/(?<value>\\d+)/", ["web:9100", "web1:9100"], [("9100", "9100"), ("1", "1")]),
        ("/(?<text>[a-z]+)/", ["web1"], [("web", "web")]),
        ("/(\\d)/g", ["a1b2"], [("1", "1"), ("2", "2")]),
        ("/(.*):/", ["a:1", "a:2", "b:1"], [("a", "a"), ("b", "b")]),  # unique by value
        ("/WEB/i", ["web"], [("web", "web")]),
        ("", ["b", "a", "b"], [("b", "b"), ("a", "a")]),
    ],
)
def test_regex_filter(regex: str, values: list[str], expected: list[tuple[str, str]]) -> None:
    assert filter_options(_opts(*values), regex) == expected


def test_invalid_regex_is_an_error() -> None:
    with pytest.raises(ValueError, match="not a valid regular expression"):
        filter_options(_opts("a"), "/(/")


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        (0, ["srv10", "srv2", "Srv1", "db3", "db12"]),
        (1, ["Srv1", "db12", "db3", "srv10", "srv2"]),
        (2, ["srv2", "srv10", "db3", "db12", "Srv1"]),
        (3, ["Srv1", "srv2", "db3", "srv10", "db12"]),
        (4, ["db12", "srv10", "db3", "srv2", "Srv1"]),
        (5, ["db12", "db3", "Srv1", "srv10", "srv2"]),
        (6, ["srv2", "srv10", "Srv1", "db3", "db12"]),
        (7, ["db3", "db12", "Srv1", "srv2", "srv10"]),
        (8, ["srv10", "srv2", "Srv1", "db12", "db3"]),
    ],
)
def test_sort_modes(sort: int, expected: list[str]) -> None:
    options = _opts("srv10", "srv2", "Srv1", "db3", "db12")
    assert _values(sort_options(options, sort)) == expected


# --- interpolation -------------------------------------------------------------------------

VALUES = {"host": ["a.b", "c"], "one": ["x.y"], "job": ["node"], "nodename": ["n1"]}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('up{job="$job"}', 'up{job="node"}'),
        ('up{job="${job}"} [[job]]', 'up{job="node"} node'),
        ('up{h=~"$host"}', 'up{h=~"(a\\\\.b|c)"}'),  # multi: regex-escaped, (a|b)
        ('up{h=~"$one"}', 'up{h=~"x\\\\.y"}'),  # multi, one value: escaped, no parens
        ('up{h="$single"}', 'up{h="x.y"}'),  # single value: as is
        ("$nodename/$node", "n1/$node"),  # the longest name; unknown names stay
        ("${nope:csv} [[nope]] $__nope", "${nope:csv} [[nope]] $__nope"),
        ("${host:csv}", "a.b,c"),
        ("${host:pipe}", "a.b|c"),
        ("${host:regex}", "(a\\.b|c)"),
        ("${one:regex}", "x\\.y"),
        ("${host:glob} ${one:glob}", "{a.b,c} x.y"),
        ("${host:json} ${job:json}", '["a.b","c"] node'),
        ("${host:raw}", "a.b,c"),
        ("${host:text}", "A.B + C"),
        ("${host:queryparam}", "var-host=a.b&var-host=c"),
        ("${host:singlequote}", "'a.b','c'"),
        ("${host:doublequote}", '"a.b","c"'),
        ("${host:sqlstring}", "'a.b','c'"),
        ("${host:percentencode}", "%7Ba.b%2Cc%7D"),
        ("${host:distributed}", "a.b,host=c"),
        ("${host:join: or }", "a.b or c"),
        ("${host:lucene}", "{a.b,c}"),  # not supported: glob, Grafana's fallback
    ],
)
def test_interpolate(text: str, expected: str) -> None:
    values = {**VALUES, "single": ["x.y"]}
    texts = {"host": ["A.B", "C"]}
    assert interpolate(text, values, multi={"host", "one"}, texts=texts) == expected


def test_interpolate_escapes_for_promql_strings() -> None:
    values = {"path": ['C:\\ "x"'], "many": ["C:\\", 'a"b']}
    assert interpolate('{p="$path"}', values) == '{p="C:\\\\ \\"x\\""}'
    assert interpolate('{p=~"$many"}', values, multi={"many"}) == ('{p=~"(C:\\\\\\\\|a\\\\\\"b)"}')
    # A value that is a whole matcher is left alone.
    assert interpolate("{$m}", {"m": ['job="a"']}) == '{job="a"}'


def test_interpolate_all() -> None:
    values = {"host": ["$__all"], "job": ["node"]}
    all_values = {"host": ["a", "b.c"]}
    assert interpolate('{h=~"$host"}', values, all_values=all_values) == '{h=~"(a|b\\\\.c)"}'
    assert interpolate("${host:csv}", values, all_values=all_values) == "a,b.c"
    assert interpolate("${host:text}", values, all_values=all_values) == "All"
    custom = {"host": "$job.*"}
    assert interpolate('{h=~"$host"}', values, all_values=all_values, custom_all=custom) == (
        '{h=~"node.*"}'
    )
    assert interpolate("${host:queryparam}", values) == "var-host=$__all"
    assert interpolate('{h=~"$host"}', values) == '{h=~".*"}'  # no options given


def test_builtins() -> None:
    builtins = builtins_for(1_700_000_000, 1_700_003_600, 5.0)
    assert builtins == {
        "__interval": "5s",
        "__interval_ms": "5000",
        "__rate_interval": "1m",
        "__rate_interval_ms": "60000",
        "__range": "3600s",
        "__range_s": "3600",
        "__range_ms": "3600000",
        "__from": "1700000000000",
        "__to": "1700003600000",
    }
    text = "rate(x[$__rate_interval]) $__interval_ms ${__range} ${__from:date:seconds} ${__to:date}"
    assert interpolate(text, {}, builtins) == (
        "rate(x[1m]) 5000 3600s 1700000000 2023-11-14T23:13:20.000Z"
    )


# --- intervals -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("range_s", "points", "minimum", "expected"),
    [
        (HOUR, 1000, 0, 5.0),  # 3.6 s -> 5 s
        (6 * HOUR, 1000, 0, 20.0),  # 21.6 s -> 20 s
        (24 * HOUR, 1000, 0, 60.0),  # 86.4 s -> 1 m
        (7 * 24 * HOUR, 1000, 0, 600.0),  # 604.8 s -> 10 m
        (30 * 24 * HOUR, 1000, 0, 1800.0),  # 2592 s -> 30 m
        (300, 1000, 0, 0.2),  # 300 ms -> 200 ms
        (HOUR, 1000, 15, 15.0),  # not below the minimum
        (HOUR, 100, 0, 30.0),  # 36 s -> 30 s
        (365 * 24 * HOUR, 10, 0, 2_592_000.0),  # 36.5 d -> 30 d
        (365 * 24 * HOUR, 5, 0, 31_536_000.0),  # 73 d -> 1 y
    ],
)
def test_interval_for_matches_grafana(
    range_s: float, points: int, minimum: float, expected: float
) -> None:
    assert interval_for(range_s, points, minimum) == pytest.approx(expected)


def test_round_interval_table_edges() -> None:
    assert [round_interval(ms) for ms in (9, 10, 7_499, 7_500, 44_999, 45_000)] == [
        1,
        10,
        5_000,
        10_000,
        30_000,
        60_000,
    ]
    with pytest.raises(ValueError, match="max_data_points must be at least 1"):
        interval_for(HOUR, 0)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (5, "5s"),
        (15, "15s"),
        (60, "1m"),
        (90, "90s"),
        (7200, "2h"),
        (5400, "90m"),
        (86400, "1d"),
        (604800, "7d"),
        (31_536_000, "1y"),
        (0.2, "200ms"),
        (0, "0s"),
    ],
)
def test_format_interval(seconds: float, text: str) -> None:
    assert format_interval(seconds) == text
    assert text == "0s" or parse_interval(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        (">10s", 10),
        ("1m", 60),
        ("1.5h", 5400),
        ("500ms", 0.5),
        ("60", 60),
        ("1w", 604800),
        ("1M", 2_592_000),
        ("1y", 31_536_000),
    ],
)
def test_parse_interval(text: str, seconds: float) -> None:
    assert parse_interval(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "1x", "-5s", "$__interval", "5s5m"])
def test_parse_interval_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="is not an interval"):
        parse_interval(text)


def test_rate_interval_is_grafanas_definition() -> None:
    assert rate_interval(5, 15) == 60  # 4 scrapes
    assert rate_interval(60, 15) == 75  # interval + one scrape
    assert rate_interval(30, 30) == 120


# --- resolving variables -------------------------------------------------------------------


def _node_exporter_full() -> Dashboard:
    if not NODE_EXPORTER_FULL.is_file():
        pytest.skip(f"peer suite dashboard not found at {NODE_EXPORTER_FULL}")
    return parse_dashboard(json.loads(NODE_EXPORTER_FULL.read_text()), NODE_EXPORTER_FULL.name)


UNAME = [
    {"__name__": "node_uname_info", "job": "node", "nodename": "web2", "instance": "web2:9100"},
    {"__name__": "node_uname_info", "job": "node", "nodename": "web1", "instance": "web1:9100"},
    {"__name__": "node_uname_info", "job": "db", "nodename": "db1", "instance": "db1:9100"},
]


def _current(resolved: list[ResolvedVariable]) -> dict[str, list[str]]:
    return {r.name: r.current for r in resolved}


def test_node_exporter_full_variables_resolve_in_dependency_order() -> None:
    dash = _node_exporter_full()
    source = InMemoryVariableSource(UNAME)
    resolved = resolve_variables(dash, {}, source, 0, HOUR)
    assert [r.name for r in resolved] == ["ds_prometheus", "job", "nodename", "node"]
    by_name = {r.name: r for r in resolved}
    assert by_name["ds_prometheus"].options == [("tinct", "tinct")]
    assert _values(by_name["job"].options) == ["db", "node"]  # sort 1
    assert _current(resolved) == {
        "ds_prometheus": ["tinct"],
        "job": ["db"],
        "nodename": ["db1"],
        "node": ["db1:9100"],
    }

    source = InMemoryVariableSource(UNAME)
    resolved = resolve_variables(dash, {"job": ["node"], "nodename": ["web2"]}, source, 0, HOUR)
    assert _current(resolved)["node"] == ["web2:9100"]
    assert _values(resolved[2].options) == ["web1", "web2"]
    assert source.calls == [
        ("label_values", "job", "node_uname_info"),
        ("label_values", "nodename", 'node_uname_info{job="node"}'),
        ("label_values", "instance", 'node_uname_info{job="node", nodename="web2"}'),
    ]

    expr = next(dash.panels()).targets[0].expr
    scope = VariableScope.of(resolved)
    assert scope.interpolate(expr, builtins_for(0, HOUR, interval_for(HOUR, 1000, 5))) == (
        'rate(node_pressure_cpu_waiting_seconds_total{instance="web2:9100",job="node"}[1m])'
    )
    assert scope.interpolate("${ds_prometheus}") == "tinct"


def test_node_exporter_full_every_expr_interpolates_to_valid_promql() -> None:
    dash = _node_exporter_full()
    resolved = resolve_variables(dash, {"job": ["node"]}, InMemoryVariableSource(UNAME), 0, HOUR)
    scope = VariableScope.of(resolved)
    builtins = builtins_for(0, HOUR, interval_for(HOUR, 1000, 15))
    exprs = [t.expr for p in dash.panels() for t in p.targets if t.expr]
    failures = []
    for expr in exprs:
        text = scope.interpolate(expr, builtins)
        try:
            promql_parser.parse(text)
        except BaseException as exc:  # the extension raises ValueError, or panics
            if isinstance(exc, KeyboardInterrupt):
                raise
            failures.append((text, str(exc)))
        assert "$" not in text, text
    assert len(exprs) == 286
    assert failures == []


def _dash(variables: list[dict[str, Any]], panels: list[dict[str, Any]] | None = None) -> Dashboard:
    return parse_dashboard(
        {"title": "t", "templating": {"list": variables}, "panels": panels or []}
    )


JOB_QUERY = {"name": "job", "type": "query", "query": "label_values(up, job)", "sort": 1}


@pytest.mark.parametrize(
    ("variable", "selected", "current"),
    [
        (JOB_QUERY, None, ["api"]),  # nothing saved: the first option
        ({**JOB_QUERY, "current": {"value": "node"}}, None, ["node"]),  # the saved one
        (JOB_QUERY, ["node"], ["node"]),
        (JOB_QUERY, ["gone"], ["api"]),  # not an option: the first
        (JOB_QUERY, ["gone", "node"], ["node"]),  # single: the first that is an option
        ({**JOB_QUERY, "multi": True}, ["node", "gone", "api"], ["node", "api"]),
        ({**JOB_QUERY, "multi": True}, ["gone"], ["api"]),
        ({**JOB_QUERY, "includeAll": True}, ["$__all"], ["$__all"]),
        (JOB_QUERY, ["$__all"], ["api"]),  # All without includeAll: the first
        ({**JOB_QUERY, "includeAll": True, "current": {"value": ["$__all"]}}, None, ["$__all"]),
        ({**JOB_QUERY, "includeAll": True}, ["gone"], ["api"]),
    ],
)
def test_selection_falls_back_as_grafana_does(
    variable: dict[str, Any], selected: list[str] | None, current: list[str]
) -> None:
    chosen = {} if selected is None else {"job": selected}
    (resolved,) = resolve_variables(
        _dash([variable]), chosen, InMemoryVariableSource(SERIES), 0, HOUR
    )
    assert resolved.current == current
    if variable.get("includeAll"):
        assert resolved.options[0] == ("All", "$__all")
        assert resolved.option_values() == ["api", "node"]


def test_variable_declared_before_its_dependency() -> None:
    dash = _dash(
        [
            {
                "name": "instance",
                "type": "query",
                "query": 'label_values(up{job="$job"}, instance)',
            },
            {"name": "job", "type": "query", "query": "label_values(up, job)", "sort": 2},
        ]
    )
    resolved = resolve_variables(dash, {}, InMemoryVariableSource(SERIES), 0, HOUR)
    assert _current(resolved) == {"instance": ["a:9100"], "job": ["node"]}


def test_multi_and_all_feed_dependent_queries_as_regexes() -> None:
    dash = _dash(
        [
            {**JOB_QUERY, "multi": True, "includeAll": True},
            {
                "name": "instance",
                "type": "query",
                "query": 'label_values(up{job=~"$job"}, instance)',
                "regex": "/(.*):\\d+/",
                "sort": 2,
            },
        ]
    )
    source = InMemoryVariableSource(SERIES)
    resolved = resolve_variables(dash, {"job": ["$__all"]}, source, 0, HOUR)
    assert source.calls[-1] == ("label_values", "instance", 'up{job=~"(api|node)"}')
    assert _values(resolved[1].options) == ["c", "b", "a"]


def test_other_variable_types() -> None:
    dash = _dash(
        [
            {"name": "ds", "type": "datasource", "query": "prometheus"},
            {"name": "logs", "type": "datasource", "query": "loki"},
            {"name": "c", "type": "constant", "query": "prod", "hide": 2},
            {"name": "t", "type": "textbox", "query": "default"},
            {
                "name": "env",
                "type": "custom",
                "query": "Prod : prod,Dev : dev",
                "includeAll": True,
                "allValue": ".*",
                "current": {"value": "$__all"},
            },
            {
                "name": "step",
                "type": "interval",
                "query": "1m,10m",
                "auto": True,
                "auto_count": 30,
                "auto_min": "10s",
                "current": {"value": "$__auto_interval_step"},
            },
            {"name": "f", "type": "adhoc"},
        ]
    )
    resolved = resolve_variables(dash, {"t": ["typed"]}, InMemoryVariableSource([]), 0, HOUR)
    by_name = {r.name: r for r in resolved}
    assert by_name["ds"].current == ["tinct"] and not by_name["ds"].error
    assert by_name["logs"].options == [] and "loki" in by_name["logs"].error
    assert (by_name["c"].current, by_name["c"].hide) == (["prod"], 2)
    assert by_name["t"].current == ["typed"]
    env = by_name["env"]
    assert env.options == [("All", "$__all"), ("Prod", "prod"), ("Dev", "dev")]
    assert (env.current, env.values()) == (["$__all"], ["prod", "dev"])
    step = by_name["step"]
    assert step.options[0] == ("auto", "$__auto_interval_step")
    assert (step.auto_value, step.values()) == ("2m", ["2m"])  # 1 h / 30 -> 2 m
    assert "not supported" in by_name["f"].error
    scope = VariableScope.of(resolved)
    assert scope.interpolate('x{env=~"$env"}[$step] $c ${env:text}') == 'x{env=~".*"}[2m] prod All'


def test_a_failing_query_is_kept_as_the_variables_error() -> None:
    class Failing(InMemoryVariableSource):
        def label_values(
            self, label: str, matchers: Sequence[str], start_s: float, end_s: float
        ) -> list[str]:
            raise ConnectionError("tinct is down")

    dash = _dash([JOB_QUERY, {"name": "c", "type": "custom", "query": "a,b"}])
    job, custom = resolve_variables(dash, {}, Failing(SERIES), 0, HOUR)
    assert (job.options, job.current, job.error) == ([], [], "tinct is down")
    assert custom.current == ["a"]


def test_refresh_never_uses_the_saved_options() -> None:
    saved = {
        **JOB_QUERY,
        "refresh": 0,
        "options": [{"text": "saved", "value": "saved", "selected": True}],
    }
    source = InMemoryVariableSource(SERIES)
    (job,) = resolve_variables(_dash([saved]), {}, source, 0, HOUR)
    assert (job.options, source.calls) == ([("saved", "saved")], [])


# --- repeats -------------------------------------------------------------------------------


def _host_var(current: list[str], values: str = "a,b,c") -> dict[str, Any]:
    return {
        "name": "host",
        "type": "custom",
        "query": values,
        "multi": True,
        "includeAll": True,
        "current": {"value": current},
    }


def _repeating(direction: str = "h", **extra: Any) -> list[dict[str, Any]]:
    return [
        {
            "id": 5,
            "type": "timeseries",
            "title": "CPU $host",
            "repeat": "host",
            "repeatDirection": direction,
            "gridPos": {"x": 0, "y": 0, "w": 12, "h": 6},
            "targets": [{"expr": 'up{host="$host"}'}],
            **extra,
        },
        {"id": 6, "type": "stat", "title": "Below", "gridPos": {"x": 0, "y": 6, "w": 24, "h": 4}},
    ]


def _layout(dash: Dashboard, selected: dict[str, list[str]] | None = None) -> list[Any]:
    resolved = resolve_variables(dash, selected or {}, InMemoryVariableSource([]), 0, HOUR)
    return expand_repeats(dash, resolved)


def test_panel_repeats_once_per_selected_value() -> None:
    dash = _dash([_host_var(["a", "b", "c"])], _repeating())
    (row,) = _layout(dash)
    assert (row.key, row.title, row.row) == ("row-top", "", None)
    clones, below = row.panels[:3], row.panels[3]
    assert [p.key for p in clones] == ["5-a", "5-b", "5-c"]
    assert [p.grid for p in clones] == [
        GridPos(0, 0, 8, 6),
        GridPos(8, 0, 8, 6),
        GridPos(16, 0, 8, 6),
    ]
    assert [p.scoped for p in clones] == [{"host": "a"}, {"host": "b"}, {"host": "c"}]
    assert [p.title for p in clones] == ["CPU a", "CPU b", "CPU c"]
    assert (below.key, below.grid, below.scoped) == ("6", GridPos(0, 6, 24, 4), {})
    resolved = resolve_variables(dash, {}, InMemoryVariableSource([]), 0, HOUR)
    assert (
        VariableScope.of(resolved, clones[1].scoped).interpolate(clones[1].panel.targets[0].expr)
        == 'up{host="b"}'
    )


def test_all_repeats_for_every_option_and_wraps_past_max_per_row() -> None:
    dash = _dash([_host_var(["$__all"], "a,b,c,d,e")], _repeating())
    (row,) = _layout(dash)
    assert [(p.key, p.grid) for p in row.panels] == [
        ("5-a", GridPos(0, 0, 6, 6)),
        ("5-b", GridPos(6, 0, 6, 6)),
        ("5-c", GridPos(12, 0, 6, 6)),
        ("5-d", GridPos(18, 0, 6, 6)),
        ("5-e", GridPos(0, 6, 6, 6)),
        ("6", GridPos(0, 12, 24, 4)),  # moved down below the second line
    ]


def test_vertical_repeat_stacks() -> None:
    dash = _dash([_host_var(["a", "b", "c"])], _repeating("v"))
    (row,) = _layout(dash)
    assert [(p.key, p.grid) for p in row.panels] == [
        ("5-a", GridPos(0, 0, 12, 6)),
        ("5-b", GridPos(0, 6, 12, 6)),
        ("5-c", GridPos(0, 12, 12, 6)),
        ("6", GridPos(0, 18, 24, 4)),
    ]


def test_max_per_row_and_no_value() -> None:
    dash = _dash([_host_var(["a", "b", "c"])], _repeating(maxPerRow=2))
    (row,) = _layout(dash)
    assert [p.grid for p in row.panels[:3]] == [
        GridPos(0, 0, 12, 6),
        GridPos(12, 0, 12, 6),
        GridPos(0, 6, 12, 6),
    ]
    unknown = _dash([], _repeating())
    (row,) = _layout(unknown)
    assert [(p.key, p.scoped, p.title) for p in row.panels] == [
        ("5", {}, "CPU $host"),
        ("6", {}, "Below"),
    ]


def test_row_repeat_clones_the_row_and_its_panels() -> None:
    panels = [
        {"id": 1, "type": "text", "title": "Top", "gridPos": {"x": 0, "y": 0, "w": 24, "h": 2}},
        {
            "id": 2,
            "type": "row",
            "title": "Host $host",
            "repeat": "host",
            "collapsed": False,
            "gridPos": {"x": 0, "y": 2, "w": 24, "h": 1},
            "panels": [],
        },
        {
            "id": 3,
            "type": "timeseries",
            "title": "Load on $host",
            "gridPos": {"x": 0, "y": 3, "w": 12, "h": 8},
            "targets": [{"expr": 'load{h="$host"}'}],
        },
        {"id": 4, "type": "row", "title": "Other", "gridPos": {"x": 0, "y": 11, "w": 24, "h": 1}},
        {"id": 5, "type": "stat", "gridPos": {"x": 0, "y": 12, "w": 6, "h": 4}},
    ]
    dash = _dash([_host_var(["a", "b"])], panels)
    rows = _layout(dash)
    assert [(r.key, r.title, r.scoped) for r in rows] == [
        ("row-top", "", {}),
        ("row-2-a", "Host a", {"host": "a"}),
        ("row-2-b", "Host b", {"host": "b"}),
        ("row-4", "Other", {}),
    ]
    assert [[(p.key, p.title, p.grid) for p in r.panels] for r in rows[1:3]] == [
        [("3-a", "Load on a", GridPos(0, 0, 12, 8))],
        [("3-b", "Load on b", GridPos(0, 0, 12, 8))],
    ]
    assert rows[2].panels[0].scoped == {"host": "b"}
    assert rows[3].panels[0].grid == GridPos(0, 0, 6, 4)


def test_keys_are_unique_even_when_panel_ids_repeat() -> None:
    panels = [
        {"id": 1, "type": "stat", "gridPos": {"x": 0, "y": 0, "w": 6, "h": 4}},
        {"id": 1, "type": "stat", "gridPos": {"x": 6, "y": 0, "w": 6, "h": 4}},
    ]
    (row,) = _layout(_dash([], panels))
    assert [p.key for p in row.panels] == ["1", "1~2"]


def test_node_exporter_full_layout_keeps_every_panel() -> None:
    dash = _node_exporter_full()
    rows = _layout(dash)
    assert len(rows) == 16
    keys = [p.key for r in rows for p in r.panels]
    assert len(keys) == len(set(keys)) == 125
    for row in rows:
        boxes = [p.grid for p in row.panels]
        for i, a in enumerate(boxes):
            assert a.x + a.w <= 24
            for b in boxes[i + 1 :]:
                overlap = (
                    a.x < b.x + b.w and b.x < a.x + a.w and a.y < b.y + b.h and b.y < a.y + a.h
                )
                assert not overlap, (row.title, a, b)
