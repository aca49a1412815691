"""Topology edges and pending spans on chdb, ClickHouse 18.16 and in memory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from tinct.storage import InMemoryTopologyStore
from tinct.storage.topology import EDGE_SCHEMA, PENDING_SCHEMA, EdgeQuery

from .conftest import SQL_BACKENDS, StoreFactory, _factory

MIN = 60_000
T0 = 1_780_000_020_000 - 1_780_000_020_000 % MIN  # a minute boundary


@pytest.fixture(params=[*SQL_BACKENDS, "memory"])
def topo_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "memory":
        yield InMemoryTopologyStore()
        return
    with _factory(request.param, request, tmp_path) as factory:
        yield factory()


def edge(minute: int, src: str, dst: str, calls: int, errors: int = 0, **kw: Any) -> dict[str, Any]:
    row = {
        "minute_ms": T0 + minute * MIN,
        "source_service": src,
        "source_interface": kw.get("si", "/a"),
        "source_kind": kw.get("sk", "service"),
        "target_service": dst,
        "target_interface": kw.get("ti", "/b"),
        "target_kind": kw.get("tk", "service"),
        "dye": kw.get("dye", ""),
        "calls": calls,
        "errors": errors,
        "weighted_calls": calls * kw.get("w", 1.0),
        "weighted_errors": errors * kw.get("w", 1.0),
        "latency_buckets": kw.get("buckets", [10]),
        "latency_counts": kw.get("counts", [calls]),
    }
    return row


def write(store: Any, rows: list[dict[str, Any]]) -> None:
    store.write_topology_edges(pa.Table.from_pylist(rows, schema=EDGE_SCHEMA))


def test_edges_sum_per_pair_over_the_window(topo_store: Any) -> None:
    write(
        topo_store,
        [
            edge(0, "web", "api", 3, 1, buckets=[10, 20], counts=[2, 1]),
            edge(1, "web", "api", 2, 0, buckets=[20], counts=[2], w=4.0),
            edge(1, "web", "api", 1, 1, ti="/c", buckets=[30], counts=[1]),
            edge(5, "web", "api", 7, 0),
            edge(1, "api", "pg", 4, 0, tk="database", ti=""),
        ],
    )
    write(topo_store, [edge(1, "web", "api", 1, 0, buckets=[10], counts=[1])])  # a second flush
    rows = topo_store.topology_edges(EdgeQuery(T0, T0 + 2 * MIN - 1))
    got = {(r.source_service, r.target_service, r.target_kind): r for r in rows}
    assert sorted(got) == [("api", "pg", "database"), ("web", "api", "service")]
    web_api = got["web", "api", "service"]
    assert (web_api.calls, web_api.errors) == (7, 2)
    assert web_api.weighted_calls == pytest.approx(3 + 8 + 1 + 1)
    assert web_api.latency == {10: 3, 20: 3, 30: 1}
    assert web_api.source_interface == web_api.target_interface == ""

    # Interface level keeps the routes apart; a window inside minute 1 covers it whole.
    rows = topo_store.topology_edges(
        EdgeQuery(T0 + MIN + 30_000, T0 + MIN + 40_000, interfaces=True)
    )
    got2 = {(r.source_service, r.target_service, r.target_interface): r.calls for r in rows}
    assert got2 == {("web", "api", "/b"): 3, ("web", "api", "/c"): 1, ("api", "pg", ""): 4}


def test_edges_filter_by_dye_and_service(topo_store: Any) -> None:
    write(
        topo_store,
        [
            edge(0, "web", "api", 5),
            edge(0, "web", "api", 2, dye="user:42"),
            edge(0, "api", "pg", 2, dye="user:42", tk="database"),
            edge(0, "user", "web", 9, sk="user"),
        ],
    )
    dyed = topo_store.topology_edges(EdgeQuery(T0, T0 + MIN, dye="user:42"))
    assert [(r.source_service, r.target_service, r.calls) for r in dyed] == [
        ("api", "pg", 2),
        ("web", "api", 2),
    ]
    near_api = topo_store.topology_edges(EdgeQuery(T0, T0 + MIN, services=("api",)))
    assert [(r.source_service, r.target_service, r.calls) for r in near_api] == [
        ("api", "pg", 2),
        ("web", "api", 7),
    ]
    assert topo_store.topology_edges(EdgeQuery(T0 + MIN, T0 + 2 * MIN)) == []


def pending(n: int, arrived: int) -> pa.Table:
    rows = [
        {
            "trace_id": bytes([i]) * 16,
            "span_id": bytes([i]) * 8,
            "parent_span_id": b"",
            "service": f"svc{i}",
            "interface": "/x",
            "kind": 2,
            "start_ns": 10**18 + i,
            "duration_ns": 5,
            "error": i % 2,
            "peer": "",
            "peer_kind": "",
            "probability": 0.5,
            "dye": "",
            "arrived_ms": arrived,
        }
        for i in range(1, n + 1)
    ]
    return pa.Table.from_pylist(rows, schema=PENDING_SCHEMA)


def test_pending_checkpoints_replace_each_other(topo_store: Any) -> None:
    table, checkpoint = topo_store.load_topology_pending()
    assert (table.num_rows, checkpoint) == (0, 0)
    topo_store.save_topology_pending(pending(3, 111), 1)
    topo_store.save_topology_pending(pending(2, 222), 2)
    table, checkpoint = topo_store.load_topology_pending()
    assert checkpoint == 2
    assert sorted(table.to_pylist(), key=lambda r: r["span_id"]) == pending(2, 222).to_pylist()
    topo_store.save_topology_pending(pending(0, 0), 3)
    table, checkpoint = topo_store.load_topology_pending()
    assert (table.num_rows, checkpoint) == (0, 3)


def test_pending_survives_a_reopen(open_store: StoreFactory) -> None:
    store = open_store()
    store.save_topology_pending(pending(4, 333), 7)
    store.close()
    again = open_store()
    table, checkpoint = again.load_topology_pending()
    assert checkpoint == 7
    assert sorted(table.to_pylist(), key=lambda r: r["span_id"]) == pending(4, 333).to_pylist()


def test_a_store_at_version_7_gains_the_topology_tables(open_store: StoreFactory) -> None:
    from tinct.storage.migrations import MIGRATIONS

    store = open_store(migrations=MIGRATIONS[:7])
    assert store.applied_migrations == [1, 2, 3, 4, 5, 6, 7]
    store.close()
    store = open_store()
    assert store.applied_migrations == [8]
    write(store, [edge(0, "web", "api", 2)])
    assert [r.calls for r in store.topology_edges(EdgeQuery(T0, T0))] == [2]
