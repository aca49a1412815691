"""The calls one trace made: which node called which, how long, failed or not.

This is the rule the dynamic topology is drawn by, written once and used by
the incremental aggregator (every trace, once its spans stopped arriving)
and by the ``trace=`` query (one trace read back from the store). It follows
Tempo's service graph processor, with tinct's interface level added:

* A SERVER or CONSUMER span whose parent is a CLIENT or PRODUCER span, or
  any span of another service, is one call from the parent's node to its
  own. The latency is the callee's (the server span's duration, what Tempo
  calls server latency); the call failed when either side says ERROR.
  PRODUCER → CONSUMER is a messaging edge between the two services.
* A SERVER span with no parent in the trace (a root, or a caller that never
  reported) is called by the virtual ``user`` node; a CONSUMER without one
  is called by its queue, named from its messaging attributes.
* A CLIENT or PRODUCER span that no span answered is a call to an
  uninstrumented peer: a database, cache, queue or external node named by
  :func:`peer_name`, with the client span's duration. A client span whose
  call was made by a nested client span of the same service (two client
  instrumentations stacked) leaves the counting to the inner one.

Nodes are ``(service, interface, kind)``. A service's interface is the
``http.route`` of its nearest SERVER/CONSUMER ancestor-or-self span in that
service, or its span name without a route; a client span is attributed to
the interface that was serving when it called. Virtual nodes have an empty
interface. A trace's weight is ``1 / tinct.sampling.probability`` of its
root (sampled roots carry the attribute), and its dye the first span's dye.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from tinct.spans import SpanKind, StatusCode

__all__ = [
    "NODE_KINDS",
    "USER",
    "SpanInfo",
    "Call",
    "trace_calls",
    "trace_weight",
    "trace_dye",
    "peer_name",
    "peer_kind",
    "span_info",
    "span_info_of_row",
]

NODE_KINDS = ("service", "interface", "database", "cache", "queue", "external", "user")
# The virtual caller of root server spans (Tempo's name for it).
USER = "user"
_SERVICE = "service"

_SERVER, _CLIENT = int(SpanKind.SERVER), int(SpanKind.CLIENT)
_PRODUCER, _CONSUMER = int(SpanKind.PRODUCER), int(SpanKind.CONSUMER)
_INCOMING = (_SERVER, _CONSUMER)
_OUTGOING = (_CLIENT, _PRODUCER)

# db.system values of key-value caches; any other db.system is a database.
_CACHE_SYSTEMS = frozenset({"redis", "memcached", "hazelcast", "ignite", "couchbase", "valkey"})

# Tempo's peer attributes (service_graphs.peer_attributes), then the systems
# as a last resort so no database call goes unseen.
_PEER_ATTRIBUTES = ("peer.service", "db.namespace", "db.name")
_ADDRESS_ATTRIBUTES = (
    ("server.address", "server.port"),
    ("network.peer.address", "network.peer.port"),
)
_SYSTEM_ATTRIBUTES = ("db.system.name", "db.system", "messaging.system")


class SpanInfo(NamedTuple):
    """The part of a span the topology needs.

    ``interface`` is the span's ``http.route``, or its name without one;
    ``peer``/``peer_kind`` are :func:`peer_name`/:func:`peer_kind` for
    CLIENT, PRODUCER and CONSUMER spans and "" otherwise.
    """

    span_id: bytes
    parent_span_id: bytes
    service: str
    interface: str
    kind: int
    start_ns: int
    duration_ns: int
    error: bool
    peer: str
    peer_kind: str
    probability: float
    dye: str


class Call(NamedTuple):
    """One call between two nodes, counted at ``start_ns``."""

    start_ns: int
    source_service: str
    source_interface: str
    source_kind: str
    target_service: str
    target_interface: str
    target_kind: str
    duration_ns: int
    error: bool


def peer_name(attrs: Mapping[str, str]) -> str:
    """The name of the node a client/producer/consumer span talks to, "" if none.

    The first of ``peer.service``, ``db.namespace``, ``db.name``,
    ``server.address`` (``:server.port`` appended when given),
    ``network.peer.address`` (likewise), ``db.system.name``/``db.system``,
    ``messaging.system``.
    """
    for key in _PEER_ATTRIBUTES:
        if attrs.get(key):
            return attrs[key]
    for host_key, port_key in _ADDRESS_ATTRIBUTES:
        host = attrs.get(host_key)
        if host:
            port = attrs.get(port_key)
            return f"{host}:{port}" if port else host
    for key in _SYSTEM_ATTRIBUTES:
        if attrs.get(key):
            return attrs[key]
    return ""


def peer_kind(kind: int, attrs: Mapping[str, str]) -> str:
    """``queue``, ``cache``, ``database`` or ``external``: what sort of peer it is."""
    if kind in (_PRODUCER, _CONSUMER) or attrs.get("messaging.system"):
        return "queue"
    system = attrs.get("db.system.name") or attrs.get("db.system")
    if system:
        return "cache" if system in _CACHE_SYSTEMS else "database"
    return "external"


def span_info(
    *,
    span_id: bytes,
    parent_span_id: bytes,
    service: str,
    name: str,
    kind: int,
    start_ns: int,
    duration_ns: int,
    status_code: int,
    http_route: str,
    attrs: Mapping[str, str],
    probability: float,
    dye: str,
) -> SpanInfo:
    """A :class:`SpanInfo` from a span's fields and its attributes as text."""
    peer, pkind = "", ""
    if kind in _OUTGOING or kind == _CONSUMER:
        peer, pkind = peer_name(attrs), peer_kind(kind, attrs)
    return SpanInfo(
        span_id,
        parent_span_id,
        service,
        http_route or name,
        kind,
        start_ns,
        duration_ns,
        status_code == StatusCode.ERROR,
        peer,
        pkind,
        probability,
        dye,
    )


