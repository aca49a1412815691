"""Alert rules written once per layer, generated from the data standard.

Every series of tinct's collectors carries ``layer`` and its entity labels
(:mod:`tinct.standard`) under the names of :mod:`tinct.catalog`, so one set
of Prometheus rules covers every application: hosts down or saturated,
components down or near their limits, services and interfaces failing or
slow, users' probes and pages failing. With ``alerting.layer_rules`` on,
tinct evaluates these groups beside the user's ``rule_files``; ``tinct
rules`` prints them (:func:`rule_file_text`) so they can be read or copied
into a Prometheus.

Config::

    alerting:
      layer_rules: true               # or a mapping; absent/false: no rules
      # layer_rules:
      #   layers: [infrastructure, component, service, interface, user]
      #   window: 5m                  # rate() window of ratios and quantiles
      #   thresholds: {host_cpu: 0.9, interface_latency_p99: 0.5}
      #   for: {host_down: 1m, service_errors: 5m}
    slos:
      - service: gateway
        interface: /orders            # optional: the whole service without it
        objective: 0.999
        latency_threshold_seconds: 0.5  # optional: slow requests are errors too

SLOs get the multiwindow, multi-burn-rate alerts of the Google SRE
workbook, chapter 5 "Alerting on SLOs" (recommended parameters): error
ratios recorded over 5m, 30m, 1h and 6h, a page when both the 1h and 5m
ratios burn the budget 14.4 times too fast (2% of a 30-day budget in an
hour), a ticket when the 6h and 30m ratios burn it 6 times too fast.

Errors are ``status_class`` ``5xx`` and ``error`` (a request that failed
without an HTTP status, :func:`tinct.collectors.layers.status_class`).
Severities are ``critical`` (page someone) and ``warning`` (a ticket).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tinct.collectors.exposition import format_openmetrics_float
from tinct.durations import format_duration
from tinct.standard import ENTITY_LABELS, LAYER_LABEL, Layer

from .rules import AlertingRule, RecordingRule, Rule, RuleGroup

__all__ = [
    "DEFAULT_FOR",
    "DEFAULT_THRESHOLDS",
    "LAYER_RULES_FILE",
    "LayerRuleOptions",
    "Slo",
    "layer_rule_groups",
    "rule_file_text",
    "write_rule_file",
]

LAYER_RULES_FILE = "<tinct layer rules>"  # RuleGroup.file of the generated groups
_ERRORS = '"5xx|error"'  # status classes that count as failed requests

# Threshold per alert key: ratios in (0, 1], other values > 0 in the unit named.
DEFAULT_THRESHOLDS: dict[str, float] = {
    "host_cpu": 0.9,  # busy share of all CPUs
    "host_memory": 0.9,  # used share of memory
    "host_filesystem": 0.9,  # used share of a filesystem
    "component_saturation": 0.85,  # Redis memory, PostgreSQL/MySQL connections vs limit
    "memcached_evictions": 1.0,  # evictions per second
    "service_errors": 0.05,  # failed share of a service's requests
    "interface_latency_p99": 1.0,  # seconds
    "interface_errors": 0.05,  # failed share of an interface's requests
    "browser_errors": 0.1,  # page errors per page load
    "user_errors": 0.05,  # failed share of users' requests to a service
}
_RATIOS = frozenset(DEFAULT_THRESHOLDS) - {
    "memcached_evictions",
    "interface_latency_p99",
    "browser_errors",
}
# How long each condition must hold before the alert fires (``for``), seconds.
DEFAULT_FOR: dict[str, float] = {
    "host_down": 60,
    "host_cpu": 900,
    "host_memory": 900,
    "host_filesystem": 900,
    "component_down": 60,
    "component_saturation": 600,
    "redis_rejected_connections": 0,
    "memcached_evictions": 600,
    "service_errors": 300,
    "interface_latency_p99": 600,
    "interface_errors": 300,
    "probe_failing": 120,
    "browser_errors": 600,
    "user_errors": 300,
    "slo_fast_burn": 120,
    "slo_slow_burn": 900,
}
# The SRE workbook's recommended pairs: (long window, short window, burn rate).
_FAST_BURN = ("1h", "5m", 14.4)
_SLOW_BURN = ("6h", "30m", 6.0)
_SLO_WINDOWS = ("5m", "30m", "1h", "6h")


@dataclass(frozen=True)
class Slo:
    """One service level objective on a service or one of its interfaces.

    Attributes:
        service: the service.
        interface: the interface (route); None for the whole service.
        objective: the good share of requests, in (0, 1), e.g. 0.999.
        latency_threshold_seconds: when set, a request slower than this is
            bad too; it must be a bucket bound of the RED histograms.
        name: the ``slo`` label of its recorded series and alerts.
    """

    service: str
    objective: float
    interface: str | None = None
    latency_threshold_seconds: float | None = None
    name: str = ""

    @property
    def layer(self) -> Layer:
        return Layer.SERVICE if self.interface is None else Layer.INTERFACE

    @property
    def budget(self) -> float:
        """The error budget, 1 - objective, rounded as the user wrote it."""
        return round(1 - self.objective, 12)


@dataclass(frozen=True)
class LayerRuleOptions:
    """What to generate, and the limits the alerts fire at.

    Attributes:
        layers: layers whose group is generated (SLO rules come with any
            ``slos``, whatever this says).
        window: the ``rate()`` window of ratios and quantiles, seconds.
        thresholds: alert key -> threshold (every key of
            :data:`DEFAULT_THRESHOLDS`, filled from it by the parser).
        for_s: alert key -> seconds the condition must hold
            (every key of :data:`DEFAULT_FOR`).
        slos: the objectives to alert on.
    """

    layers: frozenset[Layer] = frozenset(Layer)
    window: float = 300.0
    thresholds: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    for_s: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_FOR))
    slos: tuple[Slo, ...] = ()


# --- generation ----------------------------------------------------------------


def layer_rule_groups(options: LayerRuleOptions) -> list[RuleGroup]:
    """The rule groups for ``options``: one per enabled layer, then ``tinct-slo``.

    Recording rules come before the alerts reading them (a group evaluates
    its rules in order). Pure: no I/O.
    """
    builders = {
        Layer.INFRASTRUCTURE: _infrastructure,
        Layer.COMPONENT: _component,
        Layer.SERVICE: _service,
        Layer.INTERFACE: _interface,
        Layer.USER: _user,
    }
    groups = [
        RuleGroup(f"tinct-{layer.value}", LAYER_RULES_FILE, tuple(builders[layer](_Ctx(options))))
        for layer in Layer
        if layer in options.layers
    ]
    if options.slos:
        groups.append(RuleGroup("tinct-slo", LAYER_RULES_FILE, tuple(_slo_rules(options))))
    return groups


@dataclass(frozen=True)
class _Ctx:
    options: LayerRuleOptions

    @property
    def w(self) -> str:
        return format_duration(self.options.window)

    def t(self, key: str) -> str:
        return _number(self.options.thresholds[key])

    def alert(
        self,
        name: str,
        key: str,
        layer: Layer,
        expr: str,
        severity: str,
        summary: str,
        description: str,
        **labels: str,
    ) -> AlertingRule:
        return AlertingRule(
            alert=name,
            expr=expr,
            for_s=self.options.for_s[key],
            labels={LAYER_LABEL: layer.value, "severity": severity, **labels},
            annotations={"summary": summary, "description": description},
        )


def _record(name: str, expr: str, layer: Layer, **labels: str) -> RecordingRule:
    return RecordingRule(record=name, expr=expr, labels={LAYER_LABEL: layer.value, **labels})


def _by(layer: Layer, *extra: str) -> str:
    return ", ".join((*ENTITY_LABELS[layer], *extra))


def _infrastructure(c: _Ctx) -> list[Rule]:
    layer, by = Layer.INFRASTRUCTURE, _by(Layer.INFRASTRUCTURE)
    cpu = f"host:system_cpu_utilization:ratio_rate{c.w}"
    cpu_time = "system_cpu_time_seconds_total"
    return [
        _record(
            cpu,
            f'1 - sum by ({by}) (rate({cpu_time}{{state="idle"}}[{c.w}]))'
            f" / sum by ({by}) (rate({cpu_time}[{c.w}]))",
            layer,
        ),
        # The host target's own up: component and probe targets have theirs.
        c.alert(
            "HostDown",
            "host_down",
            layer,
            'up{layer="infrastructure"} == 0',
            "critical",
            "Host {{ $labels.host }} is down",
            "{{ $labels.instance }} (job {{ $labels.job }}) could not be collected.",
        ),
        c.alert(
            "HostCpuSaturated",
            "host_cpu",
            layer,
            f"{cpu} > {c.t('host_cpu')}",
            "warning",
            "Host {{ $labels.host }} CPU is saturated",
            "The CPUs of {{ $labels.host }} are busy {{ $value | humanizePercentage }} "
            f"of the time (threshold {_pct(c, 'host_cpu')}).",
        ),
        c.alert(
            "HostMemorySaturated",
            "host_memory",
            layer,
            f'max by ({by}) (system_memory_utilization_ratio{{state="used"}})'
            f" > {c.t('host_memory')}",
            "warning",
            "Host {{ $labels.host }} memory is nearly full",
            "{{ $value | humanizePercentage }} of the memory of {{ $labels.host }} is used "
            f"(threshold {_pct(c, 'host_memory')}).",
        ),
        c.alert(
            "HostFilesystemFull",
            "host_filesystem",
            layer,
            f"max by ({_by(layer, 'device', 'mountpoint')}) "
            f"(system_filesystem_utilization_ratio) > {c.t('host_filesystem')}",
            "warning",
            "Filesystem {{ $labels.mountpoint }} on {{ $labels.host }} is nearly full",
            "{{ $value | humanizePercentage }} of {{ $labels.mountpoint }} "
            "({{ $labels.device }}) on {{ $labels.host }} is used "
            f"(threshold {_pct(c, 'host_filesystem')}).",
        ),
    ]


# The standard exporters' "answered" gauges (catalog: components).
_EXPORTER_UP = ("redis_up", "pg_up", "mysql_up", "nginx_up", "memcached_up")


def _component(c: _Ctx) -> list[Rule]:
    layer, by = Layer.COMPONENT, _by(Layer.COMPONENT)
    near = c.t("component_saturation")
    limit = _pct(c, "component_saturation")
    # A failed collection sets up and the exporter's *_up to 0 with the same
    # labels; "or" keeps one of them. A real exporter scraped as a target
    # has up 1 and *_up 0 when its server is gone.
    down = " or ".join(['up{layer="component"} == 0', *(f"{m} == 0" for m in _EXPORTER_UP)])
    return [
        c.alert(
            "ComponentDown",
            "component_down",
            layer,
            down,
            "critical",
            "{{ $labels.component }} {{ $labels.instance }} is down",
            "{{ $labels.component }} at {{ $labels.instance }} (job {{ $labels.job }}) "
            "does not answer.",
        ),
        c.alert(
            "RedisRejectedConnections",
            "redis_rejected_connections",
            layer,
            f"sum by ({by}) (increase(redis_rejected_connections_total[{c.w}])) > 0",
            "warning",
            "Redis {{ $labels.instance }} rejects connections",
            "Redis at {{ $labels.instance }} rejected {{ $value | humanize }} connections "
            f"in {c.w} (maxclients reached).",
        ),
        c.alert(
            "RedisMemoryNearLimit",
            "component_saturation",
            layer,
            f"max by ({by}) (redis_memory_used_bytes)"
            f" / max by ({by}) (redis_memory_max_bytes > 0) > {near}",
            "warning",
            "Redis {{ $labels.instance }} memory is near maxmemory",
            "Redis at {{ $labels.instance }} uses {{ $value | humanizePercentage }} of "
            f"maxmemory (threshold {limit}).",
        ),
        c.alert(
            "PostgresConnectionsNearLimit",
            "component_saturation",
            layer,
            f"sum by ({by}) (pg_stat_activity_count)"
            f" / max by ({by}) (pg_settings_max_connections) > {near}",
            "warning",
            "PostgreSQL {{ $labels.instance }} is near max_connections",
            "PostgreSQL at {{ $labels.instance }} has {{ $value | humanizePercentage }} of "
            f"max_connections open (threshold {limit}).",
        ),
        c.alert(
            "MySQLConnectionsNearLimit",
            "component_saturation",
            layer,
            f"max by ({by}) (mysql_global_status_threads_connected)"
            f" / max by ({by}) (mysql_global_variables_max_connections) > {near}",
            "warning",
            "MySQL {{ $labels.instance }} is near max_connections",
            "MySQL at {{ $labels.instance }} has {{ $value | humanizePercentage }} of "
            f"max_connections open (threshold {limit}).",
        ),
        c.alert(
            "MemcachedEvictions",
            "memcached_evictions",
            layer,
            f"sum by ({by}) (rate(memcached_items_evicted_total[{c.w}]))"
            f" > {c.t('memcached_evictions')}",
            "warning",
            "memcached {{ $labels.instance }} evicts items",
            "memcached at {{ $labels.instance }} evicts {{ $value | humanize }} items per "
            f"second (threshold {c.t('memcached_evictions')}/s): its memory is too small.",
        ),
    ]


def _error_ratio(metric: str, by: str, window: str, selector: str = "") -> str:
    """Failed share of ``metric``'s requests over ``window``, by ``by``."""
    sep = ", " if selector else ""
    failed = f"{metric}_count{{{selector}{sep}status_class=~{_ERRORS}}}"
    total = f"{metric}_count{{{selector}}}" if selector else f"{metric}_count"
    return f"sum by ({by}) (rate({failed}[{window}])) / sum by ({by}) (rate({total}[{window}]))"


