"""The pages, one per module, each with ``layout(ctx, view, **path_params)``.

:func:`route` picks the page for a path, as Grafana's URLs have them
(``/d/<uid>/<slug>`` for dashboards).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from dash import html

from tinct.dashboards.context import Context
from tinct.dashboards.urlstate import ViewState

__all__ = ["route", "ROUTES"]

Layout = Callable[..., Any]


def _routes() -> list[tuple[re.Pattern[str], Layout]]:
    from tinct.dashboards.pages import (
        alerting,
        dashboard,
        dashboards,
        dye,
        explore,
        home,
        topology,
        traces,
    )

    return [
        (re.compile(r"/\Z"), home.layout),
        (re.compile(r"/d/(?P<uid>[^/]+)(?:/(?P<slug>[^/]*))?/?\Z"), dashboard.layout),
        (re.compile(r"/dashboards/?\Z"), dashboards.layout),
        (re.compile(r"/explore/?\Z"), explore.layout),
        (re.compile(r"/topology/?\Z"), topology.layout),
        (re.compile(r"/traces/?\Z"), traces.layout),
        (re.compile(r"/alerting/?\Z"), alerting.layout),
        (re.compile(r"/dye/?\Z"), dye.layout),
    ]


ROUTES: list[tuple[re.Pattern[str], Layout]] = []


def route(ctx: Context, pathname: str, view: ViewState) -> Any:
    """The page for ``pathname``; a "not found" page when none matches."""
    if not ROUTES:
        ROUTES.extend(_routes())
    for pattern, layout in ROUTES:
        match = pattern.match(pathname)
        if match:
            params = {k: v for k, v in match.groupdict().items() if v is not None}
            return layout(ctx, view, **params)
    return html.Div(className="not-found", children=[html.H2("Page not found"), html.P(pathname)])
