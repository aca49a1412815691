"""Topology over an hour of spans, pre-aggregated edges beside the raw self-join:
``python -m bench.topology``.

One run (``--help`` for the knobs):

1. generates ``--spans`` spans (10 million) over one hour of a shop: 20
   services, 66 routes, three databases, a search index, two Redis caches,
   four external HTTP APIs and a Kafka topic; traces of 5-15 spans
   from some 70 call-tree shapes, SERVER/CLIENT pairs, database and cache
   client spans, an INTERNAL span here and there, a call from an
   uninstrumented client (SERVER under SERVER), PRODUCER -> CONSUMER, ~0.5%
   errors with an exception event, 1% of traces dyed. Built in Arrow from
   numpy, ``--batch`` rows at a time, every SPAN_SCHEMA column filled;
2. writes each batch with ``write_spans`` and feeds it to a
   :class:`~tinct.topology.aggregator.TopologyAggregator` on a fake clock that
   follows the data: the batch is observed in ``--observe`` second slices
   (what the span writer hands on at this rate: it writes every 0.5 s),
   ``tick()`` runs every data second as ``run_topology`` does, and ``wait``
   and ``flush`` are the config defaults (10 s, 5 s), so the pending
   checkpoint saved every flush is as large as in production at this rate.
   Prints both throughputs and their ratio: the ingest cost of the topology;
3. times, warm, the median of ``--repeat`` runs: the hour's topology from
   the pre-aggregated edges (``topology_edges`` + ``build_graph``, service
   and interface level, SQL and ``build_graph`` timed apart) and Jaeger's
   ``dependencies`` (a self-join of the hour's spans on parent_span_id =
   span_id, grouped by service pair). Goal: <= 50 ms pre-aggregated.

The check: every cross-service parent -> child link the generator makes is
a CLIENT -> SERVER, SERVER -> SERVER or PRODUCER -> CONSUMER pair and every
span starts inside the hour, so Jaeger's rule (a child whose parent is in
another service) and the topology's (an incoming span under an outgoing one
or under another service) count the same calls. The service -> service
edges of the service-level graph (user, database, cache, external nodes
left out), the interface-level edges summed per service pair and the
generator's own count must be equal, and so must ``dependencies()``.

The ingest ratio compares the aggregator with ``write_spans`` at
``--batch`` rows per insert, the store's best case (the batch writer sends
at most 50k rows, and at this rate some 1.4k every 0.5 s).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa

from tests.servers import clickhouse_server
from tinct.spans import SPAN_SCHEMA, SpanKind, StatusCode, ValueType, dump_attrs, tag_entry
from tinct.storage import SqlSpanStore, open_store
from tinct.storage.topology import EdgeQuery
from tinct.topology.aggregator import TopologyAggregator
from tinct.topology.graph import build_graph
from tinct.topology.static import StaticTopology

HOUR_S = 3600
_S, _I = int(ValueType.STRING), int(ValueType.INT)
_SERVER, _CLIENT, _INTERNAL = int(SpanKind.SERVER), int(SpanKind.CLIENT), int(SpanKind.INTERNAL)
_PRODUCER, _CONSUMER = int(SpanKind.PRODUCER), int(SpanKind.CONSUMER)

# --- the shop ---------------------------------------------------------------------

# "<service> <route>" -> what it calls, in order: "<service> <route>" over HTTP
# with a client span; "direct:<service> <route>" without one (uninstrumented
# client); "db:<name>" a database, cache or external API; "queue:<topic>" a
# Kafka message to its consumer; "internal:<name>" an INTERNAL span of the
# same service whose own calls are listed under "<service> #<name>".
# Routes starting "POST " are POSTs. The first two services' routes are entries.
CALLS: dict[str, list[str]] = {
    "frontend /": ["api-gateway /api/v1/products", "api-gateway /api/v1/recommendations",
                   "direct:ads /ads", "db:session-cache", "internal:render"],
    "frontend /product/{id}": ["api-gateway /api/v1/products/{id}", "reviews /reviews/{product}",
                               "reviews /ratings/{product}", "direct:ads /ads", "internal:render"],
    "frontend /cart": ["api-gateway /api/v1/cart", "api-gateway /api/v1/checkout/quote",
                       "db:session-cache", "internal:render"],
    "frontend POST /cart": ["api-gateway POST /api/v1/cart/items", "db:session-cache"],
    "frontend POST /checkout": ["api-gateway POST /api/v1/orders", "db:session-cache"],
    "frontend /search": ["api-gateway /api/v1/search", "direct:ads /ads", "internal:render"],
    "frontend /account": ["api-gateway /api/v1/orders/history", "users /users/{id}/preferences",
                          "db:session-cache", "internal:render"],
    "frontend POST /login": ["api-gateway POST /api/v1/login", "db:session-cache"],
    "frontend POST /logout": ["auth POST /logout", "db:session-cache"],
    "frontend /orders/{id}": ["api-gateway /api/v1/orders/{id}", "internal:render"],
    "frontend POST /orders/{id}/return": ["api-gateway POST /api/v1/returns", "db:session-cache"],
    "frontend POST /ads/click": ["ads POST /ads/click", "db:session-cache"],
    "frontend #render": [],
    "api-gateway /api/v1/products": ["auth /verify", "catalog /products", "currency /convert"],
    "api-gateway /api/v1/products/{id}": ["auth /verify", "catalog /products/{id}",
                                          "pricing /price", "inventory /stock/{sku}"],
    "api-gateway /api/v1/cart": ["auth /verify", "cart /cart/{user}"],
    "api-gateway POST /api/v1/cart/items": ["auth /verify", "cart POST /cart/{user}/items"],
    "api-gateway POST /api/v1/orders": ["auth /verify", "checkout POST /checkout"],
    "api-gateway /api/v1/orders/{id}": ["auth /verify", "orders /orders/{id}",
                                        "orders /orders/{id}/status", "shipping /track/{id}"],
    "api-gateway /api/v1/orders/history": ["auth /verify", "orders /orders/{user}/history",
                                           "payment /methods"],
    "api-gateway POST /api/v1/login": ["auth POST /token"],
    "api-gateway /api/v1/search": ["auth /verify", "search /search", "search /suggest",
                                   "recommendations /similar/{id}"],
    "api-gateway /api/v1/recommendations": ["recommendations /recommendations"],
    "api-gateway POST /api/v1/reviews": ["auth /verify", "reviews POST /reviews"],
    "api-gateway POST /api/v1/returns": ["auth /verify", "payment POST /refund",
                                         "inventory POST /release", "notification POST /notify"],
    "api-gateway /api/v1/checkout/quote": ["auth /verify", "checkout /checkout/quote"],
    "auth POST /token": ["users /users/{id}", "db:session-cache"],
    "auth /verify": ["db:session-cache"],
    "auth POST /logout": ["db:session-cache"],
    "users /users/{id}": ["db:users-db"],
    "users /users/{id}/addresses": ["db:users-db"],
    "users /users/{id}/preferences": ["db:users-db", "db:session-cache"],
    "catalog /products": ["db:product-cache", "db:catalog-db"],
    "catalog /products/{id}": ["db:product-cache", "db:catalog-db"],
    "catalog /products/{id}/variants": ["db:catalog-db"],
    "catalog /categories": ["db:catalog-db"],
    "search /search": ["db:search-es", "catalog /products/{id}/variants"],
    "search /suggest": ["db:search-es"],
    "recommendations /recommendations": ["catalog /categories", "db:product-cache"],
    "recommendations /similar/{id}": ["catalog /products/{id}"],
    "cart /cart/{user}": ["db:session-cache", "pricing /price"],
    "cart POST /cart/{user}/items": ["inventory /stock/{sku}", "db:session-cache"],
    "cart /cart/{user}/total": ["pricing /discounts", "currency /convert"],
    "checkout POST /checkout": ["cart /cart/{user}/total", "users /users/{id}/addresses",
                                "payment POST /charge", "inventory POST /reserve",
                                "orders POST /orders", "queue:orders"],
    "checkout /checkout/quote": ["pricing /discounts", "shipping /quote"],
    "pricing /price": ["currency /rates", "db:product-cache"],
    "pricing /discounts": ["db:catalog-db"],
    "inventory /stock/{sku}": ["db:catalog-db"],
    "inventory POST /reserve": ["db:catalog-db"],
    "inventory POST /release": ["db:catalog-db"],
    "payment POST /charge": ["fraud POST /score", "db:stripe", "db:orders-db"],
    "payment POST /refund": ["db:stripe", "db:orders-db"],
    "payment /methods": ["db:users-db"],
    "fraud POST /score": ["db:orders-db"],
    "shipping /quote": ["db:maps"],
    "shipping POST /shipments": ["db:orders-db"],
    "shipping /track/{id}": ["db:orders-db"],
    "notification orders": ["users /users/{id}", "email POST /send"],
    "notification POST /notify": ["email POST /send"],
    "email POST /send": ["db:sendgrid"],
    "reviews /reviews/{product}": ["db:catalog-db"],
    "reviews /ratings/{product}": ["db:catalog-db"],
    "reviews POST /reviews": ["db:catalog-db"],
    "ads /ads": ["db:product-cache"],
    "ads POST /ads/click": ["db:product-cache"],
    "currency /convert": [],
    "currency /rates": ["db:fx"],
    "orders POST /orders": ["internal:validate", "db:orders-db", "shipping POST /shipments"],
    "orders #validate": ["db:orders-db"],
    "orders /orders/{id}": ["db:orders-db"],
    "orders /orders/{user}/history": ["db:orders-db"],
    "orders /orders/{id}/status": ["db:orders-db"],
}  # fmt: skip

# name -> (db.system.name or "" for an HTTP API, db.namespace, host, port, statement)
PEERS: dict[str, tuple[str, str, str, int, str]] = {
    "users-db": ("postgresql", "shop_users", "users-db", 5432, "SELECT * FROM users WHERE id=$1"),
    "orders-db": ("postgresql", "shop_orders", "orders-db", 5432, "SELECT * FROM orders"),
    "catalog-db": ("mysql", "shop_catalog", "catalog-db", 3306, "SELECT * FROM products"),
    "search-es": ("elasticsearch", "", "search-es", 9200, "GET /products/_search"),
    "session-cache": ("redis", "", "session-cache", 6379, "GET session"),
    "product-cache": ("redis", "", "product-cache", 6379, "MGET product"),
    "stripe": ("", "", "api.stripe.com", 443, "POST /v1/charges"),
    "maps": ("", "", "maps.googleapis.com", 443, "GET /maps/api/distancematrix/json"),
    "sendgrid": ("", "", "api.sendgrid.com", 443, "POST /v3/mail/send"),
    "fx": ("", "", "api.exchangerate.host", 443, "GET /latest"),
}
ENTRIES = [k for k in CALLS if k.split(" ")[0] in ("frontend", "api-gateway") and "#" not in k]
SERVICES = sorted({k.split(" ")[0] for k in CALLS})
LANGUAGES = ("python", "go", "java", "nodejs")
INSTANCES = 3  # resource variants per service
MAX_TRACE_NS = 5 * 10**9  # traces start this long before the hour ends, at the latest


class _Span(NamedTuple):
    parent: int
    service: str
    kind: int
    name: str
    route: str
    method: str
    peer: str  # PEERS key of a database/API client span, else ""
    target: str  # the called service of an HTTP client span, else ""
    start: int  # ns after the trace start
    duration: int


def _split(key: str) -> tuple[str, str, str]:
    """ "svc POST /r" -> ("svc", "POST", "/r")."""
    service, _, rest = key.partition(" ")
    method, _, route = rest.rpartition(" ")
    return service, method or "GET", route


def _expand(key: str, kind: int, parent: int, start: int, p: float, rng: np.random.Generator,
            out: list[_Span]) -> int:  # fmt: skip
    """Append the span of ``key`` and (each with probability ``p``) its calls; its end."""
    service, method, route = _split(key)
    me = len(out)
    name = f"{method} {route}" if kind == _SERVER else f"{route} process"
    out.append(_Span(parent, service, kind, name, route, method, "", "", start, 0))
    t = start + int(rng.integers(100_000, 1_500_000))
    for callee in CALLS[key]:
        if rng.random() > p:
            continue
        what, _, rest = callee.partition(":")
        if what == "db":
            dur = int(rng.integers(300_000, 4_000_000))
            system, _, host, _, text = PEERS[rest]
            name = text.split(" ")[0] + (f" {host}" if not system else "")
            out.append(_Span(me, service, _CLIENT, name, "", "", rest, "", t, dur))
        elif what == "internal":
            inner = len(out)
            out.append(_Span(me, service, _INTERNAL, rest, "", "", "", "", t, 0))
            end = t + int(rng.integers(50_000, 500_000))
            for sub in CALLS[f"{service} #{rest}"]:
                dur = int(rng.integers(300_000, 2_000_000))
                out.append(_Span(inner, service, _CLIENT, "SELECT", "", "", sub[3:], "", end, dur))
                end += dur
            out[inner] = out[inner]._replace(duration=end - t)
            dur = end - t
        elif what == "queue":
            out.append(_Span(me, service, _PRODUCER, f"{rest} publish", "", "", "", "", t, 400_000))
            lag = t + int(rng.integers(2_000_000, 30_000_000))
            _expand(f"notification {rest}", _CONSUMER, len(out) - 1, lag, p, rng, out)
            dur = 400_000
        elif what == "direct":
            dur = _expand(rest, _SERVER, me, t, p, rng, out) - t
        else:
            client = len(out)
            target, cm, croute = _split(callee)
            out.append(_Span(me, service, _CLIENT, cm, croute, cm, "", target, t, 0))
            dur = _expand(callee, _SERVER, client, t + 200_000, p, rng, out) - t + 200_000
            out[client] = out[client]._replace(duration=dur)
        t += dur + int(rng.integers(20_000, 200_000))
    end = t + int(rng.integers(100_000, 1_000_000))
    out[me] = out[me]._replace(duration=end - start)
    return end


def trace_shapes(seed: int, per_entry: int = 3) -> list[list[_Span]]:
    """Up to ``per_entry`` distinct call trees of 5-15 spans for each entry route."""
    rng = np.random.default_rng(seed)
    shapes: list[list[_Span]] = []
    for entry in ENTRIES:
        seen: set[tuple[tuple[int, str, str], ...]] = set()
        for _ in range(300):
            spans: list[_Span] = []
            _expand(entry, _SERVER, -1, 0, float(rng.uniform(0.45, 1.0)), rng, spans)
            sign = tuple((s.parent, s.service, s.name) for s in spans)
            if 5 <= len(spans) <= 15 and sign not in seen:
                seen.add(sign)
                shapes.append(spans)
                if len(seen) == per_entry:
                    break
    return shapes


# --- spans in Arrow ---------------------------------------------------------------

_DYNAMIC = ("trace_id", "span_id", "parent_span_id", "start_ns", "duration_ns", "event_times")


def _attrs(span: _Span, error: bool) -> list[tuple[str, int, str]]:
    status = "500" if error else "200"
    if span.kind == _SERVER:
        path = span.route.replace("{", "").replace("}", "")
        return [
            ("http.request.method", _S, span.method),
            ("http.route", _S, span.route),
            ("url.path", _S, path),
            ("url.scheme", _S, "http"),
            ("server.address", _S, span.service),
            ("server.port", _I, "8080"),
            ("network.protocol.version", _S, "1.1"),
            ("http.response.status_code", _I, status),
            ("client.address", _S, "10.0.3.17"),
        ]
    if span.kind in (_PRODUCER, _CONSUMER):
        op = "publish" if span.kind == _PRODUCER else "process"
        return [
            ("messaging.system", _S, "kafka"),
            ("messaging.destination.name", _S, "orders"),
            ("messaging.operation.type", _S, op),
            ("server.address", _S, "kafka"),
            ("server.port", _I, "9092"),
        ]
    if span.kind == _INTERNAL:
        return [("code.function.name", _S, span.name)]
    if span.peer:
        system, namespace, host, port, text = PEERS[span.peer]
        if not system:  # an HTTP API
            return [
                ("http.request.method", _S, text.split(" ")[0]),
                ("url.full", _S, f"https://{host}{text.split(' ')[1]}"),
                ("server.address", _S, host),
                ("server.port", _I, str(port)),
                ("http.response.status_code", _I, status),
            ]
        found = [("db.system.name", _S, system)]
        if namespace:
            found.append(("db.namespace", _S, namespace))
        return [
            *found,
            ("db.operation.name", _S, text.split(" ")[0]),
            ("db.query.text", _S, text),
            ("server.address", _S, host),
            ("server.port", _I, str(port)),
        ]
    path = span.route.replace("{", "").replace("}", "")
    return [("http.request.method", _S, span.method),
            ("url.full", _S, f"http://{span.target}:8080{path}"),
            ("server.address", _S, span.target),
            ("server.port", _I, "8080"), ("http.response.status_code", _I, status)]  # fmt: skip


def _resource(service: str, instance: int) -> list[tuple[str, int, str]]:
    lang = LANGUAGES[SERVICES.index(service) % len(LANGUAGES)]
    return [("service.name", _S, service), ("service.namespace", _S, "shop"),
            ("service.version", _S, f"2.{len(service)}.{instance}"),
            ("service.instance.id", _S, f"{service}-{instance:04x}"),
            ("deployment.environment.name", _S, "production"),
            ("host.name", _S, f"node-{(len(service) * 7 + instance) % 40}"),
            ("k8s.pod.name", _S, f"{service}-7f9c{instance}d"),
            ("telemetry.sdk.language", _S, lang), ("telemetry.sdk.name", _S, "opentelemetry"),
            ("telemetry.sdk.version", _S, "1.38.0")]  # fmt: skip


def _scope(span: _Span) -> str:
    if span.peer:
        return "opentelemetry.instrumentation." + (PEERS[span.peer][0] or "httpx")
    return {
        _SERVER: "opentelemetry.instrumentation.asgi",
        _CLIENT: "opentelemetry.instrumentation.httpx",
        _PRODUCER: "opentelemetry.instrumentation.confluent_kafka",
        _CONSUMER: "opentelemetry.instrumentation.confluent_kafka",
    }.get(span.kind, f"shop.{span.service}")


_EVENT = (["exception.type", "exception.message"], [_S, _S], ["TimeoutError", "deadline exceeded"])


def _variant_row(span: _Span, error: bool, dye: str, instance: int) -> dict[str, Any]:
    attrs = _attrs(span, error) + ([("tinct.dye", _S, dye)] if dye else [])
    res = _resource(span.service, instance)
    get = {k: v for k, _, v in attrs}.get
    row: dict[str, Any] = {f.name: [] if pa.types.is_list(f.type) else None for f in SPAN_SCHEMA}
    row.update(
        trace_state="", flags=1, service=span.service, name=span.name, kind=span.kind,
        status_code=int(StatusCode.ERROR if error else StatusCode.UNSET),
        status_message="deadline exceeded" if error else "",
        http_route=get("http.route", ""), http_method=get("http.request.method", ""),
        http_status_code=int(get("http.response.status_code", "0")), peer_service="",
        server_address=get("server.address", ""), db_system=get("db.system.name", ""),
        enduser_id="", dye=dye, sampling_probability=0.0,
        attr_keys=[k for k, _, _ in attrs], attr_types=[t for _, t, _ in attrs],
        attr_values=[v for _, _, v in attrs], dropped_attributes_count=0,
        resource_keys=[k for k, _, _ in res], resource_types=[t for _, t, _ in res],
        resource_values=[v for _, _, v in res], resource_dropped=0,
        resource_schema_url="https://opentelemetry.io/schemas/1.26.0",
        scope_name=_scope(span), scope_version="0.59b0", scope_dropped=0, scope_schema_url="",
        dropped_events_count=0, dropped_links_count=0,
    )  # fmt: skip
    if error:
        row.update(event_names=["exception"], event_attrs=[dump_attrs(*_EVENT)], event_dropped=[0])
        row["tags"] = [tag_entry(k, v) for k, v in zip(_EVENT[0], _EVENT[2], strict=True)]
    for name in _DYNAMIC:
        row[name] = [] if name == "event_times" else (b"" if "id" in name else 0)
    return row


class Workload:
    """The hour's traces, handed out as SPAN_SCHEMA batches in start-time order.

    Every column that is the same for a span of a shape (service, names,
    attributes, resource, scope, status, events) is taken with one Arrow
    ``take`` from a small table of all (shape span, error, dyed, instance)
    variants; ids, times and durations are drawn per batch with numpy.
    """

    def __init__(self, spans: int, start_ns: int, seed: int) -> None:
        self.shapes = trace_shapes(seed)
        rng = self._rng = np.random.default_rng(seed + 1)
        flat = [s for shape in self.shapes for s in shape]
        self.lengths = np.array([len(s) for s in self.shapes], np.int64)
        self.first = np.concatenate([[0], np.cumsum(self.lengths)[:-1]])
        self.parent = np.array([s.parent for s in flat], np.int64)
        self.offset = np.array([s.start for s in flat], np.float64)
        self.duration = np.array([s.duration for s in flat], np.float64)
        # Which (parent service, child service) pair each shape span is the child of, or -1.
        links = [(sh[s.parent].service, s.service) if s.parent >= 0 else None
                 for sh in self.shapes for s in sh]  # fmt: skip
        self.pairs = sorted({pair for pair in links if pair and pair[0] != pair[1]})
        self.pair_of = np.array([self.pairs.index(p) if p in self.pairs else -1 for p in links])
        self._made = np.zeros(len(self.pairs), np.int64)
        self.error_rate = np.array([0.02 if s.peer in ("stripe", "maps") else 0.004 for s in flat])
        rows = [
            _variant_row(s, bool(err), "ci-canary" if dyed else "", inst)
            for s in flat for err in (0, 1) for dyed in (0, 1) for inst in range(INSTANCES)
        ]  # fmt: skip
        self.variants = pa.Table.from_pylist(rows, schema=SPAN_SCHEMA).drop_columns(list(_DYNAMIC))
        weights = 1.0 / np.arange(1, len(self.shapes) + 1) ** 0.9
        weights = rng.permutation(weights / weights.sum())
        mean = float(weights @ self.lengths)
        draw = rng.choice(len(self.shapes), int(spans / mean * 1.05) + 16, p=weights)
        self.shape_of = draw[: int(np.searchsorted(np.cumsum(self.lengths[draw]), spans)) + 1]
        self.traces = len(self.shape_of)
        self.spans = int(self.lengths[self.shape_of].sum())
        self.trace_start = np.sort(
            rng.integers(start_ns, start_ns + HOUR_S * 10**9 - MAX_TRACE_NS, self.traces)
        ).astype(np.uint64)

    def calls(self) -> dict[tuple[str, str], int]:
        """Spans whose parent is another service's, per (parent service, child
        service), in the batches handed out so far."""
        return {pair: int(n) for pair, n in zip(self.pairs, self._made, strict=True) if n}

    def batches(self, rows: int) -> Iterator[tuple[pa.Table, np.ndarray, np.ndarray]]:
        """(batch, its traces' starts, their first rows) of about ``rows`` spans each."""
        ends = np.cumsum(self.lengths[self.shape_of])
        a = 0
        while a < self.traces:
            b = max(int(np.searchsorted(ends, (ends[a - 1] if a else 0) + rows)), a + 1)
            b = min(b, self.traces)
            yield self._batch(a, b)
            a = b

    def _batch(self, a: int, b: int) -> tuple[pa.Table, np.ndarray, np.ndarray]:
        rng, n = self._rng, b - a
        lengths = self.lengths[self.shape_of[a:b]]
        first_row = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        total = int(lengths.sum())
        trace = np.repeat(np.arange(n), lengths)
        pos = np.arange(total) - first_row[trace]
        flat = self.first[self.shape_of[a:b]][trace] + pos
        error = rng.random(total) < self.error_rate[flat]
        dyed = (rng.random(n) < 0.01)[trace]
        variant = ((flat * 2 + error) * 2 + dyed) * INSTANCES + rng.integers(0, INSTANCES, total)
        static = self.variants.take(pa.array(variant))
        trace_ids = np.frombuffer(rng.bytes(16 * n), np.uint8).reshape(n, 16)
        span_ids = np.frombuffer(rng.bytes(8 * total), np.uint8).reshape(total, 8)
        root = self.parent[flat] < 0
        parent_row = (first_row[trace] + self.parent[flat])[~root]
        pair = self.pair_of[flat]
        self._made += np.bincount(pair[pair >= 0], minlength=len(self.pairs))
        pace = np.clip(rng.lognormal(0.0, 0.35, n), 0.3, 3.0)[trace]
        start = self.trace_start[a:b][trace] + (self.offset[flat] * pace).astype(np.uint64)
        duration = (self.duration[flat] * pace * rng.lognormal(0.0, 0.2, total)).astype(np.int64)
        event_offsets = np.concatenate([[0], np.cumsum(error)]).astype(np.int32)
        dynamic = {
            "trace_id": _binary(trace_ids[trace], np.full(total, 16)),
            "span_id": _binary(span_ids, np.full(total, 8)),
            "parent_span_id": _binary(span_ids[parent_row], np.where(root, 0, 8)),
            "start_ns": pa.array(start),
            "duration_ns": pa.array(duration),
            "event_times": pa.ListArray.from_arrays(
                pa.array(event_offsets),
                pa.array(start[error] + (duration[error] // 2).astype(np.uint64)),
            ),
        }
        columns = [
            dynamic[f.name] if f.name in dynamic else static.column(f.name) for f in SPAN_SCHEMA
        ]
        table = pa.Table.from_arrays(columns, schema=SPAN_SCHEMA)
        return table, self.trace_start[a:b], first_row


def _binary(data: np.ndarray, lengths: np.ndarray) -> pa.Array:
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(data))]
    return pa.Array.from_buffers(pa.binary(), len(lengths), buffers)


# --- ingest -----------------------------------------------------------------------


class _Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


class _TimedAggregator(TopologyAggregator):
    """Adds up the seconds spent in flush (edges written, pending spans saved)."""

    flush_s = 0.0

    def flush(self, *, force: bool = False) -> None:
        began = time.perf_counter()
        try:
            super().flush(force=force)
        finally:
            self.flush_s += time.perf_counter() - began


class Ingest(NamedTuple):
    generate_s: float
    write_s: float
    observe_s: float
    tick_s: float
    flush_s: float
    calls: int
    traces: int


def ingest(store: SqlSpanStore, work: Workload, start_ns: int, args: argparse.Namespace) -> Ingest:
    """Write every batch and feed it to the aggregator, slice by slice, on the data's clock."""
    clock = _Clock()
    clock.now = start_ns / 1e9
    aggregator = _TimedAggregator(store, clock=clock)  # wait 10 s, flush 5 s: the defaults
    aggregator.open()
    generate_s = write_s = observe_s = tick_s = 0.0
    observe_ns = int(args.observe * 1e9)
    next_tick = clock.now + 1.0

    def tick_until(when: float) -> float:
        nonlocal next_tick
        spent = 0.0
        while next_tick <= when:
            clock.now = next_tick
            began = time.perf_counter()
            aggregator.tick()
            spent += time.perf_counter() - began
            next_tick += 1.0
        return spent

    began = time.perf_counter()
    for batch, starts, first_rows in work.batches(args.batch):
        generate_s += time.perf_counter() - began
        began = time.perf_counter()
        store.write_spans(batch)
        write_s += time.perf_counter() - began
        # Slices of --observe data seconds on trace boundaries, each observed at its end.
        slot = (starts - np.uint64(start_ns)) // np.uint64(observe_ns)
        cuts = np.concatenate([[0], np.flatnonzero(np.diff(slot)) + 1, [len(starts)]])
        rows = np.append(first_rows, batch.num_rows)
        for a, b in zip(cuts[:-1], cuts[1:], strict=True):
            end_s = (start_ns + (int(slot[a]) + 1) * observe_ns) / 1e9
            tick_s += tick_until(end_s)
            clock.now = end_s
            began = time.perf_counter()
            aggregator.observe(batch.slice(int(rows[a]), int(rows[b] - rows[a])))
            observe_s += time.perf_counter() - began
        began = time.perf_counter()
    tick_s += tick_until(start_ns / 1e9 + HOUR_S + 11.0)  # every trace waited out
    began = time.perf_counter()
    aggregator.close()
    tick_s += time.perf_counter() - began
    if aggregator.pending_spans or aggregator.traces_forced:
        raise SystemExit(f"{aggregator.pending_spans} spans still pending, "
                         f"{aggregator.traces_forced} traces forced")  # fmt: skip
    return Ingest(generate_s, write_s, observe_s, tick_s, aggregator.flush_s,
                  aggregator.calls_counted, aggregator.traces_resolved)  # fmt: skip


# --- queries ----------------------------------------------------------------------


def _median_ms(fn: Callable[[], object], repeat: int) -> tuple[float, Any]:
    result = fn()  # warm-up
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000, result


def _service_calls(graph: dict[str, Any]) -> dict[tuple[str, str], int]:
    """Calls between instrumented services in a graph (interface nodes folded to theirs)."""
    of = {n["id"]: n["service"] for n in graph["nodes"] if n["kind"] in ("service", "interface")}
    calls: Counter[tuple[str, str]] = Counter()
    for e in graph["edges"]:
        if e["source"] in of and e["target"] in of:
            calls[of[e["source"]], of[e["target"]]] += e["calls"]
    return dict(calls)


def queries(store: SqlSpanStore, start_ns: int, repeat: int) -> dict[str, Any]:
    end_ns = start_ns + HOUR_S * 10**9 - 1
    start_ms, end_ms = start_ns // 10**6, end_ns // 10**6
    static = StaticTopology()
    found: dict[str, Any] = {}
    for level, interfaces in (("service", False), ("interface", True)):
        query = EdgeQuery(start_ms, end_ms, interfaces=interfaces)
        sql_ms, rows = _median_ms(partial(store.topology_edges, query), repeat)
        graph = partial(build_graph, static=static, interfaces=interfaces)
        graph_ms, answer = _median_ms(partial(graph, rows), repeat)

        def both(q: EdgeQuery = query, g: Callable[..., Any] = graph) -> Any:
            return g(store.topology_edges(q))

        total_ms, _ = _median_ms(both, repeat)
        found[level] = (sql_ms, graph_ms, total_ms, len(rows), answer)
    naive_ms, links = _median_ms(lambda: store.dependencies(start_ns, end_ns), repeat)
    found["naive"] = (naive_ms, {(p, c): n for p, c, n in links})
    return found


# --- the run ----------------------------------------------------------------------


def run(backend: str, url: str, args: argparse.Namespace) -> None:
    # The last whole hour, to the minute, ending a few minutes ago.
    start_ns = (int(time.time()) // 60 * 60 - HOUR_S - 300) * 10**9
    began = time.perf_counter()
    work = Workload(args.spans, start_ns, args.seed)
    setup_s = time.perf_counter() - began
    interfaces = {(s.service, s.name) for sh in work.shapes for s in sh
                  if s.kind in (_SERVER, _CONSUMER)}  # fmt: skip
    print(
        f"[{backend}] workload: {work.spans:,} spans in {work.traces:,} traces over one hour, "
        f"{len(work.shapes)} trace shapes, {len(SERVICES)} services, {len(interfaces)} routes, "
        f"{len(PEERS)} databases/caches/APIs"
    )
    store = open_store(url)
    assert isinstance(store, SqlSpanStore)
    try:
        done = ingest(store, work, start_ns, args)
        edge_rows = store.table_sizes().get("tinct_topology_edges", (0, 0))[0]
        print(f"[{backend}] generated in {setup_s + done.generate_s:.1f} s "
              f"({work.spans / (setup_s + done.generate_s):,.0f} spans/s), "
              f"batches of ~{args.batch:,} spans")  # fmt: skip
        agg_s = done.observe_s + done.tick_s
        print(
            f"[{backend}] ingest, spans/s (seconds)\n"
            f"  write_spans             {work.spans / done.write_s:>12,.0f}  "
            f"({done.write_s:.1f} s)\n"
            f"  topology aggregator     {work.spans / agg_s:>12,.0f}  ({agg_s:.1f} s: "
            f"observe {done.observe_s:.1f}, resolve {done.tick_s - done.flush_s:.1f}, "
            f"flush {done.flush_s:.1f})\n"
            f"  aggregator / write_spans time: {agg_s / done.write_s:.2f}\n"
            f"  {done.traces:,} traces resolved, {done.calls:,} calls counted, "
            f"{edge_rows:,} edge rows in the store"
        )
        found = queries(store, start_ns, args.repeat)
    finally:
        store.close()
    naive_ms, naive = found["naive"]
    print(f"[{backend}] topology of the hour, median of {args.repeat} warm runs, ms")
    print(f"  {'':<33}{'topology_edges':>15}{'build_graph':>12}{'both':>8}{'rows out':>10}")
    for level in ("service", "interface"):
        sql_ms, graph_ms, total_ms, nrows, answer = found[level]
        print(
            f"  pre-aggregated, {level + ' level':<17}{sql_ms:>15.1f}{graph_ms:>12.1f}"
            f"{total_ms:>8.1f}{nrows:>10,}"
        )
    print(f"  {'naive self-join, dependencies()':<33}{'':>27}{naive_ms:>8.1f}")
    best = found["service"][2]
    print(
        f"  naive / pre-aggregated (service level): {naive_ms / best:.1f} x; "
        f"goal <= 50 ms: {'met' if best <= 50 else 'MISSED'} ({best:.1f} ms)"
    )
    made = work.calls()
    service_level = _service_calls(found["service"][4])
    interface_level = _service_calls(found["interface"][4])
    if not service_level == interface_level == made:
        raise SystemExit(f"topology {service_level} / {interface_level} != generated {made}")
    calls = sum(made.values())
    print(f"[{backend}] check: {len(made)} service pairs, {calls:,} calls: "
          "topology (service and interface level) == generated")  # fmt: skip
    if naive != made:
        raise SystemExit(f"dependencies() {naive} != generated {made}")
    print(f"[{backend}] check: dependencies() == generated")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=10_000_000)
    parser.add_argument("--batch", type=int, default=250_000, help="spans per write_spans")
    parser.add_argument("--observe", type=float, default=0.5,
                        help="data seconds per aggregator observe()")  # fmt: skip
    parser.add_argument("--repeat", type=int, default=7, help="runs per query (median)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--backends", default="chdb", help="comma list of chdb, clickhouse")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tinct-bench-topology-"))
    try:
        for backend in args.backends.split(","):
            with ExitStack() as stack:
                if backend == "chdb":
                    url = f"chdb://{work / 'chdb'}"
                elif backend == "clickhouse":
                    port = stack.enter_context(clickhouse_server(work / "clickhouse"))
                    url = f"clickhouse://127.0.0.1:{port}/bench_topology"
                else:
                    raise SystemExit(f"unknown backend {backend!r}")
                run(backend, url, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"peak RSS of this process: {peak:.2f} GiB")


if __name__ == "__main__":
    main()
