"""Grafana's value formats: ``format_value(1536, "bytes") == "1.50 KiB"``.

A panel's ``fieldConfig.defaults.unit`` names one of Grafana's formatters, and
every number tinct draws (stat values, axis ticks, table cells, hover labels)
goes through it so it reads exactly as it would in Grafana. Ported from
grafana/packages/grafana-data/src/valueFormats/: ``getValueFormat`` (the
``prefix:``/``suffix:``/``si:``/``count:``/``currency:``/``bool:`` custom units,
unknown ids as a plain suffix) and ``scaledUnits``/``toFixedUnit``/
``simpleCountUnit`` from valueFormats.ts, the unit table from categories.ts,
``SIPrefix``/``binaryPrefix``/``currency`` from symbolFormatters.ts, ``toPercent``/
``toPercentUnit``/``sci`` from arithmeticFormatters.ts, and the time units from
dateTimeFormatters.ts (see ``_timeunits``). Date-time units (``dateTimeAsIso``,
``time:``) are not ported: tinct's panels don't show timestamps as values.

Axis ticks follow @grafana/ui's UPlotAxisBuilder: each tick is formatted on
its own, with the decimals of the tick increment (``guessDecimals``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from ._jsnum import guess_decimals, js_str, to_exponential, to_fixed, to_locale
from ._timeunits import TIME_UNITS, format_duration, format_hms, format_time, time_scale

__all__ = ["FormattedValue", "format_value", "format_parts", "value_scale", "axis_ticks"]


class FormattedValue(NamedTuple):
    """Grafana's ``FormattedValue``: shown as prefix + text + suffix."""

    prefix: str
    text: str
    suffix: str

    def __str__(self) -> str:
        return self.prefix + self.text + self.suffix


# (value, decimals) -> parts; ref -> (divisor, prefix, suffix) near ref.
_Format = Callable[[float, "int | None"], FormattedValue]
_Scale = Callable[[float], "tuple[float, str, str]"]


@dataclass(frozen=True)
class _Unit:
    format: _Format
    scale: _Scale
    binary: bool = False  # IEC (1024) steps make nicer axis ticks


def _nonfinite(value: float) -> FormattedValue:
    # Number.prototype.toLocaleString() in en-US.
    text = "NaN" if math.isnan(value) else ("∞" if value > 0 else "-∞")
    return FormattedValue("", text, "")


def _fixed_unit(unit: str, as_prefix: bool = False) -> _Unit:
    """``toFixedUnit``: "21.5 °C", or ``prefix:`` units glued on the left."""
    prefix, suffix = (unit, "") if as_prefix else ("", " " + unit if unit else "")

    def fmt(v: float, d: int | None) -> FormattedValue:
        return FormattedValue(prefix, to_fixed(v, d), suffix)

    return _Unit(fmt, lambda ref: (1.0, prefix, suffix))


def _scaled(factor: int, exts: tuple[str, ...], offset: int = 0, binary: bool = False) -> _Unit:
    """``scaledUnits``: divide by ``factor`` per step, ``offset`` = index of 10**0."""
    last = len(exts) - 1

    def power(v: float) -> tuple[int, str]:
        step = 0 if v == 0 else math.floor(math.log10(abs(v)) / math.log10(factor))
        return min(max(step, -offset), last - offset), exts[min(max(offset + step, 0), last)]

    def fmt(v: float, d: int | None) -> FormattedValue:
        if not math.isfinite(v):
            return _nonfinite(v)
        p, ext = power(v)
        return FormattedValue("", to_fixed(v / float(factor) ** p, d), ext)

    def scale(ref: float) -> tuple[float, str, str]:
        p, ext = power(ref if math.isfinite(ref) else 0.0)
        return float(factor) ** p, "", ext

    return _Unit(fmt, scale, binary)


_SI_PREFIXES = ("f", "p", "n", "µ", "m", "", "k", "M", "G", "T", "P", "E", "Z", "Y")
_SI_BASE = _SI_PREFIXES.index("")
_BIN_PREFIXES = ("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi")
_SHORT = ("", " K", " Mil", " Bil", " Tri", " Quadr", " Quint", " Sext", " Sept")
_COUNT = ("", "K", "M", "B", "T")


