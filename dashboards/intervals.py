"""Grafana's query intervals: ``$__interval`` and ``$__rate_interval``.

A panel's step is chosen the way Grafana chooses it, so a dashboard copied
from Grafana draws the same points: the time range divided by the panel's
``maxDataPoints``, rounded to a "nice" interval by Grafana's
``roundInterval`` table (``packages/grafana-data/src/datetime/rangeutil.ts``,
``calculateInterval``), and never below the panel's or data source's minimum
interval. ``$__rate_interval`` is Grafana's definition
(https://grafana.com/docs/grafana/latest/datasources/prometheus/template-variables/):
``max($__interval + scrape interval, 4 * scrape interval)``, so ``rate()``
always spans at least four scrapes.

Interval strings are read like Grafana's ``describeInterval`` (``30s``,
``1m``, ``1h``, ``1d``, ``1w``, ``1M``, ``1y``, ``500ms``; a bare number is
seconds; a leading ``>`` as in ``>10s`` means "at least", the same thing for a
minimum interval) and written with the largest unit that divides them
exactly, so every written interval is also a valid PromQL duration.
"""

from __future__ import annotations

import re

__all__ = [
    "format_interval",
    "interval_for",
    "parse_interval",
    "rate_interval",
    "round_interval",
]

# roundInterval's table: below the first value (ms) the interval becomes the second.
_ROUND_MS = (
    (10, 1),
    (15, 10),
    (35, 20),
    (75, 50),
    (150, 100),
    (350, 200),
    (750, 500),
    (1_500, 1_000),
    (3_500, 2_000),
    (7_500, 5_000),
    (12_500, 10_000),
    (17_500, 15_000),
    (25_000, 20_000),
    (45_000, 30_000),
    (90_000, 60_000),
    (210_000, 120_000),
    (450_000, 300_000),
    (750_000, 600_000),
    (1_050_000, 900_000),
    (1_500_000, 1_200_000),
    (2_700_000, 1_800_000),
    (5_400_000, 3_600_000),
    (9_000_000, 7_200_000),
    (16_200_000, 10_800_000),
    (32_400_000, 21_600_000),
    (86_400_000, 43_200_000),
    (604_800_000, 86_400_000),
    (1_814_400_000, 604_800_000),
    (3_628_800_000, 2_592_000_000),
)
_YEAR_MS = 31_536_000_000

_UNIT_S = {
    "y": 31_536_000.0,
    "M": 2_592_000.0,
    "w": 604_800.0,
    "d": 86_400.0,
    "h": 3_600.0,
    "m": 60.0,
    "s": 1.0,
    "ms": 0.001,
}
_INTERVAL = re.compile(r"(\d+(?:\.\d+)?)(ms|[Mwdhmsy])?")
# What format_interval writes, largest first; months and weeks are left out
# (Grafana writes 7d and 30d, and "M" is not a PromQL unit).
_FORMAT_MS = (("y", _YEAR_MS), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000))


def round_interval(interval_ms: float) -> int:
    """Grafana's ``roundInterval``: an interval in ms to the nice one it rounds to (ms)."""
    for below, rounded in _ROUND_MS:
        if interval_ms < below:
            return rounded
    return _YEAR_MS


def interval_for(range_s: float, max_data_points: int, min_interval_s: float = 0.0) -> float:
    """The panel interval (``$__interval``) in seconds, as Grafana computes it.

    Args:
        range_s: the time range's length in seconds.
        max_data_points: the panel's ``maxDataPoints`` (its width in pixels by default).
        min_interval_s: the lower limit (the panel's "Min interval", else the
            data source's scrape interval); Grafana's own floor is 1 ms.

    Raises:
        ValueError: ``max_data_points`` is below 1.
    """
    if max_data_points < 1:
        raise ValueError(f"max_data_points must be at least 1, got {max_data_points}")
    rounded_s = round_interval(range_s * 1000 / max_data_points) / 1000
    return max(rounded_s, min_interval_s, 0.001)


def rate_interval(interval_s: float, scrape_interval_s: float = 15.0) -> float:
    """Grafana's ``$__rate_interval``: ``max(interval + scrape, 4 * scrape)`` seconds."""
    return max(interval_s + scrape_interval_s, 4 * scrape_interval_s)


def format_interval(seconds: float) -> str:
    """An interval as Grafana and PromQL write it: 15s, 1m, 90s, 2h, 1d, 500ms.

    The largest unit that divides the interval exactly is used, so the text
    reads back to the same interval (90 s is ``90s``, not Grafana's lossy
    ``1m``); below a second, milliseconds.

    Raises:
        ValueError: ``seconds`` is negative or not finite.
    """
    if not 0 <= seconds < float("inf"):
        raise ValueError(f"an interval must be a finite number of seconds >= 0, got {seconds!r}")
    ms = round(seconds * 1000)
    if ms == 0:
        return "0s"
    for unit, unit_ms in _FORMAT_MS:
        if ms % unit_ms == 0:
            return f"{ms // unit_ms}{unit}"
    return f"{ms}ms"


def parse_interval(text: str) -> float:
    """Seconds in an interval string (``30s``, ``>1m``, ``1.5h``, ``500ms``, ``60``).

    Raises:
        ValueError: the text is not an interval (Grafana's units: y M w d h m s ms).
    """
    raw = text.strip().removeprefix(">").strip()
    match = _INTERVAL.fullmatch(raw)
    if match is None:
        raise ValueError(
            f"{text!r} is not an interval: a number with a unit of y, M, w, d, h, m, s, ms "
            "(e.g. 30s)"
        )
    # A bare number is seconds (describeInterval's "unit-less" case).
    return float(match.group(1)) * _UNIT_S[match.group(2) or "s"]
