"""The dynamic topology on random call graphs, end to end (the issue's acceptance test).

A seeded generator (``tests.tinct.topology_traces``) draws a service graph
and runs a few hundred requests through it: fan-out, depth, errors on either
side of a call, databases, caches, uninstrumented HTTP peers, Kafka topics
with and without a consumer, roots whose caller never reported, dyed and
sampled requests. Each trace's spans are exported per service (some
services twice) as OTLP protobuf requests arriving up to seconds apart in
fake time, and tinct restarts in the middle, so some traces have their
parents before the restart and their children after it. The spans go
through the real OTLP decoder into a store and the topology aggregator,
and ``GET /api/tinct/topology`` must answer exactly the calls the generator
recorded making: edges, call and error counts, virtual nodes and kinds, at
both levels, on memory, chdb and the ClickHouse 18.16 server, and for the
``trace=``, ``dye=``, ``service=`` and ``scaled=`` views.
"""

from __future__ import annotations

import functools
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pytest

from tests.asgi import AppClient
from tests.storage.conftest import SQL_BACKENDS, _factory
from tests.tinct.topology_traces import (
    DYE,
    Call,
    GenSpan,
    Trace,
    api_edges,
    api_nodes,
    by_service,
    diff,
    expected_calls_into,
    expected_edges,
    expected_nodes,
    otlp_request,
    random_graph,
    split_parts,
)
from tinct.collectors.layers import ObservingSpanWriter
from tinct.main_app import create_main_app
from tinct.storage import EdgeQuery, InMemorySpanStore, InMemoryTopologyStore
from tinct.storage.topology import EdgeRow
from tinct.topology.aggregator import TopologyAggregator
from tinct.topology.calls import span_info, trace_calls, trace_dye, trace_weight
from tinct.tracing.otlp_decode import decode_protobuf

SEED = 20261512
REQUESTS = 300
SPREAD_S = 60.0  # requests start over this long
MAX_DELAY_S = 6.0  # each export of a trace arrives up to this long after its request
TICK_S = 1.0  # exports arrive, are written and the aggregator ticks on this grid
DOWNTIME_S = 1.5  # the restart's gap in arrivals
WAIT_S, FLUSH_S = 10.0, 3.0
# Consecutive exports of a trace are at most this far apart: under the wait,
# so every trace is resolved whole, the restart's gap included.
assert MAX_DELAY_S + TICK_S + DOWNTIME_S < WAIT_S
PATH = "/api/tinct/topology"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class MemoryStores(InMemorySpanStore):
    """Spans and topology in memory behind one object, as a SQL store holds both."""

    def __init__(self) -> None:
        super().__init__()
        self.topology = InMemoryTopologyStore()

    def write_topology_edges(self, batch: pa.Table) -> None:
        self.topology.write_topology_edges(batch)

    def topology_edges(self, query: EdgeQuery) -> list[EdgeRow]:
        return self.topology.topology_edges(query)

    def save_topology_pending(self, batch: pa.Table, checkpoint: int) -> None:
        self.topology.save_topology_pending(batch, checkpoint)

    def load_topology_pending(self) -> tuple[pa.Table, int]:
        return self.topology.load_topology_pending()


# -- the scenario: traces, when their exports arrive, where tinct restarts -----------


@dataclass
class Scenario:
    base_s: float  # fake Unix time of the first request
    traces: list[Trace]
    ticks: list[list[bytes]]  # OTLP bodies arriving at each tick, after the base
    tick_times: list[float]
    restart_tick: int  # tinct restarts just before this tick
    # Traces with a service exported wholly before the restart and another after it.
    straddling: list[Trace]

    @property
    def calls(self) -> list[Call]:
        return [c for t in self.traces for c in t.calls]

    def window(self) -> dict[str, int]:
        start_ms = int(self.base_s * 1000)
        return {"start": start_ms - 60_000, "end": start_ms + int(SPREAD_S + 120) * 1000}


