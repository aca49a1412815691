"""`tinct agent` against a real `tinct up` that goes away and comes back.

The agent scrapes a local target every 0.2 s and remote-writes to tinct.
tinct is stopped for a while (the issue's "a minute", compressed), during
which the agent keeps collecting into its disk buffer; once tinct is back on
the same port and data, every sample arrives, in order, exactly once.
"""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import TinctProcess, free_port, stop_pid
from tinct.collectors.remote_write_client import DiskBuffer, RemoteWriteSender, table_to_request
from tinct.collectors.remote_write_proto import encode_write_request
from tinct.metrics import STALE_NAN, Matcher, SampleBuilder, is_stale
from tinct.storage import ChdbSpanStore

REPO = Path(__file__).resolve().parents[2]


class Target:
    """A Prometheus target counting how often it was scraped."""

    def __init__(self) -> None:
        self.hits = 0
        target = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                target.hits += 1
                body = f"agent_test_scrapes_total {target.hits}\n".encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.address = f"127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def target() -> Iterator[Target]:
    t = Target()
    yield t
    t.server.shutdown()
    t.server.server_close()


def test_table_round_trips_through_a_remote_write_body() -> None:
    from tinct.collectors.remote_write import decode_write_request

    builder = SampleBuilder()
    builder.add_mapping({"__name__": "m", "b": "2", "a": "1"}, 2_000, 2.0)
    builder.add_mapping({"__name__": "m", "b": "2", "a": "1"}, 1_000, 1.0)
    builder.add_mapping({"__name__": "gone"}, 1_000, STALE_NAN)
    table, _ = decode_write_request(table_to_request(builder.take()))
    rows = sorted((r["metric_name"], r["timestamp_ms"], r["value"]) for r in table.to_pylist())
    assert rows[:2] == [("gone", 1_000, rows[0][2]), ("m", 1_000, 1.0)] and is_stale(rows[0][2])
    assert rows[2] == ("m", 2_000, 2.0)


def test_sender_keeps_order_retries_and_sets_aside_refused_bodies(tmp_path: Path) -> None:
    got: list[bytes] = []
    answers = iter([503, 204, 400, 204])

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            code = next(answers)
            if code == 204:
                got.append(body)
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        buffer = DiskBuffer(tmp_path / "buf")
        first, second, third = (
            encode_write_request([([("__name__", f"s{i}")], [])]) for i in (1, 2, 3)
        )
        for body in (first, second, third):
            buffer.append(body)
        url = f"http://127.0.0.1:{server.server_address[1]}/api/v1/write"
        sender = RemoteWriteSender(buffer, url, retry_initial=0.01)
        path = buffer.oldest()
        assert path is not None
        assert sender.send_one(path) is False  # 503: kept, retried later
        assert sender.send_one(path) is True and got == [first]
        assert sender.send_one(_oldest(buffer)) is True  # 400: set aside, not retried
        assert [p.name for p in (tmp_path / "buf" / "rejected").iterdir()] == [
            "00000000000000000001.rw"
        ]
        assert sender.send_one(_oldest(buffer)) is True and got == [first, third]
        assert len(buffer) == 0 and sender.rejected_files == 1
        sender.stop()
    finally:
        server.shutdown()
        server.server_close()


def test_buffer_is_bounded_and_survives_a_restart(tmp_path: Path) -> None:
    buffer = DiskBuffer(tmp_path / "b", max_bytes=1000)
    for i in range(5):
        buffer.append(bytes([i]) * 400)
    assert len(buffer) == 2 and buffer.dropped_files == 3
    again = DiskBuffer(tmp_path / "b", max_bytes=1000)
    assert len(again) == 2
    again.append(b"x")
    oldest = again.oldest()
    assert oldest is not None and oldest.read_bytes() == bytes([3]) * 400


@pytest.mark.server
def test_agent_buffers_while_the_server_is_down_and_delivers_everything(
    tmp_path: Path, target: Target
) -> None:
    port = free_port()
    data = tmp_path / "data"
    config = tmp_path / "agent.yaml"
    config.write_text(
        "scrape_configs:\n"
        "  - job_name: app\n"
        "    scrape_interval: 200ms\n"
        "    scrape_timeout: 200ms\n"
        f"    static_configs: [{{targets: ['{target.address}']}}]\n"
        "collectors:\n  host: {enabled: false}\n"
    )
    tinct = TinctProcess(data, "--port", str(port))
    agent = None
    try:
        tinct.wait_ready()
        agent = subprocess.Popen(
            [sys.executable, "-m", "tinct", "agent", "--config", str(config)]
            + ["--server", f"http://127.0.0.1:{port}", "--buffer", str(tmp_path / "buffer")],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        _wait(lambda: target.hits >= 5, "the agent scraping")
        assert tinct.stop() == 0
        down_at = target.hits
        time.sleep(3)  # the outage: the agent keeps collecting
        assert target.hits >= down_at + 10, "collection stopped while the server was down"
        assert len(list((tmp_path / "buffer").glob("*.rw"))) >= 10
        tinct = TinctProcess(data, "--port", str(port))
        tinct.wait_ready()
        _wait(lambda: not list((tmp_path / "buffer").glob("*.rw")), "the buffer to empty")
        httpx.get(f"http://127.0.0.1:{port}/-/ready").raise_for_status()
        agent.send_signal(15)
        assert agent.wait(30) == 0, agent.stderr.read() if agent.stderr else ""
        scraped = target.hits
    finally:
        if agent is not None:
            stop_pid(agent)
        tinct.stop()
    store = ChdbSpanStore(str(data))
    try:
        (series,) = store.series([Matcher("__name__", "=", "agent_test_scrapes_total")], 0, 2**62)
        values = store.samples([series.fingerprint], 0, 2**62).column("value").to_pylist()
        (up,) = store.series([Matcher("__name__", "=", "up"), Matcher("job", "=", "app")], 0, 2**62)
        ups = store.samples([up.fingerprint], 0, 2**62).column("value").to_pylist()
    finally:
        store.close()
    # Every scrape's value, once, in order: 1, 2, ..., n with no gap.
    assert values == [float(n) for n in range(1, len(values) + 1)]
    assert len(values) >= scraped - 1  # the scrape in flight at SIGTERM may be cut
    assert len(ups) == len(values) and set(ups) == {1.0}
    assert series.labels["job"] == "app" and series.labels["instance"] == target.address


def _wait(check, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _oldest(buffer: DiskBuffer) -> Path:
    path = buffer.oldest()
    assert path is not None
    return path
