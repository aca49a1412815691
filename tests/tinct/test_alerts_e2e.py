"""Alerting in a real ``tinct up`` process, end to end.

- Notifications: a rule fires on remote-written data; Debian's Alertmanager
  (0.25, configured from ``alerting.alertmanagers``) passes the alert to a
  webhook sink here, and a plain ``webhooks`` entry gets it straight from
  tinct; when the data falls below the threshold both hear ``resolved``, and
  ``/api/tinct/alerts/history`` lists both transitions.
- Restart mid-``for``: a pending alert keeps its progress across SIGTERM and
  a restart on the same data folder and port, as Prometheus restores it
  (``RestoreForState``: from ``ALERTS_FOR_STATE``, the downtime not counted,
  and only for rules whose ``for`` is at least the 10m grace period).
- ``POST /-/reload`` after editing the rule file adds rules and keeps the
  alerts of surviving ones; a broken rule file answers 500 and the old rules
  keep running.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from tests.servers import ALERTMANAGER, TinctProcess, free_port
from tests.tinct.test_alertmanager import Sink, alertmanager
from tinct.alerting.notifier import alertmanager_fingerprint
from tinct.collectors.remote_write_proto import encode_write_request

pytestmark = pytest.mark.server

WRITE_HEADERS = {
    "Content-Type": "application/x-protobuf",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}


def _ts(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _write_config(folder: Path, rules: str, **extra: Any) -> Path:
    (folder / "rules.yml").write_text(rules)
    config = {
        "global": {"evaluation_interval": "1s", "external_labels": {"cluster": "eu1"}},
        "rule_files": ["rules.yml"],
        **extra,
    }
    path = folder / "tinct.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@contextlib.contextmanager
def _tinct(data: Path, config: Path, *extra: str) -> Iterator[TinctProcess]:
    tinct = TinctProcess(data, "--config", str(config), *extra)
    try:
        tinct.wait_ready()
        yield tinct
    finally:
        tinct.stop()


class _Writer:
    """Remote-writes ``labels`` to ``base`` every half second: ``value`` now.

    ``history`` seconds of samples at 15 s go first. Errors (e.g. while tinct
    restarts) are collected, not raised.
    """

    def __init__(self, labels: dict[str, str], value: float, history_s: int = 120) -> None:
        self.labels = sorted(labels.items())
        self.value = value
        self.base = ""
        self.errors: list[str] = []
        self.history_s = history_s
        self._client = httpx.Client(timeout=5, trust_env=False)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def post(self, samples: list[tuple[int, float]]) -> None:
        body = encode_write_request([(self.labels, samples)])
        try:
            response = self._client.post(
                f"{self.base}/api/v1/write", content=body, headers=WRITE_HEADERS
            )
            if response.status_code != 204:
                self.errors.append(f"{response.status_code} {response.text}")
        except httpx.HTTPError as exc:
            self.errors.append(repr(exc))

    def start(self, base: str) -> _Writer:
        self.base = base
        now = int(time.time() * 1000)
        self.post([(now - s * 1000, self.value) for s in range(self.history_s, 0, -15)])
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.post([(int(time.time() * 1000), self.value)])

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._client.close()


def _get(base: str, path: str, **params: Any) -> Any:
    response = httpx.get(f"{base}{path}", params=params, timeout=10, trust_env=False)
    assert response.status_code == 200, (path, response.text)
    payload = response.json()
    assert payload["status"] == "success", payload
    return payload["data"]


def _wait(what: str, check: Callable[[], Any], timeout: float = 20) -> Any:
    """Poll ``check`` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(0.1)


def _alerts(base: str) -> dict[str, dict[str, Any]]:
    return {a["labels"]["alertname"]: a for a in _get(base, "/api/v1/alerts")["alerts"]}


def _rules(base: str) -> dict[str, dict[str, Any]]:
    groups = _get(base, "/api/v1/rules")["groups"]
    return {r["name"]: r for g in groups for r in g["rules"]}


def _last_evaluation(base: str) -> float:
    groups = _get(base, "/api/v1/rules")["groups"]
    return min(
        (_ts(g["lastEvaluation"]) for g in groups if not g["lastEvaluation"].startswith("0001")),
        default=0.0,
    )


# -- notifications -------------------------------------------------------------------

BACKLOG_RULES = """
groups:
  - name: queues
    rules:
      - alert: QueueBacklog
        expr: demo_queue_depth > 100
        labels:
          severity: page
        annotations:
          summary: '{{ $labels.queue }} has {{ $value }} jobs waiting'
"""


