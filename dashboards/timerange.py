"""Grafana's time range syntax, for the time picker and every page's URL.

A range is two texts, ``from`` and ``to``, as Grafana writes them in its URLs
(``?from=now-6h&to=now``): ``now``, ``now-5m``, ``now-1d/d`` (rounded down
to the day; ``/d`` on ``to`` rounds up to the end of it), Unix milliseconds
(``1700000000000``), or an absolute time (``2026-11-27 01:00:00`` or ISO 8601
with an offset). Absolute times without an offset are in the page's time zone:
UTC, or the browser's, which the page passes as its offset from UTC in minutes
(JavaScript's ``-getTimezoneOffset()``).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

__all__ = [
    "TimeRange",
    "RELATIVE_RANGES",
    "REFRESH_INTERVALS",
    "parse_time",
    "time_range",
    "duration_seconds",
]

# The picker's quick ranges (Grafana's defaults, short to long).
RELATIVE_RANGES: tuple[tuple[str, str], ...] = (
    ("now-5m", "Last 5 minutes"),
    ("now-15m", "Last 15 minutes"),
    ("now-30m", "Last 30 minutes"),
    ("now-1h", "Last 1 hour"),
    ("now-3h", "Last 3 hours"),
    ("now-6h", "Last 6 hours"),
    ("now-12h", "Last 12 hours"),
    ("now-24h", "Last 24 hours"),
    ("now-2d", "Last 2 days"),
    ("now-7d", "Last 7 days"),
)
REFRESH_INTERVALS = ("", "5s", "10s", "30s", "1m", "5m", "15m", "1h")

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "M": 30 * 86400, "y": 365 * 86400}
_RELATIVE = re.compile(r"now(?P<ops>(?:[+-]\d+[smhdwMy])*)(?:/(?P<round>[smhdwMy]))?\Z")
_OP = re.compile(r"([+-])(\d+)([smhdwMy])")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_DURATION_UNITS = {"ms": 0.001, **{k: float(v) for k, v in _UNITS.items() if k != "M"}}


@dataclass(frozen=True)
class TimeRange:
    """A resolved range: the texts as written and the Unix seconds they mean."""

    raw_from: str
    raw_to: str
    start: float
    end: float

    @property
    def span(self) -> float:
        return max(self.end - self.start, 0.001)


def _round(moment: dt.datetime, unit: str, up: bool) -> dt.datetime:
    if unit == "s":
        base = moment.replace(microsecond=0)
        step = dt.timedelta(seconds=1)
    elif unit == "m":
        base = moment.replace(second=0, microsecond=0)
        step = dt.timedelta(minutes=1)
    elif unit == "h":
        base = moment.replace(minute=0, second=0, microsecond=0)
        step = dt.timedelta(hours=1)
    elif unit == "d":
        base = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        step = dt.timedelta(days=1)
    elif unit == "w":
        day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        base = day - dt.timedelta(days=day.weekday())
        step = dt.timedelta(days=7)
    elif unit == "M":
        base = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        nxt = (base + dt.timedelta(days=32)).replace(day=1)
        return nxt - dt.timedelta(microseconds=1) if up else base
    else:  # y
        base = moment.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
        return base.replace(year=base.year + 1) - dt.timedelta(microseconds=1) if up else base
    return base + step - dt.timedelta(microseconds=1) if up else base


def parse_time(text: str, now: float, *, utc_offset_min: int = 0, is_end: bool = False) -> float:
    """Unix seconds of a Grafana time text (module docstring).

    Raises:
        ValueError: naming what could not be read.
    """
    text = text.strip()
    zone = dt.timezone(dt.timedelta(minutes=utc_offset_min))
    match = _RELATIVE.match(text)
    if match:
        moment = dt.datetime.fromtimestamp(now, zone)
        for sign, count, unit in _OP.findall(match.group("ops") or ""):
            delta = dt.timedelta(seconds=int(count) * _UNITS[unit])
            moment = moment - delta if sign == "-" else moment + delta
        if match.group("round"):
            moment = _round(moment, match.group("round"), is_end)
        return moment.timestamp()
    if re.fullmatch(r"\d{10,14}", text):
        return int(text) / 1000.0
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text[:40]!r} is not a time: use now-1h, now-1d/d, Unix ms or 2026-01-31 12:00:00"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.timestamp()


def time_range(raw_from: str, raw_to: str, now: float, *, utc_offset_min: int = 0) -> TimeRange:
    """Resolve a ``from``/``to`` pair.

    Raises:
        ValueError: a text is unreadable, or ``from`` is not before ``to``.
    """
    start = parse_time(raw_from, now, utc_offset_min=utc_offset_min)
    end = parse_time(raw_to, now, utc_offset_min=utc_offset_min, is_end=True)
    if start >= end:
        raise ValueError(f"from ({raw_from}) must be before to ({raw_to})")
    return TimeRange(raw_from, raw_to, start, end)


def duration_seconds(text: str) -> float:
    """``5s``, ``1m``, ``1h30m``, ``250ms`` in seconds; 0 for ""; ValueError otherwise."""
    text = text.strip()
    if not text:
        return 0.0
    parts = _DURATION.findall(text)
    if not parts or "".join(a + b for a, b in parts) != text:
        raise ValueError(f"{text[:40]!r} is not a duration (e.g. 30s, 5m, 1h)")
    return sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
