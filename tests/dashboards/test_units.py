"""Grafana's value formats, colors and axis ticks, to the character.

The expected strings are Grafana's: the cases of its own tests
(grafana-data/src/valueFormats/valueFormats.test.ts,
dateTimeFormatters.test.ts) and values worked through its source
(``toFixed``, ``getDecimalsForValue``, ``scaledUnits``, ``toSeconds``…).
"""

from __future__ import annotations

import math

import pytest

from tinct.dashboards.figures import (
    FALLBACK_COLOR,
    axis_ticks,
    format_parts,
    format_value,
    grafana_color,
    series_color,
    threshold_color,
    threshold_steps,
    value_scale,
    with_alpha,
)
from tinct.dashboards.frames import FieldConfig, Threshold

GRAFANA_CASES = [
    # valueFormats.test.ts
    (1532.82, "currencyUSD", 2, "$1.53K"),
    (0.0024, "ms", 4, "0.0024 ms"),
    (100, "ms", 0, "100 ms"),
    (1250, "ms", 2, "1.25 s"),
    (1200, "ms", 0, "1 s"),
    (98765, "short", 0, "99 K"),
    (9876543, "short", 0, "10 Mil"),
    (10000000, "kbytes", 3, "9.537 GiB"),
    (10000000, "deckbytes", 3, "10.000 GB"),
    (1000, "kwatt", 3, "1.000 MW"),
    (100, "", None, "100"),
    (100.4, "", None, "100"),
    (100.5, "", None, "101"),
    (100, "", 1, "100.0"),
    (100.37, "", 1, "100.4"),
    (100.63, "", 1, "100.6"),
    (100.4, "", 2, "100.40"),
    (100.5, "", 2, "100.50"),
    (186.123, "", -2, "186"),
    # dateTimeFormatters.test.ts
    (0, "dtdurationms", 0, "0 milliseconds"),
    (1, "dtdurationms", 0, "1 millisecond"),
    (-1, "dtdurationms", 0, "1 millisecond ago"),
    (1, "dtdurations", 0, "1 second"),
    (38898367008, "dtdurationms", 0, "1 year"),
    (38898367008, "dtdurationms", 1, "1 year, 2 months"),
    (
        38898367008,
        "dtdurationms",
        20,
        "1 year, 2 months, 3 weeks, 4 days, 5 hours, 6 minutes, 7 seconds, 8 milliseconds",
    ),
    (
        36993906007,
        "dtdurationms",
        8,
        "1 year, 2 months, 0 weeks, 3 days, 4 hours, 5 minutes, 6 seconds, 7 milliseconds",
    ),
    (1, "dthms", None, "00:00:01"),
    (-1, "dthms", None, "00:00:01 ago"),
    (0, "dthms", None, "00:00:00"),
]

WORKED_CASES = [
    # automatic decimals: two digits after the leading one, none for integers
    (1536, "bytes", None, "1.50 KiB"),
    (0.123, "percentunit", None, "12.3%"),
    (1500, "ms", None, "1.50 s"),
    (12345, "short", None, "12.3 K"),
    (0.000123, "s", None, "123 µs"),
    (-0.000123, "s", None, "-123 µs"),
    (1e-7, "s", None, "100 ns"),
    (0.1 + 0.2, "", None, "0.300"),
    (15, "percent", None, "15%"),
    (0.999, "percentunit", None, "99.9%"),
    (5.5 * 1024 * 1024, "bytes", None, "5.50 MiB"),
    (1500, "decbytes", None, "1.50 kB"),
    (1536, "binBps", None, "1.50 KiB/s"),
    (1500, "Bps", None, "1.50 kB/s"),
    (125e6, "bps", None, "125 Mb/s"),
    (1536, "bits", None, "1.50 Kib"),
    (1.5e9, "hertz", None, "1.50 GHz"),
    (0.5, "watt", None, "500 mW"),
    (230, "volt", None, "230 V"),
    (1500, "reqps", None, "1.50K req/s"),
    (12, "ops", None, "12 ops/s"),
    (2.5e6, "iops", None, "2.50M io/s"),
    (-1500, "currencyUSD", None, "-$1.50K"),
    (42, "celsius", None, "42 °C"),
    (1e15, "short", None, "1 Quadr"),
    (0, "bytes", None, "0 B"),
    (0, "watt", None, "0 W"),
    # seconds scale down to ns and up to years; min/hour/day/week/year take
    # a plural above 1 (grafana#77337, #93326), s/ms/µs/ns never do
    (0, "s", None, "0 s"),
    (1, "s", None, "1 s"),
    (86400 * 1.5, "s", None, "1.50 days"),
    (3600, "s", None, "1 hour"),
    (7200, "s", None, "2 hours"),
    (90, "s", None, "1.50 mins"),
    (604800 * 2, "s", None, "2 weeks"),
    (10000086.123, "ms", 1, "2.8 hours"),
    (1500000, "ns", None, "1.50 ms"),
    (1500, "µs", None, "1.50 ms"),
    (1500, "us", None, "1.50 ms"),
    (2, "d", None, "2 days"),
    (1, "d", None, "1 day"),
    (5, "h", None, "5 hour"),
    (30, "m", None, "30 min"),
    # durations: decimals count the units shown after the first
    (93600, "dtdurations", None, "1 day"),
    (93600, "dtdurations", 1, "1 day, 2 hours"),
    (90061, "dtdhms", None, "1 d 01:01:01"),
    # JavaScript's number semantics: Math.round halves go up, String(x) forms
    (0.5, "", 0, "1"),
    (2.5, "", 0, "3"),
    (-2.5, "", 0, "-2"),
    (1e-10, "none", None, "1e-10"),
    (1e21, "none", None, "1e+21"),
    (1.2345678901234568e20, "none", None, "123456789012345680000"),
    (math.inf, "short", None, "∞"),
    (-math.inf, "bytes", None, "-∞"),
    # other formatters and custom units
    (5, "bool", None, "True"),
    (0, "bool", None, "False"),
    (1, "bool_yes_no", None, "Yes"),
    (0, "bool_on_off", None, "Off"),
    (1234567.891, "locale", None, "1,234,567.891"),
    (1234.5, "locale", 0, "1,235"),
    (12345, "sci", None, "1.2345e+4"),
    (12345, "sci", 2, "1.23e+4"),
    (3, "prefix:$", None, "$3"),
    (3, "suffix:/s", None, "3 /s"),
    (1500, "count:jobs", None, "1.50K jobs"),
    (1500, "currency:£", None, "£1.50K"),
    (1, "bool:up/down", None, "up"),
    (0, "bool:up/down", None, "down"),
    (1500, "si:kW", None, "1.50 MW"),
    (3, "widgets", None, "3 widgets"),
    (3, "", None, "3"),
]