def _service(c: _Ctx) -> list[Rule]:
    layer = Layer.SERVICE
    ratio = f"service:service_request_errors:ratio_rate{c.w}"
    return [
        _record(ratio, _error_ratio("service_request_duration_seconds", _by(layer), c.w), layer),
        c.alert(
            "ServiceErrorRatioHigh",
            "service_errors",
            layer,
            f"{ratio} > {c.t('service_errors')}",
            "critical",
            "Service {{ $labels.service }} fails {{ $value | humanizePercentage }} of requests",
            "{{ $value | humanizePercentage }} of the requests to {{ $labels.service }} "
            f"failed over {c.w} (threshold {_pct(c, 'service_errors')}).",
        ),
    ]


def _interface(c: _Ctx) -> list[Rule]:
    layer, by = Layer.INTERFACE, _by(Layer.INTERFACE)
    ratio = f"service_interface:interface_request_errors:ratio_rate{c.w}"
    p99 = f"service_interface:interface_request_duration_seconds:p99_rate{c.w}"
    where = "{{ $labels.service }} {{ $labels.interface }}"
    return [
        _record(ratio, _error_ratio("interface_request_duration_seconds", by, c.w), layer),
        _record(
            p99,
            f"histogram_quantile(0.99, sum by ({by}, le) "
            f"(rate(interface_request_duration_seconds_bucket[{c.w}])))",
            layer,
        ),
        c.alert(
            "InterfaceLatencyHigh",
            "interface_latency_p99",
            layer,
            f"{p99} > {c.t('interface_latency_p99')}",
            "warning",
            f"{where} is slow",
            f"99% of the requests to {where} took up to {{{{ $value | humanizeDuration }}}} "
            f"over {c.w} (threshold {c.t('interface_latency_p99')}s).",
        ),
        c.alert(
            "InterfaceErrorRatioHigh",
            "interface_errors",
            layer,
            f"{ratio} > {c.t('interface_errors')}",
            "warning",
            f"{where} fails {{{{ $value | humanizePercentage }}}} of requests",
            f"{{{{ $value | humanizePercentage }}}} of the requests to {where} failed over "
            f"{c.w} (threshold {_pct(c, 'interface_errors')}).",
        ),
    ]


