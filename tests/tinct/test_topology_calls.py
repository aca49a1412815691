"""The call rule (tinct.topology.calls), the latency histogram and the aggregator."""

from __future__ import annotations

import random

import pytest

from tests.storage.spanrows import BASE_NS, batch, span
from tinct.storage import EdgeQuery, InMemoryTopologyStore
from tinct.topology.aggregator import TopologyAggregator
from tinct.topology.calls import SpanInfo, peer_kind, peer_name, trace_calls, trace_weight
from tinct.topology.latency import bucket_of, quantile_ns, upper_bound_ns

SERVER, CLIENT, PRODUCER, CONSUMER, INTERNAL = 2, 3, 4, 5, 1


def info(sid: int, parent: int, service: str, iface: str, kind: int, **kw: object) -> SpanInfo:
    return SpanInfo(
        sid.to_bytes(8, "big"),
        parent.to_bytes(8, "big") if parent else b"",
        service,
        iface,
        kind,
        int(kw.get("start", BASE_NS + sid)),  # type: ignore[call-overload]
        int(kw.get("duration", 1_000_000)),  # type: ignore[call-overload]
        bool(kw.get("error", False)),
        str(kw.get("peer", "")),
        str(kw.get("peer_kind", "")),
        float(kw.get("p", 0.0)),  # type: ignore[arg-type]
        str(kw.get("dye", "")),
    )


def pairs(calls: list) -> list[tuple[str, str, str, str, bool]]:
    return sorted(
        (
            f"{c.source_service}|{c.source_interface}",
            c.source_kind,
            f"{c.target_service}|{c.target_interface}",
            c.target_kind,
            c.error,
        )
        for c in calls
    )


def test_a_request_through_two_services_a_database_and_an_api() -> None:
    spans = [
        info(1, 0, "web", "/checkout", SERVER),
        info(2, 1, "web", "render", INTERNAL),
        info(3, 2, "web", "GET", CLIENT),  # answered by orders
        info(4, 3, "orders", "/orders", SERVER, error=True),
        info(5, 4, "orders", "SELECT", CLIENT, peer="ordersdb", peer_kind="database"),
        info(6, 1, "web", "POST", CLIENT, peer="api.stripe.com:443", peer_kind="external"),
    ]
    assert pairs(trace_calls(spans)) == [
        ("orders|/orders", "service", "ordersdb|", "database", False),
        ("user|", "user", "web|/checkout", "service", False),
        ("web|/checkout", "service", "api.stripe.com:443|", "external", False),
        ("web|/checkout", "service", "orders|/orders", "service", True),
    ]


def test_the_callee_latency_counts_and_a_client_error_fails_the_call() -> None:
    spans = [
        info(1, 0, "a", "/x", SERVER),
        info(2, 1, "a", "call", CLIENT, duration=9_000_000, error=True),
        info(3, 2, "b", "/y", SERVER, duration=4_000_000),
    ]
    (call,) = [c for c in trace_calls(spans) if c.source_service == "a"]
    assert (call.duration_ns, call.error) == (4_000_000, True)


def test_messaging_and_virtual_queues() -> None:
    spans = [
        info(1, 0, "shop", "/buy", SERVER),
        info(2, 1, "shop", "orders publish", PRODUCER, peer="kafka", peer_kind="queue"),
        info(3, 2, "billing", "orders process", CONSUMER, peer="kafka", peer_kind="queue"),
        info(4, 0, "mailer", "mails process", CONSUMER, peer="rabbitmq", peer_kind="queue"),
    ]
    assert pairs(trace_calls(spans)) == [
        ("rabbitmq|", "queue", "mailer|mails process", "service", False),
        ("shop|/buy", "service", "billing|orders process", "service", False),
        ("user|", "user", "shop|/buy", "service", False),
    ]


def test_nested_spans_of_one_service_count_once() -> None:
    spans = [
        info(1, 0, "a", "/x", SERVER),
        info(2, 1, "a", "/x inner", SERVER),  # framework + middleware both instrumented
        info(3, 2, "a", "requests GET", CLIENT),
        info(4, 3, "a", "urllib3 GET", CLIENT),  # two client instrumentations stacked
        info(5, 4, "b", "/y", SERVER),
    ]
    assert pairs(trace_calls(spans)) == [
        ("a|/x inner", "service", "b|/y", "service", False),
        ("user|", "user", "a|/x", "service", False),
    ]


def test_a_server_span_whose_caller_never_reported_hangs_off_user() -> None:
    spans = [info(7, 99, "b", "/y", SERVER)]
    assert pairs(trace_calls(spans)) == [("user|", "user", "b|/y", "service", False)]


def test_a_parent_loop_in_bad_data_ends() -> None:
    spans = [info(1, 2, "a", "x", INTERNAL), info(2, 1, "a", "y", CLIENT, peer="db")]
    assert pairs(trace_calls(spans)) == [("a|x", "service", "db|", "external", False)]


def test_peer_names_follow_tempos_order() -> None:
    assert peer_name({"peer.service": "pay", "db.namespace": "x"}) == "pay"
    assert peer_name({"db.name": "shop", "server.address": "h"}) == "shop"
    assert peer_name({"server.address": "db1", "server.port": "5432"}) == "db1:5432"
    assert peer_name({"network.peer.address": "10.0.0.1"}) == "10.0.0.1"
    assert peer_name({"db.system": "redis"}) == "redis"
    assert peer_name({"messaging.system": "kafka"}) == "kafka"
    assert peer_name({}) == ""
    assert peer_kind(CLIENT, {"db.system": "redis"}) == "cache"
    assert peer_kind(CLIENT, {"db.system.name": "postgresql"}) == "database"
    assert peer_kind(PRODUCER, {}) == "queue"
    assert peer_kind(CLIENT, {"http.request.method": "GET"}) == "external"