def _si(unit: str, offset: int = 0) -> _Unit:
    """``SIPrefix``: 1000-steps from femto to yotta ("1.50 kHz", "500 mW")."""
    return _scaled(1000, tuple(f" {p}{unit}" for p in _SI_PREFIXES), _SI_BASE + offset)


def _bin(unit: str, offset: int = 0) -> _Unit:
    """``binaryPrefix``: 1024-steps ("1.50 KiB")."""
    return _scaled(1024, tuple(f" {p}{unit}" for p in _BIN_PREFIXES), offset, binary=True)


_THROUGHPUT = {
    "cps": "c/s",
    "ops": "ops/s",
    "reqps": "req/s",
    "rps": "rd/s",
    "wps": "wr/s",
    "iops": "io/s",
    "eps": "evt/s",
    "mps": "msg/s",
    "recps": "rec/s",
    "rowsps": "rows/s",
    "cpm": "c/m",
    "opm": "ops/m",
    "reqpm": "req/m",
    "rpm": "rd/m",
    "wpm": "wr/m",
}


def _count(symbol: str) -> _Unit:
    """``simpleCountUnit``: "1.50K req/s"."""
    base = _scaled(1000, _COUNT)

    def fmt(v: float, d: int | None) -> FormattedValue:
        p = base.format(v, d)
        return p._replace(suffix=p.suffix + " " + symbol)

    def scale(ref: float) -> tuple[float, str, str]:
        div, _, ext = base.scale(ref)
        return div, "", ext + " " + symbol

    return _Unit(fmt, scale)


def _currency(symbol: str, as_suffix: bool = False) -> _Unit:
    """``currency``: "$1.53K", "-$12", "12kr" (scaled by 1000 up to T)."""
    base = _scaled(1000, _COUNT)

    def fmt(v: float, d: int | None) -> FormattedValue:
        p = base.format(abs(v), d)
        prefix, suffix = ("", p.suffix + symbol) if as_suffix else (symbol, p.suffix)
        return FormattedValue("-" + prefix if v < 0 else prefix, p.text, suffix)

    def scale(ref: float) -> tuple[float, str, str]:
        div, _, ext = base.scale(ref)
        return (div, "", ext + symbol) if as_suffix else (div, symbol, ext)

    return _Unit(fmt, scale)


def _percent(times: float) -> _Unit:
    """``toPercent`` (times 1) and ``toPercentUnit`` (times 100): "12.3%"."""

    def fmt(v: float, d: int | None) -> FormattedValue:
        return FormattedValue("", to_fixed(v * times if times != 1 else v, d), "%")

    return _Unit(fmt, lambda ref: (1 / times, "", "%"))


def _time(unit: str) -> _Unit:
    def fmt(v: float, d: int | None) -> FormattedValue:
        if not math.isfinite(v):
            return _nonfinite(v)
        text, suffix = format_time(v, unit, d)
        return FormattedValue("", text, suffix)

    def scale(ref: float) -> tuple[float, str, str]:
        div, suffix = time_scale(unit, ref if math.isfinite(ref) else 0.0)
        return div, "", suffix

    return _Unit(fmt, scale)


def _text(render: Callable[[float, int | None], str], hover_suffix: str = "") -> _Unit:
    """Formats whose text isn't a scaled number (durations, booleans, locale)."""
    return _Unit(
        lambda v, d: FormattedValue("", render(v, d), ""),
        lambda ref: (1.0, "", hover_suffix),
    )


def _bool(true: str, false: str) -> _Unit:
    return _text(lambda v, d: true if v else false)


