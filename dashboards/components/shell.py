"""The frame around every page: navigation by layer, the time picker, refresh."""

from __future__ import annotations

from dash import dcc, html

from tinct.dashboards import ids
from tinct.dashboards.timerange import REFRESH_INTERVALS, RELATIVE_RANGES

__all__ = ["shell", "LAYER_LINKS", "CUSTOM"]

CUSTOM = "custom"
# Navigation by layer: each opens the layer's built-in dashboard.
LAYER_LINKS = (
    ("Infrastructure", "/d/tinct-infrastructure/infrastructure"),
    ("Components", "/d/tinct-components/components"),
    ("Services", "/d/tinct-services/services"),
    ("Interfaces", "/d/tinct-interfaces/interfaces"),
    ("Users", "/d/tinct-users/users"),
)
_PAGES = (
    ("Topology", "/topology"),
    ("Traces", "/traces"),
    ("Explore", "/explore"),
    ("Alerts", "/alerting"),
    ("Dye", "/dye"),
    ("Dashboards", "/dashboards"),
)


def _links(items: tuple[tuple[str, str], ...], css: str) -> list[dcc.Link]:
    return [dcc.Link(label, href=href, className=css) for label, href in items]


def time_controls() -> html.Div:
    options = [{"label": label, "value": value} for value, label in RELATIVE_RANGES]
    options.append({"label": "Custom range", "value": CUSTOM})
    refresh = [{"label": r or "Off", "value": r} for r in REFRESH_INTERVALS]
    return html.Div(
        className="time-controls",
        children=[
            dcc.Dropdown(
                id=ids.RANGE, options=options, value="now-1h", clearable=False, className="range"
            ),
            dcc.Input(
                id=ids.CUSTOM_FROM,
                type="text",
                placeholder="from",
                debounce=True,
                style={"width": "140px"},
            ),
            dcc.Input(
                id=ids.CUSTOM_TO,
                type="text",
                placeholder="to",
                debounce=True,
                style={"width": "140px"},
            ),
            html.Button("Apply", id=ids.CUSTOM_APPLY, n_clicks=0),
            dcc.Dropdown(
                id=ids.TIMEZONE,
                options=[
                    {"label": "Browser time", "value": "browser"},
                    {"label": "UTC", "value": "utc"},
                ],
                value="browser",
                clearable=False,
                className="tz",
            ),
            dcc.Dropdown(
                id=ids.REFRESH, options=refresh, value="", clearable=False, className="refresh"
            ),
        ],
    )


def shell() -> html.Div:
    """The app's whole layout; pages render into ``ids.PAGE``."""
    return html.Div(
        className="shell",
        children=[
            dcc.Location(id=ids.URL, refresh="callback-nav"),
            dcc.Store(id=ids.TZ_OFFSET),
            dcc.Interval(id=ids.REFRESH_TIMER, interval=10_000, disabled=True),
            html.Header(
                className="topbar",
                children=[
                    dcc.Link("tinct", href="/", className="brand"),
                    html.Nav(
                        id=ids.NAV,
                        children=[
                            *_links(LAYER_LINKS, "nav-layer"),
                            html.Span("|", className="nav-sep"),
                            *_links(_PAGES, "nav-page"),
                        ],
                    ),
                    time_controls(),
                ],
            ),
            html.Main(id=ids.PAGE, className="page"),
        ],
    )