def test_weight_is_the_roots_probability() -> None:
    assert trace_weight([info(1, 0, "a", "x", SERVER, p=0.25), info(2, 1, "a", "y", CLIENT)]) == 4
    assert trace_weight([info(2, 1, "a", "y", CLIENT, p=0.5)]) == 2
    assert trace_weight([info(2, 1, "a", "y", CLIENT)]) == 1


def test_latency_buckets_and_quantiles_are_within_five_percent() -> None:
    assert bucket_of(0) == bucket_of(-5) == bucket_of(1000) == 0
    for d in (1001, 1500, 10**6, 123_456_789, 3_600 * 10**9):
        b = bucket_of(d)
        assert upper_bound_ns(b - 1) < d <= upper_bound_ns(b) * (1 + 1e-9)
    rng = random.Random(7)
    values = sorted(int(rng.lognormvariate(16, 1.5)) for _ in range(20_000))
    counts: dict[int, int] = {}
    for v in values:
        counts[bucket_of(v)] = counts.get(bucket_of(v), 0) + 1
    for q in (0.5, 0.9, 0.99):
        exact = values[int(q * len(values)) - 1]
        assert quantile_ns(counts, q) == pytest.approx(exact, rel=0.05)
    assert quantile_ns({}, 0.5) is None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def spans_of_one_request(trace: bytes) -> tuple[list[dict], list[dict]]:
    """(web's spans, api's spans): api answers web's client span."""
    web = [
        span(trace_id=trace, span_id=b"\x01" * 8, service="web", kind=SERVER, http_route="/a",
             sampling_probability=0.5),
        span(trace_id=trace, span_id=b"\x02" * 8, parent_span_id=b"\x01" * 8, service="web",
             kind=CLIENT, name="GET"),
    ]  # fmt: skip
    api = [
        span(trace_id=trace, span_id=b"\x03" * 8, parent_span_id=b"\x02" * 8, service="api",
             kind=SERVER, http_route="/b", status_code=2, duration_ns=3_000_000),
    ]  # fmt: skip
    return web, api


def test_the_aggregator_pairs_spans_arriving_apart_within_the_wait() -> None:
    store, clock = InMemoryTopologyStore(), Clock()
    agg = TopologyAggregator(store, wait_s=10, flush_s=5, clock=clock)
    agg.open()
    web, api = spans_of_one_request(b"\x0a" * 16)
    agg.observe(batch(*web))
    clock.now += 8
    agg.tick()  # web went quiet 8 s ago: still waiting
    assert agg.pending_spans == 2
    agg.observe(batch(*api))
    clock.now += 9.9
    agg.tick()
    assert agg.traces_resolved == 0
    clock.now += 0.2
    agg.tick()
    assert (agg.traces_resolved, agg.calls_counted, agg.pending_spans) == (1, 2, 0)
    assert store.topology_edges(EdgeQuery(0, 2**62)) == []  # written at the next flush
    clock.now += 5
    agg.tick()
    rows = store.topology_edges(EdgeQuery(0, 2**62))
    got = {
        (r.source_service, r.target_service): (r.calls, r.errors, r.weighted_calls) for r in rows
    }
    assert got == {("user", "web"): (1, 0, 2.0), ("web", "api"): (1, 1, 2.0)}


def test_waiting_spans_survive_a_restart() -> None:
    store, clock = InMemoryTopologyStore(), Clock()
    first = TopologyAggregator(store, wait_s=10, flush_s=5, clock=clock)
    first.open()
    web, api = spans_of_one_request(b"\x0b" * 16)
    first.observe(batch(*web))
    first.close()
    clock.now += 4
    second = TopologyAggregator(store, wait_s=10, flush_s=5, clock=clock)
    second.open()
    assert second.pending_spans == 2
    second.observe(batch(*api))
    clock.now += 11
    second.tick()
    second.close()
    rows = store.topology_edges(EdgeQuery(0, 2**62))
    assert {(r.source_service, r.target_service, r.calls) for r in rows} == {
        ("user", "web", 1),
        ("web", "api", 1),
    }
    third = TopologyAggregator(store, clock=clock)
    third.open()
    assert third.pending_spans == 0


def test_too_many_waiting_spans_resolve_the_oldest_early() -> None:
    store, clock = InMemoryTopologyStore(), Clock()
    agg = TopologyAggregator(store, max_pending_spans=3, clock=clock)
    for n in range(4):
        agg.observe(batch(span(trace_id=bytes([n]) * 16, service="s", kind=SERVER)))
    assert agg.pending_spans == 3 and agg.traces_forced == 1
    agg.flush()
    assert [r.calls for r in store.topology_edges(EdgeQuery(0, 2**62))] == [1]


def test_a_failed_edge_write_keeps_the_counts_for_the_next_flush() -> None:
    class Flaky(InMemoryTopologyStore):
        fail = True

        def write_topology_edges(self, batch):  # type: ignore[no-untyped-def]
            if self.fail:
                self.fail = False
                raise OSError("down")
            super().write_topology_edges(batch)

    store, clock = Flaky(), Clock()
    agg = TopologyAggregator(store, wait_s=1, clock=clock)
    agg.observe(batch(span(service="s", kind=SERVER)))
    clock.now += 2
    agg.tick()
    with pytest.raises(OSError):
        agg.flush()
    agg.flush()
    assert [r.calls for r in store.topology_edges(EdgeQuery(0, 2**62))] == [1]