@pytest.mark.parametrize(("value", "unit", "decimals", "expected"), GRAFANA_CASES + WORKED_CASES)
def test_format_value_matches_grafana(value, unit, decimals, expected):
    assert format_value(value, unit, decimals) == expected


def test_nan_and_none():
    assert format_value(math.nan, "bytes") == "NaN"
    assert format_value(math.nan, "dtdurations") == "NaN"
    assert format_value(None, "bytes") == ""


def test_format_parts_split_like_grafana():
    assert format_parts(1536, "bytes") == ("", "1.50", " KiB")
    assert format_parts(-1500, "currencyUSD") == ("-$", "1.50", "K")
    assert str(format_parts(3, "prefix:$")) == "$3"


def test_value_scale_matches_format_value():
    div, prefix, suffix = value_scale("bytes", 5.5 * 1024 * 1024)
    assert (div, prefix, suffix) == (1024.0**2, "", " MiB")
    assert value_scale("percentunit", 0.5) == (0.01, "", "%")
    assert value_scale("s", 7200) == (3600, "", " hours")
    assert value_scale("s", 0.002) == (0.001, "", " ms")
    assert value_scale("currencyUSD", 2e6) == (1e6, "$", "M")
    assert value_scale("widgets", 5) == (1.0, "", " widgets")


# ---- thresholds and colors -------------------------------------------------

STEPS = (Threshold(None, "green"), Threshold(50.0, "orange"), Threshold(80.0, "red"))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (-1e9, "#73BF69"),
        (49.99, "#73BF69"),
        (50, "#FF9830"),  # a step applies from its value on
        (79.99, "#FF9830"),
        (80, "#F2495C"),
        (1e12, "#F2495C"),
        (None, "#73BF69"),  # no value: the base step, as Grafana's display processor
        (math.nan, "#73BF69"),
    ],
)
def test_threshold_color_absolute(value, expected):
    assert threshold_color(value, FieldConfig(thresholds=STEPS)) == expected


def test_threshold_color_unsorted_steps():
    field = FieldConfig(thresholds=(Threshold(80.0, "red"), Threshold(None, "green")))
    assert threshold_color(90, field) == "#F2495C"
    assert threshold_color(10, field) == "#73BF69"


def test_threshold_color_percentage_of_min_max():
    field = FieldConfig(thresholds=STEPS, thresholds_mode="percentage", min=0, max=200)
    assert threshold_color(90, field) == "#73BF69"  # 45%
    assert threshold_color(100, field) == "#FF9830"  # 50%
    assert threshold_color(170, field) == "#F2495C"  # 85%
    no_bounds = FieldConfig(thresholds=STEPS, thresholds_mode="percentage")
    assert threshold_color(170, no_bounds, data_range=(0, 1000)) == "#73BF69"  # 17%
    assert threshold_color(70, no_bounds) == "#FF9830"  # 0..100 by default


