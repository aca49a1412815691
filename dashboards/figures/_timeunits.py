"""Grafana's time units: ``ns`` … ``d`` and the ``dtduration*`` family.

A port of grafana/packages/grafana-data/src/valueFormats/dateTimeFormatters.ts
(``toNanoSeconds`` … ``toDays``, ``toDuration``,
``toDurationInHoursMinutesSeconds``, ``toDurationInDaysHoursMinutesSeconds``)
and of ``toFixedScaled`` in valueFormats.ts, including the plural suffixes
Grafana 10.3 added (grafana#77337: "1.50 days", but "1 s" and "1.00 hour").
Each scaling unit is a table of (bound, factor, suffix) rows read top down:
the first row whose bound exceeds ``|value|`` wins.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ._jsnum import to_fixed

__all__ = ["TIME_UNITS", "format_time", "time_scale", "format_duration", "format_hms"]

# toFixedScaled's appendPluralIf: only these suffixes take an "s".
_PLURAL = frozenset({" min", " hour", " day", " week", " year"})

# A row: (|value| below this bound, factor, suffix, scaled). The shown number
# is value * factor when factor > 1 (Grafana multiplies to go down: size * 1e9)
# and value / -factor when factor < 0 (Grafana divides to go up: size / 60); the
# two are not the same double, so the table says which. ``scaled`` rows go
# through toFixedScaled (plurals), the others through plain toFixed.
_Row = tuple[float, float, str, bool]

TIME_UNITS: dict[str, Sequence[_Row]] = {
    "ns": (
        (1e3, 1, " ns", False),
        (1e6, -1e3, " µs", True),
        (1e9, -1e6, " ms", True),
        (6e10, -1e9, " s", True),
        (3.6e12, -6e10, " min", True),
        (8.64e13, -3.6e12, " hour", True),
        (math.inf, -8.64e13, " day", True),
    ),
    "µs": (
        (1e3, 1, " µs", False),
        (1e6, -1e3, " ms", True),
        (math.inf, -1e6, " s", True),
    ),
    "ms": (
        (1e3, 1, " ms", False),
        (6e4, -1e3, " s", True),
        (3.6e6, -6e4, " min", True),
        (8.64e7, -3.6e6, " hour", True),
        (3.1536e10, -8.64e7, " day", True),
        (math.inf, -3.1536e10, " year", True),
    ),
    "s": (
        (1e-6, 1e9, " ns", True),
        (1e-3, 1e6, " µs", True),
        (1, 1e3, " ms", True),
        (60, 1, " s", False),
        (3600, -60, " min", True),
        (86400, -3600, " hour", True),
        (604800, -86400, " day", True),
        (31536000, -604800, " week", True),
        (math.inf, -3.15569e7, " year", True),
    ),
    "m": (
        (60, 1, " min", False),
        (1440, -60, " hour", True),
        (10080, -1440, " day", True),
        (604800, -10080, " week", True),
        (math.inf, -5.25948e5, " year", True),
    ),
    "h": (
        (24, 1, " hour", False),
        (168, -24, " day", True),
        (8760, -168, " week", True),
        (math.inf, -8760, " year", True),
    ),
    # grafana#93326 made days below a week plural too ("2 days").
    "d": (
        (7, 1, " day", True),
        (365, -7, " week", True),
        (math.inf, -365, " year", True),
    ),
}


def _row(unit: str, value: float) -> _Row:
    a = abs(value)
    for row in TIME_UNITS[unit]:
        if a < row[0]:
            return row
    return TIME_UNITS[unit][-1]


def _apply(value: float, factor: float) -> float:
    if factor < 0:
        return value / -factor
    return value * factor if factor != 1 else value


def format_time(value: float, unit: str, decimals: int | None) -> tuple[str, str]:
    """One of Grafana's ``toNanoSeconds`` … ``toDays``: (text, suffix)."""
    if unit == "s" and value == 0:
        return "0", " s"  # toSeconds: "If 0, use s unit instead of ns"
    _, factor, suffix, scaled = _row(unit, value)
    shown = _apply(value, factor)
    if scaled and suffix in _PLURAL and abs(shown) > 1:
        suffix += "s"
    return to_fixed(shown, decimals), suffix


def time_scale(unit: str, ref: float) -> tuple[float, str]:
    """The divisor and suffix ``format_time`` uses near ``ref`` (plural form)."""
    _, factor, suffix, scaled = _row(unit, ref)
    divisor = 1 / factor if factor > 0 else -factor
    if scaled and suffix in _PLURAL:
        suffix += "s"
    return divisor, suffix


# toDuration's intervals, largest first, in seconds.
_INTERVALS = (
    ("year", 31536000),
    ("month", 2592000),
    ("week", 604800),
    ("day", 86400),
    ("hour", 3600),
    ("minute", 60),
    ("second", 1),
    ("millisecond", 0.001),
)
_SCALES = {"second": 1.0, "millisecond": 0.001}


def format_duration(value: float, scale: str, decimals: int | None) -> str:
    """Grafana's ``toDuration``: "1 day, 2 hours" (``dtdurations``/``dtdurationms``).

    ``decimals`` counts the further units after the first one shown (0 when
    None): 93600 s is "1 day" with none, "1 day, 2 hours" with 1.
    """
    if value == 0:
        return "0 " + scale + "s"
    if value < 0:
        return format_duration(-value, scale, decimals) + " ago"
    if not math.isfinite(value):
        return "∞"
    # Milliseconds, as Grafana does "to minimize floating point errors".
    size = value * (_SCALES[scale] * 1000)
    parts: list[str] = []
    started = False
    left = 0 if decimals is None else decimals
    for name, seconds in _INTERVALS:
        if left < 0:
            break
        interval = seconds * 1000
        count = size / interval
        if count >= 1 or started:
            started = True
            whole = math.floor(count)
            parts.append(f"{whole} {name}{'' if whole == 1 else 's'}")
            size = math.fmod(size, interval)
            left -= 1
    return ", ".join(parts)


def format_hms(value: float, with_days: bool) -> str:
    """``dthms`` ("01:02:03") and ``dtdhms`` ("2 d 01:02:03"), Grafana's toDurationIn*."""
    if value < 0:
        return format_hms(-value, with_days) + " ago"
    if not math.isfinite(value):
        return "∞"
    days = ""
    if with_days:
        n = math.floor(value / 86400)
        if n > 0:
            days = f"{n} d "
            value -= n * 86400
    hours = math.floor(value / 3600)
    minutes = math.floor(math.fmod(value, 3600) / 60)
    seconds = math.floor(math.fmod(math.fmod(value, 3600), 60))
    return days + ":".join(f"{p:02d}" if p <= 9 else str(p) for p in (hours, minutes, seconds))
