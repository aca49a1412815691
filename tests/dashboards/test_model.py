"""Grafana dashboard JSON read into tinct's model: real exports, rows, legacy panels, errors."""

from __future__ import annotations

import copy
import json
import random
from collections import Counter
from typing import Any

import pytest
import yaml

from tests.peer_suites import peer_suites_dir
from tinct.dashboards.frames import Threshold
from tinct.dashboards.model import (
    LEGEND_AUTO,
    Dashboard,
    DashboardError,
    DataSourceRef,
    GridPos,
    Panel,
    Row,
    parse_dashboard,
    slugify,
)
from tinct.errors import ConfigError

NODE_EXPORTER_FULL = peer_suites_dir() / "grafana-dashboards" / "node-exporter-full.json"


def _node_exporter_full() -> Dashboard:
    if not NODE_EXPORTER_FULL.is_file():
        pytest.skip(f"peer suite dashboard not found at {NODE_EXPORTER_FULL}")
    return parse_dashboard(json.loads(NODE_EXPORTER_FULL.read_text()), NODE_EXPORTER_FULL.name)


def _panel(pid: int, y: int, x: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "id": pid,
        "type": "timeseries",
        "title": f"P{pid}",
        "gridPos": {"x": x, "y": y, "w": 12, "h": 8},
        "targets": [{"refId": "A", "expr": f"up{{p='{pid}'}}"}],
        **extra,
    }


def _small() -> dict[str, Any]:
    """A small valid dashboard using most of what the model reads."""
    return {
        "uid": "small",
        "title": "Small one",
        "tags": ["a", "b"],
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "30s",
        "timezone": "utc",
        "graphTooltip": 1,
        "schemaVersion": 39,
        "panels": [
            _panel(1, 0),
            {
                "id": 2,
                "type": "row",
                "title": "R",
                "collapsed": False,
                "panels": [],
                "gridPos": {"x": 0, "y": 8, "w": 24, "h": 1},
            },
            _panel(
                3,
                9,
                fieldConfig={
                    "defaults": {
                        "unit": "bytes",
                        "min": 0,
                        "decimals": 2,
                        "thresholds": {
                            "mode": "absolute",
                            "steps": [
                                {"color": "red", "value": 80},
                                {"color": "green", "value": None},
                            ],
                        },
                        "color": {"mode": "fixed", "fixedColor": "blue"},
                    },
                    "overrides": [{"matcher": {"id": "byName", "options": "x"}, "properties": []}],
                },
                repeat="host",
                maxPerRow=3,
            ),
        ],
        "templating": {
            "list": [
                {
                    "name": "host",
                    "type": "custom",
                    "query": "a,b,c",
                    "multi": True,
                    "includeAll": True,
                    "current": {"text": ["All"], "value": ["$__all"]},
                },
                {
                    "name": "job",
                    "type": "query",
                    "query": {"query": "label_values(up, job)", "refId": "X"},
                    "sort": 1,
                    "regex": "/(.*)/",
                },
            ]
        },
    }


# --- a real Grafana export -------------------------------------------------------------


def test_node_exporter_full_counts_panels_as_grafana_does() -> None:
    dash = _node_exporter_full()
    kinds = Counter(p.type for p in dash.panels())
    kinds["row"] = len(dash.rows)
    assert dash.panel_count() == 141
    assert kinds == {"row": 16, "timeseries": 111, "gauge": 5, "stat": 5, "bargauge": 4}
    assert all(p.supported for p in dash.panels())


def test_node_exporter_full_dashboard_settings() -> None:
    dash = _node_exporter_full()
    assert dash.uid == "rYdddlPWk"
    assert dash.title == "Node Exporter Full"
    assert dash.slug == "node-exporter-full"
    assert (dash.time_from, dash.time_to, dash.refresh) == ("now-24h", "now", "1m")
    assert (dash.timezone, dash.graph_tooltip) == ("browser", 1)
    assert dash.alert_annotations is True
    assert dash.annotations[0]["name"] == "Annotations & Alerts"
    assert [link["title"] for link in dash.links] == ["GitHub", "Grafana"]
    # Every panel sits under a row; the expanded first row got the panels after it.
    assert all(isinstance(item, Row) for item in dash.items)
    first = dash.rows[0]
    assert (first.title, first.collapsed, len(first.panels)) == (
        "Quick CPU / Mem / Disk",
        False,
        11,
    )
    cpu = dash.rows[2]
    assert (cpu.title, cpu.collapsed, len(cpu.panels)) == ("CPU / Memory / Net / Disk", True, 10)