def _user(c: _Ctx) -> list[Rule]:
    layer = Layer.USER
    by_page = "app, page"
    return [
        c.alert(
            "ProbeFailing",
            "probe_failing",
            layer,
            "probe_success == 0",
            "critical",
            "Probe of {{ $labels.instance }} fails",
            "The synthetic probe of {{ $labels.instance }} (job {{ $labels.job }}) fails: "
            "users cannot reach it.",
        ),
        c.alert(
            "BrowserErrorsHigh",
            "browser_errors",
            layer,
            f"sum by ({by_page}) (rate(browser_errors_total[{c.w}]))"
            f" / sum by ({by_page}) (rate(browser_page_load_seconds_count[{c.w}]))"
            f" > {c.t('browser_errors')}",
            "warning",
            "Pages {{ $labels.page }} of {{ $labels.app }} show errors",
            "Browsers report {{ $value | humanize }} errors per load of {{ $labels.page }} "
            f"({{{{ $labels.app }}}}) over {c.w} (threshold {c.t('browser_errors')}).",
        ),
        c.alert(
            "UserErrorRatioHigh",
            "user_errors",
            layer,
            _error_ratio("user_request_duration_seconds", "service", c.w)
            + f" > {c.t('user_errors')}",
            "warning",
            "Users see {{ $labels.service }} fail",
            "{{ $value | humanizePercentage }} of users' requests to {{ $labels.service }} "
            f"failed over {c.w} (threshold {_pct(c, 'user_errors')}).",
        ),
    ]


