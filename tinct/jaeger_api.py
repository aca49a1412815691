"""Jaeger's query HTTP API on the main port, so Jaeger UI and clients work as-is.

Routes and shapes follow Jaeger's ``cmd/query/app/http_handler.go``: JSON in
the ``structuredResponse`` envelope (``data``, ``total``, ``limit``,
``offset``, ``errors``), errors as ``{"code", "msg"}`` entries, parameters
parsed as :mod:`tinct.params` describes. ``/api/v3/traces/{id}`` is the
lossless OTLP-JSON form of Jaeger's api_v3 HTTP gateway (``{"result":
TracesData}``, errors as ``{"error": {"httpCode", "message"}}``).

``/api/dependencies`` answers Jaeger UI's "System Architecture" view from the
topology's pre-aggregated edges (``tinct.topology``): the calls between
instrumented services, per minute, so a day's lookback does not join a day of
spans. A store without topology edges (the in-memory one) answers from raw
spans, children in the window joined to their parents.

Store reads block, so each runs in Starlette's threadpool together with the
encoding of its result; the event loop only parses parameters.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from tinct.errors import StorageError
from tinct.params import (
    ParamError,
    parse_go_duration,
    parse_int_param,
    parse_lookback,
    parse_tags,
    parse_trace_id,
)
from tinct.selfmetrics import SelfMetrics
from tinct.spans import SpanKind, TraceQuery
from tinct.storage.base import SpanReader
from tinct.storage.topology import EdgeQuery, TopologyStore
from tinct.tracing.jaeger_json import encode_trace
from tinct.tracing.otlp_encode import encode_traces_data

__all__ = [
    "JaegerQueryAPI",
    "KIND_NAMES",
    "DEFAULT_LOOKBACK_NS",
    "MAX_LIMIT",
    "DEFAULT_LIMIT",
    "DEFAULT_DEPENDENCY_LOOKBACK_MS",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")
_Endpoint = Callable[[Request], Awaitable[Response]]

# Jaeger's span kind strings (the span.kind tag); "" is unspecified.
KIND_NAMES: dict[int, str] = {
    SpanKind.UNSPECIFIED: "",
    SpanKind.INTERNAL: "internal",
    SpanKind.SERVER: "server",
    SpanKind.CLIENT: "client",
    SpanKind.PRODUCER: "producer",
    SpanKind.CONSUMER: "consumer",
}
_KINDS_BY_NAME = {name: kind for kind, name in KIND_NAMES.items() if name}
# Jaeger query's default search window when the request gives no start
# (query.lookback, 2 days in jaeger-query's options).
DEFAULT_LOOKBACK_NS = 2 * 24 * 3600 * 10**9
DEFAULT_LIMIT = 20
DEFAULT_DEPENDENCY_LOOKBACK_MS = 24 * 3600 * 1000
MAX_LIMIT = 10_000


class _NotReady(Exception):
    pass


def _dependencies(store: SpanReader, start_ns: int, end_ns: int) -> list[tuple[str, str, int]]:
    """(parent service, child service, calls) between instrumented services."""
    if not isinstance(store, TopologyStore):
        return store.dependencies(start_ns, end_ns)
    query = EdgeQuery(start_ns // 1_000_000, end_ns // 1_000_000)
    return [
        (e.source_service, e.target_service, e.calls)
        for e in store.topology_edges(query)
        if e.source_kind == e.target_kind == "service" and e.source_service != e.target_service
    ]


def _envelope(data: Any, total: int | None = None) -> dict[str, Any]:
    if total is None:
        total = len(data) if isinstance(data, list) else 0
    return {"data": data, "total": total, "limit": 0, "offset": 0, "errors": None}


def _error(status: int, message: str) -> JSONResponse:
    body: dict[str, Any] = {"data": None, "total": 0, "limit": 0, "offset": 0}
    body["errors"] = [{"code": status, "msg": message}]
    return JSONResponse(body, status)


def _v3_error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"httpCode": status, "message": message}}, status)


def _guard(endpoint: _Endpoint, error: Callable[[int, str], JSONResponse]) -> _Endpoint:
    """Turn tinct errors raised by ``endpoint`` into Jaeger error answers."""

    async def guarded(request: Request) -> Response:
        try:
            return await endpoint(request)
        except ParamError as exc:
            return error(400, str(exc))
        except _NotReady:
            return error(503, "tinct is starting: the store is not open yet")
        except StorageError as exc:
            logger.exception("store read failed for %s", request.url.path)
            return error(500, f"store read failed: {exc}")

    return guarded


def _span_kind(text: str | None) -> int | None:
    name = (text or "").strip().lower()
    if not name:
        return None
    if name not in _KINDS_BY_NAME:
        raise ParamError(
            "spanKind",
            f"unable to parse param 'spanKind': {text!r} is not one of "
            + ", ".join(_KINDS_BY_NAME),
        )
    return _KINDS_BY_NAME[name]


def _duration(params: QueryParams, name: str) -> int | None:
    text = params.get(name, "")
    if not text:
        return None
    try:
        value = parse_go_duration(text)
    except ValueError as exc:
        raise ParamError(name, f"unable to parse param '{name}': {exc}") from None
    if value < 0:
        raise ParamError(name, f"unable to parse param '{name}': {text} is negative")
    return value


def _required(params: QueryParams, name: str) -> str:
    value = params.get(name, "").strip()
    if not value:
        raise ParamError(name, f"parameter '{name}' is required")
    return value


class JaegerQueryAPI:
    """Jaeger v1 query routes plus ``/api/v3/traces/{id}`` over a SpanReader.

    Args:
        reader: returns the store, or ``None`` while it is opening (503).
        metrics: where store query durations are observed.
        clock: Unix time in nanoseconds (tests pin it).
    """

    def __init__(
        self,
        reader: Callable[[], SpanReader | None],
        metrics: SelfMetrics,
        *,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self._reader = reader
        self._metrics = metrics
        self._clock = clock

    def routes(self) -> list[BaseRoute]:
        """The routes, to include in the main app."""
        v1 = [
            ("/api/services", self._services),
            ("/api/services/{service}/operations", self._service_operations),
            ("/api/operations", self._operations),
            ("/api/traces", self._find_traces),
            ("/api/traces/{trace_id}", self._get_trace),
            ("/api/dependencies", self._dependencies),
        ]
        routes: list[BaseRoute] = [
            Route(path, _guard(fn, _error), methods=["GET"]) for path, fn in v1
        ]
        routes.append(
            Route(
                "/api/v3/traces/{trace_id}", _guard(self._get_trace_v3, _v3_error), methods=["GET"]
            )
        )
        return routes

    async def _read(self, operation: str, read: Callable[[SpanReader], T]) -> T:
        store = self._reader()
        if store is None:
            raise _NotReady
        histogram = self._metrics.store_query_duration.labels(operation)

        def timed() -> T:
            with histogram.time():
                return read(store)

        return await run_in_threadpool(timed)

    async def _services(self, request: Request) -> Response:
        services = await self._read("services", lambda s: s.services())
        return JSONResponse(_envelope(list(services)))

    async def _service_operations(self, request: Request) -> Response:
        service = request.path_params["service"]
        pairs = await self._read("operations", lambda s: s.operations(service))
        names = sorted({name for name, _ in pairs})
        return JSONResponse(_envelope(names))

    async def _operations(self, request: Request) -> Response:
        params = request.query_params
        service = _required(params, "service")
        kind = _span_kind(params.get("spanKind"))
        pairs = await self._read("operations", lambda s: s.operations(service, kind))
        data = [{"name": name, "spanKind": KIND_NAMES.get(k, "")} for name, k in pairs]
        return JSONResponse(_envelope(data))

    async def _find_traces(self, request: Request) -> Response:
        params = request.query_params
        trace_ids = params.getlist("traceID")
        if trace_ids:
            # Jaeger: explicit traceID parameters fetch those traces, ignoring the rest.
            ids = [parse_trace_id(t) for t in trace_ids]
            found = await self._read("get_trace", lambda s: [s.get_trace(i) for i in ids])
            data = [encode_trace(rows) for rows in found if rows]
            return JSONResponse(_envelope(data))
        query = self._trace_query(params)

        def search(store: SpanReader) -> list[list[dict[str, Any]]]:
            return store.find_traces(query)

        traces = await self._read("find_traces", search)
        encoded = await run_in_threadpool(lambda: [encode_trace(rows) for rows in traces])
        return JSONResponse(_envelope(encoded))

    def _trace_query(self, params: QueryParams) -> TraceQuery:
        service = _required(params, "service")
        now_us = self._clock() // 1000
        end_us = parse_int_param("end", params["end"]) if params.get("end") else now_us
        if params.get("start"):
            start_us = parse_int_param("start", params["start"])
        else:
            lookback = params.get("lookback", "")
            window = (
                parse_lookback(lookback)
                if lookback and lookback != "custom"
                else DEFAULT_LOOKBACK_NS
            )
            start_us = max(0, end_us - window // 1000)
        if start_us > end_us:
            raise ParamError("start", "unable to parse param 'start': it is after 'end'")
        min_ns = _duration(params, "minDuration")
        max_ns = _duration(params, "maxDuration")
        if min_ns is not None and max_ns is not None and max_ns < min_ns:
            raise ParamError("maxDuration", "'maxDuration' should be greater than 'minDuration'")
        limit = DEFAULT_LIMIT
        if params.get("limit"):
            limit = parse_int_param("limit", params["limit"], maximum=MAX_LIMIT) or DEFAULT_LIMIT
        return TraceQuery(
            service=service,
            operation=params.get("operation", ""),
            span_kind=_span_kind(params.get("spanKind")),
            tags=parse_tags(params.getlist("tags"), params.getlist("tag")),
            start_min_ns=start_us * 1000,
            start_max_ns=end_us * 1000,
            duration_min_ns=min_ns,
            duration_max_ns=max_ns,
            limit=limit,
        )

    async def _dependencies(self, request: Request) -> Response:
        # Jaeger's handler: endTs and lookback in milliseconds, lookback 24h by default.
        params = request.query_params
        now_ms = self._clock() // 1_000_000
        end_ms = parse_int_param("endTs", params["endTs"]) if params.get("endTs") else now_ms
        lookback_ms = DEFAULT_DEPENDENCY_LOOKBACK_MS
        if params.get("lookback"):
            lookback_ms = parse_int_param("lookback", params["lookback"], minimum=1)
        start_ns = max(0, end_ms - lookback_ms) * 1_000_000
        end_ns = end_ms * 1_000_000
        links = await self._read("dependencies", lambda s: _dependencies(s, start_ns, end_ns))
        data = [{"parent": p, "child": c, "callCount": n} for p, c, n in links]
        return JSONResponse(_envelope(data))

    async def _get_trace(self, request: Request) -> Response:
        trace_id = parse_trace_id(request.path_params["trace_id"])
        rows = await self._read("get_trace", lambda s: s.get_trace(trace_id))
        if not rows:
            return _error(404, "trace not found")
        trace = await run_in_threadpool(encode_trace, rows)
        return JSONResponse(_envelope([trace]))

    async def _get_trace_v3(self, request: Request) -> Response:
        trace_id = parse_trace_id(request.path_params["trace_id"])
        rows = await self._read("get_trace", lambda s: s.get_trace(trace_id))
        if not rows:
            return _v3_error(404, "trace not found")
        data = await run_in_threadpool(encode_traces_data, rows)
        return JSONResponse({"result": data})
