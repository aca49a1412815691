"""Grafana's field overrides: which series a rule matches, and what the figure then shows."""

from __future__ import annotations

import json
import math

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest

from tinct.dashboards.components.panel import figure_for
from tinct.dashboards.figures import timeseries_figure
from tinct.dashboards.frames import FieldConfig, SeriesData
from tinct.dashboards.overrides import (
    SeriesStyle,
    display_name,
    js_regex,
    parse_overrides,
    series_styles,
)
from tinct.dashboards.panel_data import PanelData
from tinct.dashboards.panels import Panel, parse_items
from tinct.dashboards.reading import Node
from tinct.dashboards.repeats import LaidOutPanel

T0 = 1_700_000_000.0
N = 20
TIMES = [T0 + 15 * k for k in range(N)]
RANGE = (T0, T0 + 15 * (N - 1))


def _json_ok(fig: go.Figure) -> dict:
    """The figure as JSON, after checking plotly accepts every property
    (the figures are built without validation, for speed)."""
    go.Figure(fig.to_plotly_json())
    return json.loads(pio.to_json(fig))


def _s(name: str, value: float = 1.0, ref_id: str = "A", **labels: str) -> SeriesData:
    return SeriesData(name, labels, TIMES, [value] * N, ref_id)


def _rule(matcher: str, options: object, *properties: tuple[str, object]) -> dict:
    return {
        "matcher": {"id": matcher, "options": options},
        "properties": [{"id": key, "value": value} for key, value in properties],
    }


def _names(series: list[SeriesData], *rules: dict, **kwargs) -> list[str]:
    """The series' display names after ``rules`` (a displayName marks a match)."""
    styles = series_styles(series, FieldConfig(), parse_overrides(rules), **kwargs)
    return [s.name for s in styles]


def _matched(series: list[SeriesData], matcher: str, options: object) -> list[str]:
    """The original names of the series ``matcher`` matches."""
    renamed = _names(series, _rule(matcher, options, ("displayName", "hit")))
    return [s.name for s, name in zip(series, renamed, strict=True) if name == "hit"]


# ---- matchers ------------------------------------------------------------------------

NET = [_s("Rx eth0", ref_id="A"), _s("Tx eth0", ref_id="B"), _s("rx lo", ref_id="A")]


def test_by_name_is_exact_on_the_display_name():
    assert _matched(NET, "byName", "Rx eth0") == ["Rx eth0"]
    assert _matched(NET, "byName", "Rx") == []  # not a substring
    assert _matched(NET, "byName", "rx eth0") == []  # case matters
    assert _matched(NET, "byName", None) == []


def test_by_regexp_as_grafana_string_to_js_regex():
    # Plain text is anchored (^...$), /.../ is searched, flags after the slash.
    assert _matched(NET, "byRegexp", "Tx") == []
    assert _matched(NET, "byRegexp", "Tx.*") == ["Tx eth0"]
    assert _matched(NET, "byRegexp", "/Tx/") == ["Tx eth0"]
    assert _matched(NET, "byRegexp", "/.*Tx.*/") == ["Tx eth0"]  # Node Exporter Full's
    assert _matched(NET, "byRegexp", "/^rx/i") == ["Rx eth0", "rx lo"]
    assert _matched(NET, "byRegexp", "/^rx/") == ["rx lo"]
    assert _matched(NET, "byRegexp", "eth0|lo") == ["rx lo"]  # ^eth0|lo$ is (^eth0)|(lo$)
    assert _matched(NET, "byRegexp", "/eth0|lo/") == ["Rx eth0", "Tx eth0", "rx lo"]
    # An invalid pattern matches nothing (Grafana logs it), without raising.
    assert _matched(NET, "byRegexp", "/(/") == []
    assert _matched(NET, "byRegexp", "") == []
    assert js_regex("/a/x") is None  # not a JS flag: not a regex literal


def test_by_frame_ref_id_type_names_and_the_rest():
    assert _matched(NET, "byFrameRefID", "B") == ["Tx eth0"]
    assert _matched(NET, "byFrameRefID", "A") == ["Rx eth0", "rx lo"]
    assert _matched(NET, "byType", "number") == ["Rx eth0", "Tx eth0", "rx lo"]
    assert _matched(NET, "byType", "string") == []
    assert _matched(NET, "byNames", {"mode": "include", "names": ["Tx eth0", "rx lo"]}) == [
        "Tx eth0",
        "rx lo",
    ]
    # Grafana's saved "hide series" (legend click): everything except the names.
    hide = {"mode": "exclude", "names": ["Rx eth0"], "prefix": "All except:", "readOnly": True}
    assert _matched(NET, "byNames", hide) == ["Tx eth0", "rx lo"]
    assert _matched(NET, "byRegexpOrNames", {"pattern": "/lo$/", "names": ["Tx eth0"]}) == [
        "Tx eth0",
        "rx lo",
    ]
    assert _matched(NET, "byValue", {"reducer": "max", "op": "gte", "value": 0}) == []
    assert parse_overrides([_rule("bySomethingNew", "x", ("displayName", "hit"))]) == ()


