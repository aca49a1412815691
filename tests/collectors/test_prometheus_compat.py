"""tinct stores what Prometheus stores, scraping the same targets.

A real Prometheus (Debian's 2.42) and tinct's scrape path (HttpCollector,
Scheduler, a store) scrape the same targets: the whole of node_exporter's e2e
output served by a local HTTP server, a real node_exporter, and two bodies
covering what the e2e output lacks (escapes, NaN and infinities, histograms
and summaries with samples, untyped families, a counter without ``_total``,
clashing labels; OpenMetrics with timestamps, exemplars, ``_created``, info
and stateset). What tinct stores, read back from the store, is compared with
what Prometheus stores, read through its HTTP API: every series' labels and
latest value, the synthetic ``up`` and ``scrape_*`` series, and metadata.

The one difference kept on purpose: Prometheus 2.x stores the ``le`` of
text-format histogram buckets and the ``quantile`` of summaries as written
(``le="1"``), Prometheus 3.x normalizes them (``le="1.0"``, see
``normalizeFloatsInLabelValues`` in ``model/textparse``) and tinct follows 3.x
(DESIGN.md: 3.x semantics where they differ). The comparison maps 2.42's
labels through the same normalization; :func:`test_le_and_quantile_follow_prometheus_3`
pins the difference itself.
"""

from __future__ import annotations

import math
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.peer_suites import require_peer_suite
from tests.prometheus_server import (
    E2E_FILE,
    EDGE_TEXT,
    NODE_EXPORTER,
    OPENMETRICS_CONTENT_TYPE,
    PROMETHEUS,
    ExpositionServer,
    Prometheus,
    Route,
    node_exporter,
    openmetrics_body,
    prometheus_server,
)
from tinct.collectors.base import Target
from tinct.collectors.exposition import format_openmetrics_float
from tinct.collectors.scheduler import Scheduler
from tinct.collectors.scrape import HttpCollector
from tinct.metrics import Matcher
from tinct.storage import ChdbSpanStore, ClickHouseSpanStore, InMemoryMetricStore

for binary in (PROMETHEUS, NODE_EXPORTER):
    if not Path(binary).exists():
        pytest.skip(
            f"{binary} is not installed (Debian packages prometheus, prometheus-node-exporter:"
            " make debs)",
            allow_module_level=True,
        )

E2E = (require_peer_suite("exposition") / E2E_FILE).read_bytes()
HOUR_MS = 3_600_000
SYNTHETIC = {
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
}
# Series labels: a frozenset of (name, value) pairs, __name__ included.
LabelSet = frozenset[tuple[str, str]]


@dataclass
class Targets:
    """The scraped targets (job -> URL) and the Prometheus scraping them."""

    prometheus: Prometheus
    urls: dict[str, str]
    instances: dict[str, str]


def sub_millisecond_timestamp(now_s: int) -> str:
    """An OpenMetrics timestamp whose milliseconds Prometheus (``int64(ts*1000)``
    on the float) and the exact decimal disagree on."""
    for fraction in range(1, 10_000_000, 997):
        text = f"{now_s}.{fraction:07d}"
        if int(float(text) * 1000) != now_s * 1000 + fraction // 10_000:
            return text
    raise AssertionError("no such timestamp found")


@pytest.fixture(scope="module")
def targets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Targets]:
    workdir = tmp_path_factory.mktemp("prometheus-compat")
    now = int(time.time())
    subms = sub_millisecond_timestamp(now - 3).encode()
    routes = {
        "/metrics": Route(E2E),
        "/edge": Route(EDGE_TEXT),
        "/om": Route(openmetrics_body(now), content_type=OPENMETRICS_CONTENT_TYPE),
        "/om-subms": Route(
            b"# TYPE subms gauge\nsubms 1 " + subms + b"\n# EOF\n",
            content_type=OPENMETRICS_CONTENT_TYPE,
        ),
    }
    with ExpositionServer(routes) as server, node_exporter(workdir) as node_port:
        node = f"127.0.0.1:{node_port}"
        urls = {
            "e2e": server.url("/metrics"),
            "edge": server.url("/edge"),
            "om": server.url("/om"),
            "om-subms": server.url("/om-subms"),
            "node": f"http://{node}/metrics",
        }
        configs: list[dict[str, Any]] = [
            {"job_name": "e2e", "static_configs": [{"targets": [server.address]}]},
            {"job_name": "node", "static_configs": [{"targets": [node]}]},
        ]
        for job in ("edge", "om", "om-subms"):
            configs.append(
                {
                    "job_name": job,
                    "metrics_path": "/" + job,
                    "static_configs": [{"targets": [server.address]}],
                }
            )
        with prometheus_server(workdir / "prometheus", configs) as prometheus:
            prometheus.wait_scraped({job: 2 for job in urls})
            instances = {job: server.address for job in urls}
            instances["node"] = node
            yield Targets(prometheus, urls, instances)


