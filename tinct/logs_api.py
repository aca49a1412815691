"""The logs API on the main port: a trace's log records, for the trace views.

One route::

    GET /api/tinct/logs?trace_id=<32 hex>[&span_id=<16 hex>][&limit=N]
        200 {"logs": [record, ...]}        oldest first

``trace_id`` is required; ``span_id`` keeps one span's records; ``limit``
defaults to 1000, at most 10000. A record::

    {"time": "2024-05-01T12:00:00.123456789Z",     # RFC 3339 UTC, nanoseconds
     "time_unix_nano": "1714564800123456789",      # exact, as OTLP/JSON writes it
     "observed_time_unix_nano": "1714564800123999000",
     "trace_id": "5b8efff798038103d269b633813fc60c",
     "span_id": "eee19b7ec3c1b174",                # "" outside a span
     "flags": 1,
     "severity_number": 5, "severity_text": "DEBUG",
     "body": "cache miss for 42",                  # any JSON value (OTLP AnyValue)
     "event_name": "",
     "attributes": {"code.line.number": 12, "tinct.dye": "user:42"},
     "resource": {"service.name": "shop"},
     "service": "shop",
     "scope": {"name": "shop.cache", "version": ""},
     "dye": "user:42"}

Attribute and body values are plain JSON (:func:`tinct.logs.plain_value`):
numbers and booleans keep their type, arrays and key/value lists become JSON
arrays and objects. Errors answer ``{"error": "<param>: <what is wrong>"}``
like the dye rules API: 400 for a missing or malformed parameter, 503 while
the store opens, 501 for a store without logs, 500 when it fails.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from tinct.api_errors import ApiProblem, guard
from tinct.logs import MAX_LOG_LIMIT, LogQuery, LogRow, plain_value
from tinct.selfmetrics import SelfMetrics
from tinct.storage.base import LogReader

__all__ = ["LogsAPI", "LOGS_PATH", "DEFAULT_LIMIT", "log_json", "rfc3339_ns"]


LOGS_PATH = "/api/tinct/logs"
DEFAULT_LIMIT = 1000
_HEX = {16: re.compile(r"[0-9a-fA-F]{32}\Z"), 8: re.compile(r"[0-9a-fA-F]{16}\Z")}


def rfc3339_ns(unix_ns: int) -> str:
    """``2024-05-01T12:00:00.123456789Z``: Unix nanoseconds as RFC 3339 UTC."""
    seconds, nanos = divmod(unix_ns, 10**9)
    try:
        moment = dt.datetime.fromtimestamp(seconds, dt.UTC)
    except (OverflowError, OSError, ValueError):  # past year 9999
        return ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


def _values(keys: list[str], types: list[int], texts: list[str]) -> dict[str, Any]:
    return {k: plain_value(t, v) for k, t, v in zip(keys, types, texts, strict=True)}


def log_json(row: LogRow) -> dict[str, Any]:
    """A stored record in the API's shape (module docstring)."""
    return {
        "time": rfc3339_ns(row["time_ns"]),
        "time_unix_nano": str(row["time_ns"]),
        "observed_time_unix_nano": str(row["observed_time_ns"]),
        "trace_id": row["trace_id"].hex(),
        "span_id": row["span_id"].hex(),
        "flags": row["flags"],
        "severity_number": row["severity_number"],
        "severity_text": row["severity_text"],
        "body": plain_value(row["body_type"], row["body"]),
        "event_name": row["event_name"],
        "attributes": _values(row["attr_keys"], row["attr_types"], row["attr_values"]),
        "resource": _values(row["resource_keys"], row["resource_types"], row["resource_values"]),
        "service": row["service"],
        "scope": {"name": row["scope_name"], "version": row["scope_version"]},
        "dye": row["dye"],
    }


def _hex_id(request: Request, name: str, size: int, *, required: bool) -> bytes:
    text = request.query_params.get(name, "").strip()
    if not text:
        if required:
            raise ApiProblem(400, f"{name}: is required ({size * 2} hex digits)")
        return b""
    if not _HEX[size].match(text):
        raise ApiProblem(400, f"{name}: must be {size * 2} hex digits, got {text[:80]!r}")
    return bytes.fromhex(text)


def _limit(request: Request) -> int:
    text = request.query_params.get("limit", "").strip()
    if not text:
        return DEFAULT_LIMIT
    try:
        value = int(text, 10)
    except ValueError:
        raise ApiProblem(400, f"limit: must be an integer, got {text[:40]!r}") from None
    if not 1 <= value <= MAX_LOG_LIMIT:
        raise ApiProblem(400, f"limit: must be between 1 and {MAX_LOG_LIMIT}, got {value}")
    return value


class LogsAPI:
    """The logs route over a :class:`~tinct.storage.base.LogReader`.

    Args:
        store: returns the store, or ``None`` while it is opening (503).
        metrics: where store call durations are observed.
    """

    def __init__(self, store: Callable[[], object | None], metrics: SelfMetrics) -> None:
        self._store = store
        self._metrics = metrics

    def routes(self) -> list[BaseRoute]:
        """The routes, to include in the main app."""
        return [Route(LOGS_PATH, guard(self._list, "logs"), methods=["GET"])]

    async def _list(self, request: Request) -> Response:
        query = LogQuery(
            trace_id=_hex_id(request, "trace_id", 16, required=True),
            span_id=_hex_id(request, "span_id", 8, required=False),
            limit=_limit(request),
        )
        store = self._store()
        if store is None:
            raise ApiProblem(503, "store: tinct is starting, the store is not open yet")
        if not isinstance(store, LogReader):
            raise ApiProblem(501, "store: this store does not keep logs")
        histogram = self._metrics.store_query_duration.labels("find_logs")

        def timed() -> list[LogRow]:
            with histogram.time():
                return store.find_logs(query)

        rows = await run_in_threadpool(timed)
        return JSONResponse({"logs": [log_json(r) for r in rows]})
