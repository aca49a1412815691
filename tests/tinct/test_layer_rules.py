"""Layer rule templates: valid for Prometheus, built from the catalog, firing when they should."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from tinct.alerting.layer_rules import (
    DEFAULT_FOR,
    DEFAULT_THRESHOLDS,
    LayerRuleOptions,
    layer_rule_groups,
    rule_file_text,
    write_rule_file,
)
from tinct.alerting.layer_rules_config import parse_layer_rules_config
from tinct.alerting.rules import AlertingRule, RecordingRule
from tinct.catalog import CATALOG
from tinct.errors import ConfigError
from tinct.standard import Layer

PROMTOOL = "/usr/bin/promtool"  # Debian's prometheus package (2.42)


def needs_promtool(test: Any) -> Any:
    """Marks a test that runs the real promtool binary."""
    skip = pytest.mark.skipif(not os.access(PROMTOOL, os.X_OK), reason="promtool is not installed")
    return pytest.mark.server(skip(test))


CONFIG: dict[str, Any] = {
    "alerting": {"layer_rules": True},
    "slos": [
        {"service": "gateway", "interface": "/orders", "objective": 0.999},
        {"service": "gateway", "interface": "/users", "objective": 0.99},
        {"service": "payments", "objective": 0.99, "latency_threshold_seconds": 0.5},
    ],
}


def _options(doc: dict[str, Any] | None = None) -> LayerRuleOptions:
    options = parse_layer_rules_config(CONFIG if doc is None else doc)
    assert options is not None
    return options


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


# Names that need quoting in PromQL and escaping in templates (alert labels
# and annotations are Go templates).
ODD_NAMES: dict[str, Any] = {
    "alerting": {"layer_rules": {"window": "90s"}},
    "slos": [{"service": 'we"ird\\', "interface": "/a/{{id}}", "objective": 0.9995}],
}


@needs_promtool
@pytest.mark.parametrize("doc", [CONFIG, ODD_NAMES], ids=["demo", "odd-names"])
def test_generated_file_passes_promtool_check(tmp_path: Path, doc: dict[str, Any]) -> None:
    path = tmp_path / "tinct-layer-rules.yml"
    write_rule_file(layer_rule_groups(_options(doc)), path)
    result = _promtool("check", "rules", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_metric_is_in_the_catalog_or_recorded_here() -> None:
    groups = layer_rule_groups(_options())
    recorded = {r.record for g in groups for r in g.rules if isinstance(r, RecordingRule)}
    used: set[str] = set()
    for group in groups:
        for rule in group.rules:
            nodes: list[Any] = []
            promql_parser.walk(promql_parser.parse(rule.expr), nodes.append)
            names = [
                n.name for n in nodes if isinstance(n, promql_parser.VectorSelector) and n.name
            ]
            assert names, f"{rule}: no selector"
            used.update(names)
    unknown = {n for n in used if n not in recorded and CATALOG.for_sample(n) is None}
    assert not unknown
    # Every layer's families are alerted on, and every recording rule is read.
    assert {"up", "system_cpu_time_seconds_total", "probe_success", "redis_up"} <= used
    assert recorded <= used


def test_every_alert_names_its_layer_severity_and_explains_itself() -> None:
    groups = layer_rule_groups(_options())
    alerts = [r for g in groups for r in g.rules if isinstance(r, AlertingRule)]
    names = {a.alert for a in alerts}
    assert {
        "HostDown",
        "HostCpuSaturated",
        "HostMemorySaturated",
        "HostFilesystemFull",
        "ComponentDown",
        "ServiceErrorRatioHigh",
        "InterfaceLatencyHigh",
        "InterfaceErrorRatioHigh",
        "ProbeFailing",
        "BrowserErrorsHigh",
        "UserErrorRatioHigh",
        "SLOErrorBudgetBurnFast",
        "SLOErrorBudgetBurnSlow",
    } <= names
    for alert in alerts:
        assert Layer(alert.labels["layer"])
        assert alert.labels["severity"] in ("critical", "warning")
        assert "{{" in alert.annotations["summary"] + alert.annotations["description"]


def test_thresholds_and_for_come_from_the_config() -> None:
    doc = {
        "alerting": {
            "layer_rules": {
                "layers": ["infrastructure"],
                "window": "2m",
                "thresholds": {"host_cpu": 0.75},
                "for": {"host_down": "30s"},
            }
        }
    }
    options = _options(doc)
    assert options.thresholds["host_cpu"] == 0.75
    assert options.thresholds["host_memory"] == DEFAULT_THRESHOLDS["host_memory"]
    assert options.for_s["host_down"] == 30
    assert options.for_s["host_cpu"] == DEFAULT_FOR["host_cpu"]
    (group,) = layer_rule_groups(options)
    assert group.name == "tinct-infrastructure"
    text = rule_file_text([group])
    doc_out = yaml.safe_load(text)
    rules = {r.get("alert") or r["record"]: r for r in doc_out["groups"][0]["rules"]}
    assert rules["HostDown"]["for"] == "30s"
    assert rules["HostCpuSaturated"]["expr"] == "host:system_cpu_utilization:ratio_rate2m > 0.75"
    assert "[2m]" in rules["host:system_cpu_utilization:ratio_rate2m"]["expr"]


@pytest.mark.parametrize(
    "doc",
    [
        {},
        {"alerting": None},
        {"alerting": {"alertmanagers": []}},
        {"alerting": {"layer_rules": False}},
    ],
)
def test_switch_off_means_no_rules(doc: dict[str, Any]) -> None:
    assert parse_layer_rules_config(doc) is None


def test_switch_on_gives_every_layer_and_no_slo_group_without_slos() -> None:
    groups = layer_rule_groups(_options({"alerting": {"layer_rules": True}}))
    assert [g.name for g in groups] == [f"tinct-{layer.value}" for layer in Layer]


@pytest.mark.parametrize(
    ("layer_rules", "slos", "field"),
    [
        ("yes", None, "alerting.layer_rules:"),
        ({"thresholdz": {}}, None, "alerting.layer_rules.thresholdz"),
        ({"thresholds": {"host_cpu": 1.5}}, None, "alerting.layer_rules.thresholds.host_cpu"),
        ({"thresholds": {"host_cpu": "lots"}}, None, "alerting.layer_rules.thresholds.host_cpu"),
        ({"thresholds": {"cpu": 0.9}}, None, "alerting.layer_rules.thresholds.cpu"),
        (
            {"thresholds": {"interface_latency_p99": 0}},
            None,
            "alerting.layer_rules.thresholds.interface_latency_p99",
        ),
        ({"for": {"host_down": "1 minute"}}, None, "alerting.layer_rules.for.host_down"),
        ({"for": {"host_down": -5}}, None, "alerting.layer_rules.for.host_down"),
        ({"window": "0s"}, None, "alerting.layer_rules.window"),
        ({"layers": ["hosts"]}, None, "alerting.layer_rules.layers[0]"),
        (True, {"service": "gateway"}, "slos:"),
        (True, [{"service": "gateway", "objective": 99.9}], "slos[0].objective"),
        (True, [{"service": "gateway"}], "slos[0].objective"),
        (True, [{"objective": 0.99}], "slos[0].service"),
        (True, [{"service": "", "objective": 0.99}], "slos[0].service"),
        (
            True,
            [{"service": "a", "objective": 0.99}, {"service": "b", "objective": 0.9, "x": 1}],
            "slos[1].x",
        ),
        (
            True,
            [{"service": "a", "objective": 0.99, "latency_threshold_seconds": 0.3}],
            "slos[0].latency_threshold_seconds",
        ),
        (
            True,
            [{"service": "a", "objective": 0.99}, {"service": "a", "objective": 0.999}],
            "slos[1].name",
        ),
    ],
)
def test_bad_config_names_the_field(layer_rules: Any, slos: Any, field: str) -> None:
    doc: dict[str, Any] = {"alerting": {"layer_rules": layer_rules}}
    if slos is not None:
        doc["slos"] = slos
    with pytest.raises(ConfigError) as caught:
        parse_layer_rules_config(doc)
    assert str(caught.value).startswith(field), str(caught.value)


def test_objective_given_as_a_percentage_gets_a_hint() -> None:
    doc = {"alerting": {"layer_rules": True}, "slos": [{"service": "a", "objective": 99.9}]}
    with pytest.raises(ConfigError, match=r"did you mean 0\.999"):
        parse_layer_rules_config(doc)


# Input series fire HostDown (the host's up drops at 2m), ServiceErrorRatioHigh
# (payments fails 40% of requests) and the SLO burn alerts (gateway /orders
# fails 5% against a 0.1% budget; 85% of payments' requests fail or are slow
# against 1%); the component target, orders (4xx are not errors) and
# gateway /users stay healthy and must not fire.
UNIT_TESTS = """
rule_files: [tinct-layer-rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'up{job="host", instance="h1", host="h1", layer="infrastructure"}'
        values: '1 1 0x40'
      - series: 'up{job="redis", instance="r1:6379", component="redis", layer="component"}'
        values: '1x40'
      - series: 'redis_up{job="redis", instance="r1:6379", component="redis",
          layer="component"}'
        values: '1x40'
      - series: 'service_request_duration_seconds_count{layer="service", service="payments",
          status_class="2xx"}'
        values: '0+60x40'
      - series: 'service_request_duration_seconds_count{layer="service", service="payments",
          status_class="5xx"}'
        values: '0+40x40'
      - series: 'service_request_duration_seconds_count{layer="service", service="orders",
          status_class="2xx"}'
        values: '0+100x40'
      - series: 'service_request_duration_seconds_count{layer="service", service="orders",
          status_class="4xx"}'
        values: '0+50x40'
      - series: 'interface_request_duration_seconds_count{layer="interface", service="gateway",
          interface="/orders", method="GET", status_class="2xx"}'
        values: '0+95x40'
      - series: 'interface_request_duration_seconds_count{layer="interface", service="gateway",
          interface="/orders", method="GET", status_class="5xx"}'
        values: '0+5x40'
      - series: 'interface_request_duration_seconds_count{layer="interface", service="gateway",
          interface="/users", method="GET", status_class="2xx"}'
        values: '0+100x40'
      - series: 'service_request_duration_seconds_bucket{layer="service", service="payments",
          status_class="2xx", le="0.5"}'
        values: '0+15x40'
    alert_rule_test:
      - eval_time: 2m
        alertname: HostDown
        exp_alerts: []
      - eval_time: 3m
        alertname: HostDown
        exp_alerts:
          - exp_labels:
              {job: host, instance: h1, host: h1, layer: infrastructure, severity: critical}
            exp_annotations:
              summary: Host h1 is down
              description: h1 (job host) could not be collected.
      - eval_time: 20m
        alertname: ComponentDown
        exp_alerts: []
      - eval_time: 4m
        alertname: ServiceErrorRatioHigh
        exp_alerts: []
      - eval_time: 20m
        alertname: ServiceErrorRatioHigh
        exp_alerts:
          - exp_labels: {layer: service, severity: critical, service: payments}
            exp_annotations:
              summary: Service payments fails 40% of requests
              description: 40% of the requests to payments failed over 5m (threshold 5%).
      - eval_time: 20m
        alertname: SLOErrorBudgetBurnFast
        exp_alerts:
          - exp_labels:
              layer: interface
              severity: critical
              service: gateway
              interface: /orders
              slo: gateway /orders availability
            exp_annotations:
              summary: gateway /orders burns its error budget fast
              description: >-
                SLO gateway /orders availability (objective 99.9%): 5% of requests
                failed in the last 1h (and in the last 5m): over 14.4 times
                the budget of 0.1%.
          - exp_labels:
              layer: service
              severity: critical
              service: payments
              slo: payments latency 500ms
            exp_annotations:
              summary: payments burns its error budget fast
              description: >-
                SLO payments latency 500ms (objective 99%): 85% of requests failed
                or took longer than 0.5s in the last 1h (and in the last 5m):
                over 14.4 times the budget of 1%.
      - eval_time: 30m
        alertname: SLOErrorBudgetBurnSlow
        exp_alerts:
          - exp_labels:
              layer: interface
              severity: warning
              service: gateway
              interface: /orders
              slo: gateway /orders availability
            exp_annotations:
              summary: gateway /orders burns its error budget steadily
              description: >-
                SLO gateway /orders availability (objective 99.9%): 5% of requests
                failed in the last 6h (and in the last 30m): over 6 times
                the budget of 0.1%.
          - exp_labels:
              layer: service
              severity: warning
              service: payments
              slo: payments latency 500ms
            exp_annotations:
              summary: payments burns its error budget steadily
              description: >-
                SLO payments latency 500ms (objective 99%): 85% of requests failed
                or took longer than 0.5s in the last 6h (and in the last 30m):
                over 6 times the budget of 1%.
    promql_expr_test:
      # No failed request: the ratio is 0, not missing.
      - expr: slo:sli_error:ratio_rate5m{slo="gateway /users availability"}
        eval_time: 10m
        exp_samples:
          - labels: 'slo:sli_error:ratio_rate5m{layer="interface", service="gateway",
              interface="/users", slo="gateway /users availability"}'
            value: 0
      # 40 of 100 requests failed and 45 more took over 0.5s.
      - expr: round(slo:sli_error:ratio_rate5m{slo="payments latency 500ms"}, 0.001)
        eval_time: 10m
        exp_samples:
          - labels: '{layer="service", service="payments", slo="payments latency 500ms"}'
            value: 0.85
"""


@needs_promtool
def test_generated_rules_fire_under_promtool_test_rules(tmp_path: Path) -> None:
    write_rule_file(layer_rule_groups(_options()), tmp_path / "tinct-layer-rules.yml")
    (tmp_path / "test.yml").write_text(UNIT_TESTS)
    result = _promtool("test", "rules", "test.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