def test_rules_apply_in_order_and_match_the_name_set_before_them():
    series = [_s("D"), _s("R")]
    rules = (
        _rule("byName", "D", ("displayName", "Uninterruptible")),
        _rule("byName", "D", ("displayName", "never: D was renamed above")),
        _rule("byName", "Uninterruptible", ("custom.lineWidth", 3)),
        _rule("byRegexp", "/./", ("unit", "bytes")),
        _rule("byName", "R", ("unit", None)),  # null unsets (Grafana's unset)
    )
    styles = series_styles(series, FieldConfig(unit="short"), parse_overrides(rules))
    assert [s.name for s in styles] == ["Uninterruptible", "R"]
    assert [s.line_width for s in styles] == [3, 1]
    assert [s.field.unit for s in styles] == ["bytes", ""]


def test_unknown_and_unreadable_properties_are_ignored():
    rules = parse_overrides(
        [
            _rule(
                "byName",
                "a",
                ("custom.drawStyle", "bars"),  # not drawn by tinct
                ("links", []),
                ("custom.fillOpacity", "lots"),  # not a number
                ("custom.axisPlacement", "top"),  # not a placement
                ("color", "red"),  # not an object
                ("custom.fillOpacity", "25"),  # a string number, as parseFloat reads it
            ),
            "not a rule",
            {"matcher": "byName"},
        ]
    )
    assert len(rules) == 1
    (style,) = series_styles([_s("a")], FieldConfig(), rules)
    assert style == SeriesStyle("a", FieldConfig(), fill_opacity=25.0)


def test_defaults_custom_options_then_overrides():
    defaults = {
        "custom": {
            "stacking": {"group": "A", "mode": "normal"},
            "fillOpacity": 40,
            "lineWidth": 2,
            "hideFrom": {"legend": False, "tooltip": False, "viz": False},
            "axisPlacement": "auto",
            "lineStyle": None,  # null: unset
        },
        "displayName": "${__series.name} (${__field.labels.job})",
    }
    rules = parse_overrides([_rule("byName", "b (api)", ("custom.stacking", {"mode": "none"}))])
    series = [_s("a", job="api"), _s("b", job="api")]
    a, b = series_styles(series, FieldConfig(), rules, defaults=defaults)
    assert (a.name, a.stacking, a.stack_group, a.fill_opacity, a.line_width) == (
        "a (api)",
        "normal",
        "A",
        40,
        2,
    )
    assert (b.name, b.stacked) == ("b (api)", False)


def test_display_name_macros():
    s = _s("Rx eth0", device="eth0", instance="h:9100")
    assert display_name("${__field.labels.device} in", s, "x") == "eth0 in"
    assert display_name("${__series.name}!", s, "x") == "Rx eth0!"
    assert display_name("${__field.labels.nope}|", s, "x") == "|"
    assert display_name("${__field.labels}", s, "x") == '{device="eth0", instance="h:9100"}'
    assert display_name("${__field.displayName} 2", s, "Before") == "Before 2"
    assert display_name("$job ${other}", s, "x") == "$job ${other}"  # left as written


# ---- what the figure shows ---------------------------------------------------------------


def _figure(series: list[SeriesData], rules: list[dict], field=None, defaults=None, **kw):
    field = field or FieldConfig()
    styles = series_styles(series, field, parse_overrides(rules), defaults=defaults)
    return timeseries_figure(series, field, time_range=RANGE, timezone="utc", styles=styles, **kw)


def test_negative_y_plots_below_zero_and_hovers_the_value():
    series = [_s("Rx eth0", 1000.0), _s("Tx eth0", 250.0, ref_id="B")]
    fig = _figure(series, [_rule("byRegexp", "/.*Tx.*/", ("custom.transform", "negative-Y"))])
    rx, tx = fig.data
    assert list(rx.y) == [1000.0] * N and list(tx.y) == [-250.0] * N
    assert "customdata" in tx.hovertemplate and list(tx.customdata) == [250.0] * N
    assert fig.layout.yaxis.range[0] <= -250 and fig.layout.yaxis.range[1] >= 1000
    _json_ok(fig)


