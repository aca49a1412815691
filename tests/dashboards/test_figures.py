"""The panel figures: what a user sees in each panel kind, on small seeded data."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import plotly.utils
import pytest

from tinct.dashboards.figures import (
    NUMERIC_SUFFIX,
    bargauge_figure,
    bucket_counts,
    empty_figure,
    format_value,
    gauge_figure,
    heatmap_figure,
    reduce_value,
    stat_figure,
    table_data,
    timeseries_figure,
)
from tinct.dashboards.frames import FieldConfig, SeriesData, Threshold

T0 = 1_700_000_000.0
STEP = 15.0
N = 40
RANGE = (T0, T0 + N * STEP)
GREEN, ORANGE, RED = "#73BF69", "#FF9830", "#F2495C"
STEPS = (Threshold(None, "green"), Threshold(50.0, "orange"), Threshold(80.0, "red"))


def _series(n: int = 3, seed: int = 7, gap: bool = True) -> list[SeriesData]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        values = rng.uniform(0, 100, N)
        if gap:
            values[10:13] = np.nan
        out.append(
            SeriesData(
                name=f"pod-{i}",
                labels={"pod": f"pod-{i}", "job": "api"},
                times=[T0 + k * STEP for k in range(N)],
                values=values.tolist(),
            )
        )
    return out


def _json_ok(fig) -> dict:
    """The figure as JSON, after checking plotly accepts every property
    (the figures are built without validation, for speed)."""
    go.Figure(fig.to_plotly_json())
    return json.loads(pio.to_json(fig))


def _texts(fig) -> list[str]:
    return [a.text for a in fig.layout.annotations]


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


# ---- reducers ---------------------------------------------------------------------

VALUES = [math.nan, 3.0, 1.0, math.nan, 4.0, 2.0, math.nan]


@pytest.mark.parametrize(
    ("reducer", "expected"),
    [
        ("lastNotNull", 2.0),
        ("current", 2.0),
        ("last", None),  # ends on a gap
        ("first", None),
        ("firstNotNull", 3.0),
        ("mean", 2.5),
        ("avg", 2.5),
        ("max", 4.0),
        ("min", 1.0),
        ("sum", 10.0),
        ("count", 4.0),
        ("range", 3.0),
        ("diff", -1.0),
        ("logmin", 1.0),
    ],
)
def test_reduce_value(reducer, expected):
    assert reduce_value(VALUES, reducer) == expected


def test_reduce_value_empty_and_counters():
    assert reduce_value([], "lastNotNull") is None
    assert reduce_value([], "sum") == 0.0
    assert reduce_value([], "count") == 0.0
    assert reduce_value([math.nan], "mean") is None
    # delta counts a counter reset as a restart from zero
    assert reduce_value([1, 5, 8, 2, 6], "delta") == 7 + 2 + 4
    assert reduce_value([1, 5, 3], "delta") == 4 + 3  # a reset on the last sample
    with pytest.raises(ValueError, match="unknown reducer 'median'"):
        reduce_value([1.0], "median")


# ---- time series ----------------------------------------------------------------------


def test_timeseries_traces_x_y_and_gaps():
    series = _series()
    fig = timeseries_figure(series, FieldConfig(unit="percent"), time_range=RANGE, timezone="utc")
    assert len(fig.data) == 3
    assert {t.type for t in fig.data} == {"scatter"}  # never WebGL
    trace = fig.data[0]
    assert trace.mode == "lines" and trace.name == "pod-0"
    assert trace.connectgaps is False
    # vectorized: numpy arrays straight through, epoch ms on a date axis
    assert isinstance(trace.x, np.ndarray) and isinstance(trace.y, np.ndarray)
    assert trace.x[0] == T0 * 1000 and trace.x[-1] == (T0 + (N - 1) * STEP) * 1000
    np.testing.assert_array_equal(trace.y, np.asarray(series[0].values))
    assert np.isnan(trace.y[10:13]).all() and not np.isnan(trace.y[:10]).any()
    assert fig.layout.xaxis.type == "date"
    assert fig.layout.xaxis.range == (_iso(RANGE[0]), _iso(RANGE[1]))
    assert fig.layout.hovermode == "x unified"
    assert fig.layout.uirevision
    assert fig.layout.paper_bgcolor == fig.layout.plot_bgcolor == "rgba(0,0,0,0)"
    assert fig.layout.font.color == "#ccccdc"
    assert fig.layout.yaxis.gridcolor == "#2c3235"
    _json_ok(fig)


def test_timeseries_browser_offset_shifts_x():
    fig = timeseries_figure(_series(1), FieldConfig(), time_range=RANGE, utc_offset_min=90)
    assert fig.data[0].x[0] == T0 * 1000 + 90 * 60_000
    assert fig.layout.xaxis.range[0] == _iso(T0 + 5400)
    utc = timeseries_figure(
        _series(1), FieldConfig(), time_range=RANGE, timezone="utc", utc_offset_min=90
    )
    assert utc.data[0].x[0] == T0 * 1000


def test_timeseries_y_axis_unit_ticks_and_bounds():
    series = [SeriesData("mem", times=[T0, T0 + 15], values=[100e6, 900e6])]
    fig = timeseries_figure(series, FieldConfig(unit="bytes"), time_range=RANGE)
    y = fig.layout.yaxis
    assert y.tickmode == "array"
    assert list(y.ticktext) == ["0 B", "256 MiB", "512 MiB", "768 MiB", "1 GiB"]
    assert y.range == (0, 2**30)
    assert y.fixedrange is True
    # hover: values scaled once for the whole figure, in the unit's words
    assert "MiB" in fig.data[0].hovertemplate and "customdata" in fig.data[0].hovertemplate
    assert fig.data[0].customdata.dtype == np.float32
    fixed = timeseries_figure(series, FieldConfig(unit="bytes", min=0, max=1e9), time_range=RANGE)
    assert fixed.layout.yaxis.range == (0, 1e9)
    assert all(0 <= v <= 1e9 for v in fixed.layout.yaxis.tickvals)


def test_timeseries_thresholds_lines_and_areas():
    field = FieldConfig(unit="percent", min=0, max=100, thresholds=STEPS)
    lines = timeseries_figure(_series(), field, time_range=RANGE, thresholds_style="line")
    assert [(s.type, s.y0, s.line.color) for s in lines.layout.shapes] == [
        ("line", 50.0, ORANGE),
        ("line", 80.0, RED),
    ]
    areas = timeseries_figure(_series(), field, time_range=RANGE, thresholds_style="area")
    assert [(s.type, s.y0, s.y1, s.fillcolor) for s in areas.layout.shapes] == [
        ("rect", 0, 50.0, "rgba(115,191,105,0.15)"),
        ("rect", 50.0, 80.0, "rgba(255,152,48,0.15)"),
        ("rect", 80.0, 100, "rgba(242,73,92,0.15)"),
    ]
    dashed = timeseries_figure(_series(), field, time_range=RANGE, thresholds_style="dashed")
    assert {s.line.dash for s in dashed.layout.shapes} == {"dash"}
    off = timeseries_figure(_series(), field, time_range=RANGE)
    assert not off.layout.shapes


def test_timeseries_annotations_lines_bands_and_hover_text():
    notes = [
        (T0 + 60, None, "HighLatency firing", "red"),
        (T0 + 120, T0 + 300, "Pending", "orange"),
    ]
    fig = timeseries_figure(
        _series(2), FieldConfig(), time_range=RANGE, timezone="utc", annotations=notes
    )
    assert len(fig.data) == 3  # two series + the annotations' marker trace
    markers = fig.data[-1]
    assert list(markers.hovertext) == ["HighLatency firing", "Pending"]
    assert list(markers.x) == [(T0 + 60) * 1000, (T0 + 120) * 1000]
    assert markers.yaxis == "y2" and markers.showlegend is False
    kinds = [(s.type, s.x0, s.x1) for s in fig.layout.shapes]
    assert ("line", (T0 + 60) * 1000, (T0 + 60) * 1000) in kinds
    assert ("rect", (T0 + 120) * 1000, (T0 + 300) * 1000) in kinds
    _json_ok(fig)


def test_timeseries_stack_fill_legend_log():
    field = FieldConfig(unit="reqps")
    stacked = timeseries_figure(_series(gap=False), field, time_range=RANGE, stack=True)
    assert {t.stackgroup for t in stacked.data} == {"stack"}
    total = np.sum([s.values for s in _series(gap=False)], axis=0).max()
    assert stacked.layout.yaxis.range[1] >= total  # the axis holds the stacked sum
    filled = timeseries_figure(_series(1), field, time_range=RANGE, fill_opacity=20)
    assert filled.data[0].fill == "tozeroy"
    assert filled.data[0].fillcolor == "rgba(115,191,105,0.2)"
    hidden = timeseries_figure(_series(), field, time_range=RANGE, legend=False)
    assert hidden.layout.showlegend is False
    log = timeseries_figure(_series(), FieldConfig(unit="s"), time_range=RANGE, log_base=10)
    assert log.layout.yaxis.type == "log"
    assert all(math.log10(v).is_integer() for v in log.layout.yaxis.tickvals)


def test_timeseries_colors_follow_color_mode():
    fig = timeseries_figure(_series(), FieldConfig(), time_range=RANGE)
    assert [t.line.color for t in fig.data] == [GREEN, "#FADE2A", "#5794F2"]
    fixed = FieldConfig(color_mode="fixed", fixed_color="dark-red")
    fig = timeseries_figure(_series(), fixed, time_range=RANGE)
    assert {t.line.color for t in fig.data} == {"#C4162A"}


def test_timeseries_no_data_and_bad_series():
    field = FieldConfig(no_value="Nothing here")
    for series in ([], [SeriesData("a")], [SeriesData("a", times=[T0], values=[math.nan])]):
        fig = timeseries_figure(series, field, time_range=RANGE)
        assert _texts(fig) == ["Nothing here"] and not fig.data
    with pytest.raises(ValueError, match="'a': 2 times but 1 values"):
        timeseries_figure(
            [SeriesData("a", times=[T0, T0 + 1], values=[1.0])], field, time_range=RANGE
        )


# ---- stat -------------------------------------------------------------------------------


def test_stat_shows_grafana_text_and_threshold_color():
    series = [SeriesData("mem", times=[T0, T0 + 15, T0 + 30], values=[1000.0, 1200.0, 1536.0])]
    field = FieldConfig(unit="bytes", color_mode="thresholds", thresholds=STEPS)
    fig = stat_figure(series, field)
    assert _texts(fig) == ["1.50 KiB"]
    assert fig.layout.annotations[0].font.color == RED
    assert len(fig.data) == 1 and fig.data[0].fill == "tozeroy"  # the sparkline
    assert list(fig.data[0].y) == [1000.0, 1200.0, 1536.0]
    _json_ok(fig)


def test_stat_reducers_modes_and_names():
    series = _series(gap=False)
    field = FieldConfig(unit="percent", color_mode="thresholds", thresholds=STEPS)
    fig = stat_figure(series, field, reduce="max", graph_mode="none", text_mode="value_and_name")
    assert not fig.data  # no sparklines
    maxes = [format_value(reduce_value(s.values, "max"), "percent") for s in series]
    assert _texts(fig) == [t for s, m in zip(series, maxes, strict=True) for t in (m, s.name)]
    bg = stat_figure(series, field, color_mode="background", text_mode="value")
    colors = [s.fillcolor for s in bg.layout.shapes]
    values = [float(np.asarray(s.values)[-1]) for s in series]
    assert colors == [GREEN if v < 50 else ORANGE if v < 80 else RED for v in values]
    assert {a.font.color for a in bg.layout.annotations} == {"#ffffff"}
    assert all(s.name not in _texts(bg) for s in series)


def test_stat_no_value_and_empty():
    field = FieldConfig(no_value="N/A")
    assert _texts(stat_figure([SeriesData("x", times=[T0], values=[math.nan])], field)) == ["N/A"]
    empty = stat_figure([], field)
    assert _texts(empty) == ["N/A"]


# ---- gauge ------------------------------------------------------------------------------


def test_gauge_range_steps_and_bar_color():
    series = [SeriesData("cpu", times=[T0], values=[87.5])]
    field = FieldConfig(unit="percent", color_mode="thresholds", thresholds=STEPS)
    fig = gauge_figure(series, field)
    (ind,) = fig.data
    assert ind.type == "indicator" and ind.mode == "gauge"
    assert ind.value == 87.5
    assert ind.gauge.axis.range == (0, 100)
    assert ind.gauge.bar.color == RED
    assert [(s.range, s.color) for s in ind.gauge.steps] == [
        ((0, 50.0), "rgba(115,191,105,0.35)"),
        ((50.0, 80.0), "rgba(255,152,48,0.35)"),
        ((80.0, 100), "rgba(242,73,92,0.35)"),
    ]
    assert _texts(fig) == ["87.5%"]
    _json_ok(fig)


def test_gauge_grid_min_max_and_no_value():
    series = _series(4, gap=False) + [SeriesData("idle", times=[T0], values=[math.nan])]
    field = FieldConfig(unit="bytes", min=0, max=200, no_value="-")
    fig = gauge_figure(series, field)
    assert len(fig.data) == 5
    assert {ind.gauge.axis.range for ind in fig.data} == {(0, 200)}
    domains = {(ind.domain.x, ind.domain.y) for ind in fig.data}
    assert len(domains) == 5  # one cell each
    assert "-" in _texts(fig) and "pod-0" in _texts(fig)
    assert fig.data[-1].value == 0  # no value: an empty gauge
    assert _texts(gauge_figure([], field)) == ["-"]


# ---- bar gauge --------------------------------------------------------------------------


def _disks() -> list[SeriesData]:
    return [
        SeriesData(f"disk-{i}", times=[T0], values=[v]) for i, v in enumerate([12.0, 55.0, 91.0])
    ]


def test_bargauge_basic_bars_texts_and_colors():
    field = FieldConfig(unit="percent", min=0, max=100, color_mode="thresholds", thresholds=STEPS)
    fig = bargauge_figure(_disks(), field, display_mode="basic", orientation="horizontal")
    track, bars = fig.data
    assert list(track.text) == ["12%", "55%", "91%"]
    assert bars.orientation == "h"
    assert list(bars.x) == [12.0, 55.0, 91.0] and list(bars.y) == ["disk-0", "disk-1", "disk-2"]
    assert list(bars.marker.color) == [GREEN, ORANGE, RED]
    assert fig.layout.xaxis.range == (0, 100)
    assert _texts(fig) == ["12%", "55%", "91%"]
    _json_ok(fig)


def test_bargauge_gradient_segments_and_lcd_cells():
    field = FieldConfig(unit="percent", min=0, max=100, color_mode="thresholds", thresholds=STEPS)
    grad = bargauge_figure(_disks(), field, orientation="horizontal")
    segments = grad.data[1:]
    assert [s.marker.color for s in segments] == [GREEN, ORANGE, RED]
    np.testing.assert_allclose([s.x for s in segments], [[12, 50, 50], [0, 5, 30], [0, 0, 11]])
    lcd = bargauge_figure(_disks(), field, display_mode="lcd", orientation="vertical")
    cells = lcd.data[1:]
    assert len(cells) == 20 and lcd.data[1].orientation == "v"
    lit = [sum(not c.marker.color[i].startswith("rgba") for c in cells) for i in range(3)]
    assert lit == [3, 11, 19]  # cells of 5% each, lit where they start below the value


def test_bargauge_auto_orientation_and_default_range():
    field = FieldConfig(unit="bytes")
    wide = bargauge_figure(_disks(), field, panel_size=(800, 200))
    tall = bargauge_figure(_disks(), field, panel_size=(200, 800))
    assert wide.data[0].orientation == "v" and tall.data[0].orientation == "h"
    assert tall.layout.xaxis.range == (0, 91.0)  # 0 up to the highest value
    assert _texts(bargauge_figure([], FieldConfig())) == ["No data"]


# ---- table ------------------------------------------------------------------------------


def test_table_instant_rows_per_series():
    series = [
        SeriesData("a", labels={"instance": "h1", "job": "api"}, times=[T0], values=[1536.0]),
        SeriesData("b", labels={"instance": "h2"}, times=[T0], values=[math.nan]),
    ]
    columns, rows = table_data(series, FieldConfig(unit="bytes"), instant=True)
    assert [c["id"] for c in columns] == ["instance", "job", "Value"]
    assert all(set(c) == {"name", "id", "type"} for c in columns)
    assert rows == [
        {"instance": "h1", "job": "api", "Value": "1.50 KiB", "Value" + NUMERIC_SUFFIX: 1536.0},
        {"instance": "h2", "job": "", "Value": "", "Value" + NUMERIC_SUFFIX: None},
    ]
    json.dumps(rows)


def test_table_range_joined_by_time_or_reduced():
    series = [
        SeriesData("a", times=[T0, T0 + 15], values=[1.0, 2.0]),
        SeriesData("a", times=[T0 + 15, T0 + 30], values=[0.5, 0.25]),
    ]
    columns, rows = table_data(series, FieldConfig(unit="percentunit"), instant=False)
    assert [c["id"] for c in columns] == ["Time", "a", "a (2)"]
    assert [r["Time"] for r in rows] == [
        "2023-11-14 22:13:20",
        "2023-11-14 22:13:35",
        "2023-11-14 22:13:50",
    ]
    assert [(r["a"], r["a (2)"]) for r in rows] == [("100%", ""), ("200%", "50%"), ("", "25%")]
    assert rows[2]["a (2)" + NUMERIC_SUFFIX] == 0.25
    columns, rows = table_data(series, FieldConfig(unit="percentunit"), instant=False, reduce="max")
    assert [c["id"] for c in columns] == ["Series", "Value"]
    assert [r["Value"] for r in rows] == ["200%", "50%"]


# ---- heatmap ----------------------------------------------------------------------------


def _buckets(cumulative: dict[str, list[float]]) -> list[SeriesData]:
    times = [T0 + k * STEP for k in range(len(next(iter(cumulative.values()))))]
    return [
        SeriesData(le, labels={"le": le}, times=times, values=v) for le, v in cumulative.items()
    ]


def test_heatmap_differences_cumulative_buckets():
    # given out of order, with a counter-skew negative and a missing sample
    series = _buckets(
        {
            "+Inf": [10.0, 12.0, 20.0],
            "0.1": [4.0, 6.0, 9.0],
            "0.05": [1.0, 2.0, 3.0],
            "1": [9.0, 11.0, math.nan],
            "0.5": [7.0, 11.5, 15.0],
        }
    )
    fig = heatmap_figure(series, FieldConfig(unit="s"), time_range=RANGE, timezone="utc")
    (heat,) = fig.data
    assert heat.type == "heatmap"
    assert list(heat.y) == ["50 ms", "100 ms", "500 ms", "1 s", "+Inf"]
    expected = [
        [1.0, 2.0, 3.0],  # 0.05 as is
        [3.0, 4.0, 6.0],  # 0.1 - 0.05
        [3.0, 5.5, 6.0],  # 0.5 - 0.1
        [2.0, 0.0, math.nan],  # 1 - 0.5 (negative clipped), missing stays missing
        [1.0, 1.0, 20.0],  # +Inf - 1, where a missing value below counts as 0 (Grafana)
    ]
    np.testing.assert_array_equal(heat.z, np.array(expected))
    assert list(heat.x) == [T0 * 1000, (T0 + 15) * 1000, (T0 + 30) * 1000]
    assert fig.layout.xaxis.range == (_iso(RANGE[0]), _iso(RANGE[1]))
    _json_ok(fig)


def test_bucket_counts_sums_duplicate_bounds():
    bounds, counts = bucket_counts(
        [1.0, math.inf, 1.0], np.array([[1.0, 2.0], [9.0, 9.0], [3.0, 4.0]])
    )
    assert bounds == [1.0, math.inf]
    np.testing.assert_array_equal(counts, [[4.0, 6.0], [5.0, 3.0]])


def test_heatmap_plain_series_and_empty():
    series = _series(2, gap=False)
    fig = heatmap_figure(series, FieldConfig(), time_range=RANGE)
    assert list(fig.data[0].y) == ["pod-0", "pod-1"]
    np.testing.assert_array_equal(fig.data[0].z[1], series[1].values)
    assert _texts(heatmap_figure([], FieldConfig(), time_range=RANGE)) == ["No data"]


# ---- shared -----------------------------------------------------------------------------


def test_empty_figure_is_centered_text_in_theme():
    fig = empty_figure("query failed: timeout")
    (note,) = fig.layout.annotations
    assert (note.text, note.x, note.y, note.xref, note.yref) == (
        "query failed: timeout",
        0.5,
        0.5,
        "paper",
        "paper",
    )
    assert fig.layout.xaxis.visible is False and fig.layout.yaxis.visible is False
    assert fig.layout.paper_bgcolor == "rgba(0,0,0,0)"
    assert _json_ok(fig)["layout"]["template"] == {}  # no default template shipped


def test_every_figure_serializes_to_json():
    field = FieldConfig(unit="bytes", color_mode="thresholds", thresholds=STEPS)
    figures = [
        timeseries_figure(_series(), field, time_range=RANGE, thresholds_style="line+area"),
        stat_figure(_series(), field),
        gauge_figure(_series(), field),
        bargauge_figure(_series(), field, display_mode="lcd"),
        heatmap_figure(_series(), field, time_range=RANGE),
        empty_figure("No data"),
    ]
    for fig in figures:
        doc = _json_ok(fig)
        assert set(doc) >= {"data", "layout"}
        json.dumps(fig.to_plotly_json(), cls=plotly.utils.PlotlyJSONEncoder)