def trace_weight(spans: Iterable[SpanInfo]) -> float:
    """``1 / probability`` of the trace's sampled root, else of any span
    that carries one; 1 when none does."""
    best = 0.0
    for s in spans:
        if s.probability > 0:
            if not s.parent_span_id:
                return 1.0 / s.probability
            best = best or s.probability
    return 1.0 / best if best > 0 else 1.0


def trace_dye(spans: Iterable[SpanInfo]) -> str:
    """The trace's dye: the first non-empty one of its spans, "" when undyed."""
    for s in spans:
        if s.dye:
            return s.dye
    return ""


def trace_calls(spans: Sequence[SpanInfo]) -> list[Call]:
    """Every call of one trace (the spans it has so far), per the module rule.

    A span stored twice (an export delivered twice: OTLP is at least once)
    counts once.
    """
    by_id = {s.span_id: s for s in spans}
    spans = list(by_id.values())
    entries: dict[bytes, str] = {}

    def entry(span: SpanInfo) -> str:
        """Interface serving when ``span`` ran: nearest SERVER/CONSUMER
        ancestor-or-self of its service, else its topmost such ancestor."""
        cached = entries.get(span.span_id)
        if cached is not None:
            return cached
        chain = [span.span_id]
        node = span
        while node.kind not in _INCOMING:
            parent = by_id.get(node.parent_span_id)
            if parent is None or parent.service != span.service or parent.span_id in chain:
                break  # a parent loop in bad data ends the walk too
            node = parent
            chain.append(node.span_id)
        for span_id in chain:
            entries[span_id] = node.interface
        return node.interface

    answered: set[bytes] = set()
    calls: list[Call] = []
    for s in spans:
        parent = by_id.get(s.parent_span_id) if s.parent_span_id else None
        if s.kind in _OUTGOING and parent is not None:
            if parent.kind in _OUTGOING and parent.service == s.service:
                answered.add(parent.span_id)  # the inner client span counts the call
        if s.kind not in _INCOMING:
            continue
        if parent is not None:
            if parent.kind in _OUTGOING:
                answered.add(parent.span_id)
            elif parent.service == s.service:
                continue  # nested server span: the outer one counted the call
            failed = s.error or (parent.kind in _OUTGOING and parent.error)
            calls.append(
                Call(
                    s.start_ns,
                    parent.service,
                    entry(parent),
                    _SERVICE,
                    s.service,
                    s.interface,
                    _SERVICE,
                    s.duration_ns,
                    failed,
                )
            )
        elif s.kind == _SERVER:
            calls.append(
                Call(
                    s.start_ns, USER, "", USER, s.service, s.interface, _SERVICE,
                    s.duration_ns, s.error,
                )
            )  # fmt: skip
        else:
            name = s.peer or "queue"
            calls.append(
                Call(
                    s.start_ns, name, "", "queue", s.service, s.interface, _SERVICE,
                    s.duration_ns, s.error,
                )
            )  # fmt: skip
    for s in spans:
        if s.kind in _OUTGOING and s.span_id not in answered:
            calls.append(
                Call(
                    s.start_ns,
                    s.service,
                    entry(s),
                    _SERVICE,
                    s.peer or "external",
                    "",
                    s.peer_kind or "external",
                    s.duration_ns,
                    s.error,
                )
            )
    return calls


def span_info_of_row(row: Mapping[str, Any]) -> SpanInfo:
    """A :class:`SpanInfo` from a stored span (``tinct.storage.base.SpanRow``)."""
    return span_info(
        span_id=row["span_id"],
        parent_span_id=row["parent_span_id"],
        service=row["service"],
        name=row["name"],
        kind=row["kind"],
        start_ns=row["start_ns"],
        duration_ns=row["duration_ns"],
        status_code=row["status_code"],
        http_route=row["http_route"],
        attrs=dict(zip(row["attr_keys"], row["attr_values"], strict=False)),
        probability=row["sampling_probability"],
        dye=row["dye"],
    )
