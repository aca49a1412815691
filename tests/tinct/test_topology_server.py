"""The dynamic topology through a real `tinct up`: a restart between a trace's halves.

The parent halves of a few generated traces (``tests.tinct.topology_traces``)
are posted over OTLP/HTTP, tinct is stopped with SIGTERM and started again
on the same chdb data folder, and the child halves are posted to the new
process: ``GET /api/tinct/topology`` must show exactly the calls the
generator made, the waiting spans having been saved at the stop and paired
after the start.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import TinctProcess, stop_pid
from tests.tinct.topology_traces import (
    Trace,
    api_edges,
    api_nodes,
    by_service,
    diff,
    expected_edges,
    expected_nodes,
    otlp_request,
    random_graph,
)

pytestmark = pytest.mark.server

PATH = "/api/tinct/topology"
# Longer than a stop and a start take (about 1.5 s here, more on a loaded
# machine) plus the span writer's delay: the restart's downtime counts as
# quiet time for the waiting traces (see test_topology_random's xfail).
WAIT = "6s"
FLAGS = ("--topology-wait", WAIT, "--topology-flush-interval", "300ms")
DEADLINE_S = 15.0


@pytest.fixture
def started() -> Iterator[list[TinctProcess]]:
    procs: list[TinctProcess] = []
    yield procs
    for t in procs:
        stop_pid(t.proc)


def traces(start_ns: int) -> list[Trace]:
    """Five requests crossing at least three services, the first a dyed one."""
    rng = random.Random(11)
    graph = random_graph(rng)
    found: list[Trace] = []
    while len(found) < 5:
        trace = graph.request(rng, start_ns + len(found) * 10**9, dye="user:7" if not found else "")
        if len(by_service(trace.spans)) >= 3:
            found.append(trace)
    return found


def post(t: TinctProcess, parts: list[Any]) -> None:
    r = httpx.post(
        t.urls["OTLP/HTTP"],
        content=otlp_request(parts).SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert r.status_code == 200, r.text


def logged(t: TinctProcess, text: str) -> bool:
    """Whether ``t`` logged ``text``, allowing its log reader a moment to catch up."""
    deadline = time.monotonic() + 5
    while not any(text in line for line in t.lines) and time.monotonic() < deadline:
        time.sleep(0.05)
    return any(text in line for line in t.lines)


def topology(t: TinctProcess, **params: Any) -> dict[str, Any]:
    r = httpx.get(t.main + PATH, params=params)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_a_trace_split_by_a_restart_pairs_up(tmp_path: Path, started: list[TinctProcess]) -> None:
    now_ms = int(time.time() * 1000)
    window = {"start": now_ms - 600_000, "end": now_ms + 600_000}
    sent = traces((now_ms - 60_000) * 10**6)
    calls = [c for t in sent for c in t.calls]
    # The root service's spans (callers) before the restart, every other service's after.
    parents = [by_service(t.spans)[0] for t in sent]
    children = [part for t in sent for part in by_service(t.spans)[1:]]

    data = tmp_path / "data"
    first = TinctProcess(data, *FLAGS)
    started.append(first)
    first.wait_ready()
    post(first, parents)
    assert topology(first, **window)["edges"] == []  # still waiting for the callees
    assert first.stop() == 0, "".join(first.lines)
    waiting = sum(len(p) for p in parents)
    assert logged(first, f"saving {waiting} spans the topology waits on")

    second = TinctProcess(data, *FLAGS)
    started.append(second)
    second.wait_ready()
    post(second, children)
    assert logged(second, f"topology: resumed {waiting} waiting spans")

    want = expected_edges(calls, "service")
    deadline = time.monotonic() + DEADLINE_S
    while (got := api_edges(topology(second, **window))) != want:
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert got == want, diff(got, want)

    body = topology(second, level="interface", **window)
    assert api_edges(body) == expected_edges(calls, "interface")
    assert api_nodes(body) == expected_nodes(calls, "interface")
    # One trace's path, and the dyed request's, from the restarted process.
    trace = sent[-1]
    body = topology(second, trace=trace.trace_id.hex(), level="interface")
    assert api_edges(body) == expected_edges(trace.calls, "interface")
    body = topology(second, dye="user:7", **window)
    assert api_edges(body) == expected_edges(sent[0].calls, "service")


def test_bad_parameters_are_400_naming_them(tmp_path: Path, started: list[TinctProcess]) -> None:
    t = TinctProcess(tmp_path / "data", *FLAGS)
    started.append(t)
    t.wait_ready()
    for name, value in (("level", "bogus"), ("start", "abc"), ("trace", "xyz")):
        r = httpx.get(t.main + PATH, params={name: value})
        assert r.status_code == 400, (name, r.text)
        assert r.json()["error"].startswith(f"{name}: "), r.text
        assert value in r.json()["error"]
