"""Alert history: DDL, round trip, filters, order and migration on every backend."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.storage.conftest import SQL_BACKENDS, _factory
from tinct.storage import schema
from tinct.storage.alert_history import (
    ALERT_EVENT_COLUMNS,
    AlertEvent,
    AlertEventQuery,
    AlertHistoryStore,
)
from tinct.storage.memory_alerts import InMemoryAlertHistoryStore
from tinct.storage.migrations import MIGRATIONS
from tinct.storage.schema import Capabilities, SchemaTarget

T0 = 1_714_564_800_000  # 2024-05-01T12:00:00Z
AWKWARD = 'it\'s \\ "q" \t tab \n nl ünïcødé 日本 🚀 %s {p0:String}'
EVERYTHING = AlertEventQuery(-(2**63), 2**63 - 1)


@pytest.fixture(params=[*SQL_BACKENDS, "memory"])
def history(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A fresh store keeping alert history: chdb, the ClickHouse server, memory."""
    if request.param == "memory":
        mem = InMemoryAlertHistoryStore()
        yield mem
        mem.close()
        return
    with _factory(request.param, request, tmp_path) as factory:
        yield factory()


def event(**fields: Any) -> AlertEvent:
    values: dict[str, Any] = {
        "time_ms": T0,
        "alertname": "InstanceDown",
        "state": "firing",
        "labels": {"alertname": "InstanceDown", "job": "node", "instance": "a:9100"},
        "value": 0.0,
        "annotations": {"summary": "a:9100 is down"},
        "active_at_ms": T0 - 300_000,
        "fingerprint": 1,
    }
    values.update(fields)
    return AlertEvent(**values)


def test_ddl_per_server() -> None:
    old = schema.alert_history_table(SchemaTarget("db", Capabilities.from_version("18.16.1")))
    assert "LowCardinality" not in old and "CODEC" not in old
    assert "ORDER BY (alertname, time_ms)" in old
    new = schema.alert_history_table(SchemaTarget("db", Capabilities.from_version("26.9.2.1")))
    assert "alertname LowCardinality(String)" in new
    assert MIGRATIONS[6].version == 7
    assert all(c in old for c in ALERT_EVENT_COLUMNS)


def test_round_trip_filters_and_order(history: Any) -> None:
    assert isinstance(history, AlertHistoryStore)
    fired = event()
    resolved = event(time_ms=T0 + 60_000, state="resolved", value=math.inf)
    awkward = event(
        time_ms=T0 + 30_000,
        alertname=AWKWARD,
        labels={"alertname": AWKWARD, "z": AWKWARD, "a": ""},
        annotations={AWKWARD: AWKWARD},
        fingerprint=2**64 - 1,
        value=-1.5e-300,
    )
    history.write_alert_events([fired, resolved, awkward])
    history.write_alert_events([])
    assert history.find_alert_events(EVERYTHING) == [resolved, awkward, fired]
    assert list(history.find_alert_events(EVERYTHING)[1].labels) == ["a", "alertname", "z"]
    assert history.find_alert_events(AlertEventQuery(T0, T0 + 30_000)) == [awkward, fired]
    assert history.find_alert_events(AlertEventQuery(0, 2**62, alertname=AWKWARD)) == [awkward]
    assert history.find_alert_events(AlertEventQuery(0, 2**62, limit=1)) == [resolved]
    assert history.find_alert_events(AlertEventQuery(0, 2**62, alertname="nope")) == []
    assert history.find_alert_events(AlertEventQuery(T0 + 1, T0)) == []
    assert history.find_alert_events(AlertEventQuery(0, 2**62, limit=0)) == []


def test_nan_values_and_equal_times_come_back_in_one_order(history: Any) -> None:
    rows = [
        event(fingerprint=3, state="resolved"),
        event(fingerprint=3, state="firing"),
        event(fingerprint=1, value=math.nan),
        event(alertname="A", fingerprint=9),
    ]
    history.write_alert_events(rows)
    found = history.find_alert_events(EVERYTHING)
    assert [(e.alertname, e.fingerprint, e.state) for e in found] == [
        ("A", 9, "firing"),
        ("InstanceDown", 1, "firing"),
        ("InstanceDown", 3, "firing"),
        ("InstanceDown", 3, "resolved"),
    ]
    assert math.isnan(found[1].value)


def test_a_store_at_version_6_gains_the_history_table(open_store: Any) -> None:
    store = open_store(migrations=MIGRATIONS[:6])
    assert store.applied_migrations == [1, 2, 3, 4, 5, 6]
    store.close()
    store = open_store(migrations=MIGRATIONS[:7])
    assert store.applied_migrations == [7]
    store.write_alert_events([event()])
    assert store.find_alert_events(EVERYTHING) == [event()]