@pytest.mark.skipif(shutil.which(ALERTMANAGER) is None, reason="no prometheus-alertmanager")
def test_firing_and_resolved_reach_alertmanager_a_webhook_and_the_history(tmp_path: Path) -> None:
    sink = Sink()
    writer = _Writer({"__name__": "demo_queue_depth", "queue": "q1"}, 150)
    try:
        with alertmanager(tmp_path, f"http://127.0.0.1:{sink.port}/am") as am_url:
            config = _write_config(
                tmp_path,
                BACKLOG_RULES,
                alerting={"alertmanagers": [{"static_configs": [{"targets": [am_url[7:]]}]}]},
                webhooks=[{"url": f"http://127.0.0.1:{sink.port}/direct"}],
            )
            with _tinct(tmp_path / "data", config) as tinct:
                writer.start(tinct.main)
                labels = {
                    "alertname": "QueueBacklog",
                    "cluster": "eu1",
                    "queue": "q1",
                    "severity": "page",
                }
                firing: dict[str, Any] = {}
                for path in ("/am", "/direct"):
                    body = sink.next(path, "firing", timeout=20)
                    [alert] = body["alerts"]
                    firing[path] = alert
                    assert alert["status"] == "firing"
                    assert alert["labels"] == labels
                    assert alert["annotations"] == {"summary": "q1 has 150 jobs waiting"}
                    assert alert["endsAt"] == "0001-01-01T00:00:00Z"
                    assert alert["fingerprint"] == alertmanager_fingerprint(labels)
                    assert urlsplit(alert["generatorURL"]).netloc == urlsplit(tinct.main).netloc
                    assert body["groupLabels"] == {"alertname": "QueueBacklog"}
                    assert body["commonLabels"] == labels
                # Alertmanager keeps startsAt as tinct sent it.
                assert firing["/am"]["startsAt"][:19] == firing["/direct"]["startsAt"][:19]
                [active] = _get(tinct.main, "/api/v1/alerts")["alerts"]
                assert active["state"] == "firing" and "cluster" not in active["labels"]

                writer.value = 5  # below the threshold from now on
                for path in ("/am", "/direct"):
                    body = sink.next(path, "resolved", timeout=20)
                    [alert] = body["alerts"]
                    assert alert["status"] == "resolved"
                    assert alert["labels"] == labels
                    assert alert["endsAt"] != "0001-01-01T00:00:00Z"
                    assert _ts(alert["endsAt"]) >= _ts(alert["startsAt"])
                assert _get(tinct.main, "/api/v1/alerts")["alerts"] == []

                def history() -> list[dict[str, Any]] | None:
                    found = _get(tinct.main, "/api/tinct/alerts/history", alertname="QueueBacklog")
                    return found if len(found) >= 2 else None

                events = _wait("firing and resolved in the history", history)
                assert [e["state"] for e in events] == ["resolved", "firing"]  # newest first
                resolved, fired = events
                for event in events:
                    assert event["alertname"] == "QueueBacklog"
                    assert event["labels"] == {
                        "alertname": "QueueBacklog",
                        "queue": "q1",
                        "severity": "page",
                    }
                    assert event["activeAt"] == fired["activeAt"]
                assert fired["annotations"] == {"summary": "q1 has 150 jobs waiting"}
                assert float(fired["value"]) == 150
                assert _ts(resolved["time"]) > _ts(fired["time"])
                everything = _get(tinct.main, "/api/tinct/alerts/history")
                assert len(everything) == 2
                assert _get(tinct.main, "/api/tinct/alerts/history", alertname="Other") == []
                assert writer.errors == [], writer.errors[:3]
    finally:
        writer.stop()
        sink.close()


# -- restart mid-`for` ------------------------------------------------------------------

RESTART_RULES = """
groups:
  - name: errors
    rules:
      - alert: SlowBurn
        expr: demo_errors > 0
        for: 15m
      - alert: ShortWait
        expr: demo_errors > 0
        for: 1m
"""


