"""One dashboard per layer, generated from the data standard's catalog.

Because every layer's series carry the same entity labels in every app
(``tinct.standard.ENTITY_LABELS``), one generated dashboard per layer fits
every app: the infrastructure's hosts, the components, the services, the
interfaces and the users. They are written in Grafana's dashboard JSON model,
like any file in the dashboards folder (a file with the same uid replaces
one), so they can be exported and edited as JSON.

Panels follow the family type: a counter is drawn as a per-second rate, a
gauge as its value, a histogram as p50/p90/p99 from its buckets; grouped by
the layer's entity labels and the family's own labels. The services and
interfaces dashboards are hand-laid RED dashboards (rate, errors, duration)
over the span- and meter-derived series of ``tinct.collectors.layers``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from tinct.catalog import CATALOG
from tinct.dashboards.model import Dashboard, parse_dashboard
from tinct.standard import ENTITY_LABELS, Layer, MetricSpec, MetricType

__all__ = ["layer_dashboard_docs", "builtin_dashboards", "LAYER_UIDS"]

LAYER_UIDS = {
    Layer.INFRASTRUCTURE: "tinct-infrastructure",
    Layer.COMPONENT: "tinct-components",
    Layer.SERVICE: "tinct-services",
    Layer.INTERFACE: "tinct-interfaces",
    Layer.USER: "tinct-users",
}
_UNITS = {"bytes": "bytes", "seconds": "s", "ratio": "percentunit"}
_RATE_UNITS = {"bytes": "Bps", "seconds": "percentunit", "": "ops"}
_COMPONENT_PREFIXES = (
    ("Redis", "redis_"),
    ("PostgreSQL", "pg_"),
    ("MySQL", "mysql_"),
    ("nginx", "nginx_"),
    ("memcached", "memcached_"),
)


class _Layout:
    """Places panels on Grafana's 24-column grid, left to right, row by row."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.x = 0
        self.y = 0
        self.row_h = 0
        self.next_id = 1

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def row(self, title: str, collapsed: bool = False) -> list[dict[str, Any]]:
        """Start a row; a collapsed row holds its panels itself (Grafana's model)."""
        self._newline()
        row: dict[str, Any] = {
            "type": "row",
            "id": self._id(),
            "title": title,
            "collapsed": collapsed,
            "gridPos": {"x": 0, "y": self.y, "w": 24, "h": 1},
            "panels": [],
        }
        self.items.append(row)
        self.y += 1
        panels: list[dict[str, Any]] = row["panels"] if collapsed else self.items
        return panels

    def _newline(self) -> None:
        if self.x:
            self.y += self.row_h
            self.x, self.row_h = 0, 0

    def panel(self, into: list[dict[str, Any]], panel: dict[str, Any], w: int, h: int) -> None:
        if self.x + w > 24:
            self._newline()
        panel["id"] = self._id()
        panel["gridPos"] = {"x": self.x, "y": self.y, "w": w, "h": h}
        into.append(panel)
        self.x += w
        self.row_h = max(self.row_h, h)


def _target(expr: str, legend: str = "", ref: str = "A", instant: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"refId": ref, "expr": expr, "legendFormat": legend}
    if instant:
        out["instant"] = True
        out["range"] = False
    return out


def _panel(
    kind: str, title: str, targets: list[dict[str, Any]], unit: str = "", **extra: Any
) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": unit}
    for key in ("min", "max", "thresholds", "decimals"):
        if key in extra:
            defaults[key] = extra.pop(key)
    return {
        "type": kind,
        "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": extra.pop("options", {}),
        **extra,
    }


def _variable(name: str, query: str, *, label: str = "", multi: bool = True) -> dict[str, Any]:
    return {
        "name": name,
        "label": label or name,
        "type": "query",
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "query": {"query": query, "refId": f"{name}-query"},
        "refresh": 2,
        "multi": multi,
        "includeAll": multi,
        "current": {"text": "All", "value": "$__all"} if multi else {},
        "sort": 1,
    }


def _datasource() -> dict[str, Any]:
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
    }


def _dashboard(
    uid: str, title: str, variables: list[dict[str, Any]], layout: _Layout, tags: Iterable[str]
) -> dict[str, Any]:  # noqa: E501
    return {
        "uid": uid,
        "title": title,
        "tags": ["tinct", *tags],
        "timezone": "browser",
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "",
        "schemaVersion": 39,
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                    "enable": True,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                }
            ]
        },
        "templating": {"list": [_datasource(), *variables]},
        "panels": layout.items,
    }


