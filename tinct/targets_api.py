"""``GET /api/v1/targets``: the collection targets, in Prometheus's shape.

Prometheus's HTTP API reference ("Targets"): ``activeTargets`` with
``discoveredLabels``, ``labels``, ``scrapePool``, ``scrapeUrl``,
``globalUrl``, ``lastError``, ``lastScrape`` (RFC 3339), ``lastScrapeDuration``
(seconds), ``health`` (``up``/``down``/``unknown``), ``scrapeInterval`` and
``scrapeTimeout``; ``droppedTargets``; the ``state`` (``active``,
``dropped``, ``any``) and ``scrapePool`` query parameters. tinct's built-in
collectors (host, components) are targets like any other, with an empty
``scrapeUrl``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from tinct.collectors.base import Target
from tinct.collectors.scheduler import Scheduler, TargetHealth
from tinct.durations import format_duration

__all__ = ["TargetsAPI"]

_STATES = ("active", "dropped", "any")


class TargetsAPI:
    """Serves ``/api/v1/targets`` from the running scheduler.

    Args:
        scheduler: returns the scheduler, or None while collection has not
            started (the API then lists no targets).
    """

    def __init__(self, scheduler: Callable[[], Scheduler | None]) -> None:
        self._scheduler = scheduler

    def routes(self) -> list[BaseRoute]:
        return [Route("/api/v1/targets", self.targets, methods=["GET"])]

    async def targets(self, request: Request) -> Response:
        state = request.query_params.get("state", "any") or "any"
        if state not in _STATES:
            return JSONResponse(
                {
                    "status": "error",
                    "errorType": "bad_data",
                    "error": f"state: must be one of {', '.join(_STATES)}, got {state!r}",
                },
                status_code=400,
            )
        pool = request.query_params.get("scrapePool")
        scheduler = self._scheduler()
        listed = scheduler.targets() if scheduler is not None else []
        active = [
            _active(target, health)
            for target, health in listed
            if pool is None or target.job == pool
        ]
        data: dict[str, Any] = {"activeTargets": [], "droppedTargets": []}
        if state in ("active", "any"):
            data["activeTargets"] = active
        return JSONResponse({"status": "success", "data": data})


def _active(target: Target, health: TargetHealth) -> dict[str, Any]:
    last = (
        dt.datetime.fromtimestamp(health.last_scrape, dt.UTC).isoformat().replace("+00:00", "Z")
        if health.last_scrape
        else "0001-01-01T00:00:00Z"
    )
    return {
        "discoveredLabels": dict(target.discovered_labels),
        "labels": dict(target.labels),
        "scrapePool": target.job,
        "scrapeUrl": target.scrape_url,
        "globalUrl": target.scrape_url,
        "lastError": health.last_error,
        "lastScrape": last,
        "lastScrapeDuration": health.last_duration,
        "health": health.health,
        "scrapeInterval": format_duration(target.interval),
        "scrapeTimeout": format_duration(target.timeout),
    }
