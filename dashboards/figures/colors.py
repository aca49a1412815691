"""Grafana's colors: named hues, thresholds, and the classic series palette.

Dashboard JSON names colors the way Grafana's theme does ("green",
"semi-dark-red", "#FF9830", "rgb(…)"). ``grafana_color`` resolves them with
the dark theme's table (grafana/packages/grafana-data/src/themes/
createVisualizationColors.ts: ``getDarkHues``, ``getClassicPalette``); the
thresholds logic follows ``getActiveThreshold`` and
``getActiveThresholdForValue`` (grafana-data/src/field/thresholds.ts) and the
display processor's use of them (a missing value takes the base step's color).
"""

from __future__ import annotations

import math
import re
import zlib

from ..frames import FieldConfig, Threshold

__all__ = [
    "FALLBACK_COLOR",
    "CLASSIC_PALETTE",
    "grafana_color",
    "with_alpha",
    "threshold_color",
    "threshold_steps",
    "series_color",
]

# grafana-data/src/types/fieldColor.ts
FALLBACK_COLOR = "#808080"

_HUES = {
    "red": ("#FFA6B0", "#FF7383", "#F2495C", "#E02F44", "#C4162A"),
    "orange": ("#FFCB7D", "#FFB357", "#FF9830", "#FF780A", "#FA6400"),
    "yellow": ("#FFF899", "#FFEE52", "#FADE2A", "#F2CC0C", "#E0B400"),
    "green": ("#C8F2C2", "#96D98D", "#73BF69", "#56A64B", "#37872D"),
    "blue": ("#C0D8FF", "#8AB8FF", "#5794F2", "#3274D9", "#1F60C4"),
    "purple": ("#DEB6F2", "#CA95E5", "#B877D9", "#A352CC", "#8F3BB8"),
}
_SHADES = ("super-light-{}", "light-{}", "{}", "semi-dark-{}", "dark-{}")
_NAMED: dict[str, str] = {
    shade.format(hue): color
    for hue, colors in _HUES.items()
    for shade, color in zip(_SHADES, colors, strict=True)
}
_NAMED.update({"transparent": "rgba(0,0,0,0)", "text": "#ccccdc", "panel-bg": "#181b1f"})
# CSS names Grafana resolves itself (nativeColorNames), the ones dashboards use;
# any other name is passed through for the browser to read.
_NATIVE = {
    "white": "#ffffff",
    "black": "#000000",
    "gray": "#808080",
    "grey": "#808080",
    "silver": "#c0c0c0",
    "lime": "#00ff00",
    "navy": "#000080",
    "teal": "#008080",
    "aqua": "#00ffff",
    "cyan": "#00ffff",
    "fuchsia": "#ff00ff",
    "magenta": "#ff00ff",
    "maroon": "#800000",
    "olive": "#808000",
    "gold": "#ffd700",
    "pink": "#ffc0cb",
    "brown": "#a52a2a",
    "darkred": "#8b0000",
    "darkgreen": "#006400",
    "darkorange": "#ff8c00",
}

CLASSIC_PALETTE: tuple[str, ...] = (
    *(
        f"{shade}{hue}"
        for shade in ("", "dark-", "super-light-")
        for hue in ("green", "yellow", "blue", "orange", "red", "purple")
    ),
    "#447EBC", "#C15C17", "#890F02", "#0A437C", "#6D1F62", "#584477",
    "#B7DBAB", "#F4D598", "#70DBED", "#F9BA8F", "#F29191", "#82B5D8",
    "#E5A8E2", "#AEA2E0", "#629E51", "#E5AC0E", "#64B0C8", "#E0752D",
    "#BF1B00", "#0A50A1", "#962D82", "#614D93", "#9AC48A", "#F2C96D",
    "#65C5DB", "#F9934E", "#EA6460", "#5195CE", "#D683CE", "#806EB7",
    "#3F6833", "#967302", "#2F575E", "#99440A", "#58140C", "#052B51",
    "#511749", "#3F2B5B", "#E0F9D7", "#FCEACA", "#CFFAFF", "#F9E2D2",
    "#FCE2DE", "#BADFF4", "#F9D9F9", "#DEDAF7",
)  # fmt: skip


def grafana_color(name: str) -> str:
    """A Grafana color name as CSS: ``grafana_color("semi-dark-red") == "#E02F44"``.

    Hex and ``rgb(...)``/``rgba(...)`` pass through; Grafana's hue names take
    the dark theme's values (so "green" is ``#73BF69``, not CSS green); a few
    CSS names resolve to hex and any other name passes through. "" gives
    Grafana's fallback gray.
    """
    if not name:
        return FALLBACK_COLOR
    named = _NAMED.get(name)
    if named is not None:
        return named
    if name[0] == "#" or "rgb" in name:
        return name
    return _NATIVE.get(name.lower(), name)


