"""Callbacks: thin, they parse inputs, call the query layer and return components."""

from __future__ import annotations

import dash

from tinct.dashboards.context import Context

__all__ = ["register_all"]


def register_all(app: dash.Dash, ctx: Context) -> None:
    """Attach every callback of the UI to ``app``."""
    from tinct.dashboards.callbacks import (
        alerting,
        dashboard,
        dye,
        explore,
        shell,
        topology,
        traces,
    )

    for module in (shell, dashboard, explore, topology, traces, alerting, dye):
        module.register(app, ctx)