STORES = ["memory", "chdb", pytest.param("clickhouse", marks=pytest.mark.clickhouse)]


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A fresh metric store of each kind; closed (and dropped) after the test."""
    kind = request.param
    if kind == "memory":
        yield InMemoryMetricStore()
        return
    if kind == "chdb":
        chdb = ChdbSpanStore(str(tmp_path / "data"))
        yield chdb
        chdb.close()
        return
    port: int = request.getfixturevalue("clickhouse_port")
    database = f"db_{uuid.uuid4().hex[:12]}"
    server = ClickHouseSpanStore("127.0.0.1", port, database)
    try:
        yield server
    finally:
        server.close()
        from clickhouse_driver import Client

        client = Client("127.0.0.1", port=port)
        client.execute(f"DROP DATABASE IF EXISTS `{database}`")
        client.disconnect()


# -- what each side stores ----------------------------------------------------------


def scrape_with_tinct(store: Any, targets: Targets, *jobs: str) -> None:
    """One scrape of each job by tinct's scheduler into ``store``."""
    scheduler = Scheduler(sink=store.write_samples, metadata_sink=store.write_metadata)
    try:
        for job in jobs:
            url = targets.urls[job]
            target = Target(
                job=job,
                labels={"job": job, "instance": targets.instances[job]},
                collector=HttpCollector(url, timeout=5),
                scrape_url=url,
                timeout=5,
            )
            health = scheduler.scrape_once(target)
            assert (health.health, health.last_error) == ("up", ""), job
    finally:
        scheduler.close()


def tinct_points(store: Any, job: str) -> dict[LabelSet, list[tuple[int, float]]]:
    """Every stored series of ``job`` with its (timestamp ms, value) points."""
    now = int(time.time() * 1000)
    series = store.series([Matcher("job", "=", job)], now - HOUR_MS, now + HOUR_MS)
    table = store.samples([s.fingerprint for s in series], now - HOUR_MS, now + HOUR_MS)
    points: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for row in table.to_pylist():
        points[row["fingerprint"]].append((row["timestamp_ms"], row["value"]))
    return {frozenset(s.labels.items()): points[s.fingerprint] for s in series}


def tinct_latest(store: Any, job: str) -> dict[LabelSet, tuple[int, float]]:
    return {labels: points[-1] for labels, points in tinct_points(store, job).items()}


def prometheus_types(prometheus: Prometheus, job: str) -> dict[str, str]:
    rows = prometheus.api("targets/metadata", match_target=f'{{job="{job}"}}')
    return {row["metric"]: row["type"] for row in rows}


def as_prometheus_3(labels: dict[str, str], types: dict[str, str]) -> LabelSet:
    """2.42's stored labels with ``le``/``quantile`` as Prometheus 3.x stores them."""
    name = labels["__name__"]
    fixed = dict(labels)
    if "le" in labels and types.get(name.removesuffix("_bucket")) == "histogram":
        fixed["le"] = format_openmetrics_float(float(labels["le"]))
    if "quantile" in labels and types.get(name) == "summary":
        fixed["quantile"] = format_openmetrics_float(float(labels["quantile"]))
    return frozenset(fixed.items())


def prometheus_latest(prometheus: Prometheus, job: str) -> dict[LabelSet, float]:
    """Each series' latest value in Prometheus (an instant query, 5m lookback)."""
    types = prometheus_types(prometheus, job)
    return {
        as_prometheus_3(row["metric"], types): float(row["value"][1])
        for row in prometheus.query(f'{{job="{job}"}}')
    }


def prometheus_points(prometheus: Prometheus, job: str) -> dict[LabelSet, list[tuple[int, float]]]:
    """Each series' raw (timestamp ms, value) samples of the last hour."""
    types = prometheus_types(prometheus, job)
    return {
        as_prometheus_3(row["metric"], types): [
            (round(stamp * 1000), float(value)) for stamp, value in row["values"]
        ]
        for row in prometheus.query(f'{{job="{job}"}}[1h]')
    }


def prometheus_series(prometheus: Prometheus, job: str) -> set[LabelSet]:
    types = prometheus_types(prometheus, job)
    rows = prometheus.api("series", **{"match[]": f'{{job="{job}"}}'})
    return {as_prometheus_3(row, types) for row in rows}


