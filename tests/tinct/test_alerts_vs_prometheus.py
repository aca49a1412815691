"""`tinct up` evaluates alerting and recording rules as Debian's Prometheus 2.42 does.

One rule file (an alert with ``for: 30s`` and labels and annotations
templated with ``$labels``, ``$value``, ``humanize`` and friends, alerts
with ``for: 0``, a recording rule feeding an alert in the same group) is
loaded by a real Prometheus (``--web.enable-remote-write-receiver``) and a
real ``tinct up``, both evaluating every second with the same external
labels. The same samples are remote-written to both: ten minutes of history
at 15 s (gauges ramping across the thresholds), then a current sample every
second so ``for`` progresses. Once both have evaluated a few times,
``/api/v1/alerts`` must list the same alerts in the same states with the
same labels and annotations (``activeAt`` within a few seconds, values
compared as numbers), and ``/api/v1/rules`` the same groups and rules.
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

import httpx
import pytest
import yaml

from tests.prometheus_server import PROMETHEUS, prometheus_process
from tests.servers import TinctProcess
from tinct.collectors.remote_write_proto import encode_write_request

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(shutil.which(PROMETHEUS) is None, reason="Prometheus is not installed"),
]

WRITE_HEADERS = {
    "Content-Type": "application/x-protobuf",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}

RULES = """
groups:
  - name: demo
    rules:
      - alert: HighTemperature
        expr: demo_temperature_celsius > 30
        for: 30s
        labels:
          severity: '{{ if gt $value 40.0 }}page{{ else }}warn{{ end }}'
          where: 'room {{ $labels.room }}'
        annotations:
          summary: '{{ $labels.room }} is at {{ $value | humanize }} degrees'
          raw: 'value={{ $value }}'
          printf: '{{ printf "%.3f" $value }}'
          cluster: '{{ $externalLabels.cluster }}'
      - alert: InstanceDown
        expr: demo_up == 0
        for: 0
        labels:
          severity: page
        annotations:
          summary: '{{ $labels.instance }} of job {{ $labels.job }} is down ({{ $value }})'
      - alert: QueueLarge
        expr: demo_queue_bytes > 1e6
        annotations:
          summary: >-
            {{ $value | humanize }} / {{ $value | humanize1024 }} /
            {{ 0.4567 | humanizePercentage }} / {{ 90061 | humanizeDuration }}
      - record: room:demo_temperature_celsius:max
        expr: max by (room) (demo_temperature_celsius)
      - alert: RoomHot
        expr: 'room:demo_temperature_celsius:max > 35'
        for: 2s
        labels:
          team: facilities
        annotations:
          summary: '{{ $labels.room }}: {{ $value | humanize }}'
"""

CONFIG = {
    "global": {"evaluation_interval": "1s", "external_labels": {"cluster": "eu1"}},
    "rule_files": ["rules.yml"],
}

STEP_MS = 15_000
HISTORY_STEPS = 40  # ten minutes


def _series() -> dict[tuple[tuple[str, str], ...], Callable[[float], float]]:
    """Each series' value at ``f`` in [0, 1] along the history (1 = now and after)."""

    def ramp(a: float, b: float) -> Callable[[float], float]:
        return lambda f: round(a + (b - a) * f, 6)

    def step(before: float, after: float, at: float) -> Callable[[float], float]:
        return lambda f: after if f >= at else before

    specs: list[tuple[dict[str, str], Callable[[float], float]]] = [
        ({"__name__": "demo_temperature_celsius", "room": "attic"}, ramp(20, 42.75)),
        ({"__name__": "demo_temperature_celsius", "room": "hall"}, ramp(22, 33.5)),
        ({"__name__": "demo_temperature_celsius", "room": "cellar"}, ramp(10, 15)),
        ({"__name__": "demo_up", "job": "node", "instance": "a:9100"}, step(1, 0, 0.7)),
        ({"__name__": "demo_up", "job": "node", "instance": "b:9100"}, step(1, 1, 0)),
        ({"__name__": "demo_queue_bytes", "queue": "q1"}, ramp(1e5, 1536000)),
        ({"__name__": "demo_queue_bytes", "queue": "q2"}, ramp(10, 20)),
    ]
    return {tuple(sorted(labels.items())): value for labels, value in specs}