def test_node_exporter_full_variables() -> None:
    dash = _node_exporter_full()
    ds = dash.variable("ds_prometheus")
    assert ds is not None and (ds.type, ds.query, ds.label) == (
        "datasource",
        "prometheus",
        "Datasource",
    )
    expected = {
        "job": "label_values(node_uname_info, job)",
        "nodename": 'label_values(node_uname_info{job="$job"}, nodename)',
        "node": 'label_values(node_uname_info{job="$job", nodename="$nodename"}, instance)',
    }
    for name, query in expected.items():
        variable = dash.variable(name)
        assert variable is not None
        assert (variable.type, variable.query, variable.sort, variable.multi) == (
            "query",
            query,
            1,
            False,
        )
        assert variable.datasource == DataSourceRef(uid="${ds_prometheus}", type="prometheus")
    assert [v.name for v in dash.variables] == ["ds_prometheus", "job", "nodename", "node"]


def test_node_exporter_full_first_panel() -> None:
    panel = next(_node_exporter_full().panels())
    assert (panel.id, panel.type, panel.title) == (323, "bargauge", "Pressure")
    assert panel.grid == GridPos(x=0, y=1, w=3, h=4)
    assert panel.field.unit == "percentunit"
    assert (panel.field.min, panel.field.max, panel.field.decimals) == (0.0, 1.0, 1)
    assert panel.field.thresholds_mode == "percentage"
    assert panel.field.thresholds == (
        Threshold(None, "green"),
        Threshold(70.0, "dark-yellow"),
        Threshold(90.0, "dark-red"),
    )
    assert [t.ref_id for t in panel.targets] == ["A", "B", "C", "D"]
    target = panel.targets[0]
    assert target.expr.startswith("rate(node_pressure_cpu_waiting_seconds_total{")
    assert (target.instant, target.range, target.legend_format) == (True, False, "CPU")
    assert panel.raw["pluginVersion"] == "11.6.1"


# --- rows --------------------------------------------------------------------------------


def _shape(dash: Dashboard) -> list[Any]:
    return [
        ("row", item.title, [(p.id, p.grid) for p in item.panels])
        if isinstance(item, Row)
        else ("panel", item.id, item.grid)
        for item in dash.items
    ]


def test_collapsed_and_expanded_rows_hold_the_same_panels() -> None:
    top = _panel(1, 0)
    under_a = [_panel(3, 9), _panel(4, 9, x=12)]
    under_b = [_panel(6, 18)]
    row_a = {"id": 2, "type": "row", "title": "A", "gridPos": {"x": 0, "y": 8, "w": 24, "h": 1}}
    row_b = {"id": 5, "type": "row", "title": "B", "gridPos": {"x": 0, "y": 17, "w": 24, "h": 1}}
    expanded = {
        "title": "x",
        "panels": [
            top,
            {**row_a, "collapsed": False, "panels": []},
            *under_a,
            {**row_b, "collapsed": False, "panels": []},
            *under_b,
        ],
    }
    collapsed = {
        "title": "x",
        "panels": [
            top,
            {**row_a, "collapsed": True, "panels": under_a},
            {**row_b, "collapsed": True, "panels": under_b},
        ],
    }
    a, b = parse_dashboard(expanded), parse_dashboard(collapsed)
    assert _shape(a) == _shape(b)
    assert _shape(a) == [
        ("panel", 1, GridPos(0, 0, 12, 8)),
        ("row", "A", [(3, GridPos(0, 9, 12, 8)), (4, GridPos(12, 9, 12, 8))]),
        ("row", "B", [(6, GridPos(0, 18, 12, 8))]),
    ]
    assert [r.collapsed for r in a.rows] == [False, False]
    assert [r.collapsed for r in b.rows] == [True, True]


def test_panels_are_ordered_by_grid_position_as_grafana_sorts_them() -> None:
    doc = {"title": "x", "panels": [_panel(3, 9), _panel(2, 0, x=12), _panel(1, 0)]}
    assert [p.id for p in parse_dashboard(doc).panels()] == [1, 2, 3]