_RGB = re.compile(r"rgba?\(\s*([\d.]+)\s*,\s*([\d.]+)\s*,\s*([\d.]+)")


def with_alpha(color: str, alpha: float) -> str:
    """``color`` (any form ``grafana_color`` accepts) as ``rgba(r,g,b,alpha)``."""
    css = grafana_color(color)
    rgb: tuple[int, int, int] | None = None
    if css.startswith("#") and len(css) in (4, 7, 9):
        h = css[1:] if len(css) != 4 else "".join(c * 2 for c in css[1:])
        rgb = (int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16))
    elif m := _RGB.match(css):
        rgb = (round(float(m[1])), round(float(m[2])), round(float(m[3])))
    if rgb is None:
        return css
    return f"rgba({rgb[0]},{rgb[1]},{rgb[2]},{alpha:g})"


def _sorted_steps(steps: tuple[Threshold, ...]) -> list[Threshold]:
    # Grafana stores the base step's null as -Infinity and keeps steps sorted.
    return sorted(steps, key=lambda s: -math.inf if s.value is None else s.value)


def _percent(value: float, field: FieldConfig, data_range: tuple[float, float] | None) -> float:
    lo = field.min if field.min is not None else (data_range[0] if data_range else 0.0)
    hi = field.max if field.max is not None else (data_range[1] if data_range else 100.0)
    ratio = (value - lo) / (hi - lo) if hi != lo else 0.0
    return ratio * 100


def threshold_color(
    value: float | None,
    field: FieldConfig,
    *,
    data_range: tuple[float, float] | None = None,
) -> str:
    """The CSS color of the highest threshold step at or below ``value``.

    In ``percentage`` mode the steps are percents of min..max: the field's
    min/max, else ``data_range`` (Grafana uses the data's), else 0..100.
    None or NaN takes the base step's color, as in Grafana's display
    processor; no steps gives the fallback gray.
    """
    steps = _sorted_steps(field.thresholds)
    if not steps:
        return FALLBACK_COLOR
    if value is None or math.isnan(value):
        return grafana_color(steps[0].color)
    if field.thresholds_mode == "percentage":
        value = _percent(value, field, data_range)
    active = steps[0]
    for step in steps[1:]:
        if step.value is not None and value >= step.value:
            active = step
        else:
            break
    return grafana_color(active.color)


def threshold_steps(field: FieldConfig, lo: float, hi: float) -> list[tuple[float, float, str]]:
    """The thresholds as absolute bands clipped to [lo, hi]: (start, end, css color).

    Percentage steps are placed on ``lo..hi`` (the field's min/max when set).
    Empty bands are left out; the base step starts at ``lo``.
    """
    steps = _sorted_steps(field.thresholds)
    base_lo = field.min if field.min is not None else lo
    base_hi = field.max if field.max is not None else hi
    bands: list[tuple[float, float, str]] = []
    for i, step in enumerate(steps):
        start = lo if step.value is None else step.value
        end = hi if i + 1 == len(steps) else steps[i + 1].value
        if end is None:
            end = hi
        if field.thresholds_mode == "percentage":
            if step.value is not None:
                start = base_lo + (base_hi - base_lo) * step.value / 100
            if i + 1 < len(steps):
                end = base_lo + (base_hi - base_lo) * end / 100
        start, end = max(start, lo), min(end, hi)
        if end > start:
            bands.append((start, end, grafana_color(step.color)))
    return bands


def series_color(field: FieldConfig, index: int, value: float | None = None, name: str = "") -> str:
    """A series' color from ``fieldConfig.defaults.color``.

    ``fixed``/``shades`` give the fixed color, ``thresholds`` the color of
    ``value`` (typically the series' last), ``palette-classic-by-name`` a
    palette color chosen by a stable hash of ``name``, and anything else
    (``palette-classic``, the continuous schemes) the classic palette by
    ``index``.
    """
    mode = field.color_mode
    if mode in ("fixed", "shades"):
        return grafana_color(field.fixed_color)
    if mode == "thresholds":
        return threshold_color(value, field)
    if mode == "palette-classic-by-name" and name:
        index = zlib.crc32(name.encode())
    return grafana_color(CLASSIC_PALETTE[index % len(CLASSIC_PALETTE)])
