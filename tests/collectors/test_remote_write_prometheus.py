"""A real Prometheus remote-writing to tinct's receiver: what tinct stores is
what Prometheus stores.

Debian's Prometheus 2.42 scrapes a small fixed exposition (counters, gauges
with escapes, NaN and infinities, a histogram) every second and sends every
sample, its own ``up`` and ``scrape_*`` series included, to
``POST /api/v1/write`` of a :class:`RemoteWriteAPI` served by uvicorn in a
thread, writing into an embedded chdb store through the sample batch
writer. Then every series Prometheus holds must be in tinct's store with
the same labels and the same raw samples, up to a cut-off both have, and
the families' metadata must have arrived too.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from starlette.applications import Starlette

from tests.appserver import serve_app
from tests.prometheus_server import PROMETHEUS, ExpositionServer, Prometheus, Route
from tests.servers import free_port, stop_pid, wait_for_port
from tinct.metrics import Matcher, is_stale
from tinct.remote_write_api import REMOTE_WRITE_PATH, RemoteWriteAPI
from tinct.storage import ChdbSpanStore, sample_batch_writer

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(shutil.which(PROMETHEUS) is None, reason="Prometheus is not installed"),
]

Points = dict[frozenset[tuple[str, str]], list[tuple[int, float]]]


GONE_AFTER = 4  # scrapes; then one series disappears and Prometheus stale-marks it


class Exposition:
    """A small exposition whose counters grow by one step per scrape."""

    def __init__(self) -> None:
        self.scrapes = 0

    def __call__(self) -> bytes:
        n = self.scrapes = self.scrapes + 1
        gone = "" if n <= GONE_AFTER else "# "
        return f"""# HELP demo_requests_total Requests served.
