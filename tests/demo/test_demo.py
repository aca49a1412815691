"""``tinct demo --with-server``: the six-service shop traced end to end.

One run of ``python -m tinct demo --with-server`` on free ports, 20 users, the
fault schedule compressed to a 5-second cycle, every request sampled. While
it runs, the Jaeger API of the ``tinct up`` it started shows all six
services, traces through at least four of them, the dyed users' requests
dyed at every hop, and server spans in error from the payments error burst;
on SIGTERM the demo stops everything it started and exits 0.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.demo.running import Demo, run_demo
from tinct.demo.faults import CYCLE_SECONDS, DEFAULT_FAULTS, FaultSchedule
from tinct.demo.processes import postgres_bindir
from tinct.demo.topology import SERVICE_NAMES, SERVICES

pytestmark = pytest.mark.server

REPO = Path(__file__).resolve().parents[2]


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid``, from /proc (Linux)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    options = ["--users", "20", "--speed", "120", "--sampling", "1.0", "--seed", "1"]
    options += ["--think", "0.5", "--duration", "90"]
    with run_demo(tmp_path_factory.mktemp("demo"), options) as running:
        yield running


def _jaeger(demo: Demo, path: str, **params: Any) -> Any:
    response = httpx.get(demo.main + path, params=params, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def _traces(demo: Demo, service: str, **params: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = _jaeger(
        demo, "/api/traces", service=service, lookback="1h", limit=200, **params
    )
    return found


def _services_of(trace: dict[str, Any]) -> set[str]:
    return {p["serviceName"] for p in trace["processes"].values()}


def _tags(span: dict[str, Any]) -> dict[str, Any]:
    return {t["key"]: t["value"] for t in span["tags"]}


def _eventually(demo: Demo, check: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.5)


def test_demo_runs_six_traced_services_with_dyes_and_faults(demo: Demo) -> None:
    assert demo.main and len(demo.dyed) == 3, demo.output()
    topology = demo.workdir / "topology.yaml"
    assert topology.exists() and (demo.workdir / "targets.yaml").exists()

    def components_up() -> dict[str, str]:
        body = httpx.get(demo.main + "/api/v1/targets", timeout=10).json()
        health = {t["scrapePool"]: t["health"] for t in body["data"]["activeTargets"]}
        return health if health.get("demo-redis") == "up" and health.get("host") == "up" else {}

    # The demo's own tinct up collects the host and the components it started.
    assert _eventually(demo, components_up, timeout=45), demo.output()

    services = _eventually(demo, lambda: set(SERVICE_NAMES) <= set(_jaeger(demo, "/api/services")))
    assert services, f"{_jaeger(demo, '/api/services')}\n{demo.output()}"

    def wide_trace() -> bool:
        return any(len(_services_of(t)) >= 4 for t in _traces(demo, "orders"))

    assert _eventually(demo, wide_trace), demo.output()

    user = demo.dyed[0]

    def dyed_traces() -> list[dict[str, Any]]:
        tags = json.dumps({"enduser.id": user})
        return [t for t in _traces(demo, "gateway", tags=tags) if len(_services_of(t)) >= 2]

    traces = _eventually(demo, dyed_traces)
    assert traces, f"no traces of dyed user {user}\n{demo.output()}"
    for trace in traces[:5]:
        for span in trace["spans"]:
            assert _tags(span).get("tinct.dye") == f"user:{user}", span

    def failed_charges() -> list[dict[str, Any]]:
        found = []
        # The status code's attribute name depends on OTEL_SEMCONV_STABILITY_OPT_IN.
        for key in ("http.status_code", "http.response.status_code"):
            tags = json.dumps({key: "500"})
            for trace in _traces(demo, "payments", operation="POST /charge", tags=tags):
                found += [s for s in trace["spans"] if s["operationName"] == "POST /charge"]
        return [s for s in found if _tags(s).get("error") is True]

    charges = _eventually(demo, failed_charges)
    assert charges, f"no payments server span in error\n{demo.output()}"
    # Each within the error burst the demo scheduled (the fault is decided a
    # moment after the span starts).
    schedule = FaultSchedule.read(demo.workdir / "faults.json")
    for span in charges:
        start = span["startTime"] / 1e6
        kinds = {f.kind for t in (start, start + 0.05) for f in schedule.active("payments", t)}
        assert kinds == {"errors"}, (start, schedule)


def test_the_schedule_compresses_with_speed() -> None:
    schedule = FaultSchedule(DEFAULT_FAULTS, started_at=1000.0, speed=60)
    assert CYCLE_SECONDS / 60 == 10
    burst = next(f for f in DEFAULT_FAULTS if f.kind == "errors")
    assert schedule.active(now=1000 + burst.start / 60 + 0.01) == [burst]
    assert schedule.active(now=1000 + 10 + burst.start / 60 + 0.01) == [burst]  # next cycle
    assert schedule.active("inventory", now=1000 + burst.start / 60 + 0.01) == []
    assert FaultSchedule((), 1000.0, 60).active(now=1003) == []


def test_the_services_keep_their_tables_in_postgresql_when_installed(demo: Demo) -> None:
    if postgres_bindir() is None:
        pytest.skip("PostgreSQL is not installed (Debian package postgresql: make debs)")
    assert any("PostgreSQL" in line and " on 127.0.0.1:" in line for line in demo.lines), (
        demo.output()
    )
    # The declared topology names the database the services really use.
    declared = (demo.workdir / "topology.yaml").read_text()
    assert "type: postgresql" in declared and "type: sqlite" not in declared, declared

    def postgres_spans() -> list[dict[str, Any]]:
        found = []
        for service in ("orders", "payments"):
            tags = json.dumps({"db.system.name": "postgresql"})
            for trace in _traces(demo, service, tags=tags):
                found += [
                    s for s in trace["spans"] if _tags(s).get("db.system.name") == "postgresql"
                ]
        return found

    spans = _eventually(demo, postgres_spans)
    assert spans, f"no postgresql client spans\n{demo.output()}"
    names = {s["operationName"] for s in spans}
    assert {"INSERT orders", "INSERT payments"} <= names, names
    for span in spans:  # start-up DDL runs in root spans of its own: not checked
        if span["operationName"].split()[0] not in ("SELECT", "INSERT", "UPDATE"):
            continue
        tags = _tags(span)
        assert tags["span.kind"] == "client", tags
        assert tags["peer.service"] == "postgresql" and tags["db.namespace"] == "shop", tags
        assert "?" not in tags["db.query.text"] and "%s" in tags["db.query.text"], tags
        assert span["references"], "a database span has a parent"


def _declared_edges(demo: Demo) -> set[tuple[str, str]]:
    """The service-level edges the demo's manifest declares, from tinct.demo.topology."""
    database = "postgresql" if postgres_bindir() is not None else None
    edges = {("user", s.name) for s in SERVICES if s.entry}
    for s in SERVICES:
        edges |= {(s.name, callee) for callee in s.calls}
        if s.sqlite:
            edges.add((s.name, database or f"{s.name}-db"))
        if s.redis:
            edges.add((s.name, "redis"))
    return edges


