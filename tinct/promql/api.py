"""The Prometheus HTTP API on the main port, over the PromQL engine and the metric store.

Grafana, promtool and anything else that speaks Prometheus's API read tinct
through these routes, so they answer as Prometheus does
(https://prometheus.io/docs/prometheus/latest/querying/api/, and
``web/api/v1/api.go`` where the page is silent)::

    GET|POST /api/v1/query              query, time, timeout, limit
    GET|POST /api/v1/query_range        query, start, end, step, timeout, limit
    GET|POST /api/v1/series             match[] (required), start, end, limit
    GET|POST /api/v1/labels             match[], start, end, limit
    GET|POST /api/v1/label/<name>/values   match[], start, end, limit
    GET|POST /api/v1/metadata           limit, limit_per_metric, metric
    GET|POST /api/v1/query_exemplars    query, start, end   (no exemplars are stored)
    GET|POST /api/v1/status/buildinfo | status/config | status/flags

POST takes the parameters form-encoded in the body as well as in the URL
(Go's ``Request.FormValue``: the body wins). Every answer is Prometheus's
envelope, ``{"status": "success", "data": ..., "warnings": [...],
"infos": [...]}`` (empty lists left out) or ``{"status": "error",
"errorType": ..., "error": ...}`` with 400 (``bad_data``), 422
(``execution``), 503 (``timeout``; ``unavailable`` with Retry-After while
the store opens) or 500 (``internal``, the store failed).

Queries run in a worker thread, so the event loop keeps serving while the
engine reads the store; a ``timeout`` parameter shorter than the engine's
own stops waiting for the answer (the engine's own timeout ends the work).
"""

from __future__ import annotations

import json
import logging
import platform
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import parse_qsl

import anyio
import promql_parser
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tinct import __version__
from tinct.errors import StorageError
from tinct.metrics import Matcher
from tinct.promql.api_params import (
    MAX_TIME_MS,
    MIN_TIME_MS,
    format_timestamp,
    format_value,
    invalid_param,
    parse_duration_ms,
    parse_error_message,
    parse_expr,
    parse_limit,
    parse_match_params,
    parse_time,
)
from tinct.promql.result import BadQueryError, PromQLError, QueryResult, QueryTimeoutError
from tinct.storage.base import MetricReader

__all__ = ["PrometheusAPI", "QueryEngine", "MAX_POINTS", "MAX_FORM_BYTES"]

logger = logging.getLogger(__name__)

# Prometheus's limit on a range query's points per series ("sufficient for
# 60s resolution for a week or 1h resolution for a year").
MAX_POINTS = 11_000
# Go's http.Request.ParseForm reads at most 10 MB of a form body.
MAX_FORM_BYTES = 10 << 20
_RETRY_AFTER_S = "5"
_TRUNCATED = "results truncated due to limit"
_LEGACY_LABEL = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789")
_METHODS = ["GET", "POST"]
_PARSE_ERROR = "parse error: "


class QueryEngine(Protocol):
    """What the API needs of :class:`tinct.promql.engine.Engine`."""

    def instant(self, query: str, time_ms: int) -> QueryResult: ...

    def range(self, query: str, start_ms: int, end_ms: int, step_ms: int) -> QueryResult: ...


class _Unavailable(Exception):
    """The store (or engine) is not open yet: 503 with Retry-After."""


