"""``/dashboards``: every dashboard, built-in and from the dashboards folder.

A file that failed to load is listed with its error, so importing a Grafana
dashboard that tinct cannot read says why.
"""

from __future__ import annotations

from typing import Any

from dash import dcc, html

from tinct.dashboards.context import Context
from tinct.dashboards.urlstate import ViewState

__all__ = ["layout"]


def layout(ctx: Context, view: ViewState, **_: str) -> Any:
    boards = sorted(ctx.folder.dashboards().values(), key=lambda d: d.title.lower())
    rows = [
        html.Tr(
            [
                html.Td(dcc.Link(d.title, href=f"/d/{d.uid}/{d.slug}")),
                html.Td(", ".join(d.tags)),
                html.Td(d.uid),
            ]
        )
        for d in boards
    ]
    errors = ctx.folder.errors()
    return html.Div(
        [
            html.H2("Dashboards"),
            html.Table(
                className="simple",
                children=[html.Tr([html.Th("title"), html.Th("tags"), html.Th("uid")]), *rows],
            ),
            *(
                [
                    html.H3("Files that could not be loaded"),
                    html.Ul(
                        [html.Li(f"{name}: {message}") for name, message in sorted(errors.items())]
                    ),
                ]
                if errors
                else []
            ),
        ]
    )