def _selector(name: str, entity: Sequence[str]) -> str:
    matchers = ", ".join(f'{label}=~"${label}"' for label in entity)
    return f"{name}{{{matchers}}}" if matchers else name


def _family_panel(spec: MetricSpec, entity: Sequence[str]) -> dict[str, Any]:
    by = ", ".join([*entity, *spec.labels])
    legend = " ".join("{{" + label + "}}" for label in [*entity, *spec.labels]) or spec.name
    title = spec.name.replace("_", " ")
    if spec.type == MetricType.COUNTER:
        expr = f"sum by ({by}) (rate({_selector(spec.name + '_total', entity)}[$__rate_interval]))"
        return _panel(
            "timeseries",
            f"{title} /s",
            [_target(expr, legend)],
            _RATE_UNITS.get(spec.unit, "short"),
            description=spec.help,
        )
    if spec.type == MetricType.HISTOGRAM:
        grouped = ", ".join(["le", *entity])
        bucket = _selector(spec.name + "_bucket", entity)
        targets = [
            _target(
                f"histogram_quantile({q}, sum by ({grouped}) (rate({bucket}[$__rate_interval])))",
                f"p{int(q * 100)} " + " ".join("{{" + e + "}}" for e in entity),
                ref,
            )
            for q, ref in ((0.5, "A"), (0.9, "B"), (0.99, "C"))
        ]
        return _panel(
            "timeseries", title, targets, _UNITS.get(spec.unit, "short"), description=spec.help
        )
    expr = f"avg by ({by}) ({_selector(spec.name, entity)})" if by else f"avg({spec.name})"
    return _panel(
        "timeseries",
        title,
        [_target(expr, legend)],
        _UNITS.get(spec.unit, "short"),
        description=spec.help,
    )


def _specs(layer: Layer, prefix: str = "") -> list[MetricSpec]:
    return [
        s
        for s in CATALOG
        if s.layer == layer
        and not s.is_prefix
        and s.name.startswith(prefix)
        and s.type != MetricType.UNKNOWN
    ]


def _infrastructure() -> dict[str, Any]:
    entity = ENTITY_LABELS[Layer.INFRASTRUCTURE]
    layout = _Layout()
    panels = layout.row("Hosts")
    up = 'count(count by (host) (system_uptime_seconds{host=~"$host"}))'
    layout.panel(panels, _panel("stat", "Hosts", [_target(up, instant=True)], "short"), 6, 4)
    uptime = 'min(system_uptime_seconds{host=~"$host"})'
    layout.panel(
        panels, _panel("stat", "Shortest uptime", [_target(uptime, instant=True)], "s"), 6, 4
    )
    cpu = '1 - avg(system_cpu_utilization_ratio{host=~"$host", state="idle"})'
    layout.panel(
        panels,
        _panel("gauge", "CPU busy", [_target(cpu, instant=True)], "percentunit", min=0, max=1),
        6,
        4,
    )
    mem = 'avg(system_memory_utilization_ratio{host=~"$host", state="used"})'
    layout.panel(
        panels,
        _panel("gauge", "Memory used", [_target(mem, instant=True)], "percentunit", min=0, max=1),
        6,
        4,
    )
    for i, spec in enumerate(_specs(Layer.INFRASTRUCTURE)):
        if i == 8:
            panels = layout.row("More host metrics", collapsed=True)
        layout.panel(panels, _family_panel(spec, entity), 12, 7)
    variables = [_variable("host", "label_values(system_uptime_seconds, host)")]
    return _dashboard(
        LAYER_UIDS[Layer.INFRASTRUCTURE], "Infrastructure", variables, layout, ["infrastructure"]
    )


