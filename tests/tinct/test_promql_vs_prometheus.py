"""tinct's Prometheus API answers range queries as Debian's Prometheus does.

The same two hours of seeded samples (counters with a reset, gauges, a
classic histogram, an info metric) are remote-written to a real Prometheus
2.42 and to tinct's routes (remote write receiver, :class:`PrometheusAPI`
over the PromQL engine and an in-memory store, served by uvicorn in a
thread). Then the same queries go through both HTTP APIs and must give the
same series and the same values (relative tolerance 1e-9).

Samples sit 15 s apart at a few seconds past the 15 s grid, and every query
step and range is on that grid, so no sample is on a window edge: Prometheus
2.x closes range windows on the left, 3.x (and tinct) leaves them open.
Timestamps are recent (now - 2 h .. now): Prometheus refuses samples too old
for its head block.
"""

from __future__ import annotations

import contextlib
import math
import random
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from starlette.applications import Starlette

from tests.appserver import serve_app
from tests.prometheus_server import PROMETHEUS, prometheus_process
from tinct.collectors.remote_write_proto import encode_write_request
from tinct.promql.api import PrometheusAPI
from tinct.promql.engine import Engine
from tinct.remote_write_api import REMOTE_WRITE_PATH, RemoteWriteAPI
from tinct.storage.memory_metrics import InMemoryMetricStore

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(shutil.which(PROMETHEUS) is None, reason="Prometheus is not installed"),
]

STEP_MS = 15_000
SPAN_MS = 2 * 3600 * 1000
WRITE_HEADERS = {
    "Content-Type": "application/x-protobuf",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}

QUERIES = [
    "rate(demo_requests_total[5m])",
    "sum by (code) (rate(demo_requests_total[5m]))",
    "increase(demo_requests_total[10m])",
    "avg_over_time(demo_temperature_celsius[10m])",
    "max_over_time(demo_temperature_celsius[5m]) - min_over_time(demo_temperature_celsius[5m])",
    "histogram_quantile(0.9, sum by (le) (rate(demo_latency_seconds_bucket[5m])))",
    "histogram_quantile(0.5, rate(demo_latency_seconds_bucket[5m]))",
    "rate(demo_latency_seconds_sum[5m]) / rate(demo_latency_seconds_count[5m])",
    "topk(3, demo_temperature_celsius)",
    "bottomk(2, sum by (instance) (rate(demo_requests_total[5m])))",
    "sum by (instance, version) (rate(demo_requests_total[5m])"
    " * on (instance) group_left (version) demo_instance_info)",
    "demo_temperature_celsius offset 5m",
    "demo_temperature_celsius - demo_temperature_celsius offset 10m",
    'count by (job) (demo_requests_total{code=~"5.."})',
    "avg(demo_temperature_celsius) > 20",
]


def _dataset(end_ms: int) -> list[tuple[list[tuple[str, str]], list[tuple[int, float]]]]:
    """Seeded series; sample ``i`` of a series is at ``start + i * 15 s + offset``
    with its offset between 2 s and 12 s (never on the 15 s grid)."""
    rng = random.Random(20240501)
    start = end_ms - SPAN_MS
    count = SPAN_MS // STEP_MS
    series: list[tuple[list[tuple[str, str]], list[tuple[int, float]]]] = []

    def times(k: int) -> list[int]:
        offset = 2_000 + (k * 1_373) % 10_000
        return [start + i * STEP_MS + offset for i in range(count)]

    def add(labels: dict[str, str], values: list[float]) -> None:
        k = len(series)
        series.append((sorted(labels.items()), list(zip(times(k), values, strict=True))))

    instances = ["a:80", "b:80", "c:80", "d:80"]
    for n, instance in enumerate(instances):
        for code in ("200", "500"):
            total = 0.0
            values = []
            for i in range(count):
                total += rng.uniform(0, 20 if code == "200" else 2)
                if n == 1 and code == "200" and i == count // 2:
                    total = rng.uniform(0, 5)  # a counter reset
                values.append(round(total, 3))
            add(
                {
                    "__name__": "demo_requests_total",
                    "job": "api",
                    "instance": instance,
                    "code": code,
                },
                values,
            )
        add(
            {
                "__name__": "demo_instance_info",
                "job": "api",
                "instance": instance,
                "version": f"1.{n}",
            },
            [1.0] * count,
        )
    for room in ("kitchen", "hall", "cellar", "attic", "garage", "office"):
        level = rng.uniform(10, 30)
        values = []
        for _ in range(count):
            level += rng.gauss(0, 0.5)
            values.append(round(level, 4))
        add({"__name__": "demo_temperature_celsius", "job": "sensors", "room": room}, values)
    bounds = ["0.05", "0.1", "0.5", "1", "+Inf"]
    for instance in instances[:2]:
        buckets = [0.0] * len(bounds)
        total_sum = 0.0
        per_bucket: list[list[float]] = [[] for _ in bounds]
        sums: list[float] = []
        for _ in range(count):
            for _ in range(rng.randint(0, 30)):
                latency = rng.expovariate(4.0)
                total_sum += latency
                for b, bound in enumerate(bounds):
                    if latency <= float(bound):
                        buckets[b] += 1
            for b in range(len(bounds)):
                per_bucket[b].append(buckets[b])
            sums.append(round(total_sum, 6))
        base = {"job": "api", "instance": instance}
        for b, bound in enumerate(bounds):
            add({"__name__": "demo_latency_seconds_bucket", **base, "le": bound}, per_bucket[b])
        add({"__name__": "demo_latency_seconds_sum", **base}, sums)
        add({"__name__": "demo_latency_seconds_count", **base}, per_bucket[-1])
    return series