def _slo_ratio(slo: Slo, window: str) -> str:
    """Bad share of the SLO's requests over ``window``, 0 rather than nothing
    when there is traffic but no bad request."""
    layer = slo.layer
    by = _by(layer)
    selector = f'service="{_quote(slo.service)}"'
    if slo.interface is not None:
        selector += f', interface="{_quote(slo.interface)}"'
    metric = f"{layer.value}_request_duration_seconds"
    total = f"sum by ({by}) (rate({metric}_count{{{selector}}}[{window}]))"
    if slo.latency_threshold_seconds is None:
        bad = (
            f"sum by ({by}) (rate({metric}_count{{{selector}, status_class=~{_ERRORS}}}[{window}]))"
        )
        return f"({bad} or 0 * {total}) / {total}"
    le = format_openmetrics_float(slo.latency_threshold_seconds)
    good = (
        f"sum by ({by}) (rate({metric}_bucket"
        f'{{{selector}, le="{le}", status_class!~{_ERRORS}}}[{window}]))'
    )
    return f"1 - ({good} or 0 * {total}) / {total}"


def _slo_rules(options: LayerRuleOptions) -> list[Rule]:
    recorded: list[Rule] = []
    alerts: list[Rule] = []
    c = _Ctx(options)
    for slo in options.slos:
        for window in _SLO_WINDOWS:
            recorded.append(
                _record(
                    f"slo:sli_error:ratio_rate{window}",
                    _slo_ratio(slo, window),
                    slo.layer,
                    slo=slo.name,
                )
            )
        where = "{{ $labels.service }}" + (
            " {{ $labels.interface }}" if slo.interface is not None else ""
        )
        budget = _number(slo.budget)
        bad = "failed"
        if slo.latency_threshold_seconds is not None:
            bad = f"failed or took longer than {_number(slo.latency_threshold_seconds)}s"
        for key, severity, (long, short, burn) in (
            ("slo_fast_burn", "critical", _FAST_BURN),
            ("slo_slow_burn", "warning", _SLOW_BURN),
        ):
            limit = f"({_number(burn)} * {budget})"
            pace = "fast" if key == "slo_fast_burn" else "steadily"
            alerts.append(
                c.alert(
                    "SLOErrorBudgetBurnFast"
                    if key == "slo_fast_burn"
                    else "SLOErrorBudgetBurnSlow",
                    key,
                    slo.layer,
                    f'slo:sli_error:ratio_rate{long}{{slo="{_quote(slo.name)}"}} > {limit}'
                    f' and slo:sli_error:ratio_rate{short}{{slo="{_quote(slo.name)}"}} > {limit}',
                    severity,
                    f"{where} burns its error budget {pace}",
                    f"SLO {_template_text(slo.name)} (objective {_number(slo.objective * 100)}%): "
                    f"{{{{ $value | humanizePercentage }}}} of requests {bad} in the last "
                    f"{long} (and in the last {short}): over {_number(burn)} times the "
                    f"budget of {_number(slo.budget * 100)}%.",
                    slo=_template_text(slo.name),  # alert labels are templates
                )
            )
    return [*recorded, *alerts]


