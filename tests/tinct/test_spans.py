"""The shared span model: text forms and event/link attribute encoding."""

from __future__ import annotations

import json
import math

import pytest

from tinct.spans import (
    SPAN_COLUMNS,
    SPAN_SCHEMA,
    ValueType,
    double_text,
    dump_attrs,
    load_attrs,
    tag_entry,
    value_text,
)


@pytest.mark.parametrize(
    ("vtype", "value", "text"),
    [
        (ValueType.STRING, "ü", "ü"),
        (ValueType.BOOL, True, "true"),
        (ValueType.BOOL, False, "false"),
        (ValueType.INT, -(2**63), "-9223372036854775808"),
        (ValueType.DOUBLE, 72.5, "72.5"),
        (ValueType.DOUBLE, 0.1, "0.1"),
        (ValueType.DOUBLE, math.nan, "NaN"),
        (ValueType.DOUBLE, -math.inf, "-Infinity"),
        (ValueType.BYTES, b"\x00\x000\x39", "AAAwOQ=="),
        (ValueType.EMPTY, None, ""),
    ],
)
def test_value_text_is_what_jaeger_tag_queries_match(vtype: int, value: object, text: str) -> None:
    assert value_text(vtype, value) == text


def test_double_text_round_trips_exactly() -> None:
    for value in (1e300, 5e-324, 0.1 + 0.2, -0.0):
        assert float(double_text(value)) == value


def test_dump_attrs_is_compact_json_and_round_trips() -> None:
    keys, types, texts = ["a", 'q"uote', "ü\n"], [1, 3, 4], ["x\ty", "12", "NaN"]
    text = dump_attrs(keys, types, texts)
    expected = [[k, t, v] for k, t, v in zip(keys, types, texts, strict=True)]
    assert text == json.dumps(expected, separators=(",", ":"), ensure_ascii=False)
    assert load_attrs(text) == (keys, types, texts)
    assert dump_attrs([], [], []) == "" and load_attrs("") == ([], [], [])


def test_tag_entry_cannot_collide_across_the_separator() -> None:
    assert tag_entry("a=b", "c") != tag_entry("a", "b=c")


def test_schema_columns_are_unique_and_not_nullable() -> None:
    assert len(set(SPAN_COLUMNS)) == len(SPAN_COLUMNS)
    assert not any(field.nullable for field in SPAN_SCHEMA)
