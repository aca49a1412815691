"""Prometheus durations (``1m30s``, ``5m``, ``2w``), parsed and printed as Prometheus does.

A user's prometheus.yml carries over to tinct, so every duration in the
config file (``scrape_interval``, ``refresh_interval``...) and every
``__scrape_interval__`` label reads and prints exactly like Prometheus's
``model.Duration`` (prometheus/common ``model/time.go``; the format is
documented under "<duration>" in
https://prometheus.io/docs/prometheus/latest/configuration/configuration/):
units ``y w d h m s ms`` from largest to smallest, each at most once, a
year being 365 days and a week 7 days; a bare ``0`` is the only number
allowed without a unit. Values are returned as float seconds, the unit
the rest of tinct uses; precision is the millisecond, like Prometheus.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["format_duration", "parse_duration"]

_MS_PER_UNIT = {
    "y": 365 * 24 * 3600 * 1000,
    "w": 7 * 24 * 3600 * 1000,
    "d": 24 * 3600 * 1000,
    "h": 3600 * 1000,
    "m": 60 * 1000,
    "s": 1000,
    "ms": 1,
}
# Position of each unit: a unit must come after every unit before it, which
# is what stops "1m1d" or "5s5s" being accepted (model.ParseDuration's unitMap).
_ORDER = {unit: pos for pos, unit in enumerate(_MS_PER_UNIT, start=1)}
# Go's time.Duration is int64 nanoseconds; longer durations are "out of range".
_MAX_MS = (2**63 - 1) // 1_000_000
_FORMAT = tuple(_MS_PER_UNIT.items())


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus duration such as ``1y2w3d4h5m6s7ms``.

    Args:
        text: the duration; ``"0"`` is accepted without a unit.

    Returns:
        The duration in seconds (millisecond precision).

    Raises:
        ValueError: the text is not a Prometheus duration (the message says
            why and shows the accepted form).
    """
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a duration (e.g. 15s, 1m30s, 2h)")
    if text == "0":
        return 0.0
    if text == "":
        raise ValueError("empty duration (e.g. 15s, 1m30s, 2h)")
    rest = text
    total_ms = 0
    last = 0
    while rest:
        digits = _leading(rest, _is_digit)
        if not digits:
            raise _invalid(text)
        rest = rest[len(digits) :]
        unit = _leading(rest, lambda c: not _is_digit(c))
        if not unit:
            raise _invalid(text)
        rest = rest[len(unit) :]
        if unit not in _ORDER:
            known = ", ".join(_MS_PER_UNIT)
            raise ValueError(f"unknown unit {unit!r} in duration {text!r} (units: {known})")
        if _ORDER[unit] <= last:
            raise ValueError(
                f"{text!r} is not a valid duration: units must go from largest to "
                "smallest (y w d h m s ms), each at most once"
            )
        last = _ORDER[unit]
        total_ms += int(digits) * _MS_PER_UNIT[unit]
        if total_ms > _MAX_MS:
            raise ValueError(f"duration {text!r} is out of range (at most about 292 years)")
    return total_ms / 1000


def format_duration(seconds: float) -> str:
    """A duration in Prometheus's own form: 90 -> ``1m30s``, 0.5 -> ``500ms``.

    Like ``model.Duration.String``: sub-millisecond parts are dropped, zero
    prints as ``0s``, and years and weeks are used only when they divide the
    whole duration (``90d`` reads better than ``12w6d``).

    Raises:
        ValueError: ``seconds`` is negative, infinite or NaN.
    """
    if not seconds >= 0 or seconds == float("inf"):
        raise ValueError(f"{seconds!r} is not a duration (must be a finite number >= 0)")
    ms = round(seconds * 1_000_000_000) // 1_000_000
    if ms == 0:
        return "0s"
    out = []
    for unit, mult in _FORMAT:
        if unit in ("y", "w") and ms % mult:
            continue
        count, ms = divmod(ms, mult)
        if count:
            out.append(f"{count}{unit}")
    return "".join(out)


def _is_digit(char: str) -> bool:
    # ASCII only, as Go's parser: "١٥s" is not a duration.
    return "0" <= char <= "9"


def _leading(text: str, accept: Callable[[str], bool]) -> str:
    end = 0
    while end < len(text) and accept(text[end]):
        end += 1
    return text[:end]


def _invalid(text: str) -> ValueError:
    return ValueError(
        f"{text!r} is not a valid duration (a number and a unit, largest unit first: "
        "e.g. 15s, 1m30s, 2h, 1w; units y w d h m s ms; only 0 goes without a unit)"
    )
