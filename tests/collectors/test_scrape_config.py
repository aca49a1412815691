"""A prometheus.yml carries over: scrape configs, file_sd, target relabelling, collectors."""

from __future__ import annotations

import base64
import importlib
import json
import logging
import socket
import sys
import textwrap
import types
from pathlib import Path
from typing import Any

import pytest
import yaml

from tinct.collectors.config import (
    CollectionConfig,
    discover_targets,
    load_collection_config,
    parse_collection_config,
)
from tinct.errors import ConfigError

PROMETHEUS_YML = """\
# my global config
global:
  scrape_interval: 15s
  evaluation_interval: 15s
  external_labels:
    monitor: codelab
    region: ""

alerting:
  alertmanagers:
    - static_configs:
        - targets: [alertmanager:9093]

rule_files:
  - rules/*.yml

scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["localhost:9090"]

  - job_name: node
    scrape_interval: 30s
    scrape_timeout: 20s
    file_sd_configs:
      - files: [targets/*.json]
        refresh_interval: 1m
    relabel_configs:
      - source_labels: [__meta_filepath]
        regex: .*/(.*)\\.json
        target_label: sd_file

  - job_name: blackbox
    metrics_path: /probe
    params:
      module: [http_2xx]
    static_configs:
      - targets:
          - https://example.com
          - http://example.org/health
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [__param_target]
        target_label: instance
      - target_label: __address__
        replacement: 127.0.0.1:9115

  - job_name: federate
    honor_labels: true
    honor_timestamps: false
    scheme: https
    metrics_path: /federate
    params:
      "match[]": ['{job="prometheus"}', '{__name__=~"job:.*"}']
    basic_auth:
      username: admin
      password: s3cret
    sample_limit: 5000
    body_size_limit: 10MB
    static_configs:
      - targets: ["source-prometheus-1:9090"]
        labels: {dc: eu}
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: go_.*
        action: drop
"""