def test_panels_without_ids_get_the_next_free_ones() -> None:
    doc = {"title": "x", "panels": [{"type": "stat"}, _panel(7, 1), {"type": "text"}]}
    assert sorted(p.id for p in parse_dashboard(doc).panels()) == [7, 8, 9]


# --- panels ------------------------------------------------------------------------------


def test_legacy_graph_and_singlestat_read_as_their_successors() -> None:
    doc = {
        "title": "legacy",
        "panels": [
            {
                "id": 1,
                "type": "graph",
                "yaxes": [{"format": "bytes", "min": "0", "max": None}, {"format": "short"}],
                "targets": [{"expr": "node_memory_MemFree_bytes"}],
            },
            {
                "id": 2,
                "type": "singlestat",
                "format": "percent",
                "decimals": 1,
                "thresholds": "80,90",
                "colors": ["green", "orange", "red"],
                "gauge": {"minValue": 0, "maxValue": 100},
            },
            {"id": 3, "type": "piechart"},
        ],
    }
    graph, stat, pie = parse_dashboard(doc).panels()
    assert graph.type == "timeseries" and graph.raw["type"] == "graph"
    assert (graph.field.unit, graph.field.min, graph.field.max) == ("bytes", 0.0, None)
    assert graph.targets[0].ref_id == "A"
    assert stat.type == "stat"
    assert (stat.field.unit, stat.field.decimals, stat.field.max) == ("percent", 1, 100.0)
    assert stat.field.thresholds == (
        Threshold(None, "green"),
        Threshold(80.0, "orange"),
        Threshold(90.0, "red"),
    )
    assert pie.type == "piechart" and not pie.supported


def test_thresholds_are_sorted_with_a_base_step() -> None:
    third = parse_dashboard(_small()).panel(3)
    assert third is not None
    assert third.field.thresholds == (Threshold(None, "green"), Threshold(80.0, "red"))
    assert (third.field.unit, third.field.decimals, third.field.min) == ("bytes", 2, 0.0)
    assert (third.field.color_mode, third.field.fixed_color) == ("fixed", "blue")
    assert third.overrides[0]["matcher"]["id"] == "byName"
    assert (third.repeat, third.repeat_direction, third.max_per_row) == ("host", "h", 3)


def test_targets_defaults_and_legacy_datasources() -> None:
    doc = {
        "title": "t",
        "panels": [
            {
                "id": 1,
                "type": "timeseries",
                "datasource": "Prometheus",
                "targets": [
                    {"refId": "B", "expr": "up", "legendFormat": LEGEND_AUTO, "interval": "30s"},
                    {
                        "expr": "down",
                        "format": "table",
                        "instant": True,
                        "hide": True,
                        "datasource": {"type": "prometheus", "uid": "abc"},
                    },
                ],
            }
        ],
    }
    panel = next(parse_dashboard(doc).panels())
    first, second = panel.targets
    assert panel.datasource == DataSourceRef(uid="Prometheus")
    assert (first.ref_id, first.legend_format, first.interval, first.range) == (
        "B",
        "__auto",
        "30s",
        True,
    )
    assert (second.ref_id, second.format, second.instant, second.range, second.hide) == (
        "A",
        "table",
        True,
        False,
        True,
    )
    assert second.datasource == DataSourceRef(uid="abc", type="prometheus")


def test_text_panels_content_from_options_or_the_top_level() -> None:
    doc = {
        "title": "t",
        "panels": [
            {"id": 1, "type": "text", "options": {"content": "# Hi", "mode": "markdown"}},
            {
                "id": 2,
                "type": "text",
                "content": "<b>old</b>",
                "mode": "html",
                "gridPos": {"x": 0, "y": 3, "w": 24, "h": 2},
            },
        ],
    }
    new, old = parse_dashboard(doc).panels()
    assert (new.content, new.mode) == ("# Hi", "markdown")
    assert (old.content, old.mode) == ("<b>old</b>", "html")


# --- dashboard and variables ---------------------------------------------------------------


