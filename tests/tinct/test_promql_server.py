"""PromQL through a real `tinct up`: remote-written data answered by /api/v1/query_range."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.servers import TinctProcess
from tinct.collectors.remote_write_proto import encode_write_request

pytestmark = pytest.mark.server


def test_written_data_is_queried_through_the_prometheus_api(tmp_path: Path) -> None:
    tinct = TinctProcess(tmp_path / "data", "--query.timeout", "30s")
    try:
        tinct.wait_ready()
        now = int(time.time()) // 60 * 60
        series = [
            (
                [("__name__", "req_total"), ("job", job)],
                [((now - 600 + i * 15) * 1000 + 3_000, float(i * rate)) for i in range(41)],
            )
            for job, rate in (("api", 30), ("web", 15))
        ]
        response = httpx.post(
            f"{tinct.main}/api/v1/write",
            content=encode_write_request(series),
            headers={"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"},
        )
        assert response.status_code == 204, response.text
        params: dict[str, str | int] = {
            "query": "sum by (job) (rate(req_total[1m]))",
            "start": now - 300,
            "end": now - 60,
            "step": 60,
        }
        deadline = time.monotonic() + 10
        while True:  # the writer flushes every half second
            body = httpx.get(f"{tinct.main}/api/v1/query_range", params=params).json()
            if body["status"] == "success" and len(body["data"]["result"]) == 2:
                break
            assert time.monotonic() < deadline, body
            time.sleep(0.2)
        assert body["data"]["resultType"] == "matrix"
        rates = {
            r["metric"]["job"]: [float(v) for _, v in r["values"]] for r in body["data"]["result"]
        }
        assert rates["api"] == pytest.approx([2.0] * 5)
        assert rates["web"] == pytest.approx([1.0] * 5)
        bad = httpx.get(f"{tinct.main}/api/v1/query", params={"query": "sum("})
        assert bad.status_code == 400 and bad.json()["errorType"] == "bad_data"
        flags = httpx.get(f"{tinct.main}/api/v1/status/flags").json()["data"]
        assert flags["query.timeout"] == "30s" and flags["query.lookback-delta"] == "5m"
        names = httpx.get(f"{tinct.main}/api/v1/label/__name__/values").json()["data"]
        assert "req_total" in names
    finally:
        assert tinct.stop() == 0
