"""Browser error events: DDL, round trip, filters, retention and migration on every backend."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from tests.storage.conftest import SQL_BACKENDS, _factory
from tinct.storage import InvalidBatchError, schema
from tinct.storage.memory_rum import InMemoryRumEventStore
from tinct.storage.migrations import MIGRATIONS
from tinct.storage.rum import RUM_EVENT_COLUMNS, RUM_EVENT_SCHEMA, RumEventQuery, RumEventStore
from tinct.storage.schema import Capabilities, SchemaTarget

DAY_NS = 86_400 * 10**9
T0 = 1_714_564_800 * 10**9  # 2024-05-01T12:00:00Z
AWKWARD = 'it\'s \\ "q" \t tab \n nl \x00 nul ünïcødé 日本 🚀 %s %(x)s {p0:String}'
EVERYTHING = RumEventQuery(0, 2**64 - 1)


@pytest.fixture(params=[*SQL_BACKENDS, "memory"])
def rum_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A fresh store keeping browser events: chdb, the ClickHouse server, memory."""
    if request.param == "memory":
        mem = InMemoryRumEventStore()
        yield mem
        mem.close()
        return
    with _factory(request.param, request, tmp_path) as factory:
        yield factory()


def event(**fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "time_ns": T0,
        "app": "shop",
        "page": "/checkout",
        "user_id": "42",
        "kind": "js",
        "message": "TypeError: x is undefined",
        "source": "https://shop.example/app.js",
        "line": 12,
        "col": 7,
        "stack": "at f (app.js:12:7)",
        "user_agent": "Mozilla/5.0",
    }
    row.update(fields)
    return row


def events(*rows: dict[str, Any]) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=RUM_EVENT_SCHEMA)


def test_columns_match_the_event_schema() -> None:
    assert tuple(schema.RUM_EVENT_COLUMN_TYPES) == RUM_EVENT_COLUMNS


def test_ddl_per_server() -> None:
    old = schema.rum_events_table(SchemaTarget("db", Capabilities.from_version("18.16.1"), 7))
    for feature in ("LowCardinality", "CODEC", "TTL"):
        assert feature not in old
    assert "ORDER BY (app, time_ns)" in old
    assert "PARTITION BY toDate(toDateTime(least(intDiv(time_ns" in old
    new = schema.rum_events_table(SchemaTarget("db", Capabilities.from_version("26.9.2.1"), 7))
    assert "app LowCardinality(String)" in new
    assert new.rstrip().endswith("+ toIntervalDay(8)")
    assert schema.RUM_EVENTS in schema.RETENTION_TABLES
    assert MIGRATIONS[5].version == 6


def test_round_trip_filters_and_order(rum_store: Any) -> None:
    assert isinstance(rum_store, RumEventStore)
    full = event(
        time_ns=2**63 + 9,
        page=AWKWARD,
        user_id=AWKWARD,
        message=AWKWARD,
        source=AWKWARD,
        stack=AWKWARD,
        user_agent=AWKWARD,
        line=2**32 - 1,
        col=0,
    )
    first = event(time_ns=T0 + 1)
    later = event(time_ns=T0 + 2, kind="resource", message="<img> failed to load", line=0)
    other_app = event(time_ns=T0 + 3, app="blog", user_id="7", kind="promise")
    rum_store.write_rum_events(events(full, later, first, other_app))
    rum_store.write_rum_events(events())

    assert rum_store.find_rum_events(EVERYTHING) == [full, other_app, later, first]
    window = RumEventQuery(T0 + 1, T0 + 2)
    assert rum_store.find_rum_events(window) == [later, first]
    assert rum_store.find_rum_events(RumEventQuery(0, 2**64 - 1, app="shop", limit=2)) == [
        full,
        later,
    ]
    assert rum_store.find_rum_events(RumEventQuery(0, T0 + 10, kind="promise")) == [other_app]
    assert rum_store.find_rum_events(RumEventQuery(0, 2**64 - 1, user_id=AWKWARD)) == [full]
    assert rum_store.find_rum_events(RumEventQuery(0, 2**64 - 1, app="nope")) == []
    assert rum_store.find_rum_events(RumEventQuery(T0 + 2, T0 + 1)) == []
    assert rum_store.find_rum_events(RumEventQuery(0, 2**64 - 1, limit=0)) == []


def test_equal_times_come_back_in_one_order(rum_store: Any) -> None:
    rows = [
        event(kind="resource", page="/b"),
        event(kind="js", page="/b"),
        event(kind="js", page="/a", message="b"),
        event(kind="js", page="/a", message="a"),
        event(app="blog"),
    ]
    rum_store.write_rum_events(events(*rows))
    found = rum_store.find_rum_events(EVERYTHING)
    assert [(r["app"], r["kind"], r["page"], r["message"][:1]) for r in found] == [
        ("blog", "js", "/checkout", "T"),
        ("shop", "js", "/a", "a"),
        ("shop", "js", "/a", "b"),
        ("shop", "js", "/b", "T"),
        ("shop", "resource", "/b", "T"),
    ]


def test_bad_batches_are_refused(rum_store: Any) -> None:
    with pytest.raises(InvalidBatchError, match="lacks columns"):
        rum_store.write_rum_events(pa.table({"time_ns": [1]}))
    with pytest.raises(InvalidBatchError, match="RUM_EVENT_SCHEMA"):
        bad = {**event(), "line": ["x"]}
        rum_store.write_rum_events(pa.table({k: [v] if k != "line" else v for k, v in bad.items()}))
    assert rum_store.find_rum_events(EVERYTHING) == []


def test_retention_drops_old_event_days(open_store: Any) -> None:
    now = time.time_ns()
    store = open_store(retention_days=3)
    old, recent = event(time_ns=now - 10 * DAY_NS), event(time_ns=now)
    store.write_rum_events(events(old, recent))
    dropped = store.apply_retention(now)
    assert store.find_rum_events(EVERYTHING) == [recent]
    if not store.capabilities.ttl:
        old_day = time.strftime("%Y%m%d", time.gmtime(old["time_ns"] // 10**9))
        assert (schema.RUM_EVENTS, old_day) in dropped


def test_a_store_at_version_5_gains_the_events_table(open_store: Any) -> None:
    store = open_store(migrations=MIGRATIONS[:5])
    assert store.applied_migrations == [1, 2, 3, 4, 5]
    store.close()
    store = open_store()
    assert store.applied_migrations[0] == 6  # and any later ones
    store.write_rum_events(events(event()))
    assert store.find_rum_events(EVERYTHING) == [event()]