def _build_units() -> dict[str, _Unit]:
    units: dict[str, _Unit] = {
        "none": _fixed_unit(""),
        "short": _scaled(1000, _SHORT),
        "percent": _percent(1),
        "percentunit": _percent(100),
        "locale": _text(to_locale),
        "string": _text(lambda v, d: js_str(v)),
        "sci": _text(to_exponential),
        "humidity": _fixed_unit("%H"),
        "dB": _fixed_unit("dB"),
        "pixel": _fixed_unit("px"),
        # Data
        "bytes": _bin("B"),
        "decbytes": _si("B"),
        "bits": _bin("b"),
        "decbits": _si("b"),
        "kbytes": _bin("B", 1),
        "deckbytes": _si("B", 1),
        "mbytes": _bin("B", 2),
        "decmbytes": _si("B", 2),
        "gbytes": _bin("B", 3),
        "decgbytes": _si("B", 3),
        "tbytes": _bin("B", 4),
        "dectbytes": _si("B", 4),
        # Data rate
        "pps": _si("p/s"),
        "binBps": _bin("B/s"),
        "Bps": _si("B/s"),
        "binbps": _bin("b/s"),
        "bps": _si("b/s"),
        "KiBs": _bin("B/s", 1),
        "KBs": _si("B/s", 1),
        "Kbits": _si("b/s", 1),
        "MiBs": _bin("B/s", 2),
        "MBs": _si("B/s", 2),
        "Mbits": _si("b/s", 2),
        "GiBs": _bin("B/s", 3),
        "GBs": _si("B/s", 3),
        "Gbits": _si("b/s", 3),
        # Time
        "hertz": _si("Hz"),
        "dtdurations": _text(lambda v, d: format_duration(v, "second", d), " s"),
        "dtdurationms": _text(lambda v, d: format_duration(v, "millisecond", d), " ms"),
        "dthms": _text(lambda v, d: format_hms(v, False), " s"),
        "dtdhms": _text(lambda v, d: format_hms(v, True), " s"),
        # Throughput
        # categories.ts "Throughput": the id is not the symbol shown.
        **{u: _count(sym) for u, sym in _THROUGHPUT.items()},
        # Temperature, energy
        "celsius": _fixed_unit("°C"),
        "fahrenheit": _fixed_unit("°F"),
        "kelvin": _fixed_unit("K"),
        "volt": _si("V"),
        "mvolt": _si("V", -1),
        "amp": _si("A"),
        "mamp": _si("A", -1),
        "watt": _si("W"),
        "kwatt": _si("W", 1),
        "mwatt": _si("W", -1),
        "watth": _si("Wh"),
        "kwatth": _si("Wh", 1),
        "joule": _si("J"),
        # Currency
        "currencyUSD": _currency("$"),
        "currencyGBP": _currency("£"),
        "currencyEUR": _currency("€"),
        "currencyJPY": _currency("¥"),
        # Boolean
        "bool": _bool("True", "False"),
        "bool_yes_no": _bool("Yes", "No"),
        "bool_on_off": _bool("On", "Off"),
    }
    for unit in TIME_UNITS:
        units[unit] = _time(unit)
    units["us"] = units["μs"] = units["µs"]  # ASCII and Greek-mu spellings
    return units


_UNITS = _build_units()


def _custom(unit: str) -> _Unit:
    """``getValueFormat``'s ``key:sub`` ids, else the id itself as a suffix."""
    key, colon, sub = unit.partition(":")
    if colon and key:
        if key == "prefix":
            return _fixed_unit(sub, as_prefix=True)
        if key == "suffix":
            return _fixed_unit(sub)
        if key == "si":
            first = sub[:1].replace("μ", "µ")
            offset = _SI_PREFIXES.index(first) - _SI_BASE if first and first in _SI_PREFIXES else 0
            return _si(sub if offset == 0 else sub[1:], offset)
        if key == "count":
            return _count(sub)
        if key == "currency":
            return _currency(sub)
        if key == "bool":
            true, slash, false = sub.partition("/")
            return _bool(true, false if slash else "-")
    return _fixed_unit(unit)


def _lookup(unit: str) -> _Unit:
    if not unit:
        return _UNITS["none"]
    found = _UNITS.get(unit)
    return found if found is not None else _custom(unit)


def format_parts(value: float, unit: str = "", decimals: int | None = None) -> FormattedValue:
    """``getValueFormat(unit)(value, decimals)``: Grafana's prefix, text and suffix.

    NaN is ``("", "NaN", "")`` whatever the unit, as Grafana's display
    processor leaves it unformatted.
    """
    if math.isnan(value):
        return FormattedValue("", "NaN", "")
    return _lookup(unit).format(float(value), decimals)