@contextlib.contextmanager
def _prometheus(workdir: Path) -> Iterator[str]:
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    config.write_text(yaml.safe_dump({"global": {"scrape_interval": "15s"}}))
    with prometheus_process(workdir, config, "--web.enable-remote-write-receiver") as base:
        yield base


def _tinct_app(store: InMemoryMetricStore) -> Starlette:
    engine = Engine(store)
    api = PrometheusAPI(
        lambda: engine,
        lambda: store,
        flags={"query.lookback-delta": "5m"},
        config_yaml=lambda: "",
    )
    writer = RemoteWriteAPI(lambda: store.write_samples, lambda: store.write_metadata)
    return Starlette(routes=[*api.routes(), *writer.routes()])


def _close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= 1e-9 * max(abs(a), abs(b)) or abs(a - b) < 1e-12


def _matrix(client: httpx.Client, base: str, params: dict[str, Any]) -> dict[Any, Any]:
    response = client.get(f"{base}/api/v1/query_range", params=params)
    payload = response.json()
    assert response.status_code == 200 and payload["status"] == "success", (base, payload)
    assert payload["data"]["resultType"] == "matrix"
    return {
        frozenset(row["metric"].items()): [(float(t), float(v)) for t, v in row["values"]]
        for row in payload["data"]["result"]
    }


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, int]]:
    now_ms = int(time.time() * 1000)
    grid_end = now_ms // 60_000 * 60_000 - 60_000
    body = encode_write_request(_dataset(grid_end))
    store = InMemoryMetricStore()
    with (
        _prometheus(tmp_path_factory.mktemp("prometheus")) as prometheus,
        serve_app(_tinct_app(store)) as tinct,
        httpx.Client(timeout=60, trust_env=False) as client,
    ):
        for base, path in ((prometheus, "/api/v1/write"), (tinct, REMOTE_WRITE_PATH)):
            response = client.post(f"{base}{path}", content=body, headers=WRITE_HEADERS)
            assert response.status_code == 204, (base, response.text)
        yield prometheus, tinct, grid_end


@pytest.mark.parametrize("query", QUERIES)
def test_range_query_matches_prometheus(servers: tuple[str, str, int], query: str) -> None:
    prometheus, tinct, grid_end = servers
    params = {
        "query": query,
        "start": (grid_end - SPAN_MS + 15 * 60_000) / 1000,
        "end": grid_end / 1000,
        "step": "60",
    }
    with httpx.Client(timeout=60, trust_env=False) as client:
        want = _matrix(client, prometheus, params)
        got = _matrix(client, tinct, params)
    assert want, f"Prometheus found nothing for {query}"
    assert set(got) == set(want)
    for labels, points in want.items():
        mine = got[labels]
        assert [t for t, _ in mine] == [t for t, _ in points], (query, dict(labels))
        bad = [(t, v, w) for (t, v), (_, w) in zip(mine, points, strict=True) if not _close(v, w)]
        assert not bad, (query, dict(labels), bad[:5])


def test_series_labels_and_instant_query_match_prometheus(servers: tuple[str, str, int]) -> None:
    prometheus, tinct, grid_end = servers
    with httpx.Client(timeout=60, trust_env=False) as client:

        def both(path: str, params: Any) -> tuple[Any, Any]:
            answers = []
            for base in (prometheus, tinct):
                response = client.get(f"{base}{path}", params=params)
                assert response.status_code == 200, (base, response.text)
                answers.append(response.json()["data"])
            return answers[0], answers[1]

        want, got = both("/api/v1/series", [("match[]", '{__name__=~"demo_.*", instance="a:80"}')])
        key = lambda s: sorted(s.items())  # noqa: E731
        assert sorted(got, key=key) == sorted(want, key=key)
        want, got = both("/api/v1/labels", [("match[]", "demo_latency_seconds_bucket")])
        assert got == want
        want, got = both("/api/v1/label/room/values", {})
        assert got == want
        instant = {
            "query": "sum by (code) (rate(demo_requests_total[5m]))",
            "time": grid_end / 1000,
        }
        want, got = both("/api/v1/query", instant)
        assert want["resultType"] == got["resultType"] == "vector"
        rows = {frozenset(r["metric"].items()): r["value"] for r in want["result"]}
        mine = {frozenset(r["metric"].items()): r["value"] for r in got["result"]}
        assert set(rows) == set(mine)
        for labels, (t, value) in rows.items():
            assert mine[labels][0] == t
            assert _close(float(mine[labels][1]), float(value))