def _number(value: float) -> str:
    """A threshold as PromQL and people read it: 0.9, 1, 14.4 (not 0.900000001)."""
    text = repr(round(value, 10))
    return text.removesuffix(".0")


def _pct(c: _Ctx, key: str) -> str:
    return f"{_number(c.options.thresholds[key] * 100)}%"


def _quote(value: str) -> str:
    """``value`` inside a PromQL double-quoted string."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _template_text(value: str) -> str:
    """``value`` as literal text in a Go template (no action delimiters)."""
    return value.replace("{{", "{{ `{{` }}")


# --- the rule file ---------------------------------------------------------------


def rule_file_text(groups: Iterable[RuleGroup]) -> str:
    """``groups`` as a Prometheus rule file (YAML), for ``tinct rules`` to print."""
    doc = {"groups": [_group_doc(g) for g in groups]}
    header = (
        "# Generated by tinct from its data standard (tinct.alerting.layer_rules).\n"
        "# Thresholds and durations: alerting.layer_rules in tinct's config file.\n"
    )
    body = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=10_000)
    return header + body


def write_rule_file(groups: Iterable[RuleGroup], path: Path) -> None:
    """Write ``groups`` to ``path`` as a Prometheus rule file. Raises OSError."""
    Path(path).write_text(rule_file_text(groups), encoding="utf-8")


def _group_doc(group: RuleGroup) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": group.name}
    if group.interval_s:
        doc["interval"] = format_duration(group.interval_s)
    if group.labels:
        doc["labels"] = dict(group.labels)
    rules: list[dict[str, Any]] = []
    for rule in group.rules:
        if isinstance(rule, RecordingRule):
            entry: dict[str, Any] = {"record": rule.record, "expr": rule.expr}
        else:
            entry = {"alert": rule.alert, "expr": rule.expr}
            if rule.for_s:
                entry["for"] = format_duration(rule.for_s)
        if rule.labels:
            entry["labels"] = dict(rule.labels)
        if isinstance(rule, AlertingRule) and rule.annotations:
            entry["annotations"] = dict(rule.annotations)
        rules.append(entry)
    doc["rules"] = rules
    return doc


# --- config ----------------------------------------------------------------------