def test_small_dashboard_fields_and_variables() -> None:
    dash = parse_dashboard(_small(), "small.json")
    assert (dash.uid, dash.title, dash.slug, dash.tags) == (
        "small",
        "Small one",
        "small-one",
        ("a", "b"),
    )
    assert (dash.time_from, dash.refresh, dash.timezone, dash.schema_version) == (
        "now-1h",
        "30s",
        "utc",
        39,
    )
    host, job = dash.variables
    assert host.options == (("a", "a"), ("b", "b"), ("c", "c"))
    assert (host.multi, host.include_all, host.current) == (True, True, ("$__all",))
    assert (job.query, job.sort, job.regex) == ("label_values(up, job)", 1, "/(.*)/")


def test_custom_variable_options_as_grafana_parses_them() -> None:
    doc = {
        "title": "t",
        "templating": {
            "list": [
                {"name": "c", "type": "custom", "query": "a, b\\,c ,Prod : prod-1,x : y : z"},
                {"name": "i", "type": "interval", "query": "1m,10m, '1h'", "auto": True},
            ]
        },
    }
    custom, interval = parse_dashboard(doc).variables
    assert custom.options == (("a", "a"), ("b,c", "b,c"), ("Prod", "prod-1"), ("x : y", "z"))
    assert interval.options == (("1m", "1m"), ("10m", "10m"), ("1h", "1h"))
    assert (interval.auto, interval.auto_count, interval.auto_min) == (True, 30, "10s")


def test_missing_uid_is_generated_from_the_title_and_stable() -> None:
    doc = {"title": "My Service: Overview!"}
    assert parse_dashboard(doc).uid == "my-service-overview"
    assert parse_dashboard(dict(doc)).uid == parse_dashboard(doc).uid
    unnamed = parse_dashboard({"title": "日本"})
    assert unnamed.uid.startswith("d") and len(unnamed.uid) == 13
    assert len(parse_dashboard({"title": "x" * 80}).uid) == 40


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("Node Exporter Full", "node-exporter-full"),
        ("  CPU / Memory (%) ", "cpu-memory"),
        ("a--b__c", "a-b-c"),
        ("K8s: Pods", "k8s-pods"),
        ("", ""),
    ],
)
def test_slugify(title: str, slug: str) -> None:
    assert slugify(title) == slug


def test_grafana_api_form_and_refresh_false_and_disabled_alert_annotations() -> None:
    inner = {
        "title": "api",
        "refresh": False,
        "annotations": {"list": [{"builtIn": 1, "enable": False, "name": "Annotations & Alerts"}]},
    }
    dash = parse_dashboard({"dashboard": inner, "meta": {"folderTitle": "x"}})
    assert (dash.title, dash.refresh, dash.alert_annotations) == ("api", "", False)
    assert parse_dashboard({"title": "no annotations"}).alert_annotations is True


def test_yaml_reads_as_the_same_model_as_json() -> None:
    doc = _small()
    from_json = parse_dashboard(json.loads(json.dumps(doc)), "small.json")
    from_yaml = parse_dashboard(yaml.safe_load(yaml.safe_dump(doc)), "small.json")
    assert from_yaml == from_json
    if NODE_EXPORTER_FULL.is_file():
        real = json.loads(NODE_EXPORTER_FULL.read_text())
        assert parse_dashboard(yaml.safe_load(yaml.safe_dump(real))) == parse_dashboard(real)


# --- errors --------------------------------------------------------------------------------


def _with(change: Any) -> dict[str, Any]:
    doc = _small()
    change(doc)
    return doc


def _set(path: list[Any], value: Any) -> Any:
    def change(doc: dict[str, Any]) -> None:
        node: Any = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return change