class _Params:
    """A request's parameters the way Go's ``Request.Form`` holds them:
    form body values first, then the URL's."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._values: dict[str, list[str]] = {}
        for key, value in pairs:
            self._values.setdefault(key, []).append(value)

    def get(self, name: str) -> str:
        """``FormValue``: the first value, "" when absent."""
        values = self._values.get(name)
        return values[0] if values else ""

    def all(self, name: str) -> list[str]:
        return self._values.get(name, [])


async def _params(request: Request) -> _Params:
    pairs: list[tuple[str, str]] = []
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if request.method == "POST" and content_type == "application/x-www-form-urlencoded":
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                raise BadQueryError("error parsing form values: http: POST too large")
        try:
            pairs = parse_qsl(body.decode(), keep_blank_values=True, errors="strict")
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadQueryError(f"error parsing form values: {exc}") from None
    pairs.extend(request.query_params.multi_items())
    return _Params(pairs)


def _dumps(value: Any) -> str:
    # Compact, as Prometheus writes it; UTF-8 rather than \u escapes.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _envelope(
    data_json: str | None, warnings: Sequence[str] = (), infos: Sequence[str] = ()
) -> str:
    parts = ['{"status":"success"']
    if data_json is not None:
        parts.append(',"data":' + data_json)
    if warnings:
        parts.append(',"warnings":' + _dumps(list(warnings)))
    if infos:
        parts.append(',"infos":' + _dumps(list(infos)))
    parts.append("}")
    return "".join(parts)


def _json(body: str, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(body.encode(), status, headers=headers, media_type="application/json")


def _error(error_type: str, message: str, status: int, **headers: str) -> Response:
    body = _dumps({"status": "error", "errorType": error_type, "error": message})
    return _json(body, status, headers)


def _labels_json(labels: Any) -> str:
    pairs = sorted(labels.items()) if isinstance(labels, Mapping) else sorted(labels)
    return _dumps(dict(pairs))


def _point(t_ms: int, value: float) -> str:
    return f'[{format_timestamp(int(t_ms))},"{format_value(float(value))}"]'


def _points(points: Sequence[tuple[int, float]]) -> str:
    return ",".join(_point(t, v) for t, v in points)


def result_json(result: QueryResult, limit: int = 0) -> tuple[str, list[str]]:
    """The ``data`` of a query answer, as JSON text, and any warning the
    ``limit`` adds (Prometheus 3's ``truncateResults``)."""
    kind = result.result_type
    warnings: list[str] = []
    if kind == "vector":
        rows = result.result
        if 0 < limit < len(rows):
            rows, warnings = rows[:limit], [_TRUNCATED]
        items = ",".join(
            f'{{"metric":{_labels_json(labels)},"value":{_point(*sample)}}}'
            for labels, sample in rows
        )
        body = f"[{items}]"
    elif kind == "matrix":
        rows = result.result
        if 0 < limit < len(rows):
            rows, warnings = rows[:limit], [_TRUNCATED]
        items = ",".join(
            f'{{"metric":{_labels_json(labels)},"values":[{_points(points)}]}}'
            for labels, points in rows
        )
        body = f"[{items}]"
    elif kind == "scalar":
        body = _point(*result.result)
    elif kind == "string":
        t_ms, text = result.result
        body = f"[{format_timestamp(int(t_ms))},{_dumps(text)}]"
    else:
        raise ValueError(f"unknown result type {kind!r}")
    return f'{{"resultType":"{kind}","result":{body}}}', warnings


def _has_selector(expr: Any) -> bool:
    found = False

    def visit(node: Any) -> bool:
        nonlocal found
        if isinstance(node, promql_parser.VectorSelector | promql_parser.MatrixSelector):
            found = True
            return False
        return True

    promql_parser.walk(expr, visit)
    return found


def build_info() -> dict[str, str]:
    """``/api/v1/status/buildinfo``'s data: Prometheus's fields (Grafana reads
    ``version``; with no ``features`` it treats the source as Prometheus)."""
    return {
        "version": __version__,
        "revision": "",
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": f"python{platform.python_version()}",
    }


class PrometheusAPI:
    """The Prometheus HTTP API's routes.

    Args:
        get_engine: returns the PromQL engine, or ``None`` while the store
            opens (queries answer 503 ``unavailable`` with Retry-After).
        get_store: returns the metric store, or ``None`` while it opens
            (series, labels and metadata answer 503 likewise).
        flags: what ``/api/v1/status/flags`` shows, by Prometheus's flag
            names (``query.timeout``: ``2m``...).
        config_yaml: returns the running configuration as YAML
            (``/api/v1/status/config``).
        clock: Unix seconds; the default ``time`` of an instant query.

    Threading: handlers run on the event loop; the engine and the store are
    called in worker threads.
    """

    def __init__(
        self,
        get_engine: Callable[[], QueryEngine | None],
        get_store: Callable[[], MetricReader | None],
        *,
        flags: Mapping[str, str],
        config_yaml: Callable[[], str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._get_engine = get_engine
        self._get_store = get_store
        self._flags = dict(flags)
        self._config_yaml = config_yaml
        self._clock = clock

    def routes(self) -> list[BaseRoute]:
        """The routes, to include in the main app."""
        endpoints: list[tuple[str, Callable[[_Params, Request], Awaitable[Response]]]] = [
            ("/api/v1/query", self._query),
            ("/api/v1/query_range", self._query_range),
            ("/api/v1/series", self._series),
            ("/api/v1/labels", self._labels),
            ("/api/v1/label/{name}/values", self._label_values),
            ("/api/v1/metadata", self._metadata),
            ("/api/v1/query_exemplars", self._exemplars),
            ("/api/v1/status/buildinfo", self._buildinfo),
            ("/api/v1/status/config", self._config),
            ("/api/v1/status/flags", self._flags_endpoint),
        ]
        return [Route(path, _guard(fn), methods=_METHODS) for path, fn in endpoints]

    # -- queries ---------------------------------------------------------

    def _engine(self) -> QueryEngine:
        engine = self._get_engine()
        if engine is None:
            raise _Unavailable("the store is not open yet; tinct is starting")
        return engine

    def _store(self) -> MetricReader:
        store = self._get_store()
        if store is None:
            raise _Unavailable("the store is not open yet; tinct is starting")
        return store

    async def _run(
        self, query: str, call: Callable[[], QueryResult], timeout_ms: int | None
    ) -> QueryResult:
        result: QueryResult | None = None
        try:
            with anyio.move_on_after(None if timeout_ms is None else timeout_ms / 1000):
                result = await anyio.to_thread.run_sync(call, abandon_on_cancel=True)
        except BadQueryError as exc:
            # Prometheus reports a query that does not parse as a bad
            # parameter, with the position of the error.
            message = str(exc)
            if message.startswith("invalid parameter"):
                raise
            if message.startswith(_PARSE_ERROR):
                message = parse_error_message(query, message[len(_PARSE_ERROR) :])
            raise invalid_param("query", message) from None
        if result is None:
            raise QueryTimeoutError("query timed out in query execution")
        return result

    async def _query(self, params: _Params, request: Request) -> Response:
        limit = parse_limit(params.get("limit"))
        text = params.get("time")
        time_ms = parse_time(text, "time") if text else round(self._clock() * 1000)
        timeout_ms = _timeout(params)
        query = params.get("query")
        engine = self._engine()
        result = await self._run(query, lambda: engine.instant(query, time_ms), timeout_ms)
        return self._answer(result, limit)

    async def _query_range(self, params: _Params, request: Request) -> Response:
        limit = parse_limit(params.get("limit"))
        start = parse_time(params.get("start"), "start")
        end = parse_time(params.get("end"), "end")
        if end < start:
            raise BadQueryError("end timestamp must not be before start time")
        step = parse_duration_ms(params.get("step"), "step")
        if step <= 0:
            raise BadQueryError(
                "zero or negative query resolution step widths are not accepted. "
                "Try a positive integer"
            )
        if (end - start) // step > MAX_POINTS:
            raise BadQueryError(
                "exceeded maximum resolution of 11,000 points per timeseries. "
                "Try decreasing the query resolution (?step=XX)"
            )
        timeout_ms = _timeout(params)
        query = params.get("query")
        engine = self._engine()
        result = await self._run(query, lambda: engine.range(query, start, end, step), timeout_ms)
        return self._answer(result, limit)

    @staticmethod
    def _answer(result: QueryResult, limit: int) -> Response:
        data, warnings = result_json(result, limit)
        return _json(_envelope(data, [*result.warnings, *warnings], result.infos))

    async def _exemplars(self, params: _Params, request: Request) -> Response:
        start = _time_or(params, "start", MIN_TIME_MS)
        end = _time_or(params, "end", MAX_TIME_MS)
        if end < start:
            raise BadQueryError("end timestamp must not be before start timestamp")
        expr = parse_expr(params.get("query"))
        # No exemplars are stored; Prometheus answers no data at all for a
        # query without selectors, an empty list otherwise.
        return _json(_envelope("[]" if _has_selector(expr) else None))

    # -- metadata about series -------------------------------------------

    async def _series(self, params: _Params, request: Request) -> Response:
        selectors = params.all("match[]")
        if not selectors:
            raise BadQueryError("no match[] parameter provided")
        limit = parse_limit(params.get("limit"))
        start = _time_or(params, "start", MIN_TIME_MS)
        end = _time_or(params, "end", MAX_TIME_MS)
        sets = parse_match_params(selectors)
        store = self._store()

        def find() -> list[dict[str, str]]:
            seen: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
            for matchers in sets:
                # One more than the limit tells whether the answer was cut.
                for series in store.series(matchers, start, end, limit + 1 if limit else 0):
                    key = tuple(sorted(series.labels.items()))
                    seen.setdefault(key, series.labels)
            return [seen[key] for key in sorted(seen)]

        found = await anyio.to_thread.run_sync(find)
        warnings: list[str] = []
        if 0 < limit < len(found):
            found, warnings = found[:limit], [_TRUNCATED]
        data = _dumps([dict(sorted(s.items())) for s in found])
        return _json(_envelope(data, warnings))

    async def _labels(self, params: _Params, request: Request) -> Response:
        limit = parse_limit(params.get("limit"))
        start = _time_or(params, "start", MIN_TIME_MS)
        end = _time_or(params, "end", MAX_TIME_MS)
        sets = _sets_or_all(params)
        store = self._store()

        def find() -> list[str]:
            names: set[str] = set()
            for matchers in sets:
                names.update(store.label_names(matchers, start, end))
            return sorted(names)

        return _strings(await anyio.to_thread.run_sync(find), limit)

    async def _label_values(self, params: _Params, request: Request) -> Response:
        name = request.path_params["name"]
        if not name or name[0].isdigit() or not set(name) <= _LEGACY_LABEL:
            raise BadQueryError(f"invalid label name: {_dumps(name)}")
        limit = parse_limit(params.get("limit"))
        start = _time_or(params, "start", MIN_TIME_MS)
        end = _time_or(params, "end", MAX_TIME_MS)
        sets = _sets_or_all(params)
        store = self._store()

        def find() -> list[str]:
            values: set[str] = set()
            for matchers in sets:
                values.update(store.label_values(name, matchers, start, end))
            return sorted(values)

        return _strings(await anyio.to_thread.run_sync(find), limit)

    async def _metadata(self, params: _Params, request: Request) -> Response:
        limit = _int_or(params, "limit", "limit must be a number")
        per_metric = _int_or(params, "limit_per_metric", "limit_per_metric must be a number")
        metric = params.get("metric") or None
        store = self._store()
        rows = await anyio.to_thread.run_sync(lambda: store.metadata(metric))
        data: dict[str, list[dict[str, str]]] = {}
        for row in rows:
            entries = data.get(row.metric)
            if entries is None:
                if 0 <= limit <= len(data):
                    break
                entries = data[row.metric] = []
            if per_metric > 0 and len(entries) >= per_metric:
                continue
            entries.append({"type": row.type, "help": row.help, "unit": row.unit})
        return _json(_envelope(_dumps(data)))

    # -- status ----------------------------------------------------------

    async def _buildinfo(self, params: _Params, request: Request) -> Response:
        return _json(_envelope(_dumps(build_info())))

    async def _config(self, params: _Params, request: Request) -> Response:
        text = await anyio.to_thread.run_sync(self._config_yaml)
        return _json(_envelope(_dumps({"yaml": text})))

    async def _flags_endpoint(self, params: _Params, request: Request) -> Response:
        return _json(_envelope(_dumps(self._flags)))


def _timeout(params: _Params) -> int | None:
    text = params.get("timeout")
    return parse_duration_ms(text, "timeout") if text else None


def _time_or(params: _Params, name: str, default: int) -> int:
    text = params.get(name)
    return parse_time(text, name) if text else default


def _int_or(params: _Params, name: str, message: str) -> int:
    text = params.get(name)
    if not text:
        return -1
    try:
        return int(text, 10)
    except ValueError:
        raise BadQueryError(message) from None


def _sets_or_all(params: _Params) -> list[list[Matcher]]:
    selectors = params.all("match[]")
    return parse_match_params(selectors) if selectors else [[]]


def _strings(values: list[str], limit: int) -> Response:
    warnings: list[str] = []
    if 0 < limit < len(values):
        values, warnings = values[:limit], [_TRUNCATED]
    return _json(_envelope(_dumps(values), warnings))


def _guard(
    endpoint: Callable[[_Params, Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    async def guarded(request: Request) -> Response:
        try:
            return await endpoint(await _params(request), request)
        except PromQLError as exc:
            return _error(exc.error_type, str(exc), exc.status)
        except _Unavailable as exc:
            return _error("unavailable", str(exc), 503, **{"Retry-After": _RETRY_AFTER_S})
        except StorageError as exc:
            logger.exception("store call failed for %s", request.url.path)
            return _error("internal", f"store failed: {exc}", 500)
        except Exception as exc:
            # Prometheus answers every failure in its envelope; a bug here
            # should still reach the client as JSON, and the log.
            logger.exception("query failed for %s", request.url.path)
            return _error("internal", f"{type(exc).__name__}: {exc}", 500)

    return guarded