@functools.cache
def scenario(seed: int = SEED) -> Scenario:
    # Recent times: the SQL stores apply retention when they (re)open.
    base_s = float(int(time.time()) // 60 * 60 - 600)
    rng = random.Random(seed)
    graph = random_graph(rng)
    traces = []
    for i in range(REQUESTS):
        dye = DYE if rng.random() < 0.1 else ""
        probability = rng.choice([1.0, 1.0, 1.0, 0.5, 0.25])
        start_ns = int((base_s + i * SPREAD_S / REQUESTS) * 1e9)
        traces.append(graph.request(rng, start_ns, dye=dye, probability=probability))
    # Each export arrives on the tick grid, up to MAX_DELAY_S after its request.
    arrivals: dict[int, list[tuple[bytes, list[GenSpan]]]] = {}
    for i, trace in enumerate(traces):
        for part in split_parts(trace, rng):
            at = i * SPREAD_S / REQUESTS + rng.uniform(0, MAX_DELAY_S)
            arrivals.setdefault(math.ceil(at / TICK_S), []).append((trace.trace_id, part))
    last = max(arrivals)
    restart_tick = last // 2
    ticks, tick_times = [], []
    sides: dict[tuple[bytes, str], set[bool]] = {}
    for tick in range(last + 1):
        parts = arrivals.get(tick, [])
        rng.shuffle(parts)
        for trace_id, part in parts:
            sides.setdefault((trace_id, part[0].service), set()).add(tick >= restart_tick)
        # A few exports per request, as a collector batching several services would send.
        bodies = [
            otlp_request(p for _, p in parts[j : j + 4]).SerializeToString()
            for j in range(0, len(parts), 4)
        ]
        ticks.append(bodies)
        tick_times.append(tick * TICK_S + (DOWNTIME_S if tick >= restart_tick else 0.0))
    straddling = [
        t
        for t in traces
        if {frozenset(v) for (tid, _), v in sides.items() if tid == t.trace_id}
        >= {frozenset([False]), frozenset([True])}
    ]
    return Scenario(base_s, traces, ticks, tick_times, restart_tick, straddling)


def test_the_scenario_covers_what_the_issue_lists() -> None:
    check_coverage(scenario())


def check_coverage(sc: Scenario) -> None:
    targets = Counter(c.target[2] for c in sc.calls)
    sources = Counter(c.source[2] for c in sc.calls)
    assert {"service", "database", "cache", "external", "queue"} <= set(targets)
    assert sources["queue"] > 0  # consumers without a producer in the trace
    assert {"root", "orphan", "consumer"} <= {t.entry for t in sc.traces}
    messaging = [
        c for c in sc.calls if c.target[1].endswith(" process") and c.source[2] == "service"
    ]
    assert messaging, "no producer → consumer call"
    assert any(c.source[0] == c.target[0] for c in sc.calls), "no service calls itself"
    assert sum(c.error for c in sc.calls) > 10
    assert sum(bool(t.dye) for t in sc.traces) > 10
    assert {t.weight for t in sc.traces} == {1.0, 2.0, 4.0}
    assert len(sc.straddling) > 10
    # Depth: some request crosses four services.
    assert max(len(by_service(t.spans)) for t in sc.traces) >= 4
    # Fan-out: some route calls at least three other nodes in one request.
    fan_out = Counter((t.trace_id, c.source) for t in sc.traces for c in t.calls)
    assert max(fan_out.values()) >= 3
    # Parents and children really are apart: many traces span several exports.
    assert sum(len(by_service(t.spans)) > 1 for t in sc.traces) > REQUESTS // 2


# -- ingest through the real decoder into a store and the aggregator -----------------


Reopen = Callable[[Any], Any]


def ingest(sc: Scenario, store: Any, reopen: Reopen) -> Any:
    """Play the scenario's exports into ``store``; returns the store that is open at the end."""
    clock = Clock(sc.base_s)

    def aggregator(store: Any) -> TopologyAggregator:
        agg = TopologyAggregator(store, wait_s=WAIT_S, flush_s=FLUSH_S, clock=clock)
        agg.open()
        return agg

    agg = aggregator(store)
    resolved = 0
    for index, bodies in enumerate(sc.ticks):
        if index == sc.restart_tick:
            agg.close()
            resolved += agg.traces_resolved
            store = reopen(store)
            agg = aggregator(store)
            assert agg.pending_spans > 0, "nothing was waiting across the restart"
        clock.now = sc.base_s + sc.tick_times[index]
        batches = []
        for body in bodies:
            result = decode_protobuf(body)
            assert result.rejected == 0, result.message
            batches.append(result.batch)
        if batches:  # one write a tick, as tinct's batch writer does
            ObservingSpanWriter(store, agg).write_spans(pa.concat_tables(batches))
        agg.tick()
    clock.now += WAIT_S
    agg.tick()
    agg.close()
    resolved += agg.traces_resolved
    assert agg.pending_spans == 0
    assert resolved == len(sc.traces)  # each trace resolved once, none twice
    assert store.load_topology_pending()[0].num_rows == 0
    return store


@dataclass
class Ingested:
    sc: Scenario
    client: AppClient

    def get(self, **params: Any) -> dict[str, Any]:
        query = self.sc.window() | params
        r = self.client.get(PATH, params=query)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]


@pytest.fixture(scope="module", params=["memory", *SQL_BACKENDS])
def ingested(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Ingested]:
    sc = scenario()
    if request.param == "memory":
        # A restart keeps the stores (they stand for the database) and
        # replaces the aggregator, as a new tinct process does.
        store = ingest(sc, MemoryStores(), lambda same: same)
        yield Ingested(sc, AppClient(create_main_app(store)))
        return
    with _factory(request.param, request, tmp_path_factory.mktemp("topology")) as factory:

        def reopen(old: Any) -> Any:
            old.close()
            return factory()

        store = ingest(sc, factory(), reopen)
        yield Ingested(sc, AppClient(create_main_app(store)))


