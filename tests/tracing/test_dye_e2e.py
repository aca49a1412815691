"""End to end: dyed requests traced through three services in separate processes.

gateway (tinct, entry, polls the dye rules) -> orders (plain OpenTelemetry)
-> payments (tinct), each a ``tests.tracing._dye_app`` process exporting to
one real ``tinct up``; the tinct services sample roots with probability 0, so
only dyed requests are recorded. Shown (issue 3): a rule added through the
API dyes a user's requests into complete traces (every hop, parent links
intact) within one poll interval, undyed requests leave nothing, the plain
OpenTelemetry service in the middle passes the dye on as baggage, a rule stops
dyeing when it expires and when it is deleted, a dye from code is carried from
where the code put it, and DEBUG records of dyed requests are stored and found
by trace id while the app's logger is at WARNING; and every request, dyed or
not, is counted exactly in the RED metrics the tinct services export to
tinct's ``/v1/metrics`` (read from the ClickHouse server tinct writes to).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import TinctProcess, free_port, stop_pid, wait_for_port
from tinct.metrics import Matcher
from tinct.storage import ClickHouseSpanStore

pytestmark = [pytest.mark.server, pytest.mark.clickhouse]
# Requests sent to the gateway, per route: what the RED metrics must count.
SENT: Counter[str] = Counter()

POLL_INTERVAL = 0.2  # the gateway's rules_interval
# A poll is one HTTP request and a store read; this covers it on a loaded machine.
POLL_MARGIN = 0.4
SERVICES = ("gateway", "orders", "payments")
TINCT_SERVICES = ("gateway", "payments")
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Chain:
    tinct: TinctProcess
    gateway: str  # base URL
    logs: dict[str, Path]  # service -> its stderr
    store: ClickHouseSpanStore  # what tinct writes, read while it runs

    def debug_output(self) -> str:
        parts = [f"--- {n} ---\n{p.read_text(errors='replace')}" for n, p in self.logs.items()]
        return "\n".join(parts) + "\n--- tinct ---\n" + "".join(self.tinct.lines)


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory, clickhouse_port: int) -> Iterator[Chain]:
    workdir = tmp_path_factory.mktemp("dye_e2e")
    database = f"dye_{uuid.uuid4().hex[:10]}"
    url = f"clickhouse://127.0.0.1:{clickhouse_port}/{database}"
    tinct = TinctProcess(workdir / "data", "--store", url)
    procs: list[subprocess.Popen[bytes]] = []
    files = []
    try:
        tinct.wait_ready()
        otlp = tinct.urls["OTLP/HTTP"].removesuffix("/v1/traces").rstrip("/")
        ports = {name: free_port() for name in SERVICES}
        hops = {
            "payments": ["--mode", "tinct"],
            "orders": ["--mode", "plain", "--next", f"http://127.0.0.1:{ports['payments']}"],
            "gateway": [
                "--mode",
                "tinct",
                "--next",
                f"http://127.0.0.1:{ports['orders']}",
                "--tinct-url",
                tinct.main,
                "--rules-interval",
                str(POLL_INTERVAL),
            ],
        }
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TINCT_"))}
        env["OTEL_BLRP_SCHEDULE_DELAY"] = "200"  # log batches every 0.2 s, not 1 s
        env["OTEL_METRIC_EXPORT_INTERVAL"] = "300"  # RED metrics every 0.3 s, not 60 s
        logs = {}
        for name in ("payments", "orders", "gateway"):  # the callee before its caller
            logs[name] = workdir / f"{name}.stderr"
            out = open(logs[name], "wb")  # noqa: SIM115 - closed below
            files.append(out)
            command = [sys.executable, "-m", "tests.tracing._dye_app", "--name", name]
            command += ["--port", str(ports[name]), "--otlp", otlp, *hops[name]]
            procs.append(
                subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=out)
            )
        store = ClickHouseSpanStore("127.0.0.1", clickhouse_port, database)
        built = Chain(tinct, f"http://127.0.0.1:{ports['gateway']}", logs, store)
        for proc, name in zip(procs, ("payments", "orders", "gateway"), strict=True):
            try:
                wait_for_port(ports[name], 30, proc)
            except (RuntimeError, TimeoutError) as exc:
                message = f"{name} did not start: {exc}\n{built.debug_output()}"
                raise AssertionError(message) from None
        yield built
    finally:
        for proc in reversed(procs):  # the caller before its callee
            stop_pid(proc)
        for out in files:
            out.close()
        codes = [proc.returncode for proc in procs]
        code = tinct.stop()
        if "built" in locals():
            built.store.close()
        assert codes == [0] * len(procs), codes
        assert code == 0, "".join(tinct.lines)


# --- helpers -----------------------------------------------------------------------


def request(chain: Chain, path: str, user: str | None = None) -> dict[str, Any]:
    """GET the gateway; the chain's answer (every hop's trace and span id)."""
    headers = {"x-user-id": user} if user is not None else {}
    SENT["/" + path.split("/")[1] + "/{id}"] += 1
    response = httpx.get(chain.gateway + path, headers=headers, timeout=10)
    assert response.status_code == 200, response.text + chain.debug_output()
    answer: dict[str, Any] = response.json()
    hop, ids = answer, set()
    while hop is not None:
        ids.add(hop["trace_id"])
        hop = hop["next"]
    assert ids == {answer["trace_id"]}, f"one trace id through the chain: {answer}"
    return answer


def fetch_trace(chain: Chain, trace_id: str) -> dict[str, Any] | None:
    response = httpx.get(f"{chain.tinct.main}/api/traces/{trace_id}")
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    (found,) = response.json()["data"]
    return dict(found)


def spans_of(found: dict[str, Any]) -> list[dict[str, Any]]:
    """The trace's spans, each with its ``service``, ``kind``, ``parent`` and ``tags``."""
    spans = []
    for span in found["spans"]:
        tags = {t["key"]: t["value"] for t in span["tags"]}
        parents = [r["spanID"] for r in span["references"] if r["refType"] == "CHILD_OF"]
        spans.append(
            {
                "id": span["spanID"],
                "name": span["operationName"],
                "service": found["processes"][span["processID"]]["serviceName"],
                "kind": tags.get("span.kind", ""),
                "parent": parents[0] if parents else None,
                "tags": tags,
            }
        )
    return spans


