"""Panels, rows and their queries, as Grafana's dashboard JSON stores them.

The shapes follow Grafana's dashboard schema as exported by Grafana 8-12
(``schemaVersion`` 30-41; ``packages/grafana-schema/src/schema/dashboard/v0``
and ``public/app/features/dashboard/state/PanelModel.ts``): ``gridPos`` on a
24-column grid, ``targets`` with Prometheus's ``expr``/``legendFormat``/
``instant``/``range``/``format``, ``fieldConfig.defaults`` for units and
thresholds. Two legacy panels are read as their successors, the way Grafana
auto-migrates them (``graph`` -> ``timeseries``, ``singlestat`` -> ``stat``;
their settings in ``tinct.dashboards.field_config``); a type
tinct does not draw is kept as written so the UI can say so.

The layout of rows is normalised here: in Grafana's model the panels of an
expanded row follow it at the top level while a collapsed row holds them in
``row.panels`` (``DashboardModel.toggleRow``); :func:`parse_items` gives every
:class:`Row` its panels either way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from tinct.dashboards.field_config import parse_field_config
from tinct.dashboards.frames import FieldConfig
from tinct.dashboards.reading import Node

__all__ = [
    "GRID_COLUMNS",
    "PANEL_TYPES",
    "LEGACY_PANEL_TYPES",
    "LEGEND_AUTO",
    "DataSourceRef",
    "GridPos",
    "Target",
    "Panel",
    "Row",
    "datasource_ref",
    "parse_items",
]

GRID_COLUMNS = 24
# Panel types tinct draws ("row" is a Row, not a Panel).
PANEL_TYPES = frozenset(
    {
        "timeseries",
        "stat",
        "gauge",
        "bargauge",
        "table",
        "heatmap",
        "text",
        "row",
        "topology",
        "traces",
        "alertlist",
    }
)
# Grafana's auto-migrations of Angular panels (graph -> timeseries, singlestat -> stat).
LEGACY_PANEL_TYPES = {"graph": "timeseries", "singlestat": "stat"}
# legendFormat "__auto": Grafana's automatic series names; "" is the verbose name{labels}.
LEGEND_AUTO = "__auto"
_FORMATS = ("time_series", "table", "heatmap")


@dataclass(frozen=True)
class DataSourceRef:
    """A ``datasource`` reference: ``{"type": ..., "uid": ...}``, or a legacy name (as uid)."""

    uid: str = ""
    type: str = ""


@dataclass(frozen=True)
class GridPos:
    """A position on Grafana's grid: 24 columns, rows of 30 px (``gridPos``)."""

    x: int = 0
    y: int = 0
    w: int = 6
    h: int = 3


@dataclass(frozen=True)
class Target:
    """One query of a panel (a Prometheus target).

    Attributes:
        ref_id: ``refId`` (``A``, ``B``...; assigned in order when missing).
        expr: the PromQL expression, variables not yet interpolated.
        legend_format: ``legendFormat``; ``""`` is the verbose ``name{labels}``,
            :data:`LEGEND_AUTO` (``__auto``) Grafana's automatic naming.
        instant, range: run as an instant query, a range query (or both).
        format: ``time_series``, ``table`` or ``heatmap``.
        interval: the target's minimum step (``"30s"``; "" for the panel's).
        hide: the target is disabled.
        datasource: the target's data source reference, if any.
    """

    ref_id: str
    expr: str = ""
    legend_format: str = ""
    instant: bool = False
    range: bool = True
    format: str = "time_series"
    interval: str = ""
    hide: bool = False
    datasource: DataSourceRef | None = None


