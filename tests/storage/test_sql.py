"""Parameters reach both engines as values, never as SQL text."""

from __future__ import annotations

from pathlib import Path

import pytest

from tinct.storage.chdb_store import ChdbBackend
from tinct.storage.clickhouse_store import ClickHouseBackend
from tinct.storage.sql import Sql, SqlBuilder, ident

EVERY_ASCII = "".join(chr(i) for i in range(128))
NASTY = [
    EVERY_ASCII,
    "",
    "'; DROP TABLE x; --",
    "\\x41 \\t \\N \\\\",
    "%s %% %(p0)s {p0:String}",
    "ünïcødé 日本 🚀",
]


def test_builder_numbers_placeholders():
    b = SqlBuilder()
    sql = b.build(f"SELECT {b.param('a', 'String')}, {b.param(5, 'UInt64')}")
    assert sql.text == "SELECT {p0:String}, {p1:UInt64}"
    assert sql.params == {"p0": "a", "p1": 5}


def test_driver_rendering_doubles_percent_only_with_params():
    assert Sql("SELECT 'a%b'").for_driver() == ("SELECT 'a%b'", None)
    text, params = Sql("SELECT x LIKE 'a%' AND y = {v:Int64}", {"v": -1}).for_driver()
    assert text == "SELECT x LIKE 'a%%' AND y = %(v)s"
    assert params == {"v": -1}


def test_chdb_rendering_escapes_text():
    _, params = Sql("SELECT {s:String}, {n:UInt8}", {"s": "a\tb\\c\n", "n": 7}).for_chdb()
    assert params == {"s": "a\\tb\\\\c\\n", "n": "7"}


@pytest.mark.parametrize(
    ("text", "params", "error"),
    [
        ("SELECT {a:String}", {}, KeyError),
        ("SELECT 1", {"a": "x"}, KeyError),
        ("SELECT {a:String}", {"a": 1}, TypeError),
        ("SELECT {a:UInt64}", {"a": "1"}, TypeError),
        ("SELECT {a:UInt8}", {"a": True}, TypeError),
        ("SELECT {a:Float64}", {"a": 1}, TypeError),
    ],
)
def test_bad_parameters_are_refused(text, params, error):
    with pytest.raises(error):
        Sql(text, params)


def test_ident():
    assert ident("tinct_1") == "`tinct_1`"
    for bad in ("", "1a", "a-b", "a`b", "a b", "a;"):
        with pytest.raises(ValueError):
            ident(bad)


@pytest.fixture(params=["chdb", pytest.param("clickhouse", marks=pytest.mark.clickhouse)])
def backend(request, tmp_path: Path):
    engine: ChdbBackend | ClickHouseBackend
    if request.param == "chdb":
        engine = ChdbBackend(str(tmp_path / "data"), pool_size=2)
    else:
        engine = ClickHouseBackend("127.0.0.1", request.getfixturevalue("clickhouse_port"))
    yield engine
    engine.close()


@pytest.mark.parametrize("value", NASTY)
def test_string_values_arrive_unchanged(backend, value):
    b = SqlBuilder()
    sql = b.build(f"SELECT {b.param(value, 'String')} AS v, {b.param(value, 'String')} = v AS same")
    row = backend.select(sql).to_pylist()[0]
    assert row["v"] == value.encode()
    assert row["same"] == 1


@pytest.mark.parametrize(
    ("value", "type_"), [(2**64 - 1, "UInt64"), (-(2**63), "Int64"), (0, "UInt8")]
)
def test_integer_values_arrive_unchanged(backend, value, type_):
    b = SqlBuilder()
    row = backend.select(b.build(f"SELECT {b.param(value, type_)} AS v")).to_pylist()[0]
    assert row["v"] == value