def wait_for_traces(
    chain: Chain, trace_ids: list[str], complete: int, timeout: float = 10.0
) -> dict[str, list[dict[str, Any]]]:
    """Each trace's spans once it holds ``complete`` spans (or what it has at the deadline)."""
    deadline = time.monotonic() + timeout
    got: dict[str, list[dict[str, Any]]] = {}
    while True:
        for trace_id in trace_ids:
            if len(got.get(trace_id, ())) < complete:
                found = fetch_trace(chain, trace_id)
                got[trace_id] = spans_of(found) if found else []
        if all(len(got[t]) >= complete for t in trace_ids) or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


def barrier(chain: Chain) -> None:
    """Wait until a dyed request sent now is stored at every hop.

    Each service exports its spans in the order they end, so once this trace
    is complete, spans of earlier requests would be stored too: what is still
    missing was never recorded.
    """
    answer = request(chain, "/vip/barrier")
    spans = wait_for_traces(chain, [answer["trace_id"]], complete=4)[answer["trace_id"]]
    assert {s["service"] for s in spans} == set(SERVICES), chain.debug_output()


def add_rule(chain: Chain, user: str, ttl_seconds: int) -> dict[str, Any]:
    response = httpx.post(
        f"{chain.tinct.main}/api/tinct/dye-rules",
        json={"match": {"kind": "user", "value": user}, "ttl_seconds": ttl_seconds},
    )
    assert response.status_code == 201, response.text
    rule: dict[str, Any] = response.json()
    return rule


def unix(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339).timestamp()


def wait_poll() -> None:
    """Long enough for the gateway to have polled the rules once since now."""
    time.sleep(POLL_INTERVAL + POLL_MARGIN)


def assert_untraced(chain: Chain, trace_ids: list[str]) -> None:
    barrier(chain)
    stored = [t for t in trace_ids if fetch_trace(chain, t) is not None]
    assert stored == [], f"undyed requests were traced: {stored}"