BAD_INPUTS = [
    (
        _set(["panels", 0, "targets", 0, "expr"], 5),
        "src.json: panels[0].targets[0].expr: must be a string, got a number",
    ),
    (
        _set(["panels", 2, "gridPos", "w"], 30),
        "src.json: panels[2].gridPos.w: must be between 1 and 24, got 30",
    ),
    (
        _set(["panels", 2, "fieldConfig", "defaults", "thresholds", "steps", 0, "value"], "high"),
        "src.json: panels[2].fieldConfig.defaults.thresholds.steps[0].value: "
        "must be a number, got a string",
    ),
    (
        _set(["panels", 0, "targets", 0, "format"], "graph"),
        "src.json: panels[0].targets[0].format: "
        "must be one of time_series, table, heatmap, got 'graph'",
    ),
    (
        _set(["templating", "list", 1, "sort"], 9),
        "src.json: templating.list[1].sort: must be between 0 and 8, got 9",
    ),
    (
        _set(["templating", "list", 0, "name"], None),
        "src.json: templating.list[0].name: missing (every variable needs a name)",
    ),
    (
        _set(["templating", "list", 1, "name"], "host"),
        "src.json: templating.list[1].name: "
        "duplicate variable name 'host' (also templating.list[0])",
    ),
    (_set(["panels"], {"a": 1}), "src.json: panels: must be a list, got an object"),
    (_set(["panels", 1], "row"), "src.json: panels[1]: must be an object, got a string"),
    (_set(["title"], ["x"]), "src.json: title: must be a string, got a list"),
    (_set(["uid"], "u" * 41), "src.json: uid: must be at most 40 characters, got 41"),
    (
        _set(["panels", 2, "repeatDirection"], "x"),
        "src.json: panels[2].repeatDirection: must be one of h, v, got 'x'",
    ),
    (
        _set(["panels", 2, "maxDataPoints"], 0.5),
        "src.json: panels[2].maxDataPoints: must be an integer, got 0.5",
    ),
    (
        _set(["panels", 1, "panels"], [{"type": "row"}]),
        "src.json: panels[1].panels[0].type: a row can't hold another row",
    ),
    (_set(["graphTooltip"], 3), "src.json: graphTooltip: must be between 0 and 2, got 3"),
    (
        _set(["panels", 2, "targets", 0, "instant"], "yes"),
        "src.json: panels[2].targets[0].instant: must be true or false, got a string",
    ),
]


@pytest.mark.parametrize(("change", "message"), BAD_INPUTS)
def test_errors_name_the_file_the_field_and_the_limit(change: Any, message: str) -> None:
    with pytest.raises(DashboardError) as caught:
        parse_dashboard(_with(change), "src.json")
    assert str(caught.value) == message
    assert isinstance(caught.value, ConfigError) and isinstance(caught.value, ValueError)


def test_documents_that_are_not_dashboards() -> None:
    with pytest.raises(
        DashboardError, match=r"^x.json: a dashboard must be a JSON object, got list$"
    ):
        parse_dashboard([], "x.json")  # type: ignore[arg-type]
    with pytest.raises(DashboardError, match="schemaVersion 16"):
        parse_dashboard({"title": "old", "rows": [{"panels": []}]}, "old.json")


# --- fuzz --------------------------------------------------------------------------------

_JUNK: list[Any] = [
    None,
    0,
    -1,
    1.5,
    float("nan"),
    True,
    "",
    "x",
    "$__all",
    [],
    [1, "a"],
    {},
    {"a": None},
    {"steps": None},
    [{"value": "v"}],
    10**30,
    "now-1h",
]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, (*prefix, i))
    return out


def _mutate(doc: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    for _ in range(rng.randint(1, 3)):
        path = rng.choice(_paths(doc)[1:])
        parent: Any = doc
        for key in path[:-1]:
            parent = parent[key]
        action = rng.random()
        if action < 0.2 and isinstance(parent, dict):
            del parent[path[-1]]
        elif action < 0.3 and isinstance(parent, list):
            parent.insert(path[-1], copy.deepcopy(rng.choice(_JUNK)))
        elif action < 0.4:
            # Another part of the document where this one was (a panel as a target...).
            donor = rng.choice([_small()["panels"][2], _small()["templating"], _small()["panels"]])
            parent[path[-1]] = donor
        else:
            parent[path[-1]] = copy.deepcopy(rng.choice(_JUNK))
    return doc


def test_fuzzed_documents_parse_or_raise_dashboard_error() -> None:
    rng = random.Random(20240611)
    outcomes: Counter[str] = Counter()
    for _ in range(300):
        doc = _mutate(_small(), rng)
        try:
            dash = parse_dashboard(doc, "fuzz.json")
        except DashboardError as exc:
            assert str(exc).startswith("fuzz.json: ")
            outcomes["error"] += 1
        else:
            assert isinstance(dash, Dashboard)
            assert all(isinstance(p, Panel) for p in dash.panels())
            outcomes["parsed"] += 1
    # Both outcomes occur: the fuzz reaches fields that matter and ones that don't.
    assert outcomes["error"] > 30 and outcomes["parsed"] > 30, outcomes
