"""Go durations, Jaeger tags and trace ids as Jaeger's query parser reads them."""

from __future__ import annotations

import pytest

from tinct.params import (
    ParamError,
    parse_go_duration,
    parse_lookback,
    parse_tags,
    parse_trace_id,
)


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("0", 0),
        ("1.2ms", 1_200_000),
        ("4500ns", 4500),
        ("1h2m3.5s", 3_723_500_000_000),
        ("1.5us", 1500),
        ("1.5\u00b5s", 1500),
        ("1.5\u03bcs", 1500),
        ("-2s", -2_000_000_000),
        ("+2s", 2_000_000_000),
        (".5s", 500_000_000),
        ("1.s", 1_000_000_000),
        ("1.0000000001s", 1_000_000_000),  # truncated to ns, as Go does
        ("100ms50us", 100_050_000),
    ],
)
def test_go_durations(text: str, ns: int) -> None:
    assert parse_go_duration(text) == ns


@pytest.mark.parametrize(
    "text", ["", "1", "ms", ".s", "1.2.3s", "1d", "1 s", "-", "1e3s", "9999999999h"]
)
def test_bad_go_durations(text: str) -> None:
    with pytest.raises(ValueError, match="time: "):
        parse_go_duration(text)


def test_lookback_accepts_days() -> None:
    assert parse_lookback("2d") == 2 * 86_400 * 10**9
    assert parse_lookback("1h") == 3_600 * 10**9
    with pytest.raises(ParamError, match="unable to parse param 'lookback'") as info:
        parse_lookback("soon")
    assert info.value.param == "lookback"


def test_tags_json_values_compare_by_string_form() -> None:
    tags = parse_tags(['{"http.status_code": 200, "ratio": 72.5, "ok": true, "s": "v"}'], [])
    assert tags == {"http.status_code": "200", "ratio": "72.5", "ok": "true", "s": "v"}


def test_tag_key_value_splits_at_first_colon_and_merges() -> None:
    tags = parse_tags(['{"a": "1"}'], ["url:http://x:80/", "a:2"])
    assert tags == {"a": "2", "url": "http://x:80/"}


@pytest.mark.parametrize(
    ("tags", "tag", "param"),
    [
        (["{not json"], [], "tags"),
        (['["a"]'], [], "tags"),
        (['{"a": null}'], [], "tags"),
        (['{"a": {"b": 1}}'], [], "tags"),
        ([], ["novalue"], "tag"),
    ],
)
def test_bad_tags_name_the_parameter(tags: list[str], tag: list[str], param: str) -> None:
    with pytest.raises(ParamError) as info:
        parse_tags(tags, tag)
    assert info.value.param == param
    assert f"'{param}'" in str(info.value)


def test_trace_ids_are_left_padded() -> None:
    assert parse_trace_id("1") == bytes(15) + b"\x01"
    assert parse_trace_id("A" * 32) == b"\xaa" * 16
    for bad in ["", "xyz", "1" * 33, "12 3"]:
        with pytest.raises(ParamError, match="traceID"):
            parse_trace_id(bad)