@pytest.fixture(autouse=True)
def _collectors(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real collector modules, or stand-ins while they are being written."""
    for module, cls in (
        ("tinct.collectors.scrape", "HttpCollector"),
        ("tinct.collectors.host", "HostCollector"),
    ):
        try:
            importlib.import_module(module)
        except ImportError:
            fake = types.ModuleType(module)
            setattr(fake, cls, type(cls, (FakeCollector,), {}))
            monkeypatch.setitem(sys.modules, module, fake)


class FakeCollector:
    """Records how discovery built it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs

    def collect(self) -> list[Any]:
        return []


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replace HttpCollector by a recorder, to see the url, timeout, headers and limit."""
    scrape = importlib.import_module("tinct.collectors.scrape")
    monkeypatch.setattr(scrape, "HttpCollector", type("HttpCollector", (FakeCollector,), {}))


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def parse(text: str, path: Path | None = None) -> CollectionConfig:
    return parse_collection_config(yaml.safe_load(textwrap.dedent(text)) or {}, path=path)


def by_job(config: CollectionConfig, job: str) -> list[Any]:
    """The targets of ``job`` (all when empty), typed loosely to reach fake collectors."""
    return [t for t in discover_targets(config) if t.job == job or not job]


def test_prometheus_yml_carries_over(tmp_path: Path, recorded: None) -> None:
    config_file = write(tmp_path / "prometheus.yml", PROMETHEUS_YML)
    write(
        tmp_path / "targets" / "nodes.json",
        json.dumps([{"targets": ["10.0.0.1:9100", "10.0.0.2:9100"], "labels": {"env": "prod"}}]),
    )
    config = load_collection_config(config_file)

    assert config.global_config.scrape_interval == 15
    assert config.global_config.scrape_timeout == 10
    assert config.global_config.external_labels == {"monitor": "codelab"}
    assert [s.job_name for s in config.scrape_configs] == [
        "prometheus",
        "node",
        "blackbox",
        "federate",
    ]
    assert config.refresh_interval == 60

    (prom,) = by_job(config, "prometheus")
    assert prom.labels == {"job": "prometheus", "instance": "localhost:9090"}
    assert prom.scrape_url == "http://localhost:9090/metrics"
    assert (prom.interval, prom.timeout) == (15, 10)
    assert prom.discovered_labels == {
        "__address__": "localhost:9090",
        "job": "prometheus",
        "__scheme__": "http",
        "__metrics_path__": "/metrics",
        "__scrape_interval__": "15s",
        "__scrape_timeout__": "10s",
    }
    assert prom.collector.args == ("http://localhost:9090/metrics",)
    assert prom.collector.kwargs == {"timeout": 10, "headers": {}, "body_size_limit": 0}

    nodes = by_job(config, "node")
    assert [t.labels for t in nodes] == [
        {"env": "prod", "job": "node", "instance": f"10.0.0.{i}:9100", "sd_file": "nodes"}
        for i in (1, 2)
    ]
    assert nodes[0].discovered_labels["__meta_filepath"] == str(tmp_path / "targets/nodes.json")
    assert (nodes[0].interval, nodes[0].timeout) == (30, 20)

    probes = by_job(config, "blackbox")
    assert [(t.labels["instance"], t.scrape_url) for t in probes] == [
        (
            "https://example.com",
            "http://127.0.0.1:9115/probe?module=http_2xx&target=https%3A%2F%2Fexample.com",
        ),
        (
            "http://example.org/health",
            "http://127.0.0.1:9115/probe?module=http_2xx&target=http%3A%2F%2Fexample.org%2Fhealth",
        ),
    ]

    (fed,) = by_job(config, "federate")
    assert fed.labels == {"dc": "eu", "job": "federate", "instance": "source-prometheus-1:9090"}
    assert fed.scrape_url == (
        "https://source-prometheus-1:9090/federate"
        "?match%5B%5D=%7Bjob%3D%22prometheus%22%7D&match%5B%5D=%7B__name__%3D~%22job%3A.%2A%22%7D"
    )
    assert fed.honor_labels is True and fed.honor_timestamps is False
    assert fed.sample_limit == 5000
    assert [c.action for c in fed.metric_relabel_configs] == ["drop"]
    token = base64.b64encode(b"admin:s3cret").decode()
    assert fed.collector.kwargs["headers"] == {"Authorization": f"Basic {token}"}
    assert fed.collector.kwargs["body_size_limit"] == 10 * 1024 * 1024
    assert "s3cret" not in repr(config)


def test_real_collector_classes() -> None:
    config = parse(
        """
        scrape_configs:
          - job_name: app
            static_configs: [{targets: ["127.0.0.1:8000"]}]
        """
    )
    classes = {t.job: type(t.collector).__name__ for t in discover_targets(config)}
    assert classes == {"app": "HttpCollector", "host": "HostCollector"}


def test_defaults() -> None:
    config = parse("")
    assert config.global_config.scrape_interval == 60
    assert config.global_config.scrape_timeout == 10
    assert config.scrape_configs == () and config.components == ()
    assert config.host.enabled and config.host.job_name == "host"
    assert config.refresh_interval is None

    config = parse(
        """
        global: {scrape_interval: 5s}
        scrape_configs:
          - job_name: a
          - job_name: b
            scrape_interval: 1m
        """
    )
    # The global timeout (10s) is capped at the interval, as Prometheus does.
    assert config.global_config.scrape_timeout == 5
    a, b = config.scrape_configs
    assert (a.scrape_interval, a.scrape_timeout) == (5, 5)
    assert (b.scrape_interval, b.scrape_timeout) == (60, 5)
    assert (a.metrics_path, a.scheme, a.honor_labels, a.honor_timestamps) == (
        "/metrics",
        "http",
        False,
        True,
    )
    assert (a.sample_limit, a.body_size_limit, a.params) == (0, 0, {})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            """
            scrape_configs:
              - job_name: a
              - job_name: b
                scrape_interval: 15s
                scrape_timeout: 20s
            """,
            "tinct.yaml: scrape_configs[1].scrape_timeout: 20s is greater than scrape_interval 15s",
        ),
        (
            "global: {scrape_interval: 5s, scrape_timeout: 6s}",
            "global.scrape_timeout: 6s is greater than global.scrape_interval 5s",
        ),
        (
            "scrape_configs: [{job_name: a, scrape_intervl: 15s}]",
            "scrape_configs[0].scrape_intervl: unknown field (known: authorization,",
        ),
        ("global: {scrape_intrval: 1m}", "global.scrape_intrval: unknown field"),
        ("scrape_configs: [{scrape_interval: 15s}]", "scrape_configs[0].job_name: must be set"),
        (
            "scrape_configs: [{job_name: a}, {job_name: a}]",
            "scrape_configs[1].job_name: 'a' is already used by scrape_configs[0]",
        ),
        (
            "scrape_configs: [{job_name: a, scrape_interval: 15}]",
            "scrape_configs[0].scrape_interval: '15' is not a valid duration",
        ),
        ("scrape_configs: [{job_name: a, scheme: ftp}]", "scheme: 'ftp' is not http or https"),
        (
            "scrape_configs: [{job_name: a, kubernetes_sd_configs: [{role: pod}]}]",
            "scrape_configs[0].kubernetes_sd_configs: not supported by tinct",
        ),
        (
            "scrape_configs: [{job_name: a, tls_config: {insecure_skip_verify: true}}]",
            "scrape_configs[0].tls_config: not supported by tinct",
        ),
        (
            "scrape_configs: [{job_name: a, static_configs: [{targets: ['http://x:1/m']}]}]",
            "static_configs[0].targets[0]: 'http://x:1/m' is not a host:port address",
        ),
        (
            "scrape_configs: [{job_name: a, static_configs: [{targets: [x], labels: {0a: b}}]}]",
            "static_configs[0].labels: '0a' is not a valid label name",
        ),
        (
            "scrape_configs: [{job_name: a, relabel_configs: [{action: foo}]}]",
            "scrape_configs[0].relabel_configs[0].action: unknown action 'foo'",
        ),
        (
            "scrape_configs: [{job_name: a, body_size_limit: 10kB}]",
            "scrape_configs[0].body_size_limit: '10kB' is not a size",
        ),
        (
            "scrape_configs: [{job_name: a, body_size_limit: 1000}]",
            "scrape_configs[0].body_size_limit: '1000' is not a size",
        ),
        (
            "scrape_configs: [{job_name: a, sample_limit: -1}]",
            "scrape_configs[0].sample_limit: -1 is not a whole number",
        ),
        (
            "scrape_configs: [{job_name: a, params: {module: http_2xx}}]",
            "scrape_configs[0].params.module: must be a list",
        ),
        (
            "scrape_configs: [{job_name: a, basic_auth: {username: u}, bearer_token: t}]",
            "scrape_configs[0]: set one of basic_auth, authorization or bearer_token",
        ),
        (
            "scrape_configs: [{job_name: a, authorization: {type: Basic, credentials: x}}]",
            'scrape_configs[0].authorization.type: cannot be "Basic", use basic_auth',
        ),
        (
            "scrape_configs: [{job_name: a, file_sd_configs: [{files: [targets.txt]}]}]",
            "file_sd_configs[0].files[0]: 'targets.txt' is not valid for file discovery",
        ),
        (
            "scrape_configs: [{job_name: a, file_sd_configs: [{files: ['*/x.json']}]}]",
            "'*/x.json' is not valid for file discovery",
        ),
        ("scrape_configs: [{job_name: a, file_sd_configs: [{}]}]", "files: must list at least"),
        (
            "collectors: {hosts: {}}",
            "collectors.hosts: unknown field (known: components, host, probes)",
        ),
        (
            "collectors: {components: [{type: oracle}]}",
            "collectors.components[0].type: unknown component type 'oracle' (known: clickhouse,",
        ),
        (
            "collectors: {components: [{type: redis, metrics_path: /x}]}",
            "collectors.components[0].metrics_path: not used by component collectors",
        ),
        (
            "scrape_configs: [{job_name: redis}]\ncollectors: {components: [{type: redis}]}",
            "collectors.components[0].job_name: 'redis' is already used by scrape_configs[0]",
        ),
        (
            "collectors: {host: {enabled: yes please}}",
            "collectors.host.enabled: 'yes please' is not true or false",
        ),
    ],
)
def test_errors_name_the_file_and_field(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(text, path=Path("tinct.yaml"))
    assert str(info.value).startswith("tinct.yaml: ")
    assert message in str(info.value)


def test_tuning_settings_are_ignored_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        config = parse(
            """
            global: {evaluation_interval: 30s, label_limit: 10}
            scrape_configs:
              - {job_name: a, enable_http2: false, scrape_protocols: [PrometheusText0.0.4]}
            """
        )
    assert config.scrape_configs[0].job_name == "a"
    warned = caplog.text
    assert "global.label_limit" in warned
    assert "scrape_configs[0].enable_http2" in warned
    assert "evaluation_interval" not in warned  # read by the rules feature


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_collection_config(tmp_path / "missing.yaml")
    bad = write(tmp_path / "bad.yaml", "scrape_configs: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_collection_config(bad)


def test_file_sd_follows_its_files(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = parse(
        """
        scrape_configs:
          - job_name: node
            file_sd_configs:
              - files: [sd/*.json, sd/*.yml]
        """,
        path=tmp_path / "tinct.yaml",
    )
    assert by_job(config, "node") == []  # no file yet

    nodes = write(tmp_path / "sd" / "nodes.json", json.dumps([{"targets": ["a:9100"]}]))
    write(
        tmp_path / "sd" / "more.yml",
        """
        - targets: [c:9100]
          labels: {rack: r1}
        """,
    )
    assert [t.labels for t in by_job(config, "node")] == [
        {"job": "node", "instance": "a:9100"},
        {"rack": "r1", "job": "node", "instance": "c:9100"},
    ]

    # Rewritten: the next discovery reads the new content.
    nodes.write_text(json.dumps([{"targets": ["a:9100", "b:9100"], "labels": {"env": "x"}}]))
    assert [t.instance for t in by_job(config, "node")] == ["a:9100", "b:9100", "c:9100"]

    # Broken (half written): the previous targets stay and a warning says why.
    nodes.write_text('[{"targets": ["a:91')
    with caplog.at_level(logging.WARNING):
        assert [t.instance for t in by_job(config, "node")] == ["a:9100", "b:9100", "c:9100"]
    assert "nodes.json" in caplog.text and "keeping its previous targets" in caplog.text
    nodes.write_text(json.dumps({"targets": ["not a list of groups"]}))
    assert [t.instance for t in by_job(config, "node")] == ["a:9100", "b:9100", "c:9100"]

    # Deleted: its targets go, as in Prometheus's file discovery.
    nodes.unlink()
    assert [t.instance for t in by_job(config, "node")] == ["c:9100"]


def test_file_sd_bad_from_the_start_gives_no_targets(tmp_path: Path) -> None:
    write(tmp_path / "t.yaml", "- targets: [a:1]\n  labelz: {}\n")
    config = parse(
        "scrape_configs: [{job_name: j, file_sd_configs: [{files: [t.yaml]}]}]",
        path=tmp_path / "tinct.yaml",
    )
    assert by_job(config, "j") == []


def test_target_relabelling() -> None:
    config = parse(
        r"""
        scrape_configs:
          - job_name: app
            scrape_interval: 30s
            params: {format: [prometheus], extra: [a, b]}
            static_configs:
              - targets: [web-1:8080, web-2:8080, db-1:5432, web-1:8080]
                labels: {team: shop}
            relabel_configs:
              - source_labels: [__address__]
                regex: db-.*
                action: drop
              - source_labels: [__address__]
                regex: '([^:]+):\d+'
                target_label: instance
              - target_label: __param_format
                replacement: openmetrics
              - source_labels: [instance]
                regex: web-2
                target_label: __scrape_interval__
                replacement: 1m
              - target_label: __tmp_scratch
                replacement: gone
              - target_label: __metrics_path__
                replacement: /internal metrics
        """
    )
    targets = by_job(config, "app")
    # db-1 dropped; the repeated web-1 collected once.
    assert [t.labels for t in targets] == [
        {"team": "shop", "job": "app", "instance": "web-1"},
        {"team": "shop", "job": "app", "instance": "web-2"},
    ]
    assert targets[0].scrape_url == (
        "http://web-1:8080/internal%20metrics?extra=a&extra=b&format=openmetrics"
    )
    assert [(t.interval, t.timeout) for t in targets] == [(30, 10), (60, 10)]
    assert targets[0].discovered_labels["__param_format"] == "prometheus"
    assert targets[0].discovered_labels["__param_extra"] == "a"


def test_targets_without_address_or_with_bad_schedule_are_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = parse(
        """
        scrape_configs:
          - job_name: a
            static_configs: [{targets: [x:1]}]
            relabel_configs: [{action: labeldrop, regex: __address__}]
          - job_name: b
            static_configs: [{targets: [x:1]}]
            relabel_configs: [{target_label: __scrape_timeout__, replacement: 2m}]
          - job_name: c
            static_configs: [{targets: [x:1]}]
            relabel_configs: [{target_label: __scrape_interval__, replacement: often}]
        """
    )
    with caplog.at_level(logging.WARNING):
        assert [t.job for t in discover_targets(config)] == ["host"]
    assert "no __address__" in caplog.text
    assert "scrape timeout 2m" in caplog.text
    assert "bad scrape interval" in caplog.text


def test_relabelled_address_with_a_path_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    config = parse(
        """
        scrape_configs:
          - job_name: a
            static_configs: [{targets: [x:1]}]
            relabel_configs: [{target_label: __address__, replacement: 'http://x:1/m'}]
        """
    )
    with caplog.at_level(logging.WARNING):
        assert by_job(config, "a") == []
    assert "not a valid host:port" in caplog.text


def test_auth_headers(tmp_path: Path, recorded: None) -> None:
    write(tmp_path / "secrets" / "token", "tok-from-file\n")
    write(tmp_path / "secrets" / "password", "pw\n")
    config = parse(
        """
        scrape_configs:
          - job_name: bearer
            bearer_token: abc
            static_configs: [{targets: [a:1]}]
          - job_name: authz
            authorization: {credentials_file: secrets/token}
            static_configs: [{targets: [a:1]}]
          - job_name: custom
            authorization: {type: Token, credentials: xyz}
            static_configs: [{targets: [a:1]}]
          - job_name: basic
            basic_auth: {username: u, password_file: secrets/password}
            static_configs: [{targets: [a:1]}]
          - job_name: unreadable
            authorization: {credentials_file: secrets/missing}
            static_configs: [{targets: [a:1]}]
        """,
        path=tmp_path / "tinct.yaml",
    )
    headers = {t.job: t.collector.kwargs["headers"] for t in by_job(config, "") if t.job != "host"}
    assert headers == {
        "bearer": {"Authorization": "Bearer abc"},
        "authz": {"Authorization": "Bearer tok-from-file"},
        "custom": {"Authorization": "Token xyz"},
        "basic": {"Authorization": "Basic " + base64.b64encode(b"u:pw").decode()},
        "unreadable": {},
    }


def test_components(tmp_path: Path) -> None:
    write(
        tmp_path / "pg.yml",
        """
        - targets: [db-1:5432, db-2:5432]
          labels: {service: orders}
        """,
    )
    config = parse(
        """
        global: {scrape_interval: 20s}
        collectors:
          components:
            - type: redis
              options: {password: hunter2}
              static_configs:
                - targets: [127.0.0.1:6379]
                  labels: {service: users}
            - type: nginx
              job_name: edge
              scrape_interval: 5s
              static_configs:
                - targets: [http://127.0.0.1:8080/stub_status]
                  labels: {component: proxy}
            - type: postgresql
              file_sd_configs: [{files: [pg.yml]}]
              relabel_configs:
                - source_labels: [__address__]
                  regex: db-2.*
                  action: drop
        """,
        path=tmp_path / "tinct.yaml",
    )
    assert [c.job_name for c in config.components] == ["redis", "edge", "postgresql"]
    assert config.components[0].options == {"password": "hunter2"}
    assert "hunter2" not in repr(config)

    targets = {t.job: t for t in discover_targets(config)}
    redis = targets["redis"]
    assert redis.labels == {
        "service": "users",
        "job": "redis",
        "layer": "component",
        "component": "redis",
        "instance": "127.0.0.1:6379",
    }
    assert redis.scrape_url == ""
    assert (redis.interval, redis.timeout) == (20, 10)
    # A component's address may be a URL; its own labels win over the defaults.
    edge = targets["edge"]
    assert edge.labels["component"] == "proxy"
    assert edge.labels["layer"] == "component"
    assert edge.labels["instance"] == "http://127.0.0.1:8080/stub_status"
    assert (edge.interval, edge.timeout) == (5, 5)
    pg = [t for t in discover_targets(config) if t.job == "postgresql"]
    assert [t.labels["instance"] for t in pg] == ["db-1:5432"]
    assert pg[0].labels["service"] == "orders"

    names = {t.job: type(t.collector).__name__ for t in discover_targets(config)}
    expected = {
        "redis": "RedisCollector",
        "edge": "NginxCollector",
        "postgresql": "PostgresCollector",
    }
    for job, name in expected.items():
        assert names.get(job) == name


def test_component_options_are_passed(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def fake_component_collector(kind, address, *, timeout, options=None):
        calls.append((kind, address, timeout, options))
        return FakeCollector()

    components = importlib.import_module("tinct.collectors.components")
    monkeypatch.setattr(components, "component_collector", fake_component_collector)
    config = parse(
        """
        collectors:
          host: {enabled: false}
          components:
            - type: mysql
              scrape_timeout: 3s
              options: {user: exporter, password: pw}
              static_configs: [{targets: [db:3306]}]
              relabel_configs:
                - target_label: __address__
                  replacement: db.internal:3306
        """
    )
    (target,) = discover_targets(config)
    assert calls == [("mysql", "db.internal:3306", 3, {"user": "exporter", "password": "pw"})]
    assert target.labels["instance"] == "db.internal:3306"


def test_host_target() -> None:
    hostname = socket.gethostname()
    (host,) = discover_targets(parse(""))
    assert host.job == "host"
    assert host.labels == {
        "job": "host",
        "instance": hostname,
        "host": hostname,
        "layer": "infrastructure",
    }
    assert type(host.collector).__name__ == "HostCollector"
    assert (host.interval, host.timeout) == (60, 10)

    config = parse(
        """
        collectors:
          host:
            job_name: node
            scrape_interval: 10s
            labels: {instance: box-1, rack: r7}
            metric_relabel_configs:
              - {source_labels: [__name__], regex: 'system_paging.*', action: drop}
        """
    )
    (host,) = discover_targets(config)
    assert host.job == "node"
    assert host.labels == {
        "job": "node",
        "instance": "box-1",
        "host": hostname,
        "layer": "infrastructure",
        "rack": "r7",
    }
    assert (host.interval, host.timeout) == (10, 10)
    assert len(host.metric_relabel_configs) == 1

    assert discover_targets(parse("collectors: {host: {enabled: false}}")) == []


def test_scrape_config_files(tmp_path: Path) -> None:
    write(
        tmp_path / "jobs" / "app.yml",
        """
        scrape_configs:
          - job_name: app
            file_sd_configs: [{files: [app-targets.json]}]
        """,
    )
    write(tmp_path / "jobs" / "app-targets.json", json.dumps([{"targets": ["a:1"]}]))
    config = parse(
        """
        scrape_config_files: [jobs/*.yml]
        scrape_configs: [{job_name: main}]
        """,
        path=tmp_path / "tinct.yaml",
    )
    assert [s.job_name for s in config.scrape_configs] == ["main", "app"]
    # Paths in a scrape config file are relative to that file.
    assert [t.instance for t in by_job(config, "app")] == ["a:1"]
