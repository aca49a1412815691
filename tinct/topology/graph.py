"""The topology answer: dynamic edges beside the static ones, and the diff.

:func:`build_graph` turns the edges a window's calls summed to
(:class:`~tinct.storage.topology.EdgeRow`) into the nodes and edges of
``GET /api/tinct/topology``, and compares them with the configuration's
:class:`~tinct.topology.static.StaticTopology`: an edge or node is
``declared`` when configured and seen, ``missing`` when configured but
without traffic in the window, ``undeclared`` when seen but not configured.

Node ids: a service's id is its name; an interface's is ``service route``
(one space); virtual nodes are named by the peer attributes of the calls to
them (:func:`~tinct.topology.calls.peer_name`), and a virtual node that is a
declared component (by name or address) takes the component's name and
kind. A virtual node named like a service is that service: a client span
naming ``peer.service=payments`` whose server span is lost still calls
``payments``. Node figures are those of the calls into the node (out of it,
for the ``user`` node).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tinct.storage.topology import EdgeRow
from tinct.topology.calls import USER, Call
from tinct.topology.latency import bucket_of, quantile_ns
from tinct.topology.static import StaticTopology

__all__ = ["build_graph", "edge_rows_of", "DECLARED", "MISSING", "UNDECLARED"]

DECLARED, MISSING, UNDECLARED = "declared", "missing", "undeclared"
_LAYERS = {
    "service": "service",
    "interface": "interface",
    "user": "user",
    "database": "component",
    "cache": "component",
    "queue": "component",
    "external": "component",
}


@dataclass
class _Node:
    id: str
    name: str
    kind: str
    service: str


@dataclass
class _Figures:
    calls: float = 0
    errors: float = 0
    latency: Counter[int] = field(default_factory=Counter)

    def add(self, row: EdgeRow, scaled: bool) -> None:
        self.calls += row.weighted_calls if scaled else row.calls
        self.errors += row.weighted_errors if scaled else row.errors
        self.latency.update(row.latency)

    def json(self) -> dict[str, Any]:
        def ms(q: float) -> float | None:
            ns = quantile_ns(self.latency, q)
            return None if ns is None else round(ns / 1e6, 3)

        calls = round(self.calls, 3) if isinstance(self.calls, float) else self.calls
        errors = round(self.errors, 3) if isinstance(self.errors, float) else self.errors
        return {
            "calls": calls,
            "errors": errors,
            "error_rate": round(self.errors / self.calls, 6) if self.calls else 0.0,
            "p50_ms": ms(0.5),
            "p90_ms": ms(0.9),
            "p99_ms": ms(0.99),
        }


class _Namer:
    """Maps (service, interface, kind) ends of an edge row to graph nodes."""

    def __init__(self, static: StaticTopology, interfaces: bool, services: set[str]) -> None:
        self._static = static
        self._interfaces = interfaces
        self._services = services | set(static.services)

    def node(self, service: str, interface: str, kind: str) -> _Node:
        if kind == USER:
            return _Node(USER, USER, USER, "")
        if kind == "service" or service in self._services:
            if self._interfaces and interface:
                return _Node(f"{service} {interface}", interface, "interface", service)
            return _Node(service, service, "service", service)
        component = self._static.component_for(service)
        if component is not None:
            return _Node(component.name, component.name, component.kind, "")
        return _Node(service, service, kind, "")

    def declared_node(self, node_id: str) -> _Node:
        """A node named only by the configuration (a missing one)."""
        if node_id == USER:
            return _Node(USER, USER, USER, "")
        if node_id in self._static.components:
            c = self._static.components[node_id]
            return _Node(c.name, c.name, c.kind, "")
        service, _, route = node_id.partition(" ")
        if self._interfaces and route:
            return _Node(node_id, route, "interface", service)
        return _Node(node_id, node_id, "service", node_id)


def build_graph(
    rows: Sequence[EdgeRow],
    static: StaticTopology,
    *,
    interfaces: bool = False,
    scaled: bool = False,
    with_missing: bool = True,
    services: Iterable[str] = (),
) -> dict[str, Any]:
    """The ``/api/tinct/topology`` answer for ``rows``.

    Args:
        rows: the window's edges (grouped by interface when ``interfaces``).
        static: the configured topology to diff against.
        interfaces: interface level (ids ``service route``) or service level.
        scaled: figures weighted by ``1 / tinct.sampling.probability``.
        with_missing: add configured edges and nodes without traffic
            (``missing``); off for one trace's or one dye's path.
        services: only configured edges touching these services are added
            as missing (the ``service=`` filter); () for all.
    """
    seen_services = {r.source_service for r in rows if r.source_kind == "service"}
    seen_services |= {r.target_service for r in rows if r.target_kind == "service"}
    namer = _Namer(static, interfaces, seen_services)
    nodes: dict[str, _Node] = {}
    node_in: dict[str, _Figures] = {}
    node_out: dict[str, _Figures] = {}
    edges: dict[tuple[str, str], _Figures] = {}
    for row in rows:
        src = namer.node(row.source_service, row.source_interface, row.source_kind)
        dst = namer.node(row.target_service, row.target_interface, row.target_kind)
        nodes.setdefault(src.id, src)
        nodes.setdefault(dst.id, dst)
        edges.setdefault((src.id, dst.id), _Figures()).add(row, scaled)
        node_in.setdefault(dst.id, _Figures()).add(row, scaled)
        node_out.setdefault(src.id, _Figures()).add(row, scaled)

    declared = static.interface_edges if interfaces else static.service_edges
    wanted = set(services)
    declared_nodes = {n for edge in declared for n in edge}
    if not interfaces:
        declared_nodes |= set(static.services) | set(static.components)
    edge_status = {pair: DECLARED if pair in declared else UNDECLARED for pair in edges}
    if with_missing:
        for pair in sorted(declared - set(edges)):
            if wanted and not any(_service_of(n) in wanted for n in pair):
                continue
            edges[pair] = _Figures()
            edge_status[pair] = MISSING
            for node_id in pair:
                nodes.setdefault(node_id, namer.declared_node(node_id))
        for node_id in sorted(declared_nodes - set(nodes)):
            if not wanted or _service_of(node_id) in wanted:
                nodes[node_id] = namer.declared_node(node_id)

    def node_status(node_id: str) -> str:
        if node_id not in node_in and node_id not in node_out:
            return MISSING
        return DECLARED if node_id in declared_nodes else UNDECLARED

    out_nodes = []
    for node_id in sorted(nodes):
        n = nodes[node_id]
        figures = node_in.get(node_id) or node_out.get(node_id) or _Figures()
        out_nodes.append(
            {
                "id": n.id,
                "name": n.name,
                "kind": n.kind,
                "layer": _LAYERS.get(n.kind, "component"),
                "service": n.service,
                **figures.json(),
                "status": node_status(node_id),
            }
        )
    out_edges = [
        {"source": s, "target": t, **edges[s, t].json(), "status": edge_status[s, t]}
        for s, t in sorted(edges)
    ]
    return {"nodes": out_nodes, "edges": out_edges, "scaled": scaled}


def edge_rows_of(calls: Iterable[Call], weight: float, *, interfaces: bool) -> list[EdgeRow]:
    """Calls summed per node pair, as the store sums its edges (one trace's path)."""
    sums: dict[tuple[str, ...], EdgeRow] = {}
    for c in calls:
        key = (
            c.source_service,
            c.source_interface if interfaces else "",
            c.source_kind,
            c.target_service,
            c.target_interface if interfaces else "",
            c.target_kind,
        )
        row = sums.get(key)
        if row is None:
            row = sums[key] = EdgeRow(*key, 0, 0, 0.0, 0.0, {})
        row.calls += 1
        row.weighted_calls += weight
        if c.error:
            row.errors += 1
            row.weighted_errors += weight
        bucket = bucket_of(c.duration_ns)
        row.latency[bucket] = row.latency.get(bucket, 0) + 1
    return [sums[k] for k in sorted(sums)]


def _service_of(node_id: str) -> str:
    return node_id.partition(" ")[0]