def prometheus_first(prometheus: Prometheus, job: str, metric: str) -> float:
    """The value of ``metric`` at Prometheus's first scrape of ``job``."""
    rows = prometheus.query(f'{metric}{{job="{job}"}}[1h]')
    assert len(rows) == 1
    return float(rows[0]["values"][0][1])


def same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def name_of(labels: LabelSet) -> str:
    return dict(labels)["__name__"]


def assert_same_latest_values(
    tinct: dict[LabelSet, tuple[int, float]], prometheus: dict[LabelSet, float]
) -> None:
    assert set(tinct) == set(prometheus)
    differ = {
        tuple(sorted(labels)): (tinct[labels][1], prometheus[labels])
        for labels in tinct
        if name_of(labels) not in ("scrape_duration_seconds", "scrape_series_added")
        and not same(tinct[labels][1], prometheus[labels])
    }
    assert differ == {}


def assert_synthetic(
    tinct: dict[LabelSet, tuple[int, float]], targets: Targets, job: str, series_added: bool = True
) -> None:
    """up and scrape_* as Prometheus stores them; scrape_series_added as at
    Prometheus's first scrape (tinct scraped once)."""
    values = {name_of(labels): value for labels, (_, value) in tinct.items()}
    assert SYNTHETIC <= set(values)
    prometheus = targets.prometheus
    assert values["up"] == 1.0
    for metric in ("scrape_samples_scraped", "scrape_samples_post_metric_relabeling"):
        assert values[metric] == float(prometheus.query(f'{metric}{{job="{job}"}}')[0]["value"][1])
    if series_added:
        first = prometheus_first(prometheus, job, "scrape_series_added")
        assert values["scrape_series_added"] == first
    assert 0 <= values["scrape_duration_seconds"] < 5


# -- the comparisons ------------------------------------------------------------------


def test_e2e_output_stored_as_prometheus_stores_it(store: Any, targets: Targets) -> None:
    scrape_with_tinct(store, targets, "e2e")
    tinct = tinct_latest(store, "e2e")
    prometheus = targets.prometheus
    # Every series of the file, plus the five synthetic ones.
    assert len(tinct) == 3027 + len(SYNTHETIC)
    assert set(tinct) == prometheus_series(prometheus, "e2e")
    assert_same_latest_values(tinct, prometheus_latest(prometheus, "e2e"))
    assert_synthetic(tinct, targets, "e2e")
    values = {name_of(labels): value for labels, (_, value) in tinct.items()}
    assert values["scrape_samples_scraped"] == 3027.0
    assert values["scrape_series_added"] == 3027.0


def test_edge_cases_stored_as_prometheus_stores_them(store: Any, targets: Targets) -> None:
    scrape_with_tinct(store, targets, "edge", "om")
    prometheus = targets.prometheus
    for job in ("edge", "om"):
        tinct = tinct_latest(store, job)
        assert set(tinct) == prometheus_series(prometheus, job), job
        theirs = prometheus_latest(prometheus, job)
        assert_same_latest_values(tinct, theirs)
        # OpenMetrics' timestamped samples: see test_openmetrics_series_added below.
        assert_synthetic(tinct, targets, job, series_added=job != "om")
    # Exposed OpenMetrics timestamps are kept (honor_timestamps), to the millisecond.
    om = tinct_latest(store, "om")
    raw = prometheus_points(prometheus, "om")
    stamped = [labels for labels in om if name_of(labels).startswith("om_requests_")]
    assert len(stamped) == 2
    for labels in stamped:
        assert om[labels][0] == raw[labels][-1][0]
    # Spot checks of what the comparison covered.
    edge = {
        tuple(sorted(labels)): value for labels, (_, value) in tinct_latest(store, "edge").items()
    }
    instance = targets.instances["edge"]
    base = (("instance", instance), ("job", "edge"))
    escapes = (
        ("__name__", "edge_escapes_info"),
        ("backslash", "a\\b"),
        base[0],
        base[1],
        ("newline", "one\ntwo"),
        ("quote", 'say "hi"'),
        ("tab", "x\\ty"),
    )
    assert edge[escapes] == 1.0
    assert math.isnan(edge[(("__name__", "edge_special"), *base, ("v", "nan"))])
    assert edge[(("__name__", "edge_special"), *base, ("v", "-inf"))] == -math.inf
    assert edge[(("__name__", "edge_requests"), ("code", "200"), *base)] == 10.0
    # Scraped job/instance clash with the target's: kept as exported_*, and
    # exported_exported_job as the scraped exported_job is taken.
    clash = (
        ("__name__", "edge_job_clash"),
        ("exported_exported_job", "scraped"),
        ("exported_instance", "other"),
        ("exported_job", "x"),
        *base,
    )
    assert edge[clash] == 9.0
    # An empty label value is no label, in both.
    assert edge[(("__name__", "edge_empty_label"), ("b", "x"), *base)] == 7.0