# TYPE demo_requests_total counter
demo_requests_total{{code="200",method="GET"}} {3 * n}
{gone}demo_requests_total{{code="500",method="POST"}} {n}
# HELP demo_temperature_celsius Temperature by room.
# TYPE demo_temperature_celsius gauge
demo_temperature_celsius{{room="a b",note="q\\"b\\\\n\\nx"}} {-3.5 + n * 0.25}
demo_temperature_celsius{{room="Zürich"}} 1e-300
# TYPE demo_special gauge
demo_special{{v="nan"}} NaN
demo_special{{v="inf"}} +Inf
demo_special{{v="-inf"}} -Inf
demo_special{{v="big"}} 1.7976931348623157e+308
# HELP demo_latency_seconds Request latency.
# TYPE demo_latency_seconds histogram
demo_latency_seconds_bucket{{le="0.1"}} {n}
demo_latency_seconds_bucket{{le="1"}} {2 * n}
demo_latency_seconds_bucket{{le="+Inf"}} {3 * n}
demo_latency_seconds_sum {0.75 * n}
demo_latency_seconds_count {3 * n}
""".encode()


@contextlib.contextmanager
def prometheus_remote_writing(
    workdir: Path, target: str, write_url: str
) -> Iterator[tuple[Prometheus, subprocess.Popen[bytes]]]:
    """Debian's Prometheus scraping ``target`` every second and remote-writing."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [{"job_name": "demo", "static_configs": [{"targets": [target]}]}],
        "remote_write": [
            {
                "url": write_url,
                "queue_config": {"batch_send_deadline": "1s", "max_samples_per_send": 500},
                "metadata_config": {"send": True, "send_interval": "1s"},
            }
        ],
    }
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = open(workdir / "prometheus.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--storage.tsdb.path={workdir / 'data'}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=workdir,
    )
    prometheus = Prometheus(f"http://127.0.0.1:{port}")
    try:
        wait_for_port(port, 60, proc)
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                ready = httpx.get(f"{prometheus.base}/-/ready", timeout=2, trust_env=False)
                if ready.status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Prometheus did not become ready: {log_tail(workdir)}")
            time.sleep(0.1)
        yield prometheus, proc
    finally:
        prometheus.close()
        stop_pid(proc)
        log.close()


def log_tail(workdir: Path) -> str:
    path = workdir / "prometheus.log"
    return path.read_text(errors="replace")[-3000:] if path.exists() else ""


def prometheus_points(prometheus: Prometheus, at_ms: int) -> Points:
    """Raw samples of every series in the 5 minutes up to ``at_ms`` (a range selector)."""
    result = prometheus.query('{job=~".+"}[5m]', time=f"{at_ms / 1000:.3f}")
    return {
        frozenset(item["metric"].items()): [
            (round(float(t) * 1000), float(v)) for t, v in item["values"]
        ]
        for item in result
    }


def tinct_points(store: ChdbSpanStore, start_ms: int, end_ms: int) -> Points:
    """Stored samples in ``[start_ms, end_ms]``; staleness markers left out, as
    Prometheus's range selectors leave them out."""
    series = store.series([Matcher("job", "=~", ".+")], start_ms, end_ms)
    table = store.samples([s.fingerprint for s in series], start_ms, end_ms)
    by_fp: dict[int, list[tuple[int, float]]] = {s.fingerprint: [] for s in series}
    for row in table.to_pylist():
        if not is_stale(row["value"]):
            by_fp[row["fingerprint"]].append((row["timestamp_ms"], row["value"]))
    return {
        frozenset(s.labels.items()): by_fp[s.fingerprint] for s in series if by_fp[s.fingerprint]
    }


def same_value(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def differences(theirs: Points, ours: Points) -> list[str]:
    out = []
    for labels in sorted(theirs.keys() | ours.keys(), key=sorted):
        a, b = theirs.get(labels), ours.get(labels)
        if a is None or b is None:
            out.append(f"{dict(labels)}: only in {'tinct' if a is None else 'Prometheus'}")
        elif len(a) != len(b) or not all(
            ta == tb and same_value(va, vb) for (ta, va), (tb, vb) in zip(a, b, strict=True)
        ):
            out.append(f"{dict(labels)}: Prometheus {a} tinct {b}")
    return out


@pytest.fixture
def exposition() -> Iterator[ExpositionServer]:
    with ExpositionServer({"/metrics": Route(Exposition())}) as server:
        yield server


def test_prometheus_remote_write_stores_what_prometheus_stores(
    tmp_path: Path, exposition: ExpositionServer
) -> None:
    store = ChdbSpanStore(str(tmp_path / "store"))
    writer = sample_batch_writer(store, max_delay=0.1)
    api = RemoteWriteAPI(lambda: writer.submit, lambda: store.write_metadata, None)
    try:
        with (
            serve_app(Starlette(routes=api.routes())) as base,
            prometheus_remote_writing(
                tmp_path / "prometheus", exposition.address, base + REMOTE_WRITE_PATH
            ) as (prometheus, _),
        ):
            prometheus.wait_scraped({"demo": GONE_AFTER + 2}, timeout=60)
            cutoff = int(time.time() * 1000) - 2000
            theirs = prometheus_points(prometheus, cutoff)
            assert theirs, "Prometheus holds no samples"
            start = min(t for points in theirs.values() for t, _ in points)
            # Remote write lags by up to batch_send_deadline: wait for tinct to catch up.
            deadline = time.monotonic() + 60
            while True:
                writer.flush(10)
                ours = tinct_points(store, start - 300_000, cutoff)
                problems = differences(theirs, ours)
                if not problems or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert not problems, "\n".join(problems[:20]) + "\n" + log_tail(tmp_path / "prometheus")
            names = {dict(labels)["__name__"] for labels in theirs}
            assert {"up", "scrape_duration_seconds", "scrape_samples_scraped"} <= names
            assert {"demo_requests_total", "demo_latency_seconds_bucket", "demo_special"} <= names
            # 13 exposed series and Prometheus's 5 per target, 3 scrapes or more each.
            assert len(theirs) == 18 and min(map(len, theirs.values())) >= 3

            # The series that went away: Prometheus's staleness marker arrives
            # bit for bit, after its last sample.
            gone = [Matcher("__name__", "=", "demo_requests_total"), Matcher("code", "=", "500")]
            deadline = time.monotonic() + 30
            while True:
                writer.flush(10)
                series = store.series(gone, start - 300_000, cutoff + 300_000)
                table = store.samples([s.fingerprint for s in series], start, cutoff + 300_000)
                values = table.column("value").to_pylist()
                if any(map(is_stale, values)) or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert len(series) == 1 and is_stale(values[-1]), values
            assert not any(map(is_stale, values[:-1])) and values[GONE_AFTER - 1] == GONE_AFTER

            metadata = metadata_in_prometheus(prometheus)
            deadline = time.monotonic() + 30
            while True:
                stored = {m.metric: (m.type, m.help, m.unit) for m in store.metadata()}
                if stored == metadata or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert stored == metadata
            assert api.refused_samples == 0 and api.accepted_samples >= sum(map(len, ours.values()))
    finally:
        writer.close(30)
        store.close()


def metadata_in_prometheus(prometheus: Prometheus) -> dict[str, tuple[str, str, str]]:
    data: dict[str, list[dict[str, Any]]] = prometheus.api("metadata")
    return {name: (m[0]["type"], m[0]["help"], m[0]["unit"]) for name, m in data.items()}