def _topology(demo: Demo, **params: Any) -> dict[str, Any]:
    response = httpx.get(demo.main + "/api/tinct/topology", params=params, timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_the_topology_matches_the_declared_call_structure(demo: Demo) -> None:
    declared = _declared_edges(demo)

    def seen() -> dict[tuple[str, str], dict[str, Any]]:
        edges = {(e["source"], e["target"]): e for e in _topology(demo)["edges"]}
        traffic = {pair for pair, e in edges.items() if e["calls"] > 0}
        return edges if declared <= traffic else {}

    edges = _eventually(demo, seen, timeout=45)
    assert edges, f"{_topology(demo)}\n{demo.output()}"
    # Every call the demo makes is one it declares, and the other way round.
    assert {pair for pair, e in edges.items() if e["calls"] > 0} == declared
    assert {e["status"] for e in edges.values()} == {"declared"}
    nodes = {n["id"]: n for n in _topology(demo)["nodes"]}
    assert nodes["user"]["kind"] == "user"
    assert nodes["redis"]["kind"] == "cache"
    assert {nodes[name]["kind"] for name in SERVICE_NAMES} == {"service"}

    # Remove orders -> payments from the manifest: the calls go on, undeclared.
    manifest = demo.workdir / "topology.yaml"
    document = yaml.safe_load(manifest.read_text())
    for service in document["topology"]["applications"][0]["services"]:
        if service["name"] == "orders":
            service["depends_on"].remove("payments")
    edited = manifest.with_suffix(".edit")
    edited.write_text(yaml.safe_dump(document, sort_keys=False))
    edited.replace(manifest)

    def undeclared() -> str:
        edges = {(e["source"], e["target"]): e for e in _topology(demo)["edges"]}
        return edges.get(("orders", "payments"), {}).get("status") == "undeclared"

    assert _eventually(demo, undeclared, timeout=15), _topology(demo)
    interfaces = _topology(demo, level="interface")
    assert any(
        e["source"] == "user" and e["target"].startswith("gateway ") for e in interfaces["edges"]
    )


def test_sigterm_stops_everything_and_exits_0(demo: Demo) -> None:
    children = _descendants(demo.proc.pid)
    assert len(children) >= 8, f"tinct up, redis-server, (postgres,) six services: {children}"
    demo.proc.send_signal(signal.SIGTERM)
    assert demo.proc.wait(60) == 0, demo.output()
    left = [pid for pid in children if _alive(pid)]
    assert left == [], f"children still running: {left}\n{demo.output()}"
