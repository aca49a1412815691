"""Durations read and print like Prometheus's model.Duration (prometheus/common time_test.go)."""

from __future__ import annotations

import pytest

from tinct.durations import format_duration, parse_duration

DAY = 24 * 3600


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0),
        ("0s", 0),
        ("0w", 0),
        ("324ms", 0.324),
        ("3s", 3),
        ("5m", 300),
        ("1h", 3600),
        ("4d", 4 * DAY),
        ("4d1h", 4 * DAY + 3600),
        ("14d", 14 * DAY),
        ("3w", 21 * DAY),
        ("1w2d", 9 * DAY),
        ("10y", 10 * 365 * DAY),
        ("1y2w3d4h5m6s7ms", 365 * DAY + 17 * DAY + 4 * 3600 + 5 * 60 + 6.007),
        ("1m30s", 90),
        ("015s", 15),
    ],
)
def test_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty duration"),
        ("15", "not a valid duration"),  # a bare number needs a unit, unless 0
        ("1", "not a valid duration"),
        ("s", "not a valid duration"),
        ("-1s", "not a valid duration"),
        ("1.5s", "unknown unit '.'"),
        ("1x", "unknown unit 'x'"),
        ("1ns", "unknown unit 'ns'"),
        ("1m1h", "largest to smallest"),  # units out of order
        ("5s5s", "largest to smallest"),  # a unit twice
        ("1s ", "unknown unit 's '"),
        (" 1s", "not a valid duration"),
        ("300y", "out of range"),
        ("١s", "not a valid duration"),  # only ASCII digits
    ],
)
def test_parse_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.0004, "0s"),  # below Prometheus's millisecond precision
        (0.5, "500ms"),
        (0.324, "324ms"),
        (3, "3s"),
        (90, "1m30s"),
        (300, "5m"),
        (3600, "1h"),
        (4 * DAY + 3600, "4d1h"),
        (14 * DAY, "2w"),
        (21 * DAY, "3w"),
        (9 * DAY, "9d"),  # weeks only when exact: 9d, not 1w2d
        (90 * DAY, "90d"),
        (365 * DAY, "1y"),
        (10 * 365 * DAY, "10y"),
        (1.001, "1s1ms"),
    ],
)
def test_format(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("text", ["1m30s", "500ms", "2w", "4d1h", "1y", "1h1m1s1ms"])
def test_round_trip(text: str) -> None:
    assert format_duration(parse_duration(text)) == text


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf")])
def test_format_refuses(bad: float) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        format_duration(bad)
