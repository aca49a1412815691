"""The query layer the web UI reads through: tinct's own HTTP APIs.

The dashboards talk to tinct the way Grafana talks to its data sources: the
Prometheus HTTP API for metrics and variables, Jaeger's query API for
traces, tinct's ``/api/tinct/...`` for topology, dye rules, logs and alert
history, and Alertmanager's v2 API (found through Prometheus's
``/api/v1/alertmanagers``) for silences. So the UI needs no store, runs in
``tinct up`` or beside it, and everything it shows is what the APIs answer.

:class:`TinctClient` keeps one HTTP connection pool and a short-lived cache of
GET answers: the panels of a dashboard drawn at the same moment, or redrawn by
several browsers, ask the same questions. The cache key is the path and the
parameters, so a new time range is a new question. Thread-safe: Dash runs
callbacks on a thread pool.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx

__all__ = ["TinctClient", "QueryError", "RangeResult"]

# (labels, times in Unix seconds, values)
RangeResult = tuple[dict[str, str], list[float], list[float]]

_CACHE_ENTRIES = 512


class QueryError(Exception):
    """An API answered with an error (its message), or could not be reached."""


class TinctClient:
    """tinct's HTTP APIs, for the UI.

    Args:
        base_url: tinct's main URL (``http://127.0.0.1:3000``), or a callable
            returning it (known only once the port is bound).
        admin_token: sent as a bearer token on write calls (dye rules).
        cache_seconds: how long a GET answer is reused.
        transport: an httpx transport (tests pass an ASGI transport).
        clock: monotonic seconds, for the cache.
    """

    def __init__(
        self,
        base_url: str | Callable[[], str],
        *,
        admin_token: str | None = None,
        cache_seconds: float = 5.0,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._base = base_url if callable(base_url) else (lambda: base_url)
        self._token = admin_token
        self._ttl = cache_seconds
        self._clock = clock
        self._http = httpx.Client(timeout=timeout_s, transport=transport)
        self._cache: OrderedDict[tuple[str, tuple[tuple[str, str], ...]], tuple[float, Any]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()

    def close(self) -> None:
        self._http.close()

    # -- plumbing -------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return self._base().rstrip("/") + path

    def get(self, path: str, params: Mapping[str, Any] | None = None, *, cache: bool = True) -> Any:
        """GET ``path`` and return its JSON, from the cache when fresh.

        Raises:
            QueryError: not reachable, not JSON, or an error status.
        """
        items = tuple(
            sorted(
                (k, str(v))
                for k, vs in (params or {}).items()
                for v in (vs if isinstance(vs, list | tuple) else [vs])
            )
        )
        key = (path, items)
        now = self._clock()
        if cache and self._ttl > 0:
            with self._lock:
                hit = self._cache.get(key)
                if hit is not None and now - hit[0] < self._ttl:
                    self._cache.move_to_end(key)
                    return hit[1]
        body = self._send("GET", path, params=list(items))
        if cache and self._ttl > 0:
            with self._lock:
                self._cache[key] = (now, body)
                while len(self._cache) > _CACHE_ENTRIES:
                    self._cache.popitem(last=False)
        return body

    def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        url = kwargs.pop("url", None) or self._url(path)
        try:
            response = self._http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise QueryError(f"{method} {path}: {exc}") from exc
        if response.status_code == 204 or not response.content:
            if response.status_code >= 400:
                raise QueryError(f"{method} {path}: HTTP {response.status_code}")
            return None
        try:
            body = response.json()
        except ValueError:
            raise QueryError(
                f"{method} {path}: HTTP {response.status_code}: {response.text[:200]}"
            ) from None
        if response.status_code >= 400:
            raise QueryError(_error_text(body) or f"{method} {path}: HTTP {response.status_code}")
        return body

    def _write_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}

    # -- metrics (Prometheus HTTP API) ----------------------------------------------

    def query_range(
        self, expr: str, start_s: float, end_s: float, step_s: float
    ) -> list[RangeResult]:
        """A range query's series: (labels, times, values); NaN where stale."""
        body = self.get(
            "/api/v1/query_range",
            {"query": expr, "start": _num(start_s), "end": _num(end_s), "step": _num(step_s)},
        )
        data = body["data"]
        if data["resultType"] != "matrix":
            raise QueryError(f"expected a range vector, got {data['resultType']}")
        out: list[RangeResult] = []
        for series in data["result"]:
            times = [float(t) for t, _ in series.get("values", [])]
            values = [_float(v) for _, v in series.get("values", [])]
            out.append((dict(series["metric"]), times, values))
        return out

    def query(self, expr: str, time_s: float) -> list[tuple[dict[str, str], float]]:
        """An instant query's vector (a scalar comes back as one unlabelled sample)."""
        body = self.get("/api/v1/query", {"query": expr, "time": _num(time_s)})
        data = body["data"]
        kind, result = data["resultType"], data["result"]
        if kind == "vector":
            return [(dict(s["metric"]), _float(s["value"][1])) for s in result]
        if kind in ("scalar", "string"):
            return [({}, _float(result[1]))]
        if kind == "matrix":
            return [(dict(s["metric"]), _float(s["values"][-1][1])) for s in result if s["values"]]
        raise QueryError(f"unexpected result type {kind}")

    def label_names(self, matchers: Sequence[str], start_s: float, end_s: float) -> list[str]:
        params: dict[str, Any] = {"start": _num(start_s), "end": _num(end_s)}
        if matchers:
            params["match[]"] = list(matchers)
        return list(self.get("/api/v1/labels", params)["data"])

    def label_values(
        self, label: str, matchers: Sequence[str], start_s: float, end_s: float
    ) -> list[str]:
        params: dict[str, Any] = {"start": _num(start_s), "end": _num(end_s)}
        if matchers:
            params["match[]"] = list(matchers)
        return list(self.get(f"/api/v1/label/{label}/values", params)["data"])

    def metric_names(self) -> list[str]:
        return list(self.get("/api/v1/label/__name__/values")["data"])

    # -- traces (Jaeger query API) and logs -----------------------------------------

    def services(self) -> list[str]:
        return list(self.get("/api/services")["data"] or [])

    def operations(self, service: str) -> list[str]:
        return list(self.get(f"/api/services/{service}/operations")["data"] or [])

    def find_traces(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        return list(self.get("/api/traces", params)["data"] or [])

    def trace(self, trace_id: str) -> dict[str, Any] | None:
        try:
            data = self.get(f"/api/traces/{trace_id}")["data"]
        except QueryError as exc:
            if "not found" in str(exc):
                return None
            raise
        return data[0] if data else None

    def logs(self, trace_id: str) -> list[dict[str, Any]]:
        return list(self.get("/api/tinct/logs", {"trace_id": trace_id})["logs"])

    # -- topology ----------------------------------------------------------------------

    def topology(self, params: Mapping[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = self.get("/api/tinct/topology", params)
        return body

    # -- alerts --------------------------------------------------------------------------

    def rules(self) -> list[dict[str, Any]]:
        return list(self.get("/api/v1/rules", cache=False)["data"]["groups"])

    def alerts(self) -> list[dict[str, Any]]:
        return list(self.get("/api/v1/alerts", cache=False)["data"]["alerts"])

    def alert_history(self, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
        body = self.get(
            "/api/tinct/alerts/history",
            {"start": start_ms / 1000, "end": end_ms / 1000},
            cache=False,
        )
        return list(body["data"])

    def alertmanagers(self) -> list[str]:
        """Alertmanager base URLs (``/api/v2/alerts`` stripped)."""
        body = self.get("/api/v1/alertmanagers")
        urls = [a["url"] for a in body["data"]["activeAlertmanagers"]]
        return [u.removesuffix("/api/v2/alerts") for u in urls]

    def silences(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for base in self.alertmanagers():
            url = base + "/api/v2/silences"
            found += self._send("GET", url, url=url) or []
        return found

    def add_silence(
        self, matchers: Mapping[str, str], ends_at: str, created_by: str, comment: str
    ) -> list[str]:
        """Silence the alerts with these labels in every Alertmanager; their silence ids."""
        body = {
            "matchers": [
                {"name": k, "value": v, "isRegex": False, "isEqual": True}
                for k, v in sorted(matchers.items())
            ],
            "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "endsAt": ends_at,
            "createdBy": created_by,
            "comment": comment,
        }
        ids = []
        managers = self.alertmanagers()
        if not managers:
            raise QueryError("no Alertmanager is configured (alerting.alertmanagers)")
        failed = []
        for base in managers:
            url = base + "/api/v2/silences"
            try:
                answer = self._send("POST", url, url=url, json=body)
            except QueryError as exc:
                failed.append(str(exc))
                continue
            ids.append(str((answer or {}).get("silenceID", "")))
        if failed:
            made = f" (silences {', '.join(ids)} were created)" if ids else ""
            raise QueryError("; ".join(failed) + made)
        return ids

    # -- dye rules -----------------------------------------------------------------------

    def dye_rules(self) -> list[dict[str, Any]]:
        return list(self.get("/api/tinct/dye-rules", cache=False)["rules"])

    def add_dye_rule(self, rule: Mapping[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = self._send(
            "POST", "/api/tinct/dye-rules", json=dict(rule), headers=self._write_headers()
        )
        return body

    def end_dye_rule(self, rule_id: str) -> None:
        path = f"/api/tinct/dye-rules/{quote(rule_id, safe='')}"
        self._send("DELETE", path, headers=self._write_headers())


def _num(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _float(text: Any) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def _error_text(body: Any) -> str:
    if isinstance(body, str):  # Alertmanager answers errors as a bare JSON string
        return body
    if not isinstance(body, dict):
        return ""
    error = body.get("error")
    if isinstance(error, dict):
        return str(error.get("message", ""))
    if error:
        return str(error)
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        return "; ".join(str(e.get("msg", e)) if isinstance(e, dict) else str(e) for e in errors)
    return ""