# -- what the API answers ------------------------------------------------------------


@pytest.mark.parametrize("level", ["service", "interface"])
def test_edges_calls_and_errors_are_exactly_the_calls_made(ingested: Ingested, level: str) -> None:
    body = ingested.get(level=level)
    want = expected_edges(ingested.sc.calls, level)
    got = api_edges(body)
    assert got == want, diff(got, want)
    assert body["scaled"] is False
    assert {e["status"] for e in body["edges"]} == {"undeclared"}  # nothing configured


@pytest.mark.parametrize("level", ["service", "interface"])
def test_nodes_are_the_services_interfaces_and_virtual_peers_called(
    ingested: Ingested, level: str
) -> None:
    body = ingested.get(level=level)
    want = expected_nodes(ingested.sc.calls, level)
    got = api_nodes(body)
    assert got == want, diff(got, want)
    virtual = {n: k for n, k in got.items() if k not in ("service", "interface")}
    assert set(virtual.values()) == {"user", "database", "cache", "external", "queue"}
    # A node's figures are the calls into it; the user's, the calls out of it.
    into = expected_calls_into(ingested.sc.calls, level)
    figures = {n["id"]: n["calls"] for n in body["nodes"]}
    assert figures["user"] == sum(c.source[2] == "user" for c in ingested.sc.calls)
    assert {n: figures[n] for n in into} == dict(into)


def test_scaled_counts_weigh_each_call_by_its_traces_sampling(ingested: Ingested) -> None:
    body = ingested.get(level="service", scaled="true")
    assert body["scaled"] is True
    want = expected_edges(ingested.sc.calls, "service", scaled=True)
    assert api_edges(body) == want, diff(api_edges(body), want)


@pytest.mark.parametrize("level", ["service", "interface"])
def test_a_dye_shows_only_the_dyed_requests_path(ingested: Ingested, level: str) -> None:
    dyed = [c for c in ingested.sc.calls if c.dye == DYE]
    body = ingested.get(level=level, dye=DYE)
    assert api_edges(body) == expected_edges(dyed, level), diff(
        api_edges(body), expected_edges(dyed, level)
    )
    assert api_nodes(body) == expected_nodes(dyed, level)
    assert ingested.get(level=level, dye="user:8")["edges"] == []


def test_a_service_filter_keeps_the_edges_touching_it(ingested: Ingested) -> None:
    counts = Counter(s for c in ingested.sc.calls for s in (c.source[0], c.target[0]))
    service = max((s for s in counts if s != "user"), key=lambda s: (counts[s], s))
    touching = [c for c in ingested.sc.calls if service in (c.source[0], c.target[0])]
    body = ingested.get(level="service", service=service)
    assert api_edges(body) == expected_edges(touching, "service")


def sample_traces(sc: Scenario) -> list[Trace]:
    """A few traces worth reading back one by one."""
    picks = [
        max(sc.straddling, key=lambda t: (len(t.calls), t.trace_id)),
        next(t for t in sc.traces if t.entry == "consumer"),
        next(t for t in sc.traces if t.entry == "orphan"),
        next(t for t in sc.traces if t.dye and len(t.calls) > 2),
        next(t for t in sc.traces if any(c.error for c in t.calls) and len(t.calls) > 3),
    ]
    return picks


@pytest.mark.parametrize("level", ["service", "interface"])
def test_a_trace_shows_exactly_its_calls(ingested: Ingested, level: str) -> None:
    for trace in sample_traces(ingested.sc):
        # Outside the window too: a trace's path is read from its spans.
        body = ingested.client.get(PATH, params={"trace": trace.trace_id.hex(), "level": level})
        assert body.status_code == 200, body.text
        want = expected_edges(trace.calls, level)
        assert api_edges(body.json()) == want, (trace.entry, diff(api_edges(body.json()), want))
        assert api_nodes(body.json()) == expected_nodes(trace.calls, level)


# -- the call rule alone, on many graphs ---------------------------------------------


def infos_of(spans: list[GenSpan]) -> list[Any]:
    """The spans as the aggregator sees them (attributes as text)."""

    def text(value: object) -> str:
        return repr(value) if isinstance(value, float) else str(value)

    return [
        span_info(
            span_id=s.span_id,
            parent_span_id=s.parent_span_id,
            service=s.service,
            name=s.name,
            kind=s.kind,
            start_ns=s.start_ns,
            duration_ns=s.end_ns - s.start_ns,
            status_code=2 if s.error else 0,
            http_route=str(s.attrs.get("http.route", "")),
            attrs={k: text(v) for k, v in s.attrs.items()},
            probability=float(s.attrs.get("tinct.sampling.probability", 0.0)),
            dye=str(s.attrs.get("tinct.dye", "")),
        )
        for s in spans
    ]