def test_stacking_only_the_matched_series_by_group():
    series = [_s("a", 1), _s("b", 2), _s("c", 100), _s("d", 4)]
    defaults = {"custom": {"stacking": {"group": "A", "mode": "none"}}}
    rules = [
        _rule("byRegexp", "a|b", ("custom.stacking", {"group": "A", "mode": "normal"})),
        _rule("byName", "d", ("custom.stacking", {"group": "B", "mode": "normal"})),
    ]
    fig = _figure(series, rules, defaults=defaults)
    groups = [t.stackgroup for t in fig.data]
    assert groups[0] == groups[1] and groups[0] is not None
    assert groups[2] is None
    assert groups[3] not in (None, groups[0])
    _json_ok(fig)


def test_memory_basic_total_is_a_line_over_the_stack():
    """Node Exporter Full's "Memory Basic": stacked used/cache/free, Total by itself."""
    defaults = {"custom": {"stacking": {"group": "A", "mode": "normal"}, "fillOpacity": 40}}
    rules = [
        _rule(
            "byName",
            "Total",
            ("color", {"fixedColor": "#E0F9D7", "mode": "fixed"}),
            ("custom.fillOpacity", 0),
            ("custom.stacking", {"group": False, "mode": "normal"}),
        ),
        _rule("byName", "Free", ("color", {"fixedColor": "dark-red", "mode": "fixed"})),
    ]
    gib = 2.0**30
    series = [_s("Total", 8 * gib), _s("Used", 2 * gib), _s("Cache", 3 * gib), _s("Free", 3 * gib)]
    fig = _figure(series, rules, FieldConfig(unit="bytes", min=0), defaults)
    total, used, cache, free = fig.data
    assert total.stackgroup != used.stackgroup == cache.stackgroup == free.stackgroup
    assert total.fill == "none" and used.fill == "tonexty"
    assert total.line.color == "#E0F9D7" and free.line.color == "#C4162A"
    # The axis holds the 8 GiB of RAM, not the 16 GiB of Total stacked on the rest.
    assert 8 * gib <= fig.layout.yaxis.range[1] < 9 * gib
    _json_ok(fig)


def test_negative_y_series_stack_downwards_apart_from_the_rest():
    series = [_s("Rx a", 10), _s("Rx b", 20), _s("Tx a", 5, "B"), _s("Tx b", 7, "B")]
    defaults = {"custom": {"stacking": {"group": "A", "mode": "normal"}}}
    rules = [_rule("byFrameRefID", "B", ("custom.transform", "negative-Y"))]
    fig = _figure(series, rules, defaults=defaults)
    rx_a, rx_b, tx_a, tx_b = (t.stackgroup for t in fig.data)
    assert rx_a == rx_b and tx_a == tx_b and rx_a != tx_a
    lo, hi = fig.layout.yaxis.range
    assert lo <= -12 and 30 <= hi < 40  # 10 + 20 up, 5 + 7 down, not summed together


def test_hide_from_viz_legend_and_tooltip():
    series = [_s("shown", 1), _s("hidden", 1000), _s("gone", 2000), _s("quiet", 2)]
    rules = [
        _rule("byName", "hidden", ("custom.hideFrom", {"legend": False, "viz": True})),
        _rule("byName", "gone", ("custom.hideFrom", {"legend": True, "viz": True})),
        _rule("byName", "quiet", ("custom.hideFrom", {"legend": True, "tooltip": True})),
    ]
    fig = _figure(series, rules)
    by_name = {t.name: t for t in fig.data}
    assert "gone" not in by_name  # hidden from both: not in the figure at all
    # Hidden from the plot: listed in the legend only, drawn when clicked (as Grafana's).
    assert by_name["hidden"].visible == "legendonly"
    assert by_name["shown"].visible is None
    assert fig.layout.yaxis.range[1] < 1000  # nor does it stretch the axis
    assert by_name["quiet"].showlegend is False and by_name["quiet"].hoverinfo == "skip"
    assert by_name["shown"].showlegend is True and by_name["shown"].hoverinfo is None
    _json_ok(fig)


def test_display_name_renames_the_trace():
    series = [_s("Rx {{device}}", device="eth0"), _s("D")]
    rules = [
        _rule("byRegexp", "/^Rx/", ("displayName", "Receive ${__field.labels.device}")),
        _rule("byName", "D", ("displayName", "Uninterruptible Sleeping")),
    ]
    fig = _figure(series, rules)
    assert [t.name for t in fig.data] == ["Receive eth0", "Uninterruptible Sleeping"]