def test_threshold_steps_are_bands_clipped_to_range():
    assert threshold_steps(FieldConfig(thresholds=STEPS), 0, 100) == [
        (0, 50.0, "#73BF69"),
        (50.0, 80.0, "#FF9830"),
        (80.0, 100, "#F2495C"),
    ]
    assert threshold_steps(FieldConfig(thresholds=STEPS), 60, 70) == [(60, 70, "#FF9830")]
    pct = FieldConfig(thresholds=STEPS, thresholds_mode="percentage")
    assert threshold_steps(pct, 0, 200) == [
        (0, 100.0, "#73BF69"),
        (100.0, 160.0, "#FF9830"),
        (160.0, 200, "#F2495C"),
    ]


@pytest.mark.parametrize(
    ("name", "css"),
    [
        ("green", "#73BF69"),
        ("red", "#F2495C"),
        ("orange", "#FF9830"),
        ("yellow", "#FADE2A"),
        ("blue", "#5794F2"),
        ("purple", "#B877D9"),
        ("dark-red", "#C4162A"),
        ("semi-dark-green", "#56A64B"),
        ("light-blue", "#8AB8FF"),
        ("super-light-yellow", "#FFF899"),
        ("transparent", "rgba(0,0,0,0)"),
        ("#1f78c1", "#1f78c1"),
        ("rgb(1, 2, 3)", "rgb(1, 2, 3)"),
        ("rgba(1,2,3,0.5)", "rgba(1,2,3,0.5)"),
        ("white", "#ffffff"),
        ("rebeccapurple", "rebeccapurple"),
        ("", FALLBACK_COLOR),
    ],
)
def test_grafana_color(name, css):
    assert grafana_color(name) == css


def test_with_alpha():
    assert with_alpha("green", 0.5) == "rgba(115,191,105,0.5)"
    assert with_alpha("#abc", 0.1) == "rgba(170,187,204,0.1)"
    assert with_alpha("rgb(1, 2, 3)", 0.25) == "rgba(1,2,3,0.25)"


def test_series_color_modes():
    assert series_color(FieldConfig(), 0) == "#73BF69"  # palette-classic: green first
    assert series_color(FieldConfig(), 1) == "#FADE2A"
    assert series_color(FieldConfig(color_mode="fixed", fixed_color="purple"), 3) == "#B877D9"
    assert series_color(FieldConfig(color_mode="thresholds"), 0, 95.0) == "#F2495C"
    by_name = FieldConfig(color_mode="palette-classic-by-name")
    assert series_color(by_name, 0, name="api") == series_color(by_name, 7, name="api")


# ---- axis ticks ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("unit", "lo", "hi"),
    [
        ("bytes", 0, 1e9),
        ("short", -3.5, 17.2),
        ("percentunit", 0.02, 0.97),
        ("s", 0.0001, 0.004),
        ("reqps", 1234, 98765),
        ("", 5, 5),
    ],
)
def test_axis_ticks_increasing_covering_and_formatted(unit, lo, hi):
    ticks, texts = axis_ticks(unit, lo, hi)
    assert 2 <= len(ticks) <= 8
    assert all(a < b for a, b in zip(ticks, ticks[1:], strict=False))
    assert ticks[0] <= lo and ticks[-1] >= hi
    assert len(set(texts)) == len(texts) or lo == hi
    assert all(texts)


def test_axis_ticks_like_grafana_axes():
    # bytes step in powers of two; each tick formatted on its own
    assert axis_ticks("bytes", 0, 2**30) == (
        [0.0, 2.0**28, 2.0**29, 3 * 2.0**28, 2.0**30],
        ["0 B", "256 MiB", "512 MiB", "768 MiB", "1 GiB"],
    )
    # a whole increment: automatic decimals per tick
    assert axis_ticks("ms", 0, 1500)[1] == ["0 ms", "500 ms", "1 s", "1.50 s"]
    # a fractional increment: its decimals for every tick (guessDecimals)
    assert axis_ticks("percentunit", 0, 1)[1] == [
        "0.0%",
        "20.0%",
        "40.0%",
        "60.0%",
        "80.0%",
        "100.0%",
    ]
    # the field's decimals win over the increment's
    assert axis_ticks("", 0, 1, decimals=2)[1] == ["0.00", "0.20", "0.40", "0.60", "0.80", "1.00"]


def test_axis_ticks_log_and_degenerate():
    ticks, texts = axis_ticks("s", 0.002, 40, log_base=10)
    assert ticks == [0.001, 0.01, 0.1, 1.0, 10.0, 100.0]
    assert texts == ["1 ms", "10 ms", "100 ms", "1 s", "10 s", "1.67 mins"]
    assert axis_ticks("", math.nan, 1) == ([], [])
    assert axis_ticks("", 0, math.inf) == ([], [])
    assert axis_ticks("", 10, 0)[0][0] <= 0  # reversed bounds are swapped
