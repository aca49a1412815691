"""Template variables (``templating.list``), as Grafana's dashboard JSON stores them.

Field by field this follows Grafana's variable models
(``public/app/features/variables/types.ts``, and the scenes variables that
replaced them in Grafana 10-12: ``QueryVariable``, ``CustomVariable``,
``IntervalVariable``...). Grafana stores a query variable's query either as a
string or, since its Prometheus variable editor, as ``{"query": "...",
"refId": ...}``; both become the string. A custom variable's options are
parsed from its query like Grafana's ``CustomVariable`` does (``a,b,c``, a
``\\,`` keeping a comma, ``text : value`` pairs), an interval variable's from
its comma-separated intervals. Resolving options against a data source is
``tinct.dashboards.variables``'s job.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tinct.dashboards.panels import DataSourceRef, datasource_ref
from tinct.dashboards.reading import Node

__all__ = [
    "ALL_VALUE",
    "VARIABLE_TYPES",
    "Variable",
    "custom_options",
    "interval_options",
    "parse_variables",
]

# The value Grafana stores for "All" (ALL_VARIABLE_VALUE).
ALL_VALUE = "$__all"
# The types tinct resolves; others (adhoc, groupby...) are kept but get no options.
VARIABLE_TYPES = frozenset(
    {"query", "custom", "interval", "datasource", "constant", "textbox", "adhoc"}
)
# scenes' CustomVariable: items split on commas not preceded by a backslash...
_CUSTOM_ITEM = re.compile(r"(?:\\,|[^,])+")
# ...each either "text : value" or a value that is its own text.
_CUSTOM_PAIR = re.compile(r"^\s*(.+)\s:\s(.+)$")


@dataclass(frozen=True)
class Variable:
    """A dashboard variable.

    Attributes:
        name: what ``$name`` refers to.
        type: ``query``, ``custom``, ``interval``, ``datasource``, ``constant``,
            ``textbox``, ``adhoc`` (kept, not supported) or another type as written.
        label: the name shown in the UI ("" to show ``name``).
        query: the query (query variables), the values (custom, interval),
            the data source type (datasource), the value (constant, textbox).
        regex: Grafana's regex filter of the options (``/(.*):\\d+/``).
        multi, include_all: several values may be picked; "All" is offered.
        all_value: a custom value for "All" ("" for every option joined).
        current: the values saved as selected (``$__all`` for All).
        options: custom/interval options parsed from the query; for query
            variables, the options saved with the dashboard (used as is when
            ``refresh`` is 0, "never").
        hide: 0 shown, 1 label hidden, 2 variable hidden.
        refresh: 0 never, 1 on dashboard load, 2 on time range change.
        sort: Grafana's ``VariableSort`` (0 none ... 8 natural descending).
        auto, auto_count, auto_min: an interval variable's "auto" option:
            the range split in ``auto_count`` steps, at least ``auto_min``.
        raw: the variable object as written.
    """

    name: str
    type: str = "query"
    label: str = ""
    description: str = ""
    query: str = ""
    regex: str = ""
    multi: bool = False
    include_all: bool = False
    all_value: str = ""
    current: tuple[str, ...] = ()
    options: tuple[tuple[str, str], ...] = ()
    hide: int = 0
    refresh: int = 1
    sort: int = 0
    datasource: DataSourceRef | None = None
    auto: bool = False
    auto_count: int = 30
    auto_min: str = "10s"
    raw: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @property
    def supported(self) -> bool:
        """Whether tinct resolves this type (``adhoc`` and unknown types are not)."""
        return self.type in VARIABLE_TYPES and self.type != "adhoc"


def custom_options(query: str) -> tuple[tuple[str, str], ...]:
    """A custom variable's ``(text, value)`` options: ``a,b`` or ``A : a, B : b``."""
    options = []
    for item in _CUSTOM_ITEM.findall(query):
        item = item.replace("\\,", ",")
        pair = _CUSTOM_PAIR.match(item)
        if pair:
            options.append((pair.group(1).strip(), pair.group(2).strip()))
        elif item.strip():
            options.append((item.strip(), item.strip()))
    return tuple(options)


def interval_options(query: str) -> tuple[tuple[str, str], ...]:
    """An interval variable's options: ``1m,10m,1h`` (quotes around an item dropped)."""
    out = []
    for item in query.split(","):
        item = item.strip().strip("'\"").strip()
        if item:
            out.append((item, item))
    return tuple(out)


def parse_variables(root: Node) -> tuple[Variable, ...]:
    """The variables of ``templating.list``, in order; names must be unique."""
    templating = root.node("templating")
    if templating is None:
        return ()
    seen: dict[str, str] = {}
    out = []
    for node in templating.nodes("list"):
        variable = _variable(node)
        if variable.name in seen:
            raise node.error(
                "name", f"duplicate variable name {variable.name!r} (also {seen[variable.name]})"
            )
        seen[variable.name] = node.where()
        out.append(variable)
    return tuple(out)


def _query(node: Node) -> str:
    value = node.get("query")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # a constant or textbox written as a bare number
    if isinstance(value, Mapping):
        # The Prometheus variable editor's PromVariableQuery: {"query": ..., "refId": ...}.
        query = node.node("query")
        assert query is not None
        return query.string("query")
    return node.string("query")


def _values(node: Node, key: str) -> tuple[str, ...]:
    # current.value / options[].value: a string, a number, or a list of them.
    value = node.get(key)
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, int | float) and not isinstance(item, bool):
            out.append(str(item))
        else:
            raise node.error(key, "must be a string or a list of strings")
    return tuple(out)


def _refresh(node: Node) -> int:
    value = node.get("refresh")
    if isinstance(value, bool):  # before schemaVersion 14: true meant "on load"
        return 1 if value else 0
    return node.integer("refresh", 1, lo=0, hi=2)


def _variable(node: Node) -> Variable:
    name = node.string("name")
    if not name:
        raise node.error("name", "missing (every variable needs a name)")
    kind = node.string("type", "query") or "query"
    query = _query(node)
    current = node.node("current")
    saved = []
    for option in node.nodes("options"):
        values, texts = _values(option, "value"), _values(option, "text")
        if len(values) == 1:  # an "All" option saved with list values is not an option
            saved.append((texts[0] if len(texts) == 1 else values[0], values[0]))
    if kind == "custom":
        options = custom_options(query)
    elif kind == "interval":
        options = interval_options(query)
    elif kind in ("constant", "textbox"):
        options = ((query, query),)
    else:
        options = tuple(saved)
    return Variable(
        name=name,
        type=kind,
        label=node.string("label"),
        description=node.string("description"),
        query=query,
        regex=node.string("regex"),
        multi=node.boolean("multi"),
        include_all=node.boolean("includeAll"),
        all_value=node.string("allValue"),
        current=() if current is None else _values(current, "value"),
        options=options,
        hide=node.integer("hide", 0, lo=0, hi=2),
        refresh=_refresh(node),
        sort=node.integer("sort", 0, lo=0, hi=8),
        datasource=datasource_ref(node),
        auto=node.boolean("auto"),
        auto_count=node.integer("auto_count", 30, lo=1),
        auto_min=node.string("auto_min", "10s"),
        raw=dict(node.data),
    )
