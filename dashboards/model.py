"""Dashboards in Grafana's dashboard JSON model, read into frozen dataclasses.

tinct renders dashboards stored as files in Grafana's own JSON model (YAML
is read as the same model), so importing a Grafana dashboard is copying its
JSON: :func:`parse_dashboard` takes the loaded document and gives a
:class:`Dashboard`. The fields are Grafana's as exported by Grafana 8-12
(``schemaVersion`` 30-41, ``packages/grafana-schema/src/schema/dashboard/v0``
and ``public/app/features/dashboard/state/DashboardModel.ts``): unknown
fields are ignored, ``null`` is "not set", a field tinct uses with the wrong
type is a :class:`DashboardError` naming the file and field path
(``panels[3].targets[0].expr: must be a string, got a number``) and the
limit when there is one.

Panels and rows are in ``tinct.dashboards.panels``, variables in
``tinct.dashboards.templating``; their types are re-exported here, so the
model is one import.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from tinct.dashboards.panels import (
    GRID_COLUMNS,
    LEGACY_PANEL_TYPES,
    LEGEND_AUTO,
    PANEL_TYPES,
    DataSourceRef,
    GridPos,
    Panel,
    Row,
    Target,
    parse_items,
)
from tinct.dashboards.reading import DashboardError, Node
from tinct.dashboards.templating import ALL_VALUE, Variable, parse_variables

__all__ = [
    "ALL_VALUE",
    "GRID_COLUMNS",
    "LEGACY_PANEL_TYPES",
    "LEGEND_AUTO",
    "PANEL_TYPES",
    "Dashboard",
    "DashboardError",
    "DataSourceRef",
    "GridPos",
    "Panel",
    "Row",
    "Target",
    "Variable",
    "parse_dashboard",
    "slugify",
]

# Grafana's limit on dashboard uids (util.MaxUIDLength... "uid too long, max 40 characters").
_UID_MAX = 40
_SLUG_JUNK = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class Dashboard:
    """A dashboard.

    Attributes:
        uid: the dashboard's id in URLs (generated from the title when missing).
        title, slug: the title, and its URL form (:func:`slugify`).
        tags: Grafana's tags.
        items: top-level panels (those above the first row) and rows, each row
            holding its panels, in grid order.
        variables: ``templating.list``, in order.
        time_from, time_to: the default time range (``now-6h``, ``now``).
        refresh: the default auto-refresh (``30s``), "" for none.
        timezone: ``browser``, ``utc``, "" (the user's) or an IANA zone name.
        graph_tooltip: 0 per panel, 1 shared crosshair, 2 shared tooltip.
        annotations: ``annotations.list`` as written.
        alert_annotations: Grafana's built-in "Annotations & Alerts" is enabled
            (true when the dashboard does not say).
        description, links: as written.
        schema_version: ``schemaVersion``.
        folder: the Grafana folder (subfolder of the dashboards folder), "" at the top.
        source: the file (or other origin) it was read from.
    """

    uid: str
    title: str
    slug: str = ""
    tags: tuple[str, ...] = ()
    items: tuple[Panel | Row, ...] = ()
    variables: tuple[Variable, ...] = ()
    time_from: str = "now-6h"
    time_to: str = "now"
    refresh: str = ""
    timezone: str = ""
    graph_tooltip: int = 0
    annotations: tuple[Any, ...] = field(default=(), hash=False)
    alert_annotations: bool = True
    description: str = ""
    links: tuple[Any, ...] = field(default=(), hash=False)
    schema_version: int = 0
    folder: str = ""
    source: str = ""

    @property
    def rows(self) -> tuple[Row, ...]:
        """The rows, in order."""
        return tuple(item for item in self.items if isinstance(item, Row))

    def panels(self) -> Iterator[Panel]:
        """Every panel (not rows), top-level ones first, then row by row."""
        for item in self.items:
            if isinstance(item, Row):
                yield from item.panels
            else:
                yield item

    def panel(self, panel_id: int) -> Panel | None:
        """The panel with this id (the first, if ids repeat), None when there is none."""
        return next((p for p in self.panels() if p.id == panel_id), None)

    def variable(self, name: str) -> Variable | None:
        """The variable called ``name``, None when there is none."""
        return next((v for v in self.variables if v.name == name), None)

    def panel_count(self) -> int:
        """Panels counted as Grafana counts them: rows included."""
        return sum(1 + len(item.panels) if isinstance(item, Row) else 1 for item in self.items)


def slugify(title: str) -> str:
    """Grafana's URL slug of a title: lower case, runs of other characters as one ``-``."""
    return _SLUG_JUNK.sub("-", title.lower()).strip("-")


def _uid_for(title: str, source: str) -> str:
    slug = slugify(title)[:_UID_MAX].strip("-")
    if slug:
        return slug
    # A title with no ASCII letters or digits (or none at all): a stable hash.
    return "d" + hashlib.sha1((title or source).encode()).hexdigest()[:12]


def parse_dashboard(doc: Mapping[str, Any], source: str = "<dashboard>") -> Dashboard:
    """Read a dashboard document (Grafana's dashboard JSON model, already loaded).

    Grafana's API form ``{"dashboard": {...}, "meta": {...}}`` is accepted too.

    Args:
        doc: the loaded JSON or YAML.
        source: what errors name as the origin (the file name).

    Returns:
        The dashboard; ``folder`` and ``source`` are for the loader to fill in.

    Raises:
        DashboardError: a field tinct uses has the wrong type or is out of its
            limits; the message names ``source`` and the field path.
    """
    if not isinstance(doc, Mapping):
        raise DashboardError(
            f"{source}: a dashboard must be a JSON object, got {type(doc).__name__}"
        )
    inner = doc.get("dashboard")
    if isinstance(inner, Mapping) and "panels" not in doc and "title" not in doc:
        doc = inner
    root = Node(doc, "", source)
    if root.has("rows") and not root.has("panels"):
        raise root.error(
            "rows",
            "dashboards older than schemaVersion 16 are not supported; "
            "open and save it in Grafana 5 or later",
        )
    title = root.string("title")
    uid = root.string("uid")
    if len(uid) > _UID_MAX:
        raise root.error("uid", f"must be at most {_UID_MAX} characters, got {len(uid)}")
    time = root.node("time")
    refresh = root.get("refresh")
    annotations = root.node("annotations")
    annotation_list = () if annotations is None else tuple(annotations.array("list"))
    return Dashboard(
        uid=uid or _uid_for(title, source),
        title=title,
        slug=slugify(title),
        tags=root.strings("tags"),
        items=parse_items(root),
        variables=parse_variables(root),
        time_from=(time.string("from", "now-6h") if time else "now-6h") or "now-6h",
        time_to=(time.string("to", "now") if time else "now") or "now",
        # Grafana saves "no auto-refresh" as false as well as "".
        refresh="" if refresh is False else root.string("refresh"),
        timezone=root.string("timezone"),
        graph_tooltip=root.integer("graphTooltip", 0, lo=0, hi=2),
        annotations=annotation_list,
        alert_annotations=_alert_annotations(annotation_list),
        description=root.string("description"),
        links=tuple(root.array("links")),
        schema_version=root.integer("schemaVersion", 0, lo=0),
    )


def _alert_annotations(annotations: tuple[Any, ...]) -> bool:
    # Grafana adds its built-in "Annotations & Alerts" (builtIn: 1) enabled to a
    # dashboard without one (DashboardModel.addBuiltInAnnotationQuery).
    for item in annotations:
        if isinstance(item, Mapping) and item.get("builtIn") in (1, True):
            return item.get("enable", True) is not False
    return True
