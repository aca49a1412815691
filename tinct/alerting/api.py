"""``/api/v1/rules``, ``/api/v1/alerts`` and the alert history, over HTTP.

The first two in Prometheus's shape (HTTP API reference, "Rules" and
"Alerts"): groups with ``name``, ``file``, ``interval``, ``limit``,
``evaluationTime``, ``lastEvaluation`` and ``rules``; alerting rules with
``state``, ``duration``, ``keepFiringFor``, ``labels``, ``annotations``,
``alerts``, recording rules with ``labels``, both with ``name``, ``query``,
``health``, ``lastError``, ``evaluationTime``, ``lastEvaluation`` and
``type``. The ``type`` (``alert``/``record``), ``rule_name[]``,
``rule_group[]``, ``file[]`` and ``exclude_alerts`` parameters filter.
Alert values are ``strconv.FormatFloat(v, 'e', -1, 64)``, as Prometheus
writes them.

``GET /api/tinct/alerts/history?start=&end=&alertname=&limit=`` lists the
transitions to firing and to resolved, newest first.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from tinct.alerting.evaluator import GroupStatus, RuleEvaluator, RuleStatus
from tinct.alerting.rules import AlertingRule
from tinct.alerting.state import FIRING, PENDING, Alert
from tinct.errors import StorageError
from tinct.promql.api_params import parse_limit, parse_time
from tinct.promql.result import BadQueryError
from tinct.storage.alert_history import (
    MAX_ALERT_EVENT_LIMIT,
    AlertEvent,
    AlertEventQuery,
    AlertHistoryStore,
)

__all__ = ["AlertsAPI", "format_alert_value"]

_TYPES = {"alert": "alerting", "record": "recording"}
_ZERO_TIME = "0001-01-01T00:00:00Z"
_DAY_MS = 86_400_000


def format_alert_value(value: float) -> str:
    """``strconv.FormatFloat(value, 'e', -1, 64)``: ``1e+00``, ``1.5e-07``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0e+00" if math.copysign(1, value) < 0 else "0e+00"
    mantissa, exp = f"{value!r}".partition("e")[::2]
    sign = "-" if mantissa.startswith("-") else ""
    mantissa = mantissa.lstrip("-")
    whole, _, frac = mantissa.partition(".")
    digits = (whole + frac).lstrip("0")
    # Position of the decimal point relative to the first significant digit.
    point = len(whole) - (len(whole + frac) - len((whole + frac).lstrip("0")))
    point += int(exp) if exp else 0
    digits = digits.rstrip("0")
    e = point - 1
    head = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{sign}{head}e{'-' if e < 0 else '+'}{abs(e):02d}"


def _time(ms: int) -> str:
    if not ms:
        return _ZERO_TIME
    when = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _alert_json(alert: Alert) -> dict[str, Any]:
    out: dict[str, Any] = {
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "state": alert.state,
        "activeAt": _time(alert.active_at_ms),
        "value": format_alert_value(alert.value),
    }
    if alert.keep_firing_since_ms:
        out["keepFiringSince"] = _time(alert.keep_firing_since_ms)
    return out


def _rule_json(status: RuleStatus, group: GroupStatus, exclude_alerts: bool) -> dict[str, Any]:
    rule = status.rule
    common = {
        "query": rule.expr,
        "health": status.health,
        "lastError": status.last_error,
        "evaluationTime": status.evaluation_s,
        "lastEvaluation": _time(status.last_evaluation_ms),
    }
    labels = {**group.group.labels, **rule.labels}
    if isinstance(rule, AlertingRule):
        states = {a.state for a in status.alerts}
        state = FIRING if FIRING in states else PENDING if PENDING in states else "inactive"
        out: dict[str, Any] = {
            "state": state,
            "name": rule.alert,
            "duration": rule.for_s,
            "keepFiringFor": rule.keep_firing_for_s,
            "labels": labels,
            "annotations": dict(rule.annotations),
            **common,
            "type": "alerting",
        }
        if not exclude_alerts:
            out["alerts"] = [_alert_json(a) for a in status.alerts]
        return out
    return {"name": rule.record, "labels": labels, **common, "type": "recording"}


def _event_json(event: AlertEvent) -> dict[str, Any]:
    return {
        "time": _time(event.time_ms),
        "alertname": event.alertname,
        "state": event.state,
        "labels": dict(event.labels),
        "annotations": dict(event.annotations),
        "value": format_alert_value(event.value),
        "activeAt": _time(event.active_at_ms),
    }


def _bad(message: str) -> Response:
    return JSONResponse(
        {"status": "error", "errorType": "bad_data", "error": message}, status_code=400
    )