def test_le_and_quantile_follow_prometheus_3(store: Any, targets: Targets) -> None:
    """The one deliberate difference from Prometheus 2.42 (see the module docstring)."""
    scrape_with_tinct(store, targets, "edge")
    stored = {
        dict(labels).get("le") or dict(labels).get("quantile")
        for labels in tinct_latest(store, "edge")
        if name_of(labels) in ("edge_latency_seconds_bucket", "edge_rpc_seconds")
    }
    assert stored == {"0.1", "1.0", "10.0", "1e+06", "+Inf", "0.0", "0.5"}
    rows = targets.prometheus.query('{__name__=~"edge_latency_seconds_bucket|edge_rpc_seconds"}')
    as_written = {row["metric"].get("le") or row["metric"].get("quantile") for row in rows}
    assert as_written == {"0.1", "1", "10", "1e+06", "+Inf", "0", "0.5"}


def test_node_exporter_stored_as_prometheus_stores_it(store: Any, targets: Targets) -> None:
    scrape_with_tinct(store, targets, "node")
    tinct = tinct_latest(store, "node")
    prometheus = targets.prometheus
    theirs = prometheus_latest(prometheus, "node")
    # The same families and series (label sets); values move between scrapes.
    assert {name_of(labels) for labels in tinct} == {name_of(labels) for labels in theirs}
    assert set(tinct) == set(theirs)
    assert len(tinct) > 300
    stable = (
        "node_uname_info",
        "node_exporter_build_info",
        "node_filesystem_size_bytes",
        "node_memory_MemTotal_bytes",
        "node_boot_time_seconds",
        "scrape_samples_scraped",
        "up",
    )
    for labels, (_, value) in tinct.items():
        if name_of(labels) in stable:
            assert value == theirs[labels], sorted(labels)
    names = {name_of(labels) for labels in tinct}
    assert {"node_uname_info", "node_filesystem_size_bytes", "node_memory_MemTotal_bytes"} <= names
    # Prometheus's first scrape added every series; so did tinct's.
    values = {name_of(labels): value for labels, (_, value) in tinct.items()}
    assert values["scrape_series_added"] == prometheus_first(
        prometheus, "node", "scrape_series_added"
    )
    assert values["scrape_samples_scraped"] == values["scrape_series_added"]


def test_e2e_metadata_as_prometheus_reports_it(store: Any, targets: Targets) -> None:
    scrape_with_tinct(store, targets, "e2e")
    rows = targets.prometheus.api("targets/metadata", match_target='{job="e2e"}')
    theirs = {row["metric"]: (row["type"], row["help"], row["unit"]) for row in rows}
    ours = {m.metric: (m.type, m.help, m.unit) for m in store.metadata()}
    assert len(theirs) == 1228
    assert ours == theirs


def test_openmetrics_sub_millisecond_timestamp(targets: Targets) -> None:
    store = InMemoryMetricStore()
    scrape_with_tinct(store, targets, "om-subms")
    ours = {name_of(k): v for k, v in tinct_latest(store, "om-subms").items()}
    theirs = {name_of(k): v for k, v in prometheus_points(targets.prometheus, "om-subms").items()}
    assert ours["subms"][0] == theirs["subms"][-1][0]


def test_openmetrics_series_added(targets: Targets) -> None:
    store = InMemoryMetricStore()
    scrape_with_tinct(store, targets, "om")
    values = {name_of(k): v for k, (_, v) in tinct_latest(store, "om").items()}
    first = prometheus_first(targets.prometheus, "om", "scrape_series_added")
    assert values["scrape_series_added"] == first


def test_openmetrics_metadata_as_prometheus_reports_it(targets: Targets) -> None:
    store = InMemoryMetricStore()
    scrape_with_tinct(store, targets, "om")
    rows = targets.prometheus.api("targets/metadata", match_target='{job="om"}')
    theirs = {row["metric"]: (row["type"], row["help"], row["unit"]) for row in rows}
    ours = {m.metric: (m.type, m.help, m.unit) for m in store.metadata()}
    assert ours == theirs
