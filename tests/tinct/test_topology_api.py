"""GET /api/tinct/topology: the dynamic graph diffed against the configured one."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from tests.asgi import AppClient
from tinct.main_app import create_main_app
from tinct.storage import InMemorySpanStore, InMemoryTopologyStore
from tinct.storage.topology import EDGE_SCHEMA
from tinct.topology.static import DeclaredComponent, DeclaredService, StaticTopology

MIN = 60_000
T0 = 1_700_000_040_000 - 1_700_000_040_000 % MIN


Node = tuple[str, str, str]


def edge(
    src: Node, dst: Node, calls: int, errors: int = 0, minute: int = 0, dye: str = "",
    buckets: tuple[int, ...] = (80,),
) -> dict[str, Any]:  # fmt: skip
    return {
        "minute_ms": T0 + minute * MIN,
        "source_service": src[0],
        "source_interface": src[1],
        "source_kind": src[2],
        "target_service": dst[0],
        "target_interface": dst[1],
        "target_kind": dst[2],
        "dye": dye,
        "calls": calls,
        "errors": errors,
        "weighted_calls": calls * 10.0,
        "weighted_errors": errors * 10.0,
        "latency_buckets": list(buckets),
        "latency_counts": [calls // len(buckets)] * len(buckets),
    }


USER = ("user", "", "user")
WEB = ("web", "/checkout", "service")
API = ("api", "/orders", "service")
PG = ("127.0.0.1:5432", "", "database")
STRIPE = ("api.stripe.com:443", "", "external")

STATIC = StaticTopology(
    applications=("shop",),
    services={
        "web": DeclaredService("web", "shop", entry=True, routes=("/checkout",)),
        "api": DeclaredService("api", "shop"),
        "mail": DeclaredService("mail", "shop"),
    },
    components={
        "orders-db": DeclaredComponent("orders-db", "shop", "postgresql", "127.0.0.1:5432")
    },
    service_edges=frozenset(
        {("user", "web"), ("web", "api"), ("api", "orders-db"), ("web", "mail")}
    ),
    interface_edges=frozenset({("user", "web /checkout"), ("web /checkout", "api /orders")}),
)


class Stores(InMemorySpanStore, InMemoryTopologyStore):
    """Spans and edges in one store, as the SQL stores hold both."""

    def __init__(self) -> None:
        InMemorySpanStore.__init__(self)
        InMemoryTopologyStore.__init__(self)


@pytest.fixture
def client() -> AppClient:
    store = Stores()
    store.write_topology_edges(
        pa.Table.from_pylist(
            [
                edge(USER, WEB, 100, 2),
                edge(WEB, API, 80, 4, buckets=(70, 90)),
                edge(API, PG, 160),
                edge(WEB, STRIPE, 20, 1, minute=1),
                edge(USER, WEB, 3, dye="user:42"),
                edge(WEB, API, 3, dye="user:42"),
            ],
            schema=EDGE_SCHEMA,
        )
    )
    app = create_main_app(
        store, static_topology=lambda: STATIC, clock=lambda: (T0 + 5 * MIN) * 10**6
    )
    return AppClient(app)


def by_id(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {i["id"]: i for i in items}


def by_pair(items: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(i["source"], i["target"]): i for i in items}


def test_service_level_diffs_against_the_configuration(client: AppClient) -> None:
    body = client.get("/api/tinct/topology", params={"start": T0, "end": T0 + 2 * MIN}).json()
    assert body["scaled"] is False
    edges = by_pair(body["edges"])
    assert {pair: (e["calls"], e["errors"], e["status"]) for pair, e in edges.items()} == {
        ("user", "web"): (103, 2, "declared"),
        ("web", "api"): (83, 4, "declared"),
        ("api", "orders-db"): (160, 0, "declared"),  # the peer address is the declared component
        ("web", "api.stripe.com:443"): (20, 1, "undeclared"),
        ("web", "mail"): (0, 0, "missing"),
    }
    assert edges["web", "api"]["error_rate"] == pytest.approx(4 / 83, abs=1e-6)
    assert edges["web", "mail"]["p50_ms"] is None
    nodes = by_id(body["nodes"])
    assert {n: (v["kind"], v["layer"], v["status"]) for n, v in nodes.items()} == {
        "user": ("user", "user", "declared"),
        "web": ("service", "service", "declared"),
        "api": ("service", "service", "declared"),
        "mail": ("service", "service", "missing"),
        "orders-db": ("database", "component", "declared"),
        "api.stripe.com:443": ("external", "component", "undeclared"),
    }
    # A node's figures are the calls into it.
    assert (nodes["api"]["calls"], nodes["api"]["errors"]) == (83, 4)
    assert nodes["user"]["calls"] == 103
    # Latency from the merged histograms: 40 calls in bucket 70, the dyed
    # 3 in 80, 40 in 90; the median is the 41.5th call.
    p50, p99 = edges["web", "api"]["p50_ms"], edges["web", "api"]["p99_ms"]
    assert 0.001 * 2 ** (79 / 8) <= p50 <= 0.001 * 2 ** (80 / 8) + 1e-9
    assert 0.001 * 2 ** (89 / 8) <= p99 <= 0.001 * 2 ** (90 / 8) + 1e-9


def test_the_window_is_in_minutes(client: AppClient) -> None:
    body = client.get("/api/tinct/topology", params={"start": T0 + MIN + 1, "end": T0 + MIN + 2})
    edges = by_pair(body.json()["edges"])
    assert edges["web", "api.stripe.com:443"]["calls"] == 20
    assert edges["web", "api"]["status"] == "missing"
    # The default window is the hour before now.
    assert by_pair(client.get("/api/tinct/topology").json()["edges"])["web", "api"]["calls"] == 83


def test_interface_level(client: AppClient) -> None:
    body = client.get(
        "/api/tinct/topology", params={"start": T0, "end": T0 + 2 * MIN, "level": "interface"}
    ).json()
    edges = by_pair(body["edges"])
    assert {pair: e["status"] for pair, e in edges.items()} == {
        ("user", "web /checkout"): "declared",
        ("web /checkout", "api /orders"): "declared",
        ("api /orders", "orders-db"): "undeclared",
        ("web /checkout", "api.stripe.com:443"): "undeclared",
    }
    nodes = by_id(body["nodes"])
    assert (nodes["api /orders"]["kind"], nodes["api /orders"]["service"]) == ("interface", "api")
    assert nodes["api /orders"]["name"] == "/orders"


def test_dye_and_service_filters_and_scaling(client: AppClient) -> None:
    window = {"start": T0, "end": T0 + 2 * MIN}
    dyed = client.get("/api/tinct/topology", params={**window, "dye": "user:42"}).json()
    assert {(e["source"], e["target"], e["calls"]) for e in dyed["edges"]} == {
        ("user", "web", 3),
        ("web", "api", 3),
    }  # the dyed user's path only: nothing missing added
    near = client.get("/api/tinct/topology", params={**window, "service": "api"}).json()
    assert set(by_pair(near["edges"])) == {("web", "api"), ("api", "orders-db")}
    scaled = client.get("/api/tinct/topology", params={**window, "scaled": "true"}).json()
    assert scaled["scaled"] is True
    assert by_pair(scaled["edges"])["user", "web"]["calls"] == pytest.approx(1030.0)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"level": "bogus"}, "level"),
        ({"start": "abc"}, "start"),
        ({"end": "-5"}, "end"),
        ({"start": "10", "end": "5"}, "start"),
        ({"trace": "xyz"}, "trace"),
        ({"scaled": "maybe"}, "scaled"),
    ],
)
def test_bad_parameters_are_400_naming_them(client: AppClient, params: dict, field: str) -> None:
    r = client.get("/api/tinct/topology", params=params)
    assert r.status_code == 400
    assert r.json()["error"].startswith(f"{field}:")


def test_an_unknown_trace_has_no_path(client: AppClient) -> None:
    r = client.get("/api/tinct/topology", params={"trace": "ab" * 16})
    assert r.status_code == 200
    assert r.json()["edges"] == [] and r.json()["nodes"] == []


def test_503_while_the_store_opens() -> None:
    app = create_main_app(None, static_topology=lambda: STATIC)
    r = AppClient(app).get("/api/tinct/topology")
    assert r.status_code == 503 and r.json()["error"].startswith("store:")


def test_one_traces_path_from_its_stored_spans() -> None:
    from tests.storage.spanrows import batch, span

    store = Stores()
    t = b"\x07" * 16
    store.write_spans(
        batch(
            span(trace_id=t, span_id=b"\x01" * 8, service="web", kind=2, http_route="/checkout"),
            span(
                trace_id=t,
                span_id=b"\x02" * 8,
                parent_span_id=b"\x01" * 8,
                service="web",
                kind=3,
                attr_keys=["db.system", "server.address", "server.port"],
                attr_types=[1, 1, 3],
                attr_values=["postgresql", "127.0.0.1", "5432"],
            ),
            span(
                trace_id=t,
                span_id=b"\x03" * 8,
                parent_span_id=b"\x01" * 8,
                service="web",
                kind=3,
                status_code=2,
            ),
            span(
                trace_id=t,
                span_id=b"\x04" * 8,
                parent_span_id=b"\x03" * 8,
                service="api",
                kind=2,
                http_route="/orders",
                duration_ns=2_000_000,
            ),
        )  # fmt: skip
    )
    client = AppClient(create_main_app(store, static_topology=lambda: STATIC))
    body = client.get("/api/tinct/topology", params={"trace": t.hex(), "level": "interface"}).json()
    assert {
        (e["source"], e["target"], e["calls"], e["errors"], e["status"]) for e in body["edges"]
    } == {
        ("user", "web /checkout", 1, 0, "declared"),
        ("web /checkout", "api /orders", 1, 1, "declared"),
        ("web /checkout", "orders-db", 1, 0, "undeclared"),
    }
    assert by_pair(body["edges"])["web /checkout", "api /orders"]["p50_ms"] == pytest.approx(
        2, rel=0.05
    )


def test_jaeger_dependencies_come_from_the_edges(client: AppClient) -> None:
    r = client.get("/api/dependencies", params={"endTs": T0 + 5 * MIN, "lookback": 10 * MIN})
    # Between instrumented services only: not the user, the database or the API peer.
    assert r.json()["data"] == [{"parent": "web", "child": "api", "callCount": 83}]