def _history(now_ms: int) -> bytes:
    start = now_ms - HISTORY_STEPS * STEP_MS
    body = []
    for labels, value in _series().items():
        samples = [(start + i * STEP_MS, value(i / HISTORY_STEPS)) for i in range(HISTORY_STEPS)]
        body.append((list(labels), samples))
    return encode_write_request(body)


def _current(now_ms: int) -> bytes:
    return encode_write_request(
        [(list(labels), [(now_ms, value(1.0))]) for labels, value in _series().items()]
    )


@contextlib.contextmanager
def _prometheus(workdir: Path) -> Iterator[str]:
    with prometheus_process(
        workdir,
        workdir / "prometheus.yml",
        "--web.enable-remote-write-receiver",
        data=workdir / "prometheus-data",
    ) as base:
        yield base


@contextlib.contextmanager
def _tinct(workdir: Path) -> Iterator[str]:
    tinct = TinctProcess(workdir / "tinct-data", "--config", str(workdir / "tinct.yml"))
    try:
        tinct.wait_ready()
        yield tinct.main
    finally:
        tinct.stop()


class _Writer:
    """Posts a current sample of every series to each base URL every second."""

    def __init__(self, client: httpx.Client, bases: list[str]) -> None:
        self.client, self.bases = client, bases
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def post(self, body: bytes) -> None:
        for base in self.bases:
            response = self.client.post(f"{base}/api/v1/write", content=body, headers=WRITE_HEADERS)
            if response.status_code != 204:
                self.errors.append(f"{base}: {response.status_code} {response.text}")

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.post(_current(int(time.time() * 1000)))
            except httpx.HTTPError as exc:
                self.errors.append(repr(exc))

    def __enter__(self) -> _Writer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def _get(client: httpx.Client, url: str) -> Any:
    response = client.get(url)
    assert response.status_code == 200, (url, response.text)
    payload = response.json()
    assert payload["status"] == "success", payload
    return payload["data"]


def _ts(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _alerts(client: httpx.Client, base: str) -> dict[tuple[tuple[str, str], ...], dict[str, Any]]:
    alerts = _get(client, f"{base}/api/v1/alerts")["alerts"]
    by_labels = {tuple(sorted(a["labels"].items())): a for a in alerts}
    assert len(by_labels) == len(alerts), alerts
    return by_labels


def _evaluations(client: httpx.Client, base: str) -> float:
    """The oldest ``lastEvaluation`` of the groups (0 before the first)."""
    groups = _get(client, f"{base}/api/v1/rules")["groups"]
    times = [_ts(g["lastEvaluation"]) if g["lastEvaluation"][:4] != "0001" else 0 for g in groups]
    return min(times, default=0.0)


# What both must end up with (by alertname: states of its alerts).
EXPECTED = {
    "HighTemperature": ["pending", "pending"],
    "InstanceDown": ["firing"],
    "QueueLarge": ["firing"],
    "RoomHot": ["firing"],
}


def _settled(alerts: dict[Any, dict[str, Any]]) -> bool:
    states: dict[str, list[str]] = {}
    for alert in alerts.values():
        states.setdefault(alert["labels"]["alertname"], []).append(alert["state"])
    return {k: sorted(v) for k, v in states.items()} == EXPECTED


SERIES_QUERY = "ALERTS or ALERTS_FOR_STATE or room:demo_temperature_celsius:max"


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """What Prometheus and tinct answer once their alerts settled, by "prometheus"/"tinct"."""
    tmp_path = tmp_path_factory.mktemp("alerts")
    (tmp_path / "rules.yml").write_text(RULES)
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(CONFIG))
    (tmp_path / "tinct.yml").write_text(yaml.safe_dump(CONFIG))
    with (
        httpx.Client(timeout=30, trust_env=False) as client,
        _prometheus(tmp_path) as prometheus,
        _tinct(tmp_path) as tinct,
    ):
        bases = {"prometheus": prometheus, "tinct": tinct}
        writer = _Writer(client, list(bases.values()))
        writer.post(_history(int(time.time() * 1000)))
        written_s = time.time()
        with writer:
            deadline = time.monotonic() + 30
            while True:
                got = {base: _alerts(client, base) for base in bases.values()}
                if all(_settled(a) for a in got.values()) and all(
                    _evaluations(client, b) > written_s + 3 for b in bases.values()
                ):
                    break
                if time.monotonic() > deadline:
                    raise AssertionError(f"alerts did not settle within 30 s: {got}")
                time.sleep(0.25)
            # Past the last transitions: both have evaluated since.
            time.sleep(1.5)
            at = time.time()
            out = {
                name: {
                    "alerts": _alerts(client, base),
                    "rules": _get(client, f"{base}/api/v1/rules")["groups"],
                    "series": _get(client, f"{base}/api/v1/query?query={SERIES_QUERY}&time={at}")[
                        "result"
                    ],
                }
                for name, base in bases.items()
            }
        assert not writer.errors, writer.errors[:5]
    return out