def test_right_axis_own_unit_hidden_axis():
    series = [_s("busy", 100.0), _s("latency", 0.25), _s("errors", 3.0)]
    rules = [
        _rule("byName", "latency", ("custom.axisPlacement", "right"), ("unit", "s")),
        _rule("byName", "errors", ("custom.axisPlacement", "hidden")),
    ]
    fig = _figure(series, rules, FieldConfig(unit="percent"))
    busy, latency, errors = fig.data
    assert busy.yaxis is None and latency.yaxis == "y3" and errors.yaxis == "y4"
    left, right, hidden = fig.layout.yaxis, fig.layout.yaxis3, fig.layout.yaxis4
    assert right.side == "right" and right.overlaying == "y"
    assert right.range[1] < 1 <= left.range[1]  # each axis ranges over its own series
    assert all(t.endswith(("ms", " s")) or t == "0" for t in right.ticktext)
    assert all(t.endswith("%") for t in left.ticktext)
    assert hidden.visible is False
    assert "ms" in latency.hovertemplate and "%" in busy.hovertemplate
    _json_ok(fig)


def test_a_second_auto_axis_goes_right():
    series = [_s("bytes", 2.0**20), _s("percent", 50.0)]
    fig = _figure(series, [_rule("byName", "percent", ("unit", "percent"), ("max", 100))])
    assert fig.data[1].yaxis == "y3"
    assert fig.layout.yaxis3.side == "right" and fig.layout.yaxis3.range[1] == 100
    assert fig.layout.yaxis.side == "left"


def test_per_series_decimals_line_style_width_fill_and_min_max():
    series = [_s("a", 1.23456), _s("b", 2.5)]
    rules = [
        _rule(
            "byName",
            "a",
            ("decimals", 3),
            ("custom.lineStyle", {"dash": [10, 10], "fill": "dash"}),
            ("custom.lineWidth", 2),
            ("custom.fillOpacity", 10),
        ),
        _rule("byName", "b", ("custom.lineStyle", {"fill": "dot"})),
    ]
    fig = _figure(series, rules, FieldConfig(unit="short"))
    a, b = fig.data
    assert ",.3f" in a.hovertemplate and ",.3f" not in b.hovertemplate
    assert a.line.dash == "10px,10px" and b.line.dash == "dot"
    assert (a.line.width, b.line.width) == (2, 1)
    assert a.fill == "tozeroy" and a.fillcolor.endswith(",0.1)") and b.fill is None
    _json_ok(fig)


def test_constant_transform_is_a_flat_line_over_the_range():
    series = [SeriesData("limit", {}, TIMES, [math.nan, 42.0] + [43.0] * (N - 2))]
    fig = _figure(series, [_rule("byName", "limit", ("custom.transform", "constant"))])
    (limit,) = fig.data
    assert list(limit.y) == [42.0, 42.0]
    assert list(limit.x) == [RANGE[0] * 1000, RANGE[1] * 1000]


def test_styles_must_align_with_series():
    with pytest.raises(ValueError, match="1 styles for 2 series"):
        timeseries_figure(
            [_s("a"), _s("b")], FieldConfig(), time_range=RANGE, styles=[SeriesStyle("a")]
        )


# ---- from the dashboard JSON, through the panel ----------------------------------------

NETWORK_TRAFFIC_BASIC = {
    "id": 74,
    "type": "timeseries",
    "title": "Network Traffic Basic",
    "gridPos": {"h": 7, "w": 12, "x": 0, "y": 0},
    "fieldConfig": {
        "defaults": {
            "custom": {"fillOpacity": 40, "stacking": {"group": "A", "mode": "none"}},
            "unit": "bps",
        },
        "overrides": [
            {
                "matcher": {"id": "byRegexp", "options": "/.*Tx.*/"},
                "properties": [{"id": "custom.transform", "value": "negative-Y"}],
            }
        ],
    },
    "targets": [
        {"expr": "rx", "legendFormat": "Rx {{device}}", "refId": "A"},
        {"expr": "tx", "legendFormat": "Tx {{device}}", "refId": "B"},
    ],
}


def test_the_panel_applies_its_overrides():
    (panel,) = parse_items(Node({"panels": [NETWORK_TRAFFIC_BASIC]}, "", "net.json"))
    assert isinstance(panel, Panel)
    lp = LaidOutPanel(panel, "74", panel.grid)
    rng = np.random.default_rng(3)
    eth0 = {"device": "eth0"}
    data = PanelData(
        series=[
            SeriesData("Rx eth0", eth0, TIMES, rng.uniform(1e6, 2e6, N).tolist()),
            SeriesData("Tx eth0", eth0, TIMES, rng.uniform(1e5, 2e5, N).tolist(), "B"),
        ]
    )
    fig = figure_for(lp, data, time_range=RANGE, utc_offset_min=0, timezone="utc")
    rx, tx = fig.data
    assert np.all(np.asarray(rx.y) > 0) and np.all(np.asarray(tx.y) < 0)
    assert np.all(np.asarray(tx.customdata) > 0)  # hover reads 100-200 kb/s, not -100
    assert rx.fill == tx.fill == "tozeroy" and rx.stackgroup is None
    assert "Mb/s" in rx.hovertemplate or "kb/s" in rx.hovertemplate
    _json_ok(fig)
