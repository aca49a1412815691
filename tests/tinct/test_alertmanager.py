"""Notifications through a real Alertmanager (Debian's 0.25) and straight to a webhook.

The evaluator fires and resolves an alert over real time; the notifier posts
to Alertmanager's v2 API; Alertmanager's webhook receiver posts to a small
HTTP sink here, which must see the firing alert and then its resolution.
The direct webhook path posts Alertmanager's payload without Alertmanager,
with the same fingerprints. Config parsing is covered at the end.
"""

from __future__ import annotations

import contextlib
import json
import queue
import shutil
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.servers import ALERTMANAGER, alertmanager_server
from tinct.alerting.config import parse_alerting_config
from tinct.alerting.evaluator import RuleEvaluator
from tinct.alerting.notifier import Notifier, OutgoingAlert, alertmanager_fingerprint
from tinct.alerting.rules import AlertingRule, RuleGroup
from tinct.errors import ConfigError
from tinct.metrics import SampleBuilder
from tinct.promql.engine import Engine
from tinct.storage.memory_metrics import InMemoryMetricStore


class Sink:
    """An HTTP server collecting the JSON bodies posted to it, by path."""

    def __init__(self) -> None:
        self.bodies: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.seen: list[tuple[str, Any]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", 0))
                sink.bodies.put((self.path, json.loads(self.rfile.read(length))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def next(self, path: str, status: str, timeout: float = 30.0) -> Any:
        """The first body posted to ``path`` with ``status`` not returned before."""
        deadline = time.monotonic() + timeout
        while True:
            while not self.bodies.empty():
                self.seen.append(self.bodies.get())
            for i, (got_path, body) in enumerate(self.seen):
                if got_path == path and body.get("status") == status:
                    del self.seen[i]
                    return body
            if time.monotonic() > deadline:
                raise AssertionError(f"no {status} payload on {path} within {timeout}s")
            time.sleep(0.05)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def alertmanager(workdir: Path, hook: str) -> Iterator[str]:
    config = f"""
route:
  receiver: sink
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: sink
    webhook_configs:
      - url: {hook}
        send_resolved: true
"""
    with alertmanager_server(workdir, config) as hostport:
        yield f"http://{hostport}"


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink()
    yield s
    s.close()


UP = {"__name__": "up", "job": "node", "instance": "a:9100"}


def _put(store: InMemoryMetricStore, start_ms: int, end_ms: int, value: float) -> None:
    b = SampleBuilder()
    for t in range(start_ms, end_ms + 1, 5_000):
        b.add_mapping(UP, t, value)
    store.write_samples(b.take())


@pytest.mark.server
@pytest.mark.skipif(shutil.which(ALERTMANAGER) is None, reason="no prometheus-alertmanager")
def test_firing_and_resolved_reach_alertmanager_and_a_webhook(tmp_path: Path, sink: Sink) -> None:
    with alertmanager(tmp_path, f"http://127.0.0.1:{sink.port}/am") as am_url:
        notifier = Notifier(
            [am_url], [f"http://127.0.0.1:{sink.port}/direct"], external_url="http://tinct:3000"
        )
        notifier.start()
        try:
            store = InMemoryMetricStore()
            group = RuleGroup(
                "g",
                "rules.yml",
                (
                    AlertingRule(
                        "InstanceDown",
                        "up == 0",
                        labels={"severity": "page"},
                        annotations={"summary": "{{ $labels.instance }} is down"},
                    ),
                ),
            )
            evaluator = RuleEvaluator(
                Engine(store),
                [group],
                sink=store.write_samples,
                notifier=notifier,
                external_labels={"cluster": "eu1"},
                external_url="http://tinct:3000",
            )
            now = int(time.time() * 1000)
            _put(store, now - 60_000, now, 0.0)
            evaluator.evaluate(group, now)

            labels = {
                "alertname": "InstanceDown",
                "cluster": "eu1",
                "instance": "a:9100",
                "job": "node",
                "severity": "page",
            }
            for path in ("/am", "/direct"):
                body = sink.next(path, "firing")
                [alert] = body["alerts"]
                assert alert["labels"] == labels
                assert alert["annotations"] == {"summary": "a:9100 is down"}
                assert alert["status"] == "firing"
                assert alert["generatorURL"].startswith("http://tinct:3000/alerts?")
                assert alert["fingerprint"] == alertmanager_fingerprint(labels)
                assert body["groupLabels"] == {"alertname": "InstanceDown"}
                assert body["commonLabels"] == labels
                assert body["version"] == "4"

            later = int(time.time() * 1000)
            _put(store, now + 1, later, 1.0)
            evaluator.evaluate(group, later)
            for path in ("/am", "/direct"):
                body = sink.next(path, "resolved")
                [alert] = body["alerts"]
                assert alert["status"] == "resolved" and alert["labels"] == labels
                assert alert["endsAt"] != "0001-01-01T00:00:00Z"
            assert notifier.flush(10)
            assert notifier.errors == 0 and notifier.dropped == 0
        finally:
            notifier.stop()


def test_the_queue_is_bounded_and_drops_the_oldest() -> None:
    notifier = Notifier(["http://127.0.0.1:9"], queue_capacity=3)
    notifier.send([OutgoingAlert({"alertname": str(i)}) for i in range(5)])
    assert notifier.dropped == 2
    assert [a.labels["alertname"] for a in notifier._queue] == ["2", "3", "4"]


def test_batches_are_at_most_256_alerts(sink: Sink) -> None:
    notifier = Notifier([f"http://127.0.0.1:{sink.port}/am"])
    notifier.send([OutgoingAlert({"alertname": str(i)}, starts_at_ms=1) for i in range(600)])
    notifier.start()
    try:
        assert notifier.flush(10)
    finally:
        notifier.stop()
    sizes = []
    while not sink.bodies.empty():
        path, body = sink.bodies.get()
        assert path == "/am/api/v2/alerts"
        sizes.append(len(body))
    assert sorted(sizes) == [88, 256, 256]
    assert notifier.sent == 600


def test_parse_alerting_config() -> None:
    cfg = parse_alerting_config(
        {
            "global": {"evaluation_interval": "30s", "external_labels": {"cluster": "eu1"}},
            "rule_files": ["rules/*.yml"],
            "alerting": {
                "alert_relabel_configs": [{"action": "labeldrop", "regex": "replica"}],
                "alertmanagers": [
                    {
                        "scheme": "https",
                        "path_prefix": "/am/",
                        "api_version": "v2",
                        "timeout": "5s",
                        "static_configs": [{"targets": ["am1:9093", "am2:9093"]}],
                    },
                    {"static_configs": [{"targets": ["127.0.0.1:9093"]}]},
                ],
            },
            "webhooks": [{"url": "http://chat.example/hook"}],
            "scrape_configs": [],
        }
    )
    assert cfg.evaluation_interval_s == 30.0
    assert cfg.external_labels == {"cluster": "eu1"}
    assert cfg.rule_files == ("rules/*.yml",)
    assert cfg.alertmanager_urls == [
        "https://am1:9093/am",
        "https://am2:9093/am",
        "http://127.0.0.1:9093",
    ]
    assert cfg.alertmanagers[0].timeout_s == 5.0
    assert cfg.webhooks == ("http://chat.example/hook",)
    assert cfg.alert_relabel_configs[0].action == "labeldrop"
    assert parse_alerting_config({}).evaluation_interval_s == 60.0


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"alerting": {"alertmanagers": [{"api_version": "v1"}]}}, "api_version: only v2"),
        ({"alerting": {"alertmanagers": [{"scheme": "ftp"}]}}, r"\[0\]\.scheme: must be http"),
        ({"alerting": {"alertmanagers": [{"file_sd_configs": []}]}}, "file_sd_configs: not"),
        ({"global": {"evaluation_interval": "soon"}}, "global.evaluation_interval"),
        ({"webhooks": [{"url": "chat"}]}, r"webhooks\[0\]\.url"),
        ({"alerting": {"alert_relabel_configs": [{"action": "x"}]}}, "alert_relabel_configs"),
    ],
)
def test_bad_alerting_config_names_the_field(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_alerting_config(doc)