@dataclass(frozen=True)
class Panel:
    """A panel: what to query and how to draw it.

    Attributes:
        id: the panel id (unique in well-formed dashboards; assigned when missing).
        type: the panel type (``timeseries``...; legacy types already renamed);
            see :attr:`supported`.
        grid: where it sits; within a row, ``y`` counts from the dashboard top.
        field: ``fieldConfig.defaults`` (unit, min, max, thresholds...).
        overrides: ``fieldConfig.overrides`` as written.
        options: the panel's ``options`` as written.
        repeat: the variable the panel repeats for, "" for none.
        repeat_direction: ``h`` (side by side) or ``v`` (stacked).
        max_per_row: ``maxPerRow`` of horizontal repeats (None: Grafana's 4).
        interval: the panel's minimum interval (``"1m"``), "" for the default.
        max_data_points: ``maxDataPoints``, None for the panel width.
        content, mode: a text panel's markdown/html and ``markdown``/``html``/``code``.
        raw: the panel object as written, for what the model does not carry.
    """

    id: int
    type: str
    title: str = ""
    description: str = ""
    grid: GridPos = GridPos()
    targets: tuple[Target, ...] = ()
    field: FieldConfig = FieldConfig()
    overrides: tuple[Any, ...] = dataclasses.field(default=(), hash=False)
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict, hash=False)
    repeat: str = ""
    repeat_direction: str = "h"
    max_per_row: int | None = None
    interval: str = ""
    max_data_points: int | None = None
    datasource: DataSourceRef | None = None
    content: str = ""
    mode: str = ""
    transparent: bool = False
    links: tuple[Any, ...] = dataclasses.field(default=(), hash=False)
    raw: Mapping[str, Any] = dataclasses.field(default_factory=dict, hash=False)

    @property
    def supported(self) -> bool:
        """Whether tinct draws this panel type (else the UI shows "unsupported panel type")."""
        return self.type in PANEL_TYPES


@dataclass(frozen=True)
class Row:
    """A row and the panels under it, whether it is collapsed or not."""

    id: int
    title: str = ""
    collapsed: bool = False
    repeat: str = ""
    grid: GridPos = GridPos(0, 0, GRID_COLUMNS, 1)
    panels: tuple[Panel, ...] = ()
    raw: Mapping[str, Any] = dataclasses.field(default_factory=dict, hash=False)


def parse_items(root: Node) -> tuple[Panel | Row, ...]:
    """The dashboard's ``panels`` as top-level panels followed by rows holding theirs.

    As Grafana's ``DashboardModel`` does on load, top-level panels are first
    ordered by grid position (``sortPanelsByGridPos``); panels before the
    first row stay top-level, every later panel belongs to the row above it.
    A collapsed row's own ``panels`` come first, ordered the same way.
    """
    nodes = root.nodes("panels")
    next_id = _id_allocator(nodes)
    parsed: list[Panel | Row] = []
    for node in nodes:
        if node.string("type") == "row":
            parsed.append(_row(node, next_id))
        else:
            parsed.append(_panel(node, next_id))
    parsed.sort(key=lambda item: (item.grid.y, item.grid.x))
    items: list[Panel | Row] = []
    row: Row | None = None
    under: list[Panel] = []
    for item in parsed:
        if isinstance(item, Row):
            if row is not None:
                items.append(_with_panels(row, under))
            row, under = item, list(item.panels)
        elif row is None:
            items.append(item)
        else:
            under.append(item)
    if row is not None:
        items.append(_with_panels(row, under))
    return tuple(items)


def _with_panels(row: Row, panels: list[Panel]) -> Row:
    return Row(row.id, row.title, row.collapsed, row.repeat, row.grid, tuple(panels), row.raw)


def _id_allocator(nodes: list[Node]) -> Callable[[], int]:
    # Grafana gives id-less panels the next id above the largest in use
    # (DashboardModel.getNextPanelId).
    used = [0]
    for node in nodes:
        for n in [node, *_inner(node)]:
            value = n.get("id")
            if isinstance(value, int) and not isinstance(value, bool):
                used.append(value)
    counter = iter(range(max(used) + 1, 1 << 62))
    return lambda: next(counter)


def _inner(node: Node) -> Iterator[Node]:
    value = node.get("panels")
    if isinstance(value, list):
        for item in value:
            if isinstance(item, Mapping):
                yield Node(item, "", node.source)


def _grid(node: Node, default: GridPos) -> GridPos:
    grid = node.node("gridPos")
    if grid is None:
        return default
    w = grid.integer("w", default.w, lo=1, hi=GRID_COLUMNS)
    x = grid.integer("x", default.x, lo=0, hi=GRID_COLUMNS - 1)
    # react-grid-layout pulls a panel sticking out on the right back in.
    return GridPos(
        x=min(x, GRID_COLUMNS - w),
        y=grid.integer("y", default.y, lo=0),
        w=w,
        h=grid.integer("h", default.h, lo=1),
    )


