"""The demo's faults raise tinct's layer alerts, which resolve once they end.

One run of ``tinct demo --with-server`` with the fault schedule compressed to
a 100-second cycle (``--speed 6``: each fault lasts 15 s). The demo's
``tinct.yaml`` switches the layer rules on with timings for that speed
(:func:`tinct.demo.topology.demo_alerting`). Polling ``/api/v1/alerts``
through the first cycle: the inventory latency spike fires
``InterfaceLatencyHigh`` on inventory's interfaces, the payments error burst
fires ``ServiceErrorRatioHigh`` and ``InterfaceErrorRatioHigh`` for payments;
each fires while its fault is in the rules' rate window, and after the fault
the alerts leave ``/api/v1/alerts`` and show as resolved in
``/api/tinct/alerts/history``.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.demo.running import Demo, run_demo
from tinct.demo.faults import Fault, FaultSchedule
from tinct.demo.topology import demo_alerting
from tinct.durations import parse_duration

pytestmark = pytest.mark.server

SPEED = 6.0
# Polling ends this long after the payments burst, the last fault checked:
# a rate window (20 s) for the alerts to resolve, plus exports and evaluations.
_RESOLVE_SECONDS = 45.0
# An alert may fire after its fault ended while the fault is still in the
# window: the rate window, plus two 5-s exports and an evaluation.
_FIRE_SLACK_SECONDS = 14.0

# Alert -> (its layer, severity), as the layer rules label them.
_ERROR_ALERTS = {
    "ServiceErrorRatioHigh": ("service", "critical"),
    "InterfaceErrorRatioHigh": ("interface", "warning"),
}
_LATENCY_ALERTS = {"InterfaceLatencyHigh": ("interface", "warning")}


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    options = ["--users", "20", "--think", "0.5", "--speed", str(SPEED)]
    options += ["--sampling", "0.01", "--seed", "5", "--duration", "180"]
    with run_demo(tmp_path, options, ready_seconds=90) as running:
        yield running


@dataclass
class Seen:
    """One alert's sightings in ``/api/v1/alerts``, wall-clock seconds."""

    labels: dict[str, str]
    first_firing: float | None = None
    last: float = 0.0


def _key(alert: dict[str, Any]) -> tuple[str, str, str]:
    labels = alert["labels"]
    return labels["alertname"], labels.get("service", ""), labels.get("interface", "")


def _window(fault: Fault, schedule: FaultSchedule) -> tuple[float, float]:
    """The fault's first occurrence, in wall-clock seconds."""
    return (
        schedule.started_at + fault.start / schedule.speed,
        schedule.started_at + fault.end / schedule.speed,
    )


def _history_time(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_faults_fire_layer_alerts_that_resolve_after_them(demo: Demo) -> None:
    config = (demo.workdir / "tinct.yaml").read_text()
    assert "layer_rules:" in config, config
    rate_window = parse_duration(demo_alerting(SPEED)["alerting"]["layer_rules"]["window"])
    schedule = FaultSchedule.read(demo.workdir / "faults.json")
    assert schedule.speed == SPEED
    spike = next(f for f in schedule.faults if f.service == "inventory" and f.kind == "latency")
    burst = next(f for f in schedule.faults if f.service == "payments" and f.kind == "errors")
    spike_start, spike_end = _window(spike, schedule)
    burst_start, burst_end = _window(burst, schedule)
    assert spike_end < burst_start  # one pass of polling sees both

    wanted = {  # alert key -> (layer, severity)
        ("ServiceErrorRatioHigh", "payments", ""): _ERROR_ALERTS["ServiceErrorRatioHigh"],
        ("InterfaceErrorRatioHigh", "payments", "/charge"): _ERROR_ALERTS[
            "InterfaceErrorRatioHigh"
        ],
    }
    seen: dict[tuple[str, str, str], Seen] = {}
    deadline = burst_end + _RESOLVE_SECONDS
    assert deadline - time.time() < 120, "the first cycle is already over"
    with httpx.Client(base_url=demo.main, timeout=10) as client:
        while time.time() < deadline:
            now = time.time()
            current = set()
            for alert in client.get("/api/v1/alerts").json()["data"]["alerts"]:
                current.add(key := _key(alert))
                entry = seen.setdefault(key, Seen(alert["labels"]))
                entry.last = now
                if alert["state"] == "firing" and entry.first_firing is None:
                    entry.first_firing = now
            checked = {*wanted, *(k for k in seen if k[0] in _LATENCY_ALERTS)}
            fired = all(k in seen and seen[k].first_firing is not None for k in wanted)
            if now > burst_end and fired and not checked & current:
                break
            time.sleep(1.0)
        history = client.get(
            "/api/tinct/alerts/history", params={"start": f"{schedule.started_at:.3f}"}
        ).json()["data"]

    def since(t: float | None) -> str:
        return "never" if t is None else f"{t - schedule.started_at:.1f}"

    report = "\n".join(
        f"{k}: first firing {since(s.first_firing)}, last seen {since(s.last)}"
        for k, s in sorted(seen.items())
    )
    report += (
        f"\nspike {since(spike_start)}-{since(spike_end)}, burst {since(burst_start)}-"
        f"{since(burst_end)} (seconds since the cycle began)\n{demo.output()}"
    )

    latency = {k: s for k, s in seen.items() if k[:2] == ("InterfaceLatencyHigh", "inventory")}
    assert latency, f"no InterfaceLatencyHigh on inventory\n{report}"
    for key in [*wanted, *latency]:
        assert key in seen and seen[key].first_firing is not None, f"{key} never fired\n{report}"
        entry = seen[key]
        assert entry.first_firing is not None
        start, end = (spike_start, spike_end) if key in latency else (burst_start, burst_end)
        layer, severity = wanted.get(key) or _LATENCY_ALERTS["InterfaceLatencyHigh"]
        assert entry.labels["layer"] == layer and entry.labels["severity"] == severity, entry
        assert entry.labels["service"] == key[1], entry
        # Fired while the fault was in the rate window, and was gone after it.
        assert start < entry.first_firing < end + rate_window + _FIRE_SLACK_SECONDS, (
            f"{key}\n{report}"
        )
        assert end < entry.last < time.time() - 1, f"{key} did not resolve\n{report}"
        resolved = [
            e
            for e in history
            if e["state"] == "resolved"
            and (e["alertname"], e["labels"].get("service", ""), e["labels"].get("interface", ""))
            == key
        ]
        assert resolved, f"{key} not resolved in the history: {history}\n{report}"
        assert _history_time(resolved[0]["time"]) > end, (resolved, report)
        assert resolved[0]["labels"]["layer"] == layer
    # Nothing else of the error kind fired for payments before its burst.
    early = [
        k
        for k, s in seen.items()
        if k[0] in _ERROR_ALERTS and s.first_firing is not None and s.first_firing < burst_start
    ]
    assert early == [], f"error alerts before the burst: {early}\n{report}"