def format_value(value: float | None, unit: str = "", decimals: int | None = None) -> str:
    """A value as Grafana shows it with ``unit``: ``format_value(1536, "bytes") == "1.50 KiB"``.

    Args:
        value: the number; None gives "" (callers show the panel's no_value).
        unit: Grafana's unit id (``fieldConfig.defaults.unit``); "" or
            ``none`` for a bare number, ``prefix:$``/``suffix: req`` for custom
            ones; an unknown id is appended after a space ("3 widgets").
        decimals: digits after the point; None picks them like Grafana
            (``getDecimalsForValue``: "12.3 K", "1.50 KiB", "123 µs").

    Returns:
        The text, e.g. "12.3 K", "1.50 s", "12.3%", "2 days", "NaN".
    """
    if value is None:
        return ""
    return str(format_parts(value, unit, decimals))


def value_scale(unit: str, ref: float) -> tuple[float, str, str]:
    """How ``unit`` scales values near ``ref``: (divisor, prefix, suffix).

    ``prefix + f"{v / divisor:.2f}" + suffix`` reads like ``format_value(v,
    unit)`` for ``v`` of the same magnitude as ``ref``: figures use it to
    label hover values in one vectorized step (plotly's d3 formats can't
    pick a unit per point). Units that aren't a scaled number (durations,
    booleans) give (1, "", "") or their base unit.
    """
    return _lookup(unit).scale(abs(ref))


def _nice_step(raw: float, binary: bool) -> float:
    """uPlot's increments (1, 2, 2.5, 5 × 10^n), or powers of two for IEC units."""
    if binary and raw >= 1:
        return float(2 ** math.ceil(math.log2(raw)))
    mag = 10.0 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 2.5, 5.0):
        if raw <= m * mag * (1 + 1e-12):
            return m * mag
    return 10 * mag


def _clean(x: float) -> float:
    # k * step carries binary noise (0.30000000000000004); 12 digits is plenty.
    return float(f"{x:.12g}")


def axis_ticks(
    unit: str,
    vmin: float,
    vmax: float,
    *,
    decimals: int | None = None,
    log_base: int | None = None,
    count: int = 5,
) -> tuple[list[float], list[str]]:
    """About ``count`` nice y-axis ticks covering [vmin, vmax], labelled with ``unit``.

    The first tick is at or below ``vmin`` and the last at or above ``vmax``,
    so a figure can use them as its range. Like Grafana's axes, each label is
    ``format_value(tick, unit, d)`` with ``d`` the decimals of the increment
    (automatic when it is whole), unless ``decimals`` is set.

    Args:
        unit: Grafana's unit id.
        vmin, vmax: the data (or configured) bounds; swapped when reversed.
        decimals: the field's decimals, overriding the increment's.
        log_base: ticks at the powers of this base (values ≤ 0 are dropped).
        count: the number of intervals aimed at.

    Returns:
        (tick values ascending, their labels); empty for non-finite bounds.
    """
    if not (math.isfinite(vmin) and math.isfinite(vmax)):
        return [], []
    lo, hi = min(vmin, vmax), max(vmin, vmax)
    if log_base:
        return _log_ticks(unit, lo, hi, log_base, decimals)
    if lo == hi:
        pad = abs(lo) * 0.1 if lo else 1.0
        lo, hi = lo - pad, hi + pad
    step = _nice_step((hi - lo) / max(count, 1), _lookup(unit).binary)
    first = math.floor(lo / step + 1e-9)
    last = math.ceil(hi / step - 1e-9)
    ticks = [_clean(k * step) for k in range(first, last + 1)]
    if decimals is None:
        d = guess_decimals(step)
        decimals = d if d > 0 else None
    return ticks, [format_value(t, unit, decimals) for t in ticks]


def _log_ticks(
    unit: str, lo: float, hi: float, base: int, decimals: int | None
) -> tuple[list[float], list[str]]:
    if hi <= 0 or base < 2:
        return [], []
    lo = lo if lo > 0 else hi / base**4
    k0 = math.floor(math.log(lo, base) + 1e-9)
    k1 = math.ceil(math.log(hi, base) - 1e-9)
    ticks = [float(base) ** k for k in range(k0, max(k1, k0 + 1) + 1)]
    return ticks, [format_value(t, unit, decimals) for t in ticks]
