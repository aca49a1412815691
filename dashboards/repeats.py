"""A dashboard laid out for drawing: repeated panels and rows cloned, positions final.

Repeats follow Grafana's ``DashboardModel.repeatPanel``/``repeatRow``
(``public/app/features/dashboard/state/DashboardModel.ts``): a panel that
repeats for a variable is cloned once per selected value (every option for
All), each clone seeing the variable as that one value; horizontally the
clones share the row, each ``max(24 / count, 24 / maxPerRow)`` columns wide
(``maxPerRow`` 4 by default) and wrapping to a new line, vertically they
stack; panels below move down to make room. A repeated row is cloned with its
panels once per value, its title interpolated with that value. A repeat whose
variable is unknown or has no value leaves the panel as it is, as Grafana does.

Grafana's grid (react-grid-layout with vertical compaction) then lets panels
float up into empty space and pushes overlapping ones down; :func:`expand_repeats`
does the same per row, so the positions it returns are the ones Grafana
shows. ``y`` counts from the top of the panel's row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from tinct.dashboards.model import GRID_COLUMNS, Dashboard, GridPos, Panel, Row
from tinct.dashboards.variables import ResolvedVariable, VariableScope

__all__ = ["LaidOutPanel", "LaidOutRow", "expand_repeats"]

_DEFAULT_MAX_PER_ROW = 4


@dataclass(frozen=True)
class LaidOutPanel:
    """A panel where it is drawn.

    Attributes:
        panel: the panel as defined (a clone shares its source's).
        key: a stable id, unique in the dashboard (``"7"``, ``"7-web1"``).
        grid: its final place, ``y`` from the top of its row.
        scoped: the values repeats fix for it (``{"node": "web1"}``).
        title: the title interpolated (Grafana's ``text`` format).
    """

    panel: Panel
    key: str
    grid: GridPos
    scoped: dict[str, str] = field(default_factory=dict)
    title: str = ""


@dataclass(frozen=True)
class LaidOutRow:
    """A row of laid-out panels (the first may be the panels above any row).

    Attributes:
        title: the title interpolated ("" for the panels above the first row).
        collapsed: the row starts collapsed.
        panels: its panels, by ``(y, x)``.
        key: a stable id, unique in the dashboard.
        scoped: the value a repeated row is for.
        row: the row as defined, None for the panels above the first row.
    """

    title: str
    collapsed: bool
    panels: list[LaidOutPanel]
    key: str
    scoped: dict[str, str] = field(default_factory=dict)
    row: Row | None = None


def expand_repeats(dashboard: Dashboard, resolved: Sequence[ResolvedVariable]) -> list[LaidOutRow]:
    """The dashboard's rows and panels with repeats expanded and positions final.

    Args:
        dashboard: the dashboard.
        resolved: its variables (``resolve_variables``); repeats use their
            current values.
    """
    by_name = {r.name: r for r in resolved}
    keys = _Keys()
    out: list[LaidOutRow] = []
    top = [item for item in dashboard.items if isinstance(item, Panel)]
    if top:
        out.append(LaidOutRow("", False, _layout(top, {}, resolved, keys), keys.take("row-top")))
    for row in dashboard.rows:
        for value in _repeat_values(row.repeat, by_name):
            scoped = {} if value is None else {row.repeat: value}
            scope = VariableScope.of(resolved, scoped)
            key = f"row-{row.id}" if value is None else f"row-{row.id}-{value}"
            out.append(
                LaidOutRow(
                    title=scope.interpolate(row.title, default_format="text"),
                    collapsed=row.collapsed,
                    panels=_layout(row.panels, scoped, resolved, keys),
                    key=keys.take(key),
                    scoped=scoped,
                    row=row,
                )
            )
    return out


class _Keys:
    """Hands out keys, suffixing ``~2``, ``~3``... when a key repeats (duplicate panel ids)."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def take(self, key: str) -> str:
        candidate, n = key, 1
        while candidate in self.used:
            n += 1
            candidate = f"{key}~{n}"
        self.used.add(candidate)
        return candidate


def _repeat_values(name: str, by_name: dict[str, ResolvedVariable]) -> list[str | None]:
    variable = by_name.get(name) if name else None
    values = variable.values() if variable is not None else []
    return list(values) if values else [None]


@dataclass
class _Box:
    panel: Panel
    key: str
    x: int
    y: int
    w: int
    h: int
    scoped: dict[str, str]
    clone_of: int  # the index of the source panel among the row's panels


def _layout(
    panels: Sequence[Panel],
    row_scoped: dict[str, str],
    resolved: Sequence[ResolvedVariable],
    keys: _Keys,
) -> list[LaidOutPanel]:
    if not panels:
        return []
    by_name = {r.name: r for r in resolved}
    top = min(p.grid.y for p in panels)
    suffix = "".join(f"-{v}" for v in row_scoped.values())
    boxes: list[_Box] = []
    ordered = sorted(enumerate(panels), key=lambda ip: (ip[1].grid.y, ip[1].grid.x, ip[0]))
    for index, panel in ordered:
        g = panel.grid
        boxes.append(_Box(panel, f"{panel.id}{suffix}", g.x, g.y - top, g.w, g.h, {}, index))
    for index, panel in ordered:
        if panel.repeat and panel.repeat not in row_scoped:
            values = _repeat_values(panel.repeat, by_name)
            if values != [None]:
                _repeat(boxes, index, panel, [v for v in values if v is not None])
    boxes = _compact(boxes)
    out = []
    for box in boxes:
        scoped = {**row_scoped, **box.scoped}
        title = VariableScope.of(resolved, scoped).interpolate(
            box.panel.title, default_format="text"
        )
        grid = GridPos(box.x, box.y, box.w, box.h)
        out.append(LaidOutPanel(box.panel, keys.take(box.key), grid, scoped, title))
    return out


def _repeat(boxes: list[_Box], index: int, panel: Panel, values: list[str]) -> None:
    at = next(i for i, b in enumerate(boxes) if b.clone_of == index)
    source = boxes[at]
    clones = []
    if panel.repeat_direction == "v":
        for n, value in enumerate(values):
            y = source.y + n * source.h
            clones.append((source.x, y, source.w, value))
        grown = (len(values) - 1) * source.h
    else:
        per_row = panel.max_per_row or _DEFAULT_MAX_PER_ROW
        width = max(1, int(max(GRID_COLUMNS / len(values), GRID_COLUMNS / per_row)))
        x, y = 0, source.y
        for value in values:
            clones.append((x, y, width, value))
            x += width
            if x + width > GRID_COLUMNS:
                x, y = 0, y + source.h
        lines = len({cy for _, cy, _, _ in clones})
        grown = (lines - 1) * source.h
    for box in boxes:
        # Panels below move down by what the clones added (isOnTheSameGridRow aside).
        if box is not source and box.y > source.y:
            box.y += grown
    replaced = [
        _Box(panel, f"{source.key}-{value}", x, y, w, source.h, {panel.repeat: value}, index)
        for x, y, w, value in clones
    ]
    boxes[at : at + 1] = replaced


def _collides(a: _Box, b: _Box) -> bool:
    return a.x < b.x + b.w and b.x < a.x + a.w and a.y < b.y + b.h and b.y < a.y + a.h


def _compact(boxes: list[_Box]) -> list[_Box]:
    # react-grid-layout's vertical compaction (compactItem): in (y, x) order,
    # a panel not overlapping anything rises until a placed panel is in the
    # way, then moves below whatever it still overlaps.
    placed: list[_Box] = []
    for box in sorted(boxes, key=lambda b: (b.y, b.x)):
        box.y = min(box.y, max((b.y + b.h for b in placed), default=0))
        if not any(_collides(box, p) for p in placed):
            box.y = max(
                (
                    p.y + p.h
                    for p in placed
                    if p.x < box.x + box.w and box.x < p.x + p.w and p.y + p.h <= box.y
                ),
                default=0,
            )
        hit = next((p for p in placed if _collides(box, p)), None)
        while hit is not None:
            box.y = hit.y + hit.h
            hit = next((p for p in placed if _collides(box, p)), None)
        placed.append(box)
    return sorted(placed, key=lambda b: (b.y, b.x))