def logs_of(chain: Chain, trace_id: str, want: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    """The trace's ``handled`` records, once there are ``want`` of them."""
    deadline = time.monotonic() + timeout
    while True:
        response = httpx.get(f"{chain.tinct.main}/api/tinct/logs", params={"trace_id": trace_id})
        assert response.status_code == 200, response.text
        found = [r for r in response.json()["logs"] if str(r["body"]).startswith("handled ")]
        if len(found) >= want or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def assert_connected(spans: list[dict[str, Any]], root_parent: str | None = None) -> None:
    """One root (its parent ``root_parent``); every other parent is a span of the trace."""
    ids = {s["id"] for s in spans}
    roots = [s for s in spans if s["parent"] not in ids]
    assert len(roots) == 1, f"one root, got {roots}"
    assert roots[0]["parent"] == root_parent, roots[0]


# --- tests -------------------------------------------------------------------------


def test_undyed_requests_leave_no_trace(chain: Chain) -> None:
    start_us = int(time.time() * 1e6)
    answers = [request(chain, f"/orders/{n}", user="7") for n in range(20)]
    end_us = int(time.time() * 1e6)
    assert_untraced(chain, [a["trace_id"] for a in answers])
    search = httpx.get(
        f"{chain.tinct.main}/api/traces",
        params={"service": "gateway", "tags": '{"enduser.id":"7"}', "lookback": "1h"},
    )
    assert search.status_code == 200 and search.json()["data"] == [], search.text
    for service in SERVICES:  # nothing at all at probability 0 while they ran
        window: dict[str, str | int] = {"service": service, "start": start_us, "end": end_us}
        found = httpx.get(f"{chain.tinct.main}/api/traces", params=window).json()["data"]
        assert found == [], f"{service} recorded undyed requests: {found}"


def test_rule_through_the_api_dyes_every_request_of_the_user(chain: Chain) -> None:
    add_rule(chain, "42", ttl_seconds=600)
    wait_poll()
    answers = [request(chain, f"/orders/{n}", user="42") for n in range(10)]
    trace_ids = [a["trace_id"] for a in answers]
    # gateway server + client, orders server + client, payments server.
    traces = wait_for_traces(chain, trace_ids, complete=5)

    for answer in answers:
        spans = traces[answer["trace_id"]]
        assert sorted((s["service"], s["kind"]) for s in spans) == [
            ("gateway", "client"),
            ("gateway", "server"),
            ("orders", "client"),
            ("orders", "server"),
            ("payments", "server"),
        ], spans
        by = {(s["service"], s["kind"]): s for s in spans}
        gateway, payments = by["gateway", "server"], by["payments", "server"]
        assert_connected(spans)
        assert gateway["parent"] is None and gateway["id"] == answer["span_id"]
        assert gateway["name"] == "GET /orders/{id}" and gateway["tags"]["enduser.id"] == "42"
        # Each hop's server span is the child of the caller's client span.
        assert by["gateway", "client"]["parent"] == gateway["id"]
        assert by["orders", "server"]["parent"] == by["gateway", "client"]["id"]
        assert by["orders", "client"]["parent"] == by["orders", "server"]["id"]
        assert payments["parent"] == by["orders", "client"]["id"]
        assert payments["id"] == answer["next"]["next"]["span_id"]
        for span in spans:
            if span["service"] in TINCT_SERVICES:
                assert span["tags"].get("tinct.dye") == "user:42", span

        # The DEBUG records of both tinct services, though their logger is at WARNING.
        records = logs_of(chain, answer["trace_id"], want=2)
        got = sorted((r["service"], r["span_id"], r["body"]) for r in records)
        assert got == [
            ("gateway", gateway["id"], f"handled /orders/{answers.index(answer)}"),
            ("payments", payments["id"], f"handled /orders/{answers.index(answer)}"),
        ], records
        for record in records:
            assert record["severity_text"] == "DEBUG" and record["severity_number"] == 5
            assert record["dye"] == "user:42"
            assert record["scope"]["name"] == "tests.dye_app"


def test_rule_stops_dyeing_within_a_poll_interval_of_its_expiry(chain: Chain) -> None:
    rule = add_rule(chain, "43", ttl_seconds=2)
    wait_poll()
    live = request(chain, "/orders/1", user="43")
    expires_at = unix(rule["expires_at"])
    assert time.time() < expires_at, "the rule expired before it could be checked"
    time.sleep(max(0.0, expires_at + POLL_INTERVAL + 0.1 - time.time()))
    expired = [request(chain, f"/orders/{n}", user="43") for n in range(5)]

    traces = wait_for_traces(chain, [live["trace_id"]], complete=5)
    assert len(traces[live["trace_id"]]) == 5, "the live rule did not dye"
    assert_untraced(chain, [a["trace_id"] for a in expired])


def test_deleted_rule_stops_dyeing_within_a_poll_interval(chain: Chain) -> None:
    rule = add_rule(chain, "44", ttl_seconds=600)
    wait_poll()
    live = request(chain, "/orders/1", user="44")
    response = httpx.delete(f"{chain.tinct.main}/api/tinct/dye-rules/{rule['id']}")
    assert response.status_code == 204, response.text
    wait_poll()
    ended = [request(chain, f"/orders/{n}", user="44") for n in range(5)]

    traces = wait_for_traces(chain, [live["trace_id"]], complete=5)
    assert len(traces[live["trace_id"]]) == 5, "the live rule did not dye"
    assert_untraced(chain, [a["trace_id"] for a in ended])


def test_dye_from_code_traces_everything_downstream_of_it(chain: Chain) -> None:
    answers = [request(chain, f"/vip/{n}") for n in range(5)]
    # The gateway dyes inside its handler: its server span had started undyed
    # and unsampled (probability 0), so the trace starts at its client span,
    # whose parent is that unrecorded server span.
    traces = wait_for_traces(chain, [a["trace_id"] for a in answers], complete=4)
    for answer in answers:
        spans = traces[answer["trace_id"]]
        assert sorted((s["service"], s["kind"]) for s in spans) == [
            ("gateway", "client"),
            ("orders", "client"),
            ("orders", "server"),
            ("payments", "server"),
        ], spans
        assert_connected(spans, root_parent=answer["span_id"])
        by = {(s["service"], s["kind"]): s for s in spans}
        assert by["payments", "server"]["parent"] == by["orders", "client"]["id"]
        for span in spans:
            if span["service"] in TINCT_SERVICES:
                assert span["tags"].get("tinct.dye") == "user:vip", span
        # The gateway logged inside the dye, in its (unrecorded) server span.
        records = logs_of(chain, answer["trace_id"], want=2)
        got = sorted((r["service"], r["span_id"], r["dye"]) for r in records)
        assert got == [
            ("gateway", answer["span_id"], "user:vip"),
            ("payments", by["payments", "server"]["id"], "user:vip"),
        ], records


def red_counts(chain: Chain, service: str) -> dict[str, float]:
    """Requests per interface of ``service``, from its RED histograms' latest _count."""
    now = int(time.time() * 1000)
    matchers = [
        Matcher("__name__", "=", "interface_request_duration_seconds_count"),
        Matcher("service", "=", service),
    ]
    counts: Counter[str] = Counter()
    for series in chain.store.series(matchers, now - 3_600_000, now + 60_000):
        values = chain.store.samples([series.fingerprint], 0, now + 60_000).column("value")
        counts[series.labels["interface"]] += values.to_pylist()[-1]
    return dict(counts)


def test_zz_every_request_is_counted_exactly_in_red_metrics(chain: Chain) -> None:
    # Runs last: every test before it sent requests, dyed or not, sampled or not.
    request(chain, "/orders/last", user="red")
    expected = dict(SENT)
    # payments sees every request once, on /orders/{id} (orders calls it so).
    want = {"gateway": expected, "payments": {"/orders/{id}": float(sum(expected.values()))}}
    deadline = time.monotonic() + 15
    while True:
        got = {service: red_counts(chain, service) for service in want}
        if got == want or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert got == want, chain.debug_output()
    assert sum(expected.values()) > 50  # the earlier tests' undyed and dyed requests
