"""The browser beacon's API on the main port: the user layer as real users' browsers see it.

A page includes the snippet (``tinct/rum.js``)::

    <script src="http://tinct:3000/api/tinct/rum.js" data-app="shop" data-user="42"></script>

and the snippet reports here. Routes::

    GET     /api/tinct/rum.js           the snippet (cacheable, ETag)
    OPTIONS /api/tinct/rum              CORS preflight
    POST    /api/tinct/rum              a report              200 {"navigations": N, "errors": M}
    GET     /api/tinct/rum/errors       stored errors         200 {"errors": [error, ...]}

A report (JSON, any content type; the snippet sends ``text/plain`` so
browsers need no preflight)::

    {"app": "shop",                         # required, [A-Za-z0-9][A-Za-z0-9_.:-]*, <= 64
     "page": "/cart",                       # required, a path ("/..."), <= 512; query dropped
     "user": "42",                          # optional, <= 128; stored with errors only
     "events": [                            # at most 50
       {"type": "navigation",               # milliseconds, each optional, 0 <= ms <= 3600000
        "dns": 1.2, "connect": 3.4, "tls": 2.1, "ttfb": 80.5,
        "dom_content_loaded": 250.0, "load": 420.0,
        "transfer_size": 5120},             # bytes, integer
       {"type": "error", "kind": "js",      # js | resource | promise
        "message": "x is undefined",        # truncated at 1000 characters
        "source": "https://shop/app.js",    # truncated at 1000
        "line": 12, "col": 7,               # optional integers, 0..4294967295
        "stack": "..."}]}                   # truncated at 4000

Limits: the body at most 64 KiB (413), valid JSON (400), the fields above
(422, naming the field as ``events[3].line``); unknown fields are errors.
Identifying strings (app, page, user) past their limit are refused, free
text (message, source, stack, the ``User-Agent``) is truncated.

**CORS**: a POST whose ``Origin`` is not one of ``allowed_origins`` (exact
``scheme://host[:port]``; ``*`` allows every origin) is refused with 403, as
is its preflight; allowed answers carry ``Access-Control-Allow-Origin``.
A request without ``Origin`` (not from a browser page) is accepted: CORS
keeps other sites' pages out, it is not authentication.

**Series** (user layer, :data:`tinct.catalog.BROWSER`), written through
``get_sample_sink()`` as SAMPLE_SCHEMA tables:
``browser_page_load_seconds`` and ``browser_navigation_timing_seconds``
(histograms, :data:`tinct.rum.LOAD_BUCKETS` and :data:`tinct.rum.TIMING_BUCKETS`),
``browser_page_transfer_bytes`` (summary: sum and count) and
``browser_errors_total``, labelled ``layer="user"``, ``app``, ``page`` (and
``timing`` or ``kind``). Samples are absolute values, so the API keeps
each series' running value in memory (:class:`tinct.rum.BrowserSeries`) and
writes the new value after each report: a lost sample batch is repaired by
the next, and a restart starts the values again from 0, which ``rate()`` and
``increase()`` read as a counter reset (reports right after a restart may be
under-counted until the values pass their old ones). Numeric and UUID path
segments are labelled ``:id``; past ``max_pages`` (app, page) pairs new pages
are labelled ``other``, past ``max_apps`` apps new apps are, which bounds the
series. The user id is never a label (a series per user would be
unbounded): it is kept with the errors only.

**Errors** are stored as events (:mod:`tinct.storage.rum`) and listed by
``GET /api/tinct/rum/errors?app=&kind=&user=&start=&end=&limit=``: times
are RFC 3339 or Unix seconds (default: the last hour), ``limit`` 1..10000
(default 100), newest first; bad parameters answer 400 naming them. 503
while the store opens, 501 for a store without browser events.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.resources
import json
import logging
import math
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from tinct.api_errors import ApiProblem, guard
from tinct.errors import ConfigError, StorageError
from tinct.logs_api import rfc3339_ns
from tinct.rum import (
    ERROR_KINDS,
    MAX_APP_LENGTH,
    MAX_USER_LENGTH,
    TRUNCATED_AT,
    BrowserSeries,
    RumReport,
    clean_text,
    parse_report,
)
from tinct.storage.rum import (
    MAX_RUM_EVENT_LIMIT,
    RUM_EVENT_SCHEMA,
    RumEventQuery,
    RumEventRow,
    RumEventStore,
)

__all__ = [
    "RumAPI",
    "RUM_JS_PATH",
    "RUM_PATH",
    "RUM_ERRORS_PATH",
    "MAX_BODY_BYTES",
    "DEFAULT_LIST_LIMIT",
    "SampleSink",
    "parse_allowed_origins",
]

logger = logging.getLogger(__name__)

SampleSink = Callable[[pa.Table], None]

RUM_JS_PATH = "/api/tinct/rum.js"
RUM_PATH = "/api/tinct/rum"
RUM_ERRORS_PATH = "/api/tinct/rum/errors"
MAX_BODY_BYTES = 64 * 1024
DEFAULT_LIST_LIMIT = 100
DEFAULT_WINDOW_NS = 3600 * 10**9
_ORIGIN = re.compile(r"(https?)://([^/?#@\s]+?)(?::(\d{1,5}))?\Z", re.IGNORECASE)
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def parse_allowed_origins(origins: Sequence[str]) -> frozenset[str]:
    """Normalized origins (``scheme://host[:port]``, default ports dropped), or ``*``.

    Raises:
        ConfigError: an entry is not ``*`` or an http(s) origin without a path.
    """
    found = set()
    for raw in origins:
        text = raw.strip().rstrip("/")
        if text == "*":
            found.add("*")
            continue
        normal = _normal_origin(text)
        if normal is None:
            raise ConfigError(
                f"rum allowed_origins: {raw!r} is not '*' or an origin like "
                "'https://shop.example.com' or 'http://127.0.0.1:8080' (no path)"
            )
        found.add(normal)
    return frozenset(found)


def _normal_origin(text: str) -> str | None:
    match = _ORIGIN.match(text)
    if match is None:
        return None
    scheme, host, port = match.group(1).lower(), match.group(2).lower(), match.group(3)
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


# -- the API -------------------------------------------------------------------------


def _rum_js() -> bytes:
    return importlib.resources.files("tinct").joinpath("rum.js").read_bytes()


def _error_json(row: RumEventRow) -> dict[str, Any]:
    """A stored error in the API's shape."""
    return {
        "time": rfc3339_ns(row["time_ns"]),
        "time_unix_nano": str(row["time_ns"]),
        "app": row["app"],
        "page": row["page"],
        "user": row["user_id"],
        "kind": row["kind"],
        "message": row["message"],
        "source": row["source"],
        "line": row["line"],
        "col": row["col"],
        "stack": row["stack"],
        "user_agent": row["user_agent"],
    }


def _time_param(request: Request, name: str, default: int) -> int:
    """Unix nanoseconds of an RFC 3339 or Unix-seconds parameter (Prometheus's forms)."""
    text = request.query_params.get(name, "").strip()
    if not text:
        return default
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ApiProblem(
                400, f"{name}: must be RFC 3339 or Unix seconds, got {text[:40]!r}"
            ) from None
        if moment.tzinfo is None:
            raise ApiProblem(400, f"{name}: RFC 3339 time needs a zone (Z or +hh:mm)") from None
        delta = moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000
    if not math.isfinite(seconds) or not 0 <= seconds <= 2**63 / 1e9:
        raise ApiProblem(400, f"{name}: must be between 0 and {2**63 // 10**9} seconds")
    return round(seconds * 1e9)


def _text_param(request: Request, name: str, limit: int) -> str:
    text = request.query_params.get(name, "")
    if len(text) > limit:
        raise ApiProblem(400, f"{name}: must be at most {limit} characters, got {len(text)}")
    return text


def _limit_param(request: Request) -> int:
    text = request.query_params.get("limit", "").strip()
    if not text:
        return DEFAULT_LIST_LIMIT
    try:
        value = int(text, 10)
    except ValueError:
        raise ApiProblem(400, f"limit: must be an integer, got {text[:40]!r}") from None
    if not 1 <= value <= MAX_RUM_EVENT_LIMIT:
        raise ApiProblem(400, f"limit: must be between 1 and {MAX_RUM_EVENT_LIMIT}, got {value}")
    return value


async def _bounded_body(request: Request) -> bytes:
    too_large = ApiProblem(413, f"body: must be at most {MAX_BODY_BYTES} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


class RumAPI:
    """The browser beacon's routes (module docstring).

    Args:
        get_store: returns the store keeping error events
            (:class:`~tinct.storage.rum.RumEventStore`), or ``None`` while it
            opens (503).
        get_sample_sink: returns where SAMPLE_SCHEMA tables go (a sample
            BatchWriter's ``submit``), or ``None`` when metrics are not kept
            (the values still accumulate). Called from a worker thread; what
            it raises is logged, not answered.
        allowed_origins: page origins allowed to report (``*``: any).
        clock: Unix time in nanoseconds.
        max_pages: distinct (app, page) label pairs before pages become ``other``.
        max_apps: distinct apps before apps become ``other``.

    Raises:
        ConfigError: a bad origin, or a cap below 1.

    Threading: requests may be served concurrently; the cumulative values
    are guarded by one lock held for no I/O.
    """

    def __init__(
        self,
        get_store: Callable[[], object | None],
        get_sample_sink: Callable[[], SampleSink | None],
        *,
        allowed_origins: Sequence[str],
        clock: Callable[[], int] = time.time_ns,
        max_pages: int = 200,
        max_apps: int = 20,
    ) -> None:
        try:
            self._series = BrowserSeries(max_pages, max_apps)
        except ValueError as exc:
            raise ConfigError(f"rum {exc}") from exc
        self._store = get_store
        self._sink = get_sample_sink
        self._origins = parse_allowed_origins(allowed_origins)
        self._clock = clock
        self._script = _rum_js()
        self._etag = '"' + hashlib.sha256(self._script).hexdigest()[:20] + '"'

    def routes(self) -> list[BaseRoute]:
        """The routes, to include in the main app."""
        return [
            Route(RUM_JS_PATH, self._js, methods=["GET"]),
            Route(RUM_PATH, guard(self._preflight, "browser errors"), methods=["OPTIONS"]),
            Route(RUM_PATH, guard(self._report, "browser errors"), methods=["POST"]),
            Route(RUM_ERRORS_PATH, guard(self._list, "browser errors"), methods=["GET"]),
        ]

    async def _js(self, request: Request) -> Response:
        headers = {
            "Cache-Control": "public, max-age=3600",
            "ETag": self._etag,
            # Public, static: a page may load it with crossorigin="anonymous".
            "Access-Control-Allow-Origin": "*",
        }
        if self._etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        return Response(self._script, media_type="application/javascript", headers=headers)

    def _cors(self, request: Request) -> dict[str, str]:
        """CORS headers for an allowed origin; raises 403 for another one."""
        origin = request.headers.get("origin")
        if origin is None:
            return {}
        if "*" in self._origins:
            return {"Access-Control-Allow-Origin": "*"}
        if _normal_origin(origin.strip()) in self._origins:
            return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        raise ApiProblem(
            403, f"origin: {origin[:100]!r} may not report here (not in the rum allowed origins)"
        )

    async def _preflight(self, request: Request) -> Response:
        headers = self._cors(request)
        headers.update(
            {
                "Access-Control-Allow-Methods": "POST, OPTIONS",
                "Access-Control-Allow-Headers": "Content-Type",
                "Access-Control-Max-Age": "86400",
                "Allow": "POST, OPTIONS",
            }
        )
        return Response(status_code=204, headers=headers)

    async def _report(self, request: Request) -> Response:
        cors = self._cors(request)
        try:
            raw = await _bounded_body(request)
            try:
                body = json.loads(raw)
            except (ValueError, UnicodeDecodeError, RecursionError) as exc:
                raise ApiProblem(400, f"body: not valid JSON: {str(exc)[:200]}") from None
            try:
                report = parse_report(body)
            except ValueError as exc:
                raise ApiProblem(422, str(exc)) from None
            now_ns = self._clock()
            if report.errors:
                store = self._events_store()
                batch = self._event_batch(report, now_ns, request.headers.get("user-agent", ""))
                try:
                    await run_in_threadpool(store.write_rum_events, batch)
                except StorageError as exc:
                    logger.exception("storing browser errors failed")
                    raise ApiProblem(503, f"store failed, retry later: {exc}") from None
            table = self._series.record(report, now_ns // 1_000_000)
            if table.num_rows:
                await run_in_threadpool(self._write_samples, table)
        except ApiProblem as exc:
            return JSONResponse({"error": str(exc)}, exc.status, headers=cors)
        counts = {"navigations": len(report.navigations), "errors": len(report.errors)}
        return JSONResponse(counts, headers=cors)

    def _events_store(self) -> RumEventStore:
        store = self._store()
        if store is None:
            raise ApiProblem(503, "store: tinct is starting, the store is not open yet")
        if not isinstance(store, RumEventStore):
            raise ApiProblem(501, "store: this store does not keep browser events")
        return store

    def _event_batch(self, report: RumReport, now_ns: int, user_agent: str) -> pa.Table:
        agent = clean_text(user_agent[: TRUNCATED_AT["user_agent"]])
        rows = [
            {
                "time_ns": now_ns,
                "app": report.app,
                "page": report.page,
                "user_id": report.user,
                "user_agent": agent,
                **error,
            }
            for error in report.errors
        ]
        return pa.Table.from_pylist(rows, schema=RUM_EVENT_SCHEMA)

    def _write_samples(self, table: pa.Table) -> None:
        sink = self._sink()
        if sink is None:
            return
        try:
            sink(table)
        except Exception:
            # The next report writes the cumulative values again.
            logger.exception("writing browser samples failed; the next report repairs them")

    async def _list(self, request: Request) -> Response:
        now = self._clock()
        end = _time_param(request, "end", now)
        start = _time_param(request, "start", max(0, end - DEFAULT_WINDOW_NS))
        if start > end:
            raise ApiProblem(400, "start: must not be after end")
        kind = request.query_params.get("kind", "")
        if kind and kind not in ERROR_KINDS:
            raise ApiProblem(
                400, f"kind: must be one of {', '.join(ERROR_KINDS)}, got {kind[:40]!r}"
            )
        query = RumEventQuery(
            start_ns=start,
            end_ns=end,
            app=_text_param(request, "app", MAX_APP_LENGTH),
            kind=kind,
            user_id=_text_param(request, "user", MAX_USER_LENGTH),
            limit=_limit_param(request),
        )
        store = self._events_store()
        try:
            rows = await run_in_threadpool(store.find_rum_events, query)
        except StorageError as exc:
            logger.exception("reading browser errors failed")
            raise ApiProblem(503, f"store failed, retry later: {exc}") from None
        return JSONResponse({"errors": [_error_json(r) for r in rows]})
