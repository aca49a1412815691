"""The demo at Dapper's sampling rate: its interfaces counted exactly from RED meters.

A short run of ``tinct demo --with-server --sampling 1/1024`` without faults;
when it has stopped, the gateway's interface layer in the store (written
from the services' RED meters through ``/v1/metrics``) holds exactly the
requests the load generator got answers to (its ``load.json``), per route,
method and status class, though hardly any request was traced.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tinct.metrics import Matcher
from tinct.storage import ChdbSpanStore

pytestmark = pytest.mark.server


def test_interfaces_are_counted_exactly_at_1_in_1024(tmp_path: Path) -> None:
    data, work = tmp_path / "data", tmp_path / "work"
    command = [sys.executable, "-m", "tinct", "demo", "--with-server", "--data", str(data)]
    command += ["--port", "0", "--otlp-http-port", "0", "--otlp-grpc-port", "0"]
    command += ["--zipkin-port", "0", "--workdir", str(work), "--faults", "none"]
    command += ["--users", "12", "--sampling", str(1 / 1024), "--seed", "3"]
    command += ["--think", "0.2", "--duration", "6"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TINCT_"))}
    done = subprocess.run(
        command, cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, capture_output=True,
        text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-5000:]
    load = json.loads((work / "load.json").read_text())
    assert load["outcomes"].get("failed", 0) == 0, load
    sent = Counter(
        {(a["route"], a["method"], a["status_class"]): a["count"] for a in load["answered"]}
    )
    assert sum(sent.values()) > 50, load

    store = ChdbSpanStore(str(data))
    try:
        matchers = [
            Matcher("__name__", "=", "interface_request_duration_seconds_count"),
            Matcher("service", "=", "gateway"),
        ]
        counted: Counter[tuple[str, str, str]] = Counter()
        for series in store.series(matchers, 0, 2**62):
            values = store.samples([series.fingerprint], 0, 2**62).column("value").to_pylist()
            labels = series.labels
            key = (labels["interface"], labels["method"], labels["status_class"])
            counted[key] += values[-1]
        # The meters took over from the span estimate before it was written.
        estimated = [
            Matcher("estimated", "=", "true"),
            Matcher("service", "=", "gateway"),
            Matcher("layer", "!=", "user"),  # per-user series come from spans only
        ]
        assert store.series(estimated, 0, 2**62) == []
    finally:
        store.close()
    assert counted == sent