def _components() -> dict[str, Any]:
    entity = ENTITY_LABELS[Layer.COMPONENT]
    layout = _Layout()
    panels = layout.row("Components")
    up = 'up{layer="component", component=~"$component", instance=~"$instance"}'
    layout.panel(
        panels,
        _panel(
            "stat",
            "Up",
            [_target(up, "{{component}} {{instance}}", instant=True)],
            "none",
            thresholds={
                "mode": "absolute",
                "steps": [{"value": None, "color": "red"}, {"value": 1, "color": "green"}],
            },
        ),
        24,
        4,
    )
    for n, (title, prefix) in enumerate(_COMPONENT_PREFIXES):
        panels = layout.row(title, collapsed=n > 0)
        for spec in _specs(Layer.COMPONENT, prefix)[:12]:
            layout.panel(panels, _family_panel(spec, entity), 8, 7)
    variables = [
        _variable("component", 'label_values(up{layer="component"}, component)'),
        _variable(
            "instance", 'label_values(up{layer="component", component=~"$component"}, instance)'
        ),
    ]
    return _dashboard(LAYER_UIDS[Layer.COMPONENT], "Components", variables, layout, ["component"])


def _red(
    uid: str,
    title: str,
    metric: str,
    entity: Sequence[str],
    variables: list[dict[str, Any]],
    tags: list[str],
) -> dict[str, Any]:  # noqa: E501
    """A RED dashboard (rate, errors, duration) over one duration histogram."""
    layout = _Layout()
    sel = ", ".join(f'{label}=~"${label}"' for label in entity)
    by = ", ".join(entity)
    legend = " ".join("{{" + label + "}}" for label in entity)
    count = f"{metric}_count{{{sel}}}"
    errors = f'{metric}_count{{{sel}, status_class="5xx"}}'
    bucket = f"{metric}_bucket{{{sel}}}"
    panels = layout.row("Requests")
    rate = f"sum(rate({count}[$__rate_interval]))"
    err_ratio = f"sum(rate({errors}[$__rate_interval])) / sum(rate({count}[$__rate_interval]))"
    p99_all = f"histogram_quantile(0.99, sum by (le) (rate({bucket}[$__rate_interval])))"
    red = {
        "mode": "absolute",
        "steps": [
            {"value": None, "color": "green"},
            {"value": 0.01, "color": "orange"},
            {"value": 0.05, "color": "red"},
        ],
    }  # noqa: E501
    slow = {
        "mode": "absolute",
        "steps": [
            {"value": None, "color": "green"},
            {"value": 0.25, "color": "orange"},
            {"value": 1, "color": "red"},
        ],
    }  # noqa: E501
    layout.panel(
        panels, _panel("stat", "Requests /s", [_target(rate, instant=True)], "reqps"), 6, 4
    )
    layout.panel(
        panels,
        _panel(
            "stat", "Error ratio", [_target(err_ratio, instant=True)], "percentunit", thresholds=red
        ),
        6,
        4,
    )
    layout.panel(
        panels,
        _panel("stat", "p99 latency", [_target(p99_all, instant=True)], "s", thresholds=slow),
        6,
        4,
    )
    layout.panel(
        panels,
        _panel(
            "gauge",
            "Availability",
            [_target(f"1 - ({err_ratio})", instant=True)],
            "percentunit",
            min=0.9,
            max=1,
            thresholds={
                "mode": "absolute",
                "steps": [
                    {"value": None, "color": "red"},
                    {"value": 0.99, "color": "orange"},
                    {"value": 0.999, "color": "green"},
                ],
            },
        ),
        6,
        4,
    )  # noqa: E501
    layout.panel(
        panels,
        _panel(
            "timeseries",
            "Request rate",
            [_target(f"sum by ({by}) (rate({count}[$__rate_interval]))", legend)],
            "reqps",
        ),
        12,
        8,
    )
    layout.panel(
        panels,
        _panel(
            "timeseries",
            "Error ratio",
            [
                _target(
                    f"sum by ({by}) (rate({errors}[$__rate_interval])) / sum by ({by}) (rate({count}[$__rate_interval]))",  # noqa: E501
                    legend,
                )
            ],
            "percentunit",
            thresholds=red,
        ),
        12,
        8,
    )  # noqa: E501
    panels = layout.row("Duration")
    for q in (0.5, 0.9, 0.99):
        expr = f"histogram_quantile({q}, sum by (le, {by}) (rate({bucket}[$__rate_interval])))"
        layout.panel(
            panels,
            _panel("timeseries", f"p{int(q * 100)} latency", [_target(expr, legend)], "s"),
            8,
            8,
        )
    layout.panel(
        panels,
        _panel(
            "heatmap",
            "Latency distribution",
            [
                {
                    **_target(f"sum by (le) (rate({bucket}[$__rate_interval]))", "{{le}}"),
                    "format": "heatmap",
                }
            ],
            "s",
        ),
        12,
        8,
    )  # noqa: E501
    layout.panel(
        panels,
        _panel(
            "table",
            "By status class",
            [
                _target(
                    f"sum by ({by}, status_class) (rate({count}[$__rate_interval]))", instant=True
                )
            ],
            "reqps",
        ),
        12,
        8,
    )  # noqa: E501
    layout.panel(
        panels,
        {"type": "traces", "title": "Recent traces", "targets": [], "options": {"limit": 20}},
        24,
        8,
    )
    return _dashboard(uid, title, variables, layout, tags)