def test_alerts_match_prometheus(snapshots: dict[str, dict[str, Any]]) -> None:
    want, mine = snapshots["prometheus"]["alerts"], snapshots["tinct"]["alerts"]
    # The same alerts: labels (templated ones included), states, annotations.
    assert sorted(mine) == sorted(want)
    for labels, alert in want.items():
        other = mine[labels]
        assert other["state"] == alert["state"], labels
        assert other["annotations"] == alert["annotations"], labels
        assert float(other["value"]) == float(alert["value"]), labels
        assert other["value"] == alert["value"], labels  # strconv 'e' formatting
        assert abs(_ts(other["activeAt"]) - _ts(alert["activeAt"])) < 5, (labels, other, alert)
    hot = [a for a in mine.values() if a["labels"]["alertname"] == "HighTemperature"]
    assert {a["labels"]["severity"] for a in hot} == {"page", "warn"}
    attic = next(a for a in hot if a["labels"]["room"] == "attic")
    assert attic["annotations"]["summary"] == "attic is at 42.75 degrees"
    assert attic["annotations"]["cluster"] == "eu1"
    assert "cluster" not in attic["labels"]  # external labels are added when sending


def test_alert_series_match_prometheus(snapshots: dict[str, dict[str, Any]]) -> None:
    """``ALERTS``, ``ALERTS_FOR_STATE`` and the recording rule's output."""

    def series(rows: list[dict[str, Any]]) -> dict[Any, float]:
        return {tuple(sorted(r["metric"].items())): float(r["value"][1]) for r in rows}

    want, mine = series(snapshots["prometheus"]["series"]), series(snapshots["tinct"]["series"])
    assert sorted(mine) == sorted(want)
    assert len(want) == 13
    for labels, value in want.items():
        if ("__name__", "ALERTS_FOR_STATE") in labels:
            assert abs(mine[labels] - value) < 5, labels  # activeAt, in seconds
        else:
            assert mine[labels] == value, labels


def _rules(groups: list[dict[str, Any]]) -> list[Any]:
    return [
        (
            g["name"],
            g["file"],
            g["interval"],
            g.get("limit", 0),
            [
                (
                    r["name"],
                    r["type"],
                    r["health"],
                    r.get("lastError") or "",
                    r.get("state"),
                    r.get("duration"),
                    r.get("labels") or {},
                    r.get("annotations"),
                    len(r.get("alerts", [])),
                )
                for r in g["rules"]
            ],
        )
        for g in groups
    ]


def test_rules_match_prometheus(snapshots: dict[str, dict[str, Any]]) -> None:
    want, mine = snapshots["prometheus"]["rules"], snapshots["tinct"]["rules"]
    assert _rules(mine) == _rules(want)
    assert [r["type"] for r in mine[0]["rules"]] == ["alerting"] * 3 + ["recording", "alerting"]


@pytest.mark.xfail(
    strict=True,
    reason="tinct/alerting/api.py:95 reports the rule's expr as written ('demo_queue_bytes > 1e6');"
    " Prometheus reports the parsed expression printed back ('demo_queue_bytes > 1e+06')",
)
def test_rule_queries_are_printed_as_prometheus_prints_them(
    snapshots: dict[str, dict[str, Any]],
) -> None:
    def queries(groups: list[dict[str, Any]]) -> list[str]:
        return [r["query"] for g in groups for r in g["rules"]]

    assert queries(snapshots["tinct"]["rules"]) == queries(snapshots["prometheus"]["rules"])
