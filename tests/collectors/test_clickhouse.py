"""ClickHouseCollector against a real clickhouse-server: its endpoint's names, real values."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from clickhouse_driver import Client
from prometheus_client import Metric

from tests.servers import clickhouse_server, free_port
from tests.servers_sql import silent_port
from tinct.catalog import CATALOG
from tinct.collectors.base import CollectError
from tinct.collectors.clickhouse import ClickHouseCollector
from tinct.collectors.components import component_collector
from tinct.errors import ConfigError

pytestmark = pytest.mark.clickhouse

TYPES = {
    "ClickHouseMetrics_": "gauge",
    "ClickHouseProfileEvents_": "counter",
    "ClickHouseAsyncMetrics_": "gauge",
}


def value(families: list[Metric], name: str) -> float:
    found = [s.value for f in families for s in f.samples if s.name == name]
    assert len(found) == 1, (name, found)
    return found[0]


def test_names_types_and_labels_follow_the_catalog(clickhouse_port: int) -> None:
    address = f"127.0.0.1:{clickhouse_port}"
    collector = component_collector("clickhouse", address, timeout=2.0)
    families = list(collector.collect())

    assert {f.name.split("_", 1)[0] + "_" for f in families} >= {
        "ClickHouseMetrics_",
        "ClickHouseProfileEvents_",
    }
    assert len({f.name for f in families}) == len(families)  # one family per name
    for family in families:
        prefix = family.name.split("_", 1)[0] + "_"
        assert family.type == TYPES[prefix], family.name
        assert [s.name for s in family.samples] == [family.name]  # no _total, as ClickHouse
        for sample in family.samples:
            assert re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", sample.name), sample.name
            spec = CATALOG.for_sample(sample.name)
            assert spec is not None, sample.name
            assert spec.type.value == family.type, sample.name
            labels = {"layer": "component", "component": "clickhouse", "instance": address}
            assert CATALOG.problems(sample.name, labels) == []
            assert sample.labels == {}  # the scheduler adds the target's
    assert getattr(collector, "up_metric", "missing") is None


def test_values_follow_the_queries(clickhouse_port: int) -> None:
    collector = ClickHouseCollector(f"127.0.0.1:{clickhouse_port}", timeout=2.0, options={})
    before = list(collector.collect())
    client = Client("127.0.0.1", port=clickhouse_port)
    try:
        for i in range(5):
            assert client.execute(f"SELECT {i}") == [(i,)]
        after = list(collector.collect())
    finally:
        client.disconnect()

    queries = value(after, "ClickHouseProfileEvents_Query")
    assert queries - value(before, "ClickHouseProfileEvents_Query") >= 5
    # The collector's own connection and the client's.
    assert value(after, "ClickHouseMetrics_TCPConnection") >= 2
    # system.metrics rows are there even at 0, like the endpoint's.
    assert value(after, "ClickHouseMetrics_Merge") >= 0
    help_ = {f.name: f.documentation for f in after}
    assert "queries" in help_["ClickHouseProfileEvents_Query"].lower()


class _FakeClient:
    """Answers ``SELECT * FROM system.*`` with names ClickHouse would sanitize."""

    def __init__(self) -> None:
        self.queries: list[str] = []

    def execute(self, query: str, with_column_types: bool = False) -> Any:
        self.queries.append(query)
        if "system.asynchronous_metrics" in query:
            return [("jemalloc.background_thread.run_intervals", 1.5), ("1stCPU", 2.0)], [
                ("metric", "String"),
                ("value", "Float64"),
            ]
        name = "event" if "system.events" in query else "metric"
        rows = [("Query", 3, "d"), ("Disk-Space.Reserved", 4, "d"), ("42", 5, "d")]
        return rows, [(name, "String"), ("value", "UInt64"), ("description", "String")]

    def disconnect(self) -> None:
        pass


def test_names_are_sanitized_as_clickhouse_does() -> None:
    collector = ClickHouseCollector("127.0.0.1:9000", timeout=1.0, options={})
    collector._client = _FakeClient()  # type: ignore[assignment]
    names = {f.name for f in collector.collect()}
    assert names == {
        "ClickHouseProfileEvents_Query",
        "ClickHouseProfileEvents_Disk_Space_Reserved",
        # "42" has no letter left after the leading non-letters go: skipped.
        "ClickHouseMetrics_Query",
        "ClickHouseMetrics_Disk_Space_Reserved",
        # Asynchronous metrics are sanitized with the prefix: digits stay.
        "ClickHouseAsyncMetrics_jemalloc_background_thread_run_intervals",
        "ClickHouseAsyncMetrics_1stCPU",
    }


def test_a_closed_port_raises_quickly() -> None:
    address = f"127.0.0.1:{free_port()}"
    collector = ClickHouseCollector(address, timeout=1.0, options={})
    start = time.monotonic()
    with pytest.raises(CollectError, match=address):
        collector.collect()
    assert time.monotonic() - start < 2.0


def test_a_silent_server_raises_at_the_timeout() -> None:
    with silent_port() as port:
        collector = ClickHouseCollector(f"127.0.0.1:{port}", timeout=1.0, options={})
        start = time.monotonic()
        with pytest.raises(CollectError, match=f"127.0.0.1:{port}"):
            collector.collect()
    assert time.monotonic() - start < 2.5


def test_a_stopped_server_raises_quickly(tmp_path: Path) -> None:
    with clickhouse_server(tmp_path) as port:
        collector = ClickHouseCollector(f"127.0.0.1:{port}", timeout=1.0, options={})
        assert value(list(collector.collect()), "ClickHouseMetrics_TCPConnection") >= 1
        # clickhouse-server waits ~10 s on shutdown for idle sessions to go.
        collector.close()
    start = time.monotonic()
    with pytest.raises(CollectError, match=f"clickhouse 127.0.0.1:{port}"):
        collector.collect()
    assert time.monotonic() - start < 2.0


def test_a_wrong_password_raises(clickhouse_port: int) -> None:
    collector = ClickHouseCollector(
        f"127.0.0.1:{clickhouse_port}", timeout=1.0, options={"password": "wrong"}
    )
    with pytest.raises(CollectError, match=f"127.0.0.1:{clickhouse_port}"):
        collector.collect()


@pytest.mark.parametrize(
    ("address", "options", "message"),
    [
        ("127.0.0.1:notaport", {}, "notaport"),
        ("", {}, "host:port"),
        ("127.0.0.1:9000", {"db": "x"}, "unknown option"),
    ],
)
def test_bad_settings_are_refused(address: str, options: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ClickHouseCollector(address, timeout=1.0, options=options)
