"""Cytoscape elements and style for the topology page (pure functions)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["elements", "STYLESHEET", "node_label", "edge_label"]

_KIND_COLORS = {
    "service": "#3d71d9",
    "interface": "#5794f2",
    "database": "#b877d9",
    "cache": "#ff9830",
    "queue": "#fade2a",
    "external": "#8e8e8e",
    "user": "#73bf69",
}


def _rate(calls: float, errors: float) -> str:
    return f"{100.0 * errors / calls:.1f}% err" if calls else "no calls"


def node_label(node: dict[str, Any]) -> str:
    """Name, then calls · error rate · p99 when it had traffic."""
    if not node.get("calls"):
        return str(node["name"])
    p99 = node.get("p99_ms")
    tail = f" · p99 {p99:.0f} ms" if p99 is not None else ""
    return f"{node['name']}\n{node['calls']} calls · {_rate(node['calls'], node['errors'])}{tail}"


def edge_label(edge: dict[str, Any]) -> str:
    if not edge.get("calls"):
        return str(edge["status"])
    p99 = edge.get("p99_ms")
    tail = f" · p99 {p99:.0f} ms" if p99 is not None else ""
    return f"{edge['calls']} · {_rate(edge['calls'], edge['errors'])}{tail}"


def elements(
    graph: dict[str, Any],
    path: dict[str, Any] | None,
    firing: Iterable[str] = (),
    level: str = "service",
) -> list[dict[str, Any]]:
    """Cytoscape elements of a ``/api/tinct/topology`` answer.

    ``path`` (the same answer for a ``dye=``/``trace=``) marks its nodes and
    edges ``on-path`` and the rest ``off-path``. Nodes named in ``firing``
    (an alert about them fires) get the ``firing`` class.
    """
    alerting = set(firing)
    on_nodes = {n["id"] for n in path["nodes"]} if path else set()
    on_edges = {(e["source"], e["target"]) for e in path["edges"]} if path else set()
    out: list[dict[str, Any]] = []
    for node in graph["nodes"]:
        classes = [node["kind"], node["status"]]
        if node["id"] in alerting or node.get("service") in alerting:
            classes.append("firing")
        if path is not None:
            classes.append("on-path" if node["id"] in on_nodes else "off-path")
        data = {
            "id": node["id"],
            "label": node_label(node),
            "kind": node["kind"],
            "service": node.get("service") or (node["id"] if node["kind"] == "service" else ""),
            "color": _KIND_COLORS.get(node["kind"], "#8e8e8e"),
            "level": level,
        }
        out.append({"data": data, "classes": " ".join(classes)})
    for edge in graph["edges"]:
        classes = [edge["status"]]
        if path is not None:
            pair = (edge["source"], edge["target"])
            classes.append("on-path" if pair in on_edges else "off-path")
        data = {
            "id": f"{edge['source']}->{edge['target']}",
            "source": edge["source"],
            "target": edge["target"],
            "label": edge_label(edge),
            "status": edge["status"],
        }
        out.append({"data": data, "classes": " ".join(classes)})
    return out


STYLESHEET: list[dict[str, Any]] = [
    {
        "selector": "node",
        "style": {
            "label": "data(label)",
            "background-color": "data(color)",
            "color": "#ccccdc",
            "font-size": 10,
            "text-wrap": "wrap",
            "text-valign": "bottom",
            "text-margin-y": 4,
            "width": 28,
            "height": 28,
        },
    },
    {"selector": "node.database", "style": {"shape": "barrel"}},
    {"selector": "node.cache", "style": {"shape": "round-rectangle"}},
    {"selector": "node.queue", "style": {"shape": "rhomboid"}},
    {"selector": "node.external", "style": {"shape": "hexagon"}},
    {"selector": "node.user", "style": {"shape": "star"}},
    {"selector": "node.missing", "style": {"opacity": 0.45, "border-style": "dashed"}},
    {"selector": "node.undeclared", "style": {"border-width": 2, "border-color": "#ff9830"}},
    {"selector": "node.firing", "style": {"background-color": "#f2495c", "border-width": 3}},
    {
        "selector": "edge",
        "style": {
            "label": "data(label)",
            "font-size": 8,
            "color": "#8e8e8e",
            "curve-style": "bezier",
            "target-arrow-shape": "triangle",
            "width": 1.5,
            "line-color": "#5794f2",
            "target-arrow-color": "#5794f2",
        },
    },
    {
        "selector": "edge.missing",
        "style": {"line-style": "dashed", "line-color": "#555", "target-arrow-color": "#555"},
    },
    {
        "selector": "edge.undeclared",
        "style": {"line-style": "dotted", "line-color": "#ff9830", "target-arrow-color": "#ff9830"},
    },
    {"selector": ".off-path", "style": {"opacity": 0.2}},
    {"selector": "edge.on-path", "style": {"width": 4, "line-color": "#fade2a"}},
    {"selector": "node.on-path", "style": {"border-width": 4, "border-color": "#fade2a"}},
]