def test_trace_calls_finds_the_calls_made_on_200_random_graphs() -> None:
    rng = random.Random(SEED + 1)
    checked = Counter[str]()
    for _ in range(200):
        graph = random_graph(rng)
        for _ in range(5):
            dye = DYE if rng.random() < 0.3 else ""
            probability = rng.choice([1.0, 0.5, 0.125])
            trace = graph.request(rng, 1_700_000_000 * 10**9, dye=dye, probability=probability)
            # Spans in any order: they arrive so.
            infos = rng.sample(infos_of(trace.spans), len(trace.spans))
            got = Counter(
                (
                    (c.source_service, c.source_interface, c.source_kind),
                    (c.target_service, c.target_interface, c.target_kind),
                    c.error,
                )
                for c in trace_calls(infos)
            )
            want = Counter((c.source, c.target, c.error) for c in trace.calls)
            assert got == want, (trace.entry, got - want, want - got)
            assert trace_weight(infos) == trace.weight
            assert trace_dye(infos) == trace.dye
            checked.update(c.target[2] for c in trace.calls)
            checked.update(["error"] * sum(c.error for c in trace.calls))
    assert min(checked[k] for k in ("database", "cache", "external", "queue", "error")) > 50


# -- a restart longer than the wait ----------------------------------------------------


def test_a_restart_longer_than_the_wait_still_pairs_the_waiting_spans() -> None:
    rng = random.Random(SEED + 2)
    graph = random_graph(rng)
    trace = next(
        t
        for t in (graph.request(rng, 1_700_000_000 * 10**9) for _ in range(100))
        if len(by_service(t.spans)) > 2
    )
    first, *rest = by_service(trace.spans)
    store, clock = MemoryStores(), Clock(1_700_000_000.0)
    before = TopologyAggregator(store, wait_s=WAIT_S, flush_s=FLUSH_S, clock=clock)
    before.open()
    before.observe(decode_protobuf(otlp_request([first]).SerializeToString()).batch)
    before.close()
    clock.now += WAIT_S + 20  # tinct is down (an upgrade); the exporters retry
    after = TopologyAggregator(store, wait_s=WAIT_S, flush_s=FLUSH_S, clock=clock)
    after.open()
    after.tick()  # tinct's background tick runs right after the store opens ...
    clock.now += 0.5
    after.observe(decode_protobuf(otlp_request(rest).SerializeToString()).batch)  # ... then these
    clock.now += WAIT_S
    after.tick()
    after.close()
    rows = store.topology_edges(EdgeQuery(0, 2**62))
    got = {(r.source_service, r.target_service): (r.calls, r.errors) for r in rows}
    want = expected_edges(trace.calls, "service")
    assert got == want, diff(got, want)


# -- an export sent twice ------------------------------------------------------------

START_NS = 1_700_000_000 * 10**9


def sent_twice() -> tuple[Trace, AppClient]:
    """A trace exported twice (OTLP delivery is at least once: an exporter
    that lost the response resends), ingested into memory."""
    rng = random.Random(SEED + 3)
    graph = random_graph(rng)
    requests = (graph.request(rng, START_NS) for _ in range(100))
    trace = next(t for t in requests if len(by_service(t.spans)) > 2 and len(t.calls) > 3)
    body = otlp_request(by_service(trace.spans)).SerializeToString()
    store, clock = MemoryStores(), Clock(START_NS / 1e9)
    agg = TopologyAggregator(store, wait_s=WAIT_S, flush_s=FLUSH_S, clock=clock)
    agg.open()
    for _ in range(2):
        ObservingSpanWriter(store, agg).write_spans(decode_protobuf(body).batch)
        clock.now += 2
    clock.now += WAIT_S
    agg.tick()
    agg.close()
    return trace, AppClient(create_main_app(store))


def test_an_export_sent_twice_counts_once() -> None:
    trace, client = sent_twice()
    start_ms = START_NS // 10**6
    window = {"start": start_ms - 60_000, "end": start_ms + 60_000, "level": "interface"}
    got = api_edges(client.get(PATH, params=window).json())
    want = expected_edges(trace.calls, "interface")
    assert got == want, diff(got, want)


def test_an_export_sent_twice_counts_once_in_the_traces_path() -> None:
    trace, client = sent_twice()
    params = {"trace": trace.trace_id.hex(), "level": "interface"}
    got = api_edges(client.get(PATH, params=params).json())
    want = expected_edges(trace.calls, "interface")
    assert got == want, diff(got, want)
