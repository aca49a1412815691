"""A panel's display settings: Grafana's ``fieldConfig.defaults`` as a FieldConfig.

``fieldConfig.defaults`` (``packages/grafana-schema/src/common``'s
``FieldConfig``) carries the unit, min/max, decimals, thresholds, color mode
and "no value" text tinct's figures draw with. Thresholds are normalised as
Grafana does (``sortThresholds`` and ``validateFieldConfig`` in grafana-data):
steps sorted by value and the first made the base step, whose value Grafana
saves as ``null`` for -Infinity.

Angular ``graph`` and ``singlestat`` panels, which Grafana auto-migrates to
``timeseries`` and ``stat``, kept these settings elsewhere: the graph's first
``yaxes`` entry (unit, min, max), the singlestat's ``format``, ``decimals``,
``thresholds`` ("80,90") with ``colors``, and ``gauge.minValue``/``maxValue``.
They are carried over the same way (``graph/GraphMigrations.ts``,
``stat/StatMigrations.ts``), leniently: a value that can't be read is dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tinct.dashboards.frames import DEFAULT_THRESHOLDS, FieldConfig, Threshold
from tinct.dashboards.reading import Node

__all__ = ["parse_field_config"]


def parse_field_config(
    panel: Node, legacy: bool = False, *, default_color_mode: str = "palette-classic"
) -> FieldConfig:
    """A panel's ``fieldConfig.defaults``; for a legacy (Angular) panel without one,
    the settings it carried. ``default_color_mode`` is the panel type's own
    default (Grafana's stat, gauge and bar gauge color by thresholds).
    """
    config = panel.node("fieldConfig")
    defaults = None if config is None else config.node("defaults")
    base = FieldConfig(color_mode=default_color_mode)
    if defaults is None:
        if legacy:
            return _legacy_field_config(panel)
        return base
    thresholds = defaults.node("thresholds")
    color = defaults.node("color")
    return FieldConfig(
        unit=defaults.string("unit"),
        min=defaults.opt_float("min"),
        max=defaults.opt_float("max"),
        decimals=defaults.opt_int("decimals", lo=0),
        thresholds=base.thresholds if thresholds is None else _steps(thresholds),
        thresholds_mode=base.thresholds_mode
        if thresholds is None
        else thresholds.choice("mode", "absolute", ("absolute", "percentage")),
        color_mode=base.color_mode if color is None else color.string("mode", base.color_mode),
        fixed_color="" if color is None else color.string("fixedColor"),
        no_value=defaults.string("noValue", base.no_value),
    )


def _steps(thresholds: Node) -> tuple[Threshold, ...]:
    steps = [
        Threshold(step.opt_float("value"), step.string("color", "green"))
        for step in thresholds.nodes("steps")
    ]
    if not steps:
        return (Threshold(None, DEFAULT_THRESHOLDS[0].color),)
    # Grafana sorts the steps and makes the first the base (-Infinity, saved as
    # null): sortThresholds + validateFieldConfig in grafana-data.
    steps.sort(key=lambda s: float("-inf") if s.value is None else s.value)
    return (Threshold(None, steps[0].color), *steps[1:])


def _number(value: Any) -> float | None:
    # Angular panels kept numbers as strings ("0", "100"); unreadable ones are dropped.
    if isinstance(value, bool) or value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _legacy_field_config(panel: Node) -> FieldConfig:
    """The settings an Angular graph/singlestat panel carried, as Grafana migrates them."""
    base = FieldConfig()
    raw = panel.data
    decimals = raw.get("decimals")
    decimals = decimals if isinstance(decimals, int) and not isinstance(decimals, bool) else None
    if raw.get("type") == "graph":
        axes = raw.get("yaxes")
        axis = axes[0] if isinstance(axes, list) and axes and isinstance(axes[0], Mapping) else {}
        unit = axis.get("format")
        return FieldConfig(
            unit=unit if isinstance(unit, str) else "",
            min=_number(axis.get("min")),
            max=_number(axis.get("max")),
            decimals=decimals,
        )
    unit = raw.get("format")
    steps: tuple[Threshold, ...] = base.thresholds
    colors = raw.get("colors")
    levels = raw.get("thresholds")
    if isinstance(levels, str) and isinstance(colors, list) and colors:
        values = [_number(v.strip()) for v in levels.split(",") if v.strip()]
        names = [c if isinstance(c, str) else "green" for c in colors]
        steps = (Threshold(None, names[0]),) + tuple(
            Threshold(v, names[min(i + 1, len(names) - 1)])
            for i, v in enumerate(values)
            if v is not None
        )
    gauge: Mapping[str, Any] = raw["gauge"] if isinstance(raw.get("gauge"), Mapping) else {}
    return FieldConfig(
        unit=unit if isinstance(unit, str) and unit != "none" else "",
        min=_number(gauge.get("minValue")),
        max=_number(gauge.get("maxValue")),
        decimals=decimals,
        thresholds=steps,
        color_mode="thresholds",
    )
