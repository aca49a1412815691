"""Collection inside a real `tinct up`: scrape configs and the host, targets API, stored series."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import TinctProcess, stop_pid
from tinct.metrics import Matcher
from tinct.storage import ChdbSpanStore

pytestmark = pytest.mark.server

EXPOSITION = b"""# HELP app_requests_total Requests served.
# TYPE app_requests_total counter
app_requests_total{code="200"} 41
app_requests_total{code="500"} 1
# TYPE app_temperature_celsius gauge
app_temperature_celsius 21.5
"""


@pytest.fixture
def target() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(EXPOSITION)))
            self.end_headers()
            self.wfile.write(EXPOSITION)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_up_scrapes_targets_and_the_host(tmp_path: Path, target: str) -> None:
    config = tmp_path / "tinct.yaml"
    config.write_text(
        f"""
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: app
    static_configs:
      - targets: ["{target}"]
        labels: {{layer: service, service: shop}}
collectors:
  host:
    scrape_interval: 1s
"""
    )
    data = tmp_path / "data"
    tinct = TinctProcess(data, "--config", str(config))
    try:
        tinct.wait_ready()
        deadline = time.monotonic() + 30
        while True:
            body = httpx.get(f"{tinct.main}/api/v1/targets").json()
            active = body["data"]["activeTargets"]
            if len(active) == 2 and all(t["health"] == "up" for t in active):
                break
            assert time.monotonic() < deadline, body
            time.sleep(0.2)
        assert body["status"] == "success"
        by_pool = {t["scrapePool"]: t for t in active}
        app = by_pool["app"]
        assert app["scrapeUrl"] == f"http://{target}/metrics"
        assert app["labels"] == {
            "job": "app",
            "instance": target,
            "layer": "service",
            "service": "shop",
        }
        assert app["discoveredLabels"]["__address__"] == target
        assert app["scrapeInterval"] == "1s" and app["lastError"] == ""
        assert by_pool["host"]["labels"]["layer"] == "infrastructure"
        only_app = httpx.get(f"{tinct.main}/api/v1/targets", params={"scrapePool": "app"})
        assert [t["scrapePool"] for t in only_app.json()["data"]["activeTargets"]] == ["app"]
        bad = httpx.get(f"{tinct.main}/api/v1/targets", params={"state": "nope"})
        assert bad.status_code == 400 and bad.json()["errorType"] == "bad_data"
        # Two scrapes of each, so the writer has written some.
        time.sleep(2.5)
    finally:
        assert tinct.stop() == 0, "".join(tinct.lines)
    store = ChdbSpanStore(str(data))
    try:
        now = int(time.time() * 1000)
        found = store.series([Matcher("job", "=", "app")], now - 600_000, now)
        names = {s.name for s in found}
        assert {"app_requests_total", "app_temperature_celsius", "up"} <= names
        requests = [s for s in found if s.name == "app_requests_total"]
        assert sorted(s.labels["code"] for s in requests) == ["200", "500"]
        values = store.samples([s.fingerprint for s in requests], now - 600_000, now)
        assert set(values.column("value").to_pylist()) == {41.0, 1.0}
        host = store.series([Matcher("layer", "=", "infrastructure")], now - 600_000, now)
        assert "system_cpu_time_seconds_total" in {s.name for s in host}
        assert {m.metric for m in store.metadata()} >= {"app_requests_total"}
    finally:
        store.close()


def test_bad_scrape_config_exits_2_naming_the_field(tmp_path: Path) -> None:
    config = tmp_path / "tinct.yaml"
    config.write_text(
        "scrape_configs:\n  - job_name: a\n    scrape_interval: 5s\n    scrape_timeout: 10s\n"
        "    static_configs: [{targets: ['127.0.0.1:1']}]\n"
    )
    tinct = TinctProcess(tmp_path / "data", "--config", str(config))
    try:
        assert tinct.proc.wait(60) == 2
    finally:
        stop_pid(tinct.proc)
    log = "".join(tinct.lines)
    assert "scrape_timeout" in log and str(config) in log, log
