"""Random call graphs, the traces their requests make, and the calls they made.

The dynamic topology tests' generator. :func:`random_graph` draws a service
graph (services with routes, a DAG of calls with fan-out and depth up to
four services, a service calling its own routes, databases, caches,
uninstrumented HTTP peers, Kafka topics with and without a consumer);
:meth:`Graph.request` runs one request through it as a real span tree
(SERVER span per hop, CLIENT/PRODUCER span per outgoing call, sometimes
under an INTERNAL span or two stacked client instrumentations) and, while
doing so, writes down every call it made in :attr:`Trace.calls`. That
record is what the tests expect the topology to show: it is written as the
generator decides each call, never derived from the spans, so a wrong
pairing rule cannot agree with itself.

Node names follow ``tinct.topology.calls``: an instrumented node is
``(service, interface, "service")``, a virtual one ``(peer name, "",
kind)``, the caller of roots ``("user", "", "user")``; :func:`node_id`
spells them as ``GET /api/tinct/topology`` does.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Status

INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER = 1, 2, 3, 4, 5
DYE = "user:7"

Node = tuple[str, str, str]  # (service or peer name, interface or "", kind)
Attrs = dict[str, str | int | float]
USER: Node = ("user", "", "user")

_SERVICE_NAMES = (
    "web", "gateway", "orders", "users", "billing", "stock", "search",
    "mailer", "ledger", "audit", "pricing", "shipping",
)  # fmt: skip
_WORDS = ("list", "get", "create", "update", "cancel", "lookup", "sync")
_SERVER_ERROR = 0.06
_CLIENT_ERROR = 0.05
_PEER_ERROR = 0.08


def node_id(node: Node, level: str) -> str:
    """The node's id in the API's answer at ``level`` (service|interface)."""
    name, interface, kind = node
    if kind == "service" and level == "interface":
        return f"{name} {interface}"
    return name


def node_kind(node: Node, level: str) -> str:
    """The node's ``kind`` in the API's answer at ``level``."""
    kind = node[2]
    return "interface" if kind == "service" and level == "interface" else kind


@dataclass(frozen=True)
class Peer:
    """An uninstrumented node: the attributes a client span names it with,
    and the name and kind the topology must give it (Tempo's order)."""

    name: str
    kind: str
    attrs: tuple[tuple[str, str | int], ...]


@dataclass
class Route:
    """One interface of a service and the calls it makes."""

    service: str
    interface: str
    level: int
    http: bool  # has an http.route; otherwise the span name is the interface
    topic: Peer | None = None  # a CONSUMER route of this topic
    ops: list[Op] = field(default_factory=list)

    @property
    def node(self) -> Node:
        return (self.service, self.interface, "service")


@dataclass
class Op:
    """An outgoing call of a route: to another route (``http``), to a peer
    (``peer``), or a publish to a topic (``publish``, consumed by
    ``route`` when it has a consumer)."""

    kind: str
    route: Route | None = None
    peer: Peer | None = None
    times: int = 1  # up to this many calls a request (N+1 queries)
    chance: float = 1.0  # each of them made with this probability
    under_internal: bool = False
    nested_client: bool = False


@dataclass
class GenSpan:
    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes
    service: str
    name: str
    kind: int
    start_ns: int
    end_ns: int
    error: bool
    attrs: Attrs


@dataclass(frozen=True)
class Call:
    """One call the generator made: what the topology must count."""

    trace_id: bytes
    source: Node
    target: Node
    error: bool
    dye: str
    weight: float


@dataclass
class Trace:
    trace_id: bytes
    spans: list[GenSpan]
    calls: list[Call]
    entry: str  # "root", "orphan" (its caller never reported) or "consumer"
    dye: str
    weight: float


@dataclass
class Graph:
    services: dict[str, list[Route]]
    entries: list[Route]  # level-0 routes a user calls
    consumer_roots: list[Route]  # consumer routes that also run as roots

    def request(
        self, rng: random.Random, start_ns: int, *, dye: str = "", probability: float = 1.0
    ) -> Trace:
        """One request through the graph as a span tree, and its calls."""
        return _Request(rng, start_ns, dye, probability).run(self)


def random_graph(rng: random.Random) -> Graph:
    """A random service graph: 6-10 services of 1-3 routes in four levels;
    routes call only deeper levels, so a request crosses at most four
    services (plus the peers of the deepest)."""
    names = rng.sample(_SERVICE_NAMES, rng.randint(6, 10))
    levels = {names[0]: 0} | {n: rng.randint(0, 3) for n in names[1:]}
    peers = _random_peers(rng)
    services: dict[str, list[Route]] = {}
    for name in names:
        http = rng.random() < 0.7
        routes = []
        for word in rng.sample(_WORDS, rng.randint(1, 3)):
            if http:
                interface = rng.choice([f"/{name}/{word}", f"/{name}/{{id}}/{word}"])
            else:
                interface = f"{name}.{name.title()}/{word.title()}"
            routes.append(Route(name, interface, levels[name], http))
        services[name] = routes
    # Topics: some consumed by a service below level 0, some by nobody.
    topics = [p for p in peers if p.kind == "queue"]
    consumers: dict[Peer, Route] = {}
    for topic in topics:
        deep = [n for n in names if levels[n] > 0]
        if deep and rng.random() < 0.7:
            service = rng.choice(deep)
            route = Route(service, f"{_topic(topic)} process", levels[service], False, topic)
            services[service].append(route)
            consumers[topic] = route
    stores = [p for p in peers if p.kind != "queue"]
    for routes in services.values():
        for route in routes:
            route.ops = [
                _random_op(rng, route, services, levels, stores, topics, consumers)
                for _ in range(rng.randint(0, 4))
            ]
    entries = [r for n in names if levels[n] == 0 for r in services[n] if r.topic is None]
    return Graph(services, entries, list(consumers.values()))


def _topic(peer: Peer) -> str:
    return str(dict(peer.attrs)["messaging.destination.name"])


def _random_peers(rng: random.Random) -> list[Peer]:
    peers = []
    for i in range(rng.randint(1, 3)):
        system = rng.choice(["postgresql", "mysql"])
        name = f"{rng.choice(['orders', 'users', 'stock', 'audit'])}_db{i}"
        key = rng.choice(["db.namespace", "db.namespace", "db.name"])
        attrs: list[tuple[str, str | int]] = [("db.system", system), (key, name)]
        if rng.random() < 0.5:  # the namespace still names it (Tempo's order)
            attrs += [("server.address", f"db{i}.internal"), ("server.port", 5432)]
        peers.append(Peer(name, "database", tuple(attrs)))
    for i in range(rng.randint(0, 2)):
        attrs = [("db.system", "redis"), ("server.address", f"cache-{i}"), ("server.port", 6379)]
        peers.append(Peer(f"cache-{i}:6379", "cache", tuple(attrs)))
    for i in range(rng.randint(1, 3)):
        attrs = [("http.request.method", "POST")]
        style = rng.random()
        if style < 0.6:
            host = f"api.partner{i}.example"
            attrs += [("server.address", host), ("server.port", 443)]
            name = f"{host}:443"
        elif style < 0.8:
            attrs += [("network.peer.address", f"10.0.0.{i + 7}"), ("network.peer.port", 8080)]
            name = f"10.0.0.{i + 7}:8080"
        else:
            name = f"legacy-crm{i}"
            attrs += [("peer.service", name), ("server.address", f"crm{i}.corp")]
        peers.append(Peer(name, "external", tuple(attrs)))
    for i in range(rng.randint(1, 3)):
        attrs = [("messaging.system", "kafka"), ("messaging.destination.name", f"events{i}")]
        name = "kafka"
        if rng.random() < 0.5:
            attrs += [("server.address", "broker-1"), ("server.port", 9092)]
            name = "broker-1:9092"
        peers.append(Peer(name, "queue", tuple(attrs)))
    return peers


def _random_op(
    rng: random.Random,
    route: Route,
    services: dict[str, list[Route]],
    levels: dict[str, int],
    stores: list[Peer],
    topics: list[Peer],
    consumers: dict[Peer, Route],
) -> Op:
    deeper = [
        r for n, rs in services.items() if levels[n] > route.level for r in rs if r.topic is None
    ]
    siblings = services[route.service]
    # A later route of its own service (over loopback HTTP): a self-call.
    later = [r for r in siblings[siblings.index(route) + 1 :] if r.topic is None]
    chance = rng.choice([1.0, 1.0, 0.7, 0.4])
    roll = rng.random()
    under_internal = rng.random() < 0.3
    if roll < 0.08 and later:
        return Op("http", rng.choice(later), None, 1, chance, under_internal)
    if roll < 0.45 and deeper:
        nested = rng.random() < 0.15
        return Op("http", rng.choice(deeper), None, 1, chance, under_internal, nested)
    if roll < 0.85 or not topics:
        peer = rng.choice(stores)
        times = rng.randint(1, 3) if peer.kind in ("database", "cache") else 1
        nested = peer.kind == "external" and rng.random() < 0.3
        return Op("peer", None, peer, times, chance, under_internal, nested)
    # A publish: consumed only by a deeper route, so the graph stays a DAG.
    topic = rng.choice(topics)
    consumer = consumers.get(topic)
    if consumer is not None and consumer.level <= route.level:
        consumer = None
        unconsumed = [t for t in topics if t not in consumers]
        if not unconsumed:
            return Op("peer", None, rng.choice(stores), 1, chance, under_internal)
        topic = rng.choice(unconsumed)
    return Op("publish", consumer, topic, 1, chance, under_internal)


class _Request:
    def __init__(self, rng: random.Random, start_ns: int, dye: str, probability: float) -> None:
        self.rng = rng
        self.trace_id = _id(rng, 16)
        self.now = start_ns
        self.dye = dye
        self.probability = probability
        self.weight = 1.0 / probability
        self.spans: list[GenSpan] = []
        self.calls: list[Call] = []

    def run(self, graph: Graph) -> Trace:
        rng = self.rng
        roll = rng.random()
        if graph.consumer_roots and roll < 0.1:
            route = rng.choice(graph.consumer_roots)
            # A consumer whose producer is in another trace, or never reported.
            dangling = _id(rng, 8) if rng.random() < 0.5 else b""
            _, error = self.serve(route, None, CONSUMER, dangling)
            assert route.topic is not None
            self.record((route.topic.name, "", "queue"), route.node, error)
            entry = "consumer"
        else:
            route = rng.choice(graph.entries)
            entry = "orphan" if roll > 0.93 else "root"  # orphan: a proxy that never reports
            _, error = self.serve(route, None, SERVER, _id(rng, 8) if entry == "orphan" else b"")
            self.record(USER, route.node, error)
        return Trace(self.trace_id, self.spans, self.calls, entry, self.dye, self.weight)

    def record(self, source: Node, target: Node, error: bool) -> None:
        self.calls.append(Call(self.trace_id, source, target, error, self.dye, self.weight))

    def span(
        self,
        parent: GenSpan | None,
        service: str,
        name: str,
        kind: int,
        error: bool = False,
        attrs: Iterable[tuple[str, str | int]] = (),
        parent_id: bytes = b"",
    ) -> GenSpan:
        all_attrs: Attrs = dict(attrs)
        if self.dye:
            all_attrs["tinct.dye"] = self.dye
        if self.probability < 1:
            all_attrs["tinct.sampling.probability"] = self.probability
        self.now += self.rng.randint(1, 5) * 1_000_000
        span = GenSpan(
            self.trace_id,
            _id(self.rng, 8),
            parent.span_id if parent is not None else parent_id,
            service,
            name,
            kind,
            self.now,
            self.now + self.rng.randint(1, 80) * 1_000_000,
            error,
            all_attrs,
        )
        self.spans.append(span)
        return span

    def serve(
        self, route: Route, parent: GenSpan | None, kind: int, parent_id: bytes = b""
    ) -> tuple[GenSpan, bool]:
        """The incoming span of ``route`` and the calls it makes; (span, failed)."""
        rng = self.rng
        error = rng.random() < _SERVER_ERROR
        attrs: list[tuple[str, str | int]] = list(route.topic.attrs if route.topic else ())
        name = route.interface
        if route.http:
            attrs += [("http.route", route.interface), ("http.request.method", "GET")]
            name = f"GET {route.interface}"
        span = self.span(parent, route.service, name, kind, error, attrs, parent_id)
        body = span
        if route.http and rng.random() < 0.1:  # framework and middleware both instrumented
            body = self.span(span, route.service, name, SERVER, False, attrs)
        for op in route.ops:
            for _ in range(rng.randint(1, op.times)):
                if rng.random() < op.chance:
                    self.call(route, body, op)
        return span, error

    def call(self, route: Route, serving: GenSpan, op: Op) -> None:
        rng = self.rng
        parent = serving
        if op.under_internal:
            parent = self.span(parent, route.service, "handle", INTERNAL)
        if op.kind == "http":
            assert op.route is not None
            failed = rng.random() < _CLIENT_ERROR
            attrs: list[tuple[str, str | int]] = [
                ("http.request.method", "GET"),
                ("server.address", op.route.service),
                ("server.port", 8080),
            ]
            client = self.span(parent, route.service, "GET", CLIENT, failed, attrs)
            if op.nested_client:  # requests over urllib3: both instrumented
                client = self.span(client, route.service, "GET", CLIENT, failed, attrs)
            _, server_failed = self.serve(op.route, client, SERVER)
            self.record(route.node, op.route.node, failed or server_failed)
        elif op.kind == "peer":
            assert op.peer is not None
            failed = rng.random() < _PEER_ERROR
            name = f"{op.peer.kind} call"
            client = self.span(parent, route.service, name, CLIENT, failed, op.peer.attrs)
            if op.nested_client:
                self.span(client, route.service, name, CLIENT, failed, op.peer.attrs)
            self.record(route.node, (op.peer.name, "", op.peer.kind), failed)
        else:
            assert op.peer is not None
            failed = rng.random() < _CLIENT_ERROR
            topic = _topic(op.peer)
            producer = self.span(
                parent, route.service, f"{topic} publish", PRODUCER, failed, op.peer.attrs
            )
            if op.route is None:
                self.record(route.node, (op.peer.name, "", "queue"), failed)
            else:
                _, consumer_failed = self.serve(op.route, producer, CONSUMER)
                self.record(route.node, op.route.node, failed or consumer_failed)


def _id(rng: random.Random, size: int) -> bytes:
    return rng.getrandbits(8 * size - 1).to_bytes(size, "big") or b"\x01" * size


# -- what the API should answer --------------------------------------------------------


def expected_edges(calls: Iterable[Call], level: str, scaled: bool = False) -> dict:
    """``{(source id, target id): (calls, errors)}`` of ``calls`` at ``level``."""
    sums: dict[tuple[str, str], list[float]] = {}
    for c in calls:
        key = (node_id(c.source, level), node_id(c.target, level))
        row = sums.setdefault(key, [0, 0])
        weight = c.weight if scaled else 1
        row[0] += weight
        row[1] += weight if c.error else 0
    return {k: (v[0], v[1]) for k, v in sums.items()}


def expected_nodes(calls: Iterable[Call], level: str) -> dict[str, str]:
    """``{node id: kind}`` of every node ``calls`` touch."""
    nodes: dict[str, str] = {}
    for c in calls:
        for node in (c.source, c.target):
            nodes[node_id(node, level)] = node_kind(node, level)
    return nodes


def expected_calls_into(calls: Iterable[Call], level: str) -> Counter[str]:
    """Calls into each node that is called (the figures a node shows)."""
    return Counter(node_id(c.target, level) for c in calls)


def api_edges(body: dict[str, Any]) -> dict[tuple[str, str], tuple[float, float]]:
    """``{(source, target): (calls, errors)}`` of an API answer."""
    return {(e["source"], e["target"]): (e["calls"], e["errors"]) for e in body["edges"]}


def api_nodes(body: dict[str, Any]) -> dict[str, str]:
    """``{node id: kind}`` of an API answer."""
    return {n["id"]: n["kind"] for n in body["nodes"]}


def diff(got: dict, want: dict) -> str:
    """The keys where two dicts differ, for an assertion message."""
    keys = sorted(set(got) | set(want))
    lines = [
        f"{k}: got {got.get(k)}, want {want.get(k)}" for k in keys if got.get(k) != want.get(k)
    ]
    return "\n".join(lines[:30])


# -- the spans on the wire ---------------------------------------------------------------


def by_service(spans: Sequence[GenSpan]) -> list[list[GenSpan]]:
    """The spans grouped per service, in order of first appearance."""
    groups: dict[str, list[GenSpan]] = {}
    for s in spans:
        groups.setdefault(s.service, []).append(s)
    return list(groups.values())


def split_parts(trace: Trace, rng: random.Random) -> list[list[GenSpan]]:
    """The trace's spans as separate exports: one per service, a third of
    them split once more (a batch span processor exporting the client span
    before the server span that encloses it ends)."""
    parts = []
    for group in by_service(trace.spans):
        if len(group) > 1 and rng.random() < 0.3:
            shuffled = rng.sample(group, len(group))
            cut = rng.randint(1, len(group) - 1)
            parts += [shuffled[:cut], shuffled[cut:]]
        else:
            parts.append(group)
    return parts


def otlp_request(parts: Iterable[Sequence[GenSpan]]) -> ExportTraceServiceRequest:
    """One OTLP export: a ResourceSpans per part (all of one service)."""
    req = ExportTraceServiceRequest()
    for part in parts:
        rs = req.resource_spans.add()
        rs.resource.attributes.append(_kv("service.name", part[0].service))
        ss = rs.scope_spans.add()
        ss.scope.name = "tinct-topology-tests"
        for s in part:
            assert s.service == part[0].service
            span = ss.spans.add()
            span.trace_id = s.trace_id
            span.span_id = s.span_id
            span.parent_span_id = s.parent_span_id
            span.name = s.name
            span.kind = s.kind  # type: ignore[assignment]
            span.start_time_unix_nano = s.start_ns
            span.end_time_unix_nano = s.end_ns
            for key, value in s.attrs.items():
                span.attributes.append(_kv(key, value))
            if s.error:
                span.status.code = Status.STATUS_CODE_ERROR
                span.status.message = "failed"
    return req


def _kv(key: str, value: str | int | float) -> KeyValue:
    kv = KeyValue(key=key)
    if isinstance(value, str):
        kv.value.string_value = value
    elif isinstance(value, int):
        kv.value.int_value = value
    else:
        kv.value.double_value = value
    return kv