class AlertsAPI:
    """Serves the rules, alerts and alert history APIs.

    Args:
        get_evaluator: the running evaluator, or None when no rules are
            loaded (the APIs then list nothing).
        get_store: where the alert history is kept, or None (the history
            API then answers 503).
        clock: seconds since the epoch (the history's default window).
        get_alertmanagers: the Alertmanager endpoints alerts are sent to
            (``/api/v1/alertmanagers``).
    """

    def __init__(
        self,
        get_evaluator: Callable[[], RuleEvaluator | None],
        get_store: Callable[[], AlertHistoryStore | None],
        clock: Callable[[], float] | None = None,
        get_alertmanagers: Callable[[], list[str]] = list,
    ) -> None:
        import time

        self._evaluator = get_evaluator
        self._store = get_store
        self._alertmanagers = get_alertmanagers
        self._clock = clock or time.time

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/api/v1/rules", self.rules, methods=["GET", "POST"]),
            Route("/api/v1/alerts", self.alerts, methods=["GET", "POST"]),
            Route("/api/tinct/alerts/history", self.history, methods=["GET"]),
            Route("/api/v1/alertmanagers", self.alertmanagers, methods=["GET"]),
        ]

    async def alertmanagers(self, request: Request) -> Response:
        """Prometheus's ``/api/v1/alertmanagers``: where alerts are sent."""
        active = [{"url": url} for url in self._alertmanagers()]
        data = {"activeAlertmanagers": active, "droppedAlertmanagers": []}
        return JSONResponse({"status": "success", "data": data})

    def _groups(self) -> list[GroupStatus]:
        evaluator = self._evaluator()
        return evaluator.groups() if evaluator is not None else []

    async def rules(self, request: Request) -> Response:
        params = request.query_params
        kind = params.get("type", "")
        if kind and kind not in _TYPES:
            return _bad(f'invalid parameter "type": not supported value {kind!r}')
        wanted = _TYPES.get(kind)
        names = set(params.getlist("rule_name[]"))
        group_names = set(params.getlist("rule_group[]"))
        files = set(params.getlist("file[]"))
        exclude = params.get("exclude_alerts", "false").lower() == "true"
        groups = []
        for group in await run_in_threadpool(self._groups):
            if group_names and group.group.name not in group_names:
                continue
            if files and group.group.file not in files:
                continue
            rules = []
            for status in group.rules:
                rule = _rule_json(status, group, exclude)
                if wanted and rule["type"] != wanted:
                    continue
                if names and rule["name"] not in names:
                    continue
                rules.append(rule)
            if (wanted or names) and not rules:
                continue
            groups.append(
                {
                    "name": group.group.name,
                    "file": group.group.file,
                    "rules": rules,
                    "interval": group.interval_s,
                    "limit": group.group.limit,
                    "evaluationTime": group.evaluation_s,
                    "lastEvaluation": _time(group.last_evaluation_ms),
                }
            )
        return JSONResponse({"status": "success", "data": {"groups": groups}})

    async def alerts(self, request: Request) -> Response:
        alerts = [
            _alert_json(alert)
            for group in await run_in_threadpool(self._groups)
            for status in group.rules
            for alert in status.alerts
        ]
        return JSONResponse({"status": "success", "data": {"alerts": alerts}})

    async def history(self, request: Request) -> Response:
        params = request.query_params
        now_ms = int(self._clock() * 1000)
        try:
            end = parse_time(params["end"], "end") if params.get("end") else now_ms
            start = parse_time(params["start"], "start") if params.get("start") else end - _DAY_MS
            limit = parse_limit(params.get("limit", ""))
        except BadQueryError as exc:
            return _bad(str(exc))
        if end < start:
            return _bad('invalid parameter "end": end timestamp must not be before start time')
        if limit > MAX_ALERT_EVENT_LIMIT:
            return _bad(f'invalid parameter "limit": at most {MAX_ALERT_EVENT_LIMIT}, got {limit}')
        store = self._store()
        if store is None:
            return JSONResponse(
                {"status": "error", "errorType": "unavailable", "error": "no alert history store"},
                status_code=503,
            )
        query = AlertEventQuery(start, end, params.get("alertname", ""), limit or 1000)
        try:
            events = await run_in_threadpool(store.find_alert_events, query)
        except StorageError as exc:
            return JSONResponse(
                {"status": "error", "errorType": "internal", "error": str(exc)}, status_code=500
            )
        return JSONResponse({"status": "success", "data": [_event_json(e) for e in events]})
