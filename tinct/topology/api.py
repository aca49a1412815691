"""``GET /api/tinct/topology``: the dynamic call graph beside the static one.

::

    GET /api/tinct/topology?start=<ms>&end=<ms>&level=service|interface
                           &service=<name>&dye=<kind:value>&trace=<32 hex>&scaled=true
        200 {"nodes": [{"id", "name", "kind", "layer", "service", "calls",
                        "errors", "error_rate", "p50_ms", "p90_ms", "p99_ms",
                        "status"}, ...],
             "edges": [{"source", "target", "calls", "errors", "error_rate",
                        "p50_ms", "p90_ms", "p99_ms", "status"}, ...],
             "scaled": false}

``end`` defaults to now and ``start`` to an hour before it (Unix
milliseconds); edges are kept per minute, so the window covers the minutes
it touches. ``level`` is ``service`` (default) or ``interface``.
``service`` keeps the edges with that service at one end. ``dye`` keeps the
calls of traces dyed so (the path a dyed user took); ``trace`` computes the
path of that one trace from its stored spans, whatever the window. Both
leave configured edges without traffic out. ``scaled=true`` weights calls
and errors by ``1 / tinct.sampling.probability`` (estimates of all traffic,
not only the sampled). Node and edge fields: :mod:`tinct.topology.graph`.

Errors answer ``{"error": "<param>: <what is wrong>"}``: 400 for a bad
parameter, 503 while the store opens, 501 for a store without topology,
500 when it fails.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from tinct.api_errors import ApiProblem, guard
from tinct.storage.base import SpanReader
from tinct.storage.topology import EdgeQuery, TopologyStore
from tinct.topology.calls import span_info_of_row, trace_calls, trace_weight
from tinct.topology.graph import build_graph, edge_rows_of
from tinct.topology.static import StaticTopology

__all__ = ["TopologyAPI", "TOPOLOGY_PATH", "DEFAULT_WINDOW_MS", "LEVELS"]


TOPOLOGY_PATH = "/api/tinct/topology"
DEFAULT_WINDOW_MS = 3_600_000
LEVELS = ("service", "interface")
_MAX_MS = 2**63 - 1
_TRACE_ID = re.compile(r"[0-9a-fA-F]{32}\Z")
_BOOLS = {"true": True, "1": True, "false": False, "0": False, "": False}


def _ms(params: Any, name: str, default: int) -> int:
    text = params.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text, 10)
    except ValueError:
        raise ApiProblem(400, f"{name}: must be Unix milliseconds, got {text[:40]!r}") from None
    if not 0 <= value <= _MAX_MS:
        raise ApiProblem(400, f"{name}: must be between 0 and {_MAX_MS}, got {value}")
    return value


class TopologyAPI:
    """The topology route.

    Args:
        store: returns the store keeping edges, or ``None`` while it is
            opening (503).
        static: returns the configured topology (re-read on change).
        spans: returns the span store (for ``trace=``); the same as
            ``store`` when not given.
        clock: Unix seconds, for the default window.
    """

    def __init__(
        self,
        store: Callable[[], object | None],
        static: Callable[[], StaticTopology],
        spans: Callable[[], object | None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._spans = spans or store
        self._static = static
        self._clock = clock

    def routes(self) -> list[BaseRoute]:
        """The routes, to include in the main app."""
        return [Route(TOPOLOGY_PATH, guard(self._topology, "topology"), methods=["GET"])]

    async def _topology(self, request: Request) -> Response:
        params = request.query_params
        end = _ms(params, "end", int(self._clock() * 1000))
        start = _ms(params, "start", max(0, end - DEFAULT_WINDOW_MS))
        if start > end:
            raise ApiProblem(400, f"start: must not be after end ({start} > {end})")
        level = params.get("level", "service").strip() or "service"
        if level not in LEVELS:
            raise ApiProblem(400, f"level: must be one of {', '.join(LEVELS)}, got {level[:40]!r}")
        scaled_text = params.get("scaled", "").strip().lower()
        if scaled_text not in _BOOLS:
            raise ApiProblem(400, f"scaled: must be true or false, got {scaled_text[:40]!r}")
        trace_text = params.get("trace", "").strip()
        if trace_text and not _TRACE_ID.match(trace_text):
            raise ApiProblem(400, f"trace: must be 32 hex digits, got {trace_text[:80]!r}")
        service = params.get("service", "").strip()
        dye = params.get("dye", "").strip()
        interfaces = level == "interface"
        store = self._store()
        if store is None:
            raise ApiProblem(503, "store: tinct is starting, the store is not open yet")
        if not isinstance(store, TopologyStore):
            raise ApiProblem(501, "store: this store keeps no topology")
        static = self._static()
        services = (service,) if service else ()

        def read() -> dict[str, Any]:
            if trace_text:
                reader = self._spans()
                if not isinstance(reader, SpanReader):
                    raise ApiProblem(501, "store: this store keeps no spans")
                stored = reader.get_trace(bytes.fromhex(trace_text))
                spans = [span_info_of_row(r) for r in stored]
                calls = trace_calls(spans)
                if services:
                    calls = [c for c in calls if service in (c.source_service, c.target_service)]
                rows = edge_rows_of(calls, trace_weight(spans), interfaces=interfaces)
            else:
                query = EdgeQuery(start, end, interfaces, dye or None, services)
                rows = store.topology_edges(query)
            return build_graph(
                rows,
                static,
                interfaces=interfaces,
                scaled=_BOOLS[scaled_text],
                with_missing=not (trace_text or dye),
                services=services,
            )

        return JSONResponse(await run_in_threadpool(read))