def _services() -> dict[str, Any]:
    variables = [
        _variable("service", "label_values(service_request_duration_seconds_count, service)")
    ]
    return _red(
        LAYER_UIDS[Layer.SERVICE],
        "Services",
        "service_request_duration_seconds",
        ("service",),
        variables,
        ["service"],
    )  # noqa: E501


def _interfaces() -> dict[str, Any]:
    variables = [
        _variable("service", "label_values(interface_request_duration_seconds_count, service)"),
        _variable(
            "interface",
            'label_values(interface_request_duration_seconds_count{service=~"$service"}, interface)',  # noqa: E501
        ),
    ]
    return _red(
        LAYER_UIDS[Layer.INTERFACE],
        "Interfaces",
        "interface_request_duration_seconds",
        ("service", "interface"),
        variables,
        ["interface"],
    )  # noqa: E501


def _users() -> dict[str, Any]:
    layout = _Layout()
    panels = layout.row("Probes")
    layout.panel(
        panels,
        _panel(
            "stat",
            "Probes succeeding",
            [_target("probe_success", "{{instance}}", instant=True)],
            "none",
            thresholds={
                "mode": "absolute",
                "steps": [{"value": None, "color": "red"}, {"value": 1, "color": "green"}],
            },
        ),
        12,
        4,
    )  # noqa: E501
    layout.panel(
        panels,
        _panel(
            "timeseries", "Probe duration", [_target("probe_duration_seconds", "{{instance}}")], "s"
        ),
        12,
        8,
    )
    panels = layout.row("Users")
    user = "user_request_duration_seconds"
    layout.panel(
        panels,
        _panel(
            "timeseries",
            "Requests by user /s",
            [
                _target(
                    f"topk(10, sum by (user) (rate({user}_count[$__rate_interval])))", "{{user}}"
                )
            ],
            "reqps",
        ),
        12,
        8,
    )  # noqa: E501
    layout.panel(
        panels,
        _panel(
            "timeseries",
            "Failing requests by user /s",
            [
                _target(
                    f'topk(10, sum by (user) (rate({user}_count{{status_class="5xx"}}[$__rate_interval])))',  # noqa: E501
                    "{{user}}",
                )
            ],
            "reqps",
        ),
        12,
        8,
    )  # noqa: E501
    panels = layout.row("Browsers")
    page = "browser_page_load_seconds_bucket"
    layout.panel(
        panels,
        _panel(
            "timeseries",
            "Page load p75",
            [
                _target(
                    f"histogram_quantile(0.75, sum by (le, app, page) (rate({page}[$__rate_interval])))",  # noqa: E501
                    "{{app}} {{page}}",
                )
            ],
            "s",
        ),
        12,
        8,
    )  # noqa: E501
    layout.panel(
        panels,
        _panel(
            "timeseries",
            "Browser errors /s",
            [
                _target(
                    "sum by (app, kind) (rate(browser_errors_total[$__rate_interval]))",
                    "{{app}} {{kind}}",
                )
            ],
            "ops",
        ),
        12,
        8,
    )  # noqa: E501
    return _dashboard(LAYER_UIDS[Layer.USER], "Users", [], layout, ["user"])


def layer_dashboard_docs() -> list[dict[str, Any]]:
    """The five layer dashboards as Grafana dashboard JSON documents."""
    return [_infrastructure(), _components(), _services(), _interfaces(), _users()]


def builtin_dashboards() -> list[Dashboard]:
    """The five layer dashboards, parsed like any dashboard file."""
    return [parse_dashboard(doc, f"built-in:{doc['uid']}") for doc in layer_dashboard_docs()]
