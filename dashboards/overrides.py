"""Grafana's field overrides: which series a rule matches and what it changes.

A panel's ``fieldConfig.overrides`` is a list of rules, each a matcher and
the properties it sets on the fields (series) it matches. Grafana applies
them in ``applyFieldOverrides`` (``packages/grafana-data/src/field/
fieldOverrides.ts``): every field starts from the panel's
``fieldConfig.defaults``, then each rule, in order, whose matcher accepts the
field sets its properties, a later rule winning over an earlier one and a
``null`` value unsetting the property. :func:`series_styles` does the same
for a panel's :class:`~tinct.dashboards.frames.SeriesData` and returns each
series' effective settings as a :class:`SeriesStyle`, which the figures draw.

The matchers follow ``packages/grafana-data/src/transformations/matchers/``:

* ``byName``: the series' display name, exactly; ``byNames`` any of a list
  (``mode: exclude`` inverts it, as Grafana's saved "hide series" does);
* ``byRegexp``: the display name against ``stringToJsRegex`` of the pattern
  (``/re/flags`` is searched, anything else must match whole: ``^re$``); a
  pattern Python can't compile matches nothing, as Grafana's invalid one;
* ``byRegexpOrNames``: either of the two;
* ``byFrameRefID``: the target the series came from (``refId``);
* ``byType``: ``number`` matches every series (tinct's are all numbers);
* ``byValue`` (reducer comparisons) and unknown matchers match nothing.

The display name the matchers see is the series' name, or a ``displayName``
an earlier rule set: Grafana's ``displayNameOverrideProcessor`` clears the
cached name, so later rules match the new one.

Properties (unknown ones are ignored): ``color``, ``displayName``, ``unit``,
``min``, ``max``, ``decimals``, and the time series panel's ``custom.*``:
``transform``, ``stacking``, ``fillOpacity``, ``lineWidth``, ``lineStyle``,
``hideFrom``, ``axisPlacement``. Pure and cheap: no I/O, safe in any thread.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tinct.dashboards.frames import FieldConfig, SeriesData

__all__ = [
    "AXIS_PLACEMENTS",
    "LINE_FILLS",
    "TRANSFORMS",
    "Override",
    "SeriesStyle",
    "display_name",
    "js_regex",
    "parse_overrides",
    "series_styles",
]

# @grafana/schema's GraphTransform, AxisPlacement and LineStyle.fill.
TRANSFORMS = ("negative-Y", "constant")
AXIS_PLACEMENTS = ("auto", "left", "right", "hidden")
LINE_FILLS = ("solid", "dash", "dot", "square")
_STACKING_MODES = ("none", "normal", "percent")


@dataclass(frozen=True)
class SeriesStyle:
    """One series' effective settings: the panel's defaults with the overrides applied.

    Attributes:
        name: the display name (``displayName`` applied).
        field: the standard options (unit, min, max, decimals, thresholds,
            color mode and fixed color) for this series.
        transform: ``""``, ``negative-Y`` (drawn below zero, hover shows the
            value) or ``constant`` (its first value across the time range).
        stacking: ``none``, ``normal`` or ``percent`` (``custom.stacking.mode``).
        stack_group: ``custom.stacking.group`` as Grafana keys it (JSON
            ``false`` is ``"false"``): only series of one group stack together.
        fill_opacity: 0..100, the area under the line.
        line_width: the line's width in px.
        line_fill: ``custom.lineStyle.fill``: ``solid``, ``dash``, ``dot``, ``square``.
        line_dash: ``custom.lineStyle.dash``, dash and gap lengths in px.
        hide_legend, hide_tooltip, hide_viz: ``custom.hideFrom``.
        axis_placement: ``auto``, ``left``, ``right`` or ``hidden``.
    """

    name: str
    field: FieldConfig = FieldConfig()
    transform: str = ""
    stacking: str = "none"
    stack_group: str = "A"
    fill_opacity: float = 0.0
    line_width: float = 1.0
    line_fill: str = "solid"
    line_dash: tuple[float, ...] = ()
    hide_legend: bool = False
    hide_tooltip: bool = False
    hide_viz: bool = False
    axis_placement: str = "auto"

    @property
    def stacked(self) -> bool:
        """Whether the series stacks (on the others of its group)."""
        return self.stacking != "none"


# A parsed property: the SeriesStyle/FieldConfig attributes it sets.
_Updates = Mapping[str, Any]
# A compiled matcher: (current display name, series) -> matches.
_Match = Callable[[str, SeriesData], bool]


def _never(name: str, s: SeriesData) -> bool:
    return False


@dataclass(frozen=True)
class Override:
    """One rule of ``fieldConfig.overrides``, compiled.

    Attributes:
        matcher: ``matcher.id`` as written (``byName``...).
        options: ``matcher.options`` as written.
        properties: the properties tinct applies, as the attributes each sets
            (a ``displayName`` is kept as its template under ``name``).
        match: the compiled matcher: (display name now, series) -> matches.
    """

    matcher: str
    options: Any = dataclasses.field(default=None, hash=False, compare=False)
    properties: tuple[_Updates, ...] = dataclasses.field(default=(), hash=False)
    match: _Match = dataclasses.field(default=_never, repr=False, hash=False, compare=False)


# ---- matchers -------------------------------------------------------------------------

_JS_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL}
_JS_REGEX = re.compile(r"^/(.*?)/([gimys]*)$", re.DOTALL)


def js_regex(pattern: str) -> re.Pattern[str] | None:
    """Grafana's ``stringToJsRegex``, for ``re.search``: ``/re/flags`` as written,
    anything else anchored as ``^re$``. None when it does not compile."""
    if pattern.startswith("/"):
        m = _JS_REGEX.match(pattern)
        if m is None:
            return None
        source, flags = m[1], 0
        for flag in m[2]:
            flags |= _JS_FLAGS.get(flag, 0)  # g and y change nothing for test()
    else:
        source, flags = f"^{pattern}$", 0
    try:
        return re.compile(source, flags)
    except re.error:
        return None


def _names(options: Any) -> frozenset[str]:
    names = options.get("names") if isinstance(options, Mapping) else None
    if not isinstance(names, list):
        return frozenset()
    return frozenset(n for n in names if isinstance(n, str))


def _regexp(pattern: Any) -> _Match:
    regex = js_regex(pattern) if isinstance(pattern, str) and pattern else None
    if regex is None:
        return _never
    return lambda name, s: regex.search(name) is not None


def _matcher(kind: str, options: Any) -> _Match | None:
    """The matcher ``kind`` with ``options``; None for one tinct does not know."""
    if kind == "byName":
        return lambda name, s: isinstance(options, str) and name == options
    if kind == "byNames":
        names = _names(options)
        exclude = isinstance(options, Mapping) and options.get("mode") == "exclude"
        return lambda name, s: (name in names) != exclude
    if kind == "byRegexp":
        return _regexp(options)
    if kind == "byRegexpOrNames":
        names = _names(options)
        pattern = _regexp(options.get("pattern") if isinstance(options, Mapping) else None)
        return lambda name, s: name in names or pattern(name, s)
    if kind == "byFrameRefID":
        return lambda name, s: s.ref_id == options
    if kind == "byType":
        return lambda name, s: options == "number"
    if kind == "byValue":
        # Reducer comparisons (fieldValueMatcher) are not supported: no match.
        return _never
    return None


# ---- properties ------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    # numberOverrideProcessor: parseFloat, so "10" is 10 and junk is NaN (unset here).
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number else None


def _js_string(value: Any) -> str:
    # Grafana builds the stacking key with a template string: false -> "false".
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _color(value: Any) -> _Updates | None:
    if value is None:
        # Unset: Grafana's getFieldColorModeForField falls back to thresholds.
        return {"color_mode": "thresholds", "fixed_color": ""}
    if not isinstance(value, Mapping) or not isinstance(value.get("mode"), str):
        return None
    fixed = value.get("fixedColor")
    return {"color_mode": value["mode"], "fixed_color": fixed if isinstance(fixed, str) else ""}


def _stacking(value: Any) -> _Updates | None:
    if value is None:
        return {"stacking": "none", "stack_group": "A"}
    if not isinstance(value, Mapping):
        return None
    mode = value.get("mode")
    group = value.get("group")
    return {
        "stacking": mode if mode in _STACKING_MODES else "none",
        "stack_group": "A" if group is None else _js_string(group),
    }


def _line_style(value: Any) -> _Updates | None:
    if value is None:
        return {"line_fill": "solid", "line_dash": ()}
    if not isinstance(value, Mapping):
        return None
    fill, dash = value.get("fill"), value.get("dash")
    dashes = dash if isinstance(dash, list) else []
    lengths = tuple(d for d in map(_number, dashes) if d is not None and d >= 0)
    return {"line_fill": fill if fill in LINE_FILLS else "solid", "line_dash": lengths}


def _hide_from(value: Any) -> _Updates | None:
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        return None
    return {
        "hide_legend": value.get("legend") is True,
        "hide_tooltip": value.get("tooltip") is True,
        "hide_viz": value.get("viz") is True,
    }


def _choice(key: str, choices: Sequence[str], default: str) -> Callable[[Any], _Updates | None]:
    def parse(value: Any) -> _Updates | None:
        if value is None:
            return {key: default}
        return {key: value} if value in choices else None

    return parse


def _numeric(
    key: str, default: float | None, lo: float | None = None
) -> Callable[[Any], _Updates | None]:
    def parse(value: Any) -> _Updates | None:
        number = _number(value)
        if number is None:
            return {key: default} if value is None else None
        if lo is not None:
            number = max(number, lo)
        return {key: number}

    return parse


def _decimals(value: Any) -> _Updates | None:
    number = _number(value)
    if number is None:
        return {"decimals": None} if value is None else None
    return {"decimals": max(0, min(20, int(number)))}


def _unit(value: Any) -> _Updates | None:
    if value is None:
        return {"unit": ""}
    return {"unit": "" if value == "none" else value} if isinstance(value, str) else None


def _display_name(value: Any) -> _Updates | None:
    if value is None:
        return {"name": None}  # back to the series' own name
    return {"name": value} if isinstance(value, str) else None


# Grafana's property ids; each parser gives the attributes set, None to ignore the value.
_PROPERTIES: dict[str, Callable[[Any], _Updates | None]] = {
    "color": _color,
    "displayName": _display_name,
    "unit": _unit,
    "min": _numeric("min", None),
    "max": _numeric("max", None),
    "decimals": _decimals,
    "custom.transform": _choice("transform", TRANSFORMS, ""),
    "custom.stacking": _stacking,
    "custom.fillOpacity": _numeric("fill_opacity", 0.0, lo=0.0),
    "custom.lineWidth": _numeric("line_width", 1.0, lo=0.0),
    "custom.lineStyle": _line_style,
    "custom.hideFrom": _hide_from,
    "custom.axisPlacement": _choice("axis_placement", AXIS_PLACEMENTS, "auto"),
}
_FIELD_KEYS = frozenset({"unit", "min", "max", "decimals", "color_mode", "fixed_color"})


def _properties(items: Iterable[tuple[str, Any]]) -> tuple[_Updates, ...]:
    parsed = []
    for key, value in items:
        parser = _PROPERTIES.get(key)
        updates = None if parser is None else parser(value)
        if updates is not None:
            parsed.append(updates)
    return tuple(parsed)


def parse_overrides(raw: Iterable[Any]) -> tuple[Override, ...]:
    """``fieldConfig.overrides`` as written, compiled; leniently, as Grafana reads it.

    A rule whose matcher tinct does not know is dropped (Grafana skips a
    matcher its registry lacks); properties tinct does not draw, or whose
    value it can't read, are left out of :attr:`Override.properties`.
    """
    rules = []
    for rule in raw:
        if not isinstance(rule, Mapping):
            continue
        matcher = rule.get("matcher")
        if not isinstance(matcher, Mapping) or not isinstance(matcher.get("id"), str):
            continue
        match = _matcher(matcher["id"], matcher.get("options"))
        if match is None:
            continue
        props = rule.get("properties")
        items = [
            (p["id"], p.get("value"))
            for p in (props if isinstance(props, list) else [])
            if isinstance(p, Mapping) and isinstance(p.get("id"), str)
        ]
        rules.append(Override(matcher["id"], matcher.get("options"), _properties(items), match))
    return tuple(rules)


# ---- display names ---------------------------------------------------------------------

# Grafana's data macros in a display name: ${__field.labels.X}, ${__series.name}...
_MACRO = re.compile(r"\$\{(__field|__series)(?:\.([^:}]+))?(?::[^}]*)?\}")


def display_name(template: str, s: SeriesData, current: str) -> str:
    """A ``displayName`` with Grafana's series macros replaced.

    ``${__series.name}`` is the series' name (its legend),
    ``${__field.labels.X}`` its label X ("" when absent), ``${__field.labels}``
    all of them as ``{a="1", b="2"}``, ``${__field.displayName}`` the name
    before this one. Anything else (dashboard variables too) stays as written.
    """

    def replace(m: re.Match[str]) -> str:
        kind, path = m[1], m[2] or ""
        if kind == "__series" and path == "name":
            return s.name
        if kind == "__field":
            if path.startswith("labels."):
                return s.labels.get(path[len("labels.") :], "")
            if path in ("labels", "formattedLabels"):
                inner = ", ".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
                return f"{{{inner}}}" if inner else ""
            if path == "displayName":
                return current
        return m[0]

    return _MACRO.sub(replace, template) if "${" in template else template


# ---- applying them --------------------------------------------------------------------


def _defaults(defaults: Mapping[str, Any] | None) -> tuple[_Updates, ...]:
    """``fieldConfig.defaults``' display name and ``custom`` options, as properties."""
    if not defaults:
        return ()
    items: list[tuple[str, Any]] = []
    custom = defaults.get("custom")
    if isinstance(custom, Mapping):
        # A null default leaves the option unset (processFieldConfigValue).
        items += [(f"custom.{k}", v) for k, v in custom.items() if v is not None]
    name = defaults.get("displayName")
    if isinstance(name, str) and name:
        items.append(("displayName", name))
    return _properties(items)