def test_restart_keeps_the_for_progress_of_a_pending_alert(tmp_path: Path) -> None:
    config = _write_config(tmp_path, RESTART_RULES)
    port = free_port()
    data = tmp_path / "data"
    writer = _Writer({"__name__": "demo_errors", "job": "api"}, 3)
    try:
        with _tinct(data, config, "--port", str(port)) as first:
            base = first.main
            writer.start(base)
            before = _wait(
                "both alerts pending",
                lambda: a if len(a := _alerts(base)) == 2 else None,
            )
            active_at = {name: _ts(a["activeAt"]) for name, a in before.items()}
            assert {a["state"] for a in before.values()} == {"pending"}
            assert active_at["SlowBurn"] == active_at["ShortWait"]
            # Pending long enough for a reset to show; ALERTS_FOR_STATE written.
            time.sleep(max(0.0, active_at["SlowBurn"] + 8 - time.time()))
            stored = _get(base, "/api/v1/query", query="ALERTS_FOR_STATE")["result"]
            assert {r["metric"]["alertname"] for r in stored} == {"SlowBurn", "ShortWait"}
            assert {float(r["value"][1]) for r in stored} == {int(active_at["SlowBurn"])}
            pending_s = _last_evaluation(base) - active_at["SlowBurn"]
            assert pending_s >= 7
            stopped = time.time()
        assert first.proc.returncode == 0, "".join(first.lines[-20:])

        with _tinct(data, config, "--port", str(port)) as second:
            assert second.main == base
            ready = time.time()
            fresh = _wait("alerts again after the restart", lambda: _alerts(base))
            # Evaluated twice (the restore runs after the second evaluation) and more.
            _wait("three evaluations", lambda: _last_evaluation(base) > ready + 3, timeout=15)
            after = _alerts(base)
            checked = time.time()
        assert second.proc.returncode == 0, "".join(second.lines[-20:])
    finally:
        writer.stop()

    assert set(after) == {"SlowBurn", "ShortWait"}
    assert {a["state"] for a in after.values()} == {"pending"}
    assert min(_ts(a["activeAt"]) for a in fresh.values()) >= ready - 1.5
    slow = _ts(after["SlowBurn"]["activeAt"])
    # Not reset to the restart: the progress made before it counts ...
    assert slow < ready - 3, (active_at, after)
    assert checked - slow >= pending_s - 1
    # ... and the downtime does not (activeAt moves forward by it, in whole seconds).
    assert ready - stopped - 2 <= slow - int(active_at["SlowBurn"]) <= checked - stopped + 2
    # As in Prometheus: `for` under the grace period (10m) is not restored.
    assert _ts(after["ShortWait"]["activeAt"]) >= ready - 1.5


# -- reload -----------------------------------------------------------------------------

RELOAD_RULES = """
groups:
  - name: base
    rules:
      - alert: Always
        expr: vector(1)
        for: 10m
"""

RELOADED_RULES = """
groups:
  - name: base
    rules:
      - alert: Always
        expr: vector(1)
        for: 10m
      - record: job:demo:one
        expr: vector(1)
      - alert: AlsoAlways
        expr: job:demo:one > 0
"""

BROKEN_RULES = [
    (
        "bad PromQL",
        RELOADED_RULES + "      - alert: Broken\n        expr: sum(\n",
    ),
    ("bad YAML", "groups:\n  - name: base\n    rules: [\n"),
    ("unknown field", RELOADED_RULES + "        frobnicate: yes\n"),
]


def test_reload_adds_rules_and_a_broken_file_keeps_the_old_ones(tmp_path: Path) -> None:
    config = _write_config(tmp_path, RELOAD_RULES)
    with _tinct(tmp_path / "data", config) as tinct:
        base = tinct.main
        first = _wait("Always pending", lambda: _alerts(base).get("Always"))
        assert set(_rules(base)) == {"Always"}

        (tmp_path / "rules.yml").write_text(RELOADED_RULES)
        response = httpx.post(f"{base}/-/reload", timeout=10, trust_env=False)
        assert response.status_code == 200, response.text
        rules = _rules(base)
        assert list(rules) == ["Always", "job:demo:one", "AlsoAlways"]
        assert [r["type"] for r in rules.values()] == ["alerting", "recording", "alerting"]
        also = _wait("AlsoAlways firing", lambda: _alerts(base).get("AlsoAlways"))
        assert also["state"] == "firing"
        kept = _alerts(base)["Always"]
        assert kept["activeAt"] == first["activeAt"]  # a surviving rule keeps its alerts
        assert {r["health"] for r in _rules(base).values()} == {"ok"}

        for what, text in BROKEN_RULES:
            (tmp_path / "rules.yml").write_text(text)
            response = httpx.post(f"{base}/-/reload", timeout=10, trust_env=False)
            assert response.status_code == 500, (what, response.text)
            assert "rules.yml" in response.text, (what, response.text)
        evaluated = _last_evaluation(base)
        _wait("the old rules still evaluated", lambda: _last_evaluation(base) >= evaluated + 2)
        assert list(_rules(base)) == ["Always", "job:demo:one", "AlsoAlways"]
        assert _alerts(base)["Always"]["activeAt"] == first["activeAt"]
        assert _alerts(base)["AlsoAlways"]["activeAt"] == also["activeAt"]
