"""The web UI: a Dash app over tinct's query layer, served at ``/``.

``tinct up`` mounts :func:`create_app`'s Flask server on the main port after
every API route (``tinct.main_app.wsgi_ui``), so ``/api/...`` answers first
and every other path is a page: ``/`` the overview, ``/d/<uid>/<slug>`` a
dashboard (Grafana's URLs), ``/explore``, ``/topology``, ``/traces``,
``/alerting``, ``/dye``. Pages read through :class:`~tinct.dashboards.query.TinctClient`
only; the time range, variables and every page's choices live in the URL.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import dash

from tinct.dashboards.callbacks import register_all
from tinct.dashboards.components.shell import shell
from tinct.dashboards.context import Context
from tinct.dashboards.query import TinctClient

__all__ = ["create_app"]

_ASSETS = Path(__file__).with_name("assets")


def create_app(
    client: TinctClient,
    folder: Any,
    *,
    clock: Callable[[], float] = time.time,
    workers: int = 8,
) -> dash.Dash:
    """The Dash app; serve ``app.server`` (a Flask WSGI app).

    Args:
        client: the query layer (tinct's HTTP APIs).
        folder: the dashboards by uid (``tinct.dashboards.folder.DashboardFolder``).
        clock: Unix seconds, "now" for relative time ranges.
        workers: threads the panels of one page are queried on.
    """
    ctx = Context(client, folder, clock, ThreadPoolExecutor(workers, thread_name_prefix="panel"))
    app = dash.Dash(
        __name__,
        title="tinct",
        assets_folder=str(_ASSETS),
        serve_locally=True,
        suppress_callback_exceptions=True,
        update_title="",
        # Plotly and the other lazy chunks load with the page, beside the
        # first callback, not after it.
        eager_loading=True,
    )
    app.layout = shell()
    register_all(app, ctx)
    return app


def create_ui(
    main_url: Callable[[], str],
    *,
    dashboards_path: Path | None = None,
    admin_token: str | None = None,
) -> dash.Dash:
    """The UI of one ``tinct up``: its APIs at ``main_url()``, the dashboards
    folder (and the built-in layer dashboards)."""
    from tinct.dashboards.builtin import builtin_dashboards
    from tinct.dashboards.folder import DashboardFolder

    client = TinctClient(main_url, admin_token=admin_token)
    folder = DashboardFolder(dashboards_path, builtin=builtin_dashboards)
    return create_app(client, folder)