def _panel_id(node: Node, next_id: Callable[[], int]) -> int:
    value = node.opt_int("id")
    return next_id() if value is None else value


def _row(node: Node, next_id: Callable[[], int]) -> Row:
    panels = []
    for inner in node.nodes("panels"):
        if inner.string("type") == "row":
            raise inner.error("type", "a row can't hold another row")
        panels.append(_panel(inner, next_id))
    panels.sort(key=lambda p: (p.grid.y, p.grid.x))
    return Row(
        id=_panel_id(node, next_id),
        title=node.string("title"),
        collapsed=node.boolean("collapsed"),
        repeat=node.string("repeat"),
        grid=_grid(node, GridPos(0, 0, GRID_COLUMNS, 1)),
        panels=tuple(panels),
        raw=dict(node.data),
    )


def datasource_ref(node: Node, key: str = "datasource") -> DataSourceRef | None:
    """The ``datasource`` field of ``node``: an object, a legacy name (as uid) or None."""
    value = node.get(key)
    if value is None:
        return None
    if isinstance(value, str):  # a data source name, before schemaVersion 33
        return DataSourceRef(uid=value)
    ref = node.node(key)
    assert ref is not None
    return DataSourceRef(uid=ref.string("uid"), type=ref.string("type"))


# Each panel plugin's default color mode (its standardOptions.color default):
# single values are colored by thresholds, series by the classic palette.
_DEFAULT_COLOR_MODES = {"stat": "thresholds", "gauge": "thresholds", "bargauge": "thresholds"}


def _panel(node: Node, next_id: Callable[[], int]) -> Panel:
    written = node.string("type")
    kind = LEGACY_PANEL_TYPES.get(written, written)
    options = node.node("options")
    config = node.node("fieldConfig")
    content, mode = "", ""
    if kind == "text":
        # Grafana 7+ keeps them in options; older text panels at the top level.
        opts = options if options is not None and options.has("content") else node
        content = opts.string("content")
        mode = (options.string("mode") if options is not None else "") or node.string(
            "mode", "markdown"
        )
    return Panel(
        id=_panel_id(node, next_id),
        type=kind,
        title=node.string("title"),
        description=node.string("description"),
        grid=_grid(node, GridPos()),
        targets=_targets(node),
        field=parse_field_config(
            node,
            written in LEGACY_PANEL_TYPES,
            default_color_mode=_DEFAULT_COLOR_MODES.get(kind, "palette-classic"),
        ),
        overrides=() if config is None else tuple(config.array("overrides")),
        options={} if options is None else dict(options.data),
        repeat=node.string("repeat"),
        repeat_direction=node.choice("repeatDirection", "h", ("h", "v")),
        max_per_row=node.opt_int("maxPerRow", lo=1),
        interval=node.string("interval"),
        max_data_points=node.opt_int("maxDataPoints", lo=1),
        datasource=datasource_ref(node),
        content=content,
        mode=mode,
        transparent=node.boolean("transparent"),
        links=tuple(node.array("links")),
        raw=dict(node.data),
    )


def _targets(panel: Node) -> tuple[Target, ...]:
    targets = []
    used: set[str] = set()
    nodes = panel.nodes("targets")
    for node in nodes:
        ref = node.string("refId")
        if ref:
            used.add(ref)
    for node in nodes:
        ref = node.string("refId") or _next_ref_id(used)
        used.add(ref)
        instant = node.boolean("instant")
        targets.append(
            Target(
                ref_id=ref,
                expr=node.string("expr"),
                legend_format=node.string("legendFormat"),
                instant=instant,
                # Grafana's Prometheus query: range unless only instant was asked for.
                range=node.boolean("range", not instant),
                format=node.choice("format", "time_series", _FORMATS),
                interval=node.string("interval"),
                hide=node.boolean("hide"),
                datasource=datasource_ref(node),
            )
        )
    return tuple(targets)


def _next_ref_id(used: set[str]) -> str:
    # Grafana's getNextRefId: the first free letter, A to Z.
    for i in range(26):
        letter = chr(ord("A") + i)
        if letter not in used:
            return letter
    n = 1
    while f"A{n}" in used:
        n += 1
    return f"A{n}"