def _apply(updates: _Updates, style: dict[str, Any], field: dict[str, Any], s: SeriesData) -> None:
    for key, value in updates.items():
        if key == "name":
            style["name"] = s.name if value is None else display_name(value, s, style["name"])
        elif key in _FIELD_KEYS:
            field[key] = value
        else:
            style[key] = value


def series_styles(
    series: Sequence[SeriesData],
    field: FieldConfig,
    overrides: Sequence[Override] = (),
    *,
    defaults: Mapping[str, Any] | None = None,
) -> list[SeriesStyle]:
    """Each series' settings: ``field`` and ``defaults``, then the matching overrides.

    Args:
        series: the panel's series, in the order they are drawn.
        field: the panel's parsed ``fieldConfig.defaults`` (unit, min, max...).
        overrides: :func:`parse_overrides` of ``fieldConfig.overrides``.
        defaults: the raw ``fieldConfig.defaults``, for its ``custom`` options
            (``stacking``, ``fillOpacity``, ``lineWidth``...) and ``displayName``.

    Returns:
        One :class:`SeriesStyle` per series, aligned with ``series``.
    """
    base = _defaults(defaults)
    styles = []
    for s in series:
        style: dict[str, Any] = {"name": s.name}
        changed: dict[str, Any] = {}
        for updates in base:
            _apply(updates, style, changed, s)
        for rule in overrides:
            # The name as it is now: a displayName set above is matched from here on.
            if rule.properties and rule.match(style["name"], s):
                for updates in rule.properties:
                    _apply(updates, style, changed, s)
        own = field
        if changed:
            own = dataclasses.replace(field, **changed)
            if own.min is not None and own.max is not None and own.min > own.max:
                # validateFieldConfig swaps an inverted range.
                own = dataclasses.replace(own, min=own.max, max=own.min)
        styles.append(SeriesStyle(field=own, **style))
    return styles
