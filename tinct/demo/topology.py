"""The demo application's declared topology, and the files that describe it.

Six services call each other over loopback HTTP; four keep tables in SQLite,
two cache in Redis. :data:`SERVICES` is the static call graph the topology
views will show beside the dynamic one drawn from traces. The demo writes it
as ``topology.yaml`` in its working directory (one application,
``tinct-demo``: its services with their instances and dependencies, and its
components, in the layout of :mod:`tinct.topology.static`), and its
components as tinct's ``collectors`` section in ``targets.yaml``. With
``--with-server`` the demo's own ``tinct up`` collects the host and those
components (``tinct.yaml`` here, through file_sd files filled as the
components start), reads ``topology.yaml`` as its static topology (re-read
when the demo rewrites it) and evaluates tinct's layer rules, with windows
and ``for`` durations scaled to the fault schedule (:func:`demo_alerting`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "DemoTopology",
    "Service",
    "SERVICES",
    "SERVICE_NAMES",
    "write_topology",
    "demo_alerting",
    "write_collection_config",
    "write_component_targets",
]


@dataclass(frozen=True)
class Service:
    """One demo service: what it calls, and the components it uses."""

    name: str
    calls: tuple[str, ...] = ()
    sqlite: bool = False
    redis: bool = False
    entry: bool = False


SERVICES = (
    Service("gateway", calls=("users", "orders", "inventory"), entry=True),
    Service("users", sqlite=True, redis=True),
    Service("orders", calls=("inventory", "payments", "notifications"), sqlite=True),
    Service("inventory", sqlite=True, redis=True),
    Service("payments", sqlite=True),
    Service("notifications"),
)
SERVICE_NAMES = tuple(s.name for s in SERVICES)


@dataclass
class DemoTopology:
    """Where everything of one demo run listens.

    Attributes:
        ports: service name -> its loopback port.
        workdir: the demo's working directory (SQLite files, logs, these files).
        redis_port: the demo's redis-server, None when running without Redis.
        tinct_url: tinct's main port.
        otlp_url: tinct's OTLP/HTTP base URL.
        postgres_address: ``host:port`` of the demo's PostgreSQL, None when
            the SQL services use SQLite files.
    """

    ports: dict[str, int]
    workdir: Path
    redis_port: int | None
    tinct_url: str
    otlp_url: str
    postgres_address: str | None = None

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def sqlite_path(self, service: str) -> Path:
        return self.workdir / "db" / f"{service}.sqlite3"


def _topology(topo: DemoTopology) -> dict[str, Any]:
    """The demo as tinct's ``topology`` section (tinct.topology.static)."""
    components: list[dict[str, Any]] = []
    if topo.redis_port is not None:
        components.append(
            {"name": "redis", "type": "redis", "address": f"127.0.0.1:{topo.redis_port}"}
        )
    if topo.postgres_address is not None:
        components.append(
            {"name": "postgresql", "type": "postgresql", "address": topo.postgres_address}
        )
    else:
        # SQLite files have no address: the spans name them by service.
        components += [{"name": f"{s.name}-db", "type": "sqlite"} for s in SERVICES if s.sqlite]
    services = []
    for s in SERVICES:
        depends = list(s.calls)
        if s.sqlite:
            depends.append("postgresql" if topo.postgres_address else f"{s.name}-db")
        if s.redis and topo.redis_port is not None:
            depends.append("redis")
        services.append(
            {
                "name": s.name,
                "instances": [f"127.0.0.1:{topo.ports[s.name]}"],
                "entry": s.entry,
                "depends_on": depends,
            }
        )
    application = {"name": _APPLICATION, "services": services, "components": components}
    return {"topology": {"applications": [application]}}


def _components(topo: DemoTopology) -> list[dict[str, Any]]:
    """The demo's components as entries of tinct's ``collectors.components``."""
    found: list[dict[str, Any]] = []
    if topo.redis_port is not None:
        found.append(
            {
                "type": "redis",
                "job_name": "demo-redis",
                "static_configs": [{"targets": [f"127.0.0.1:{topo.redis_port}"]}],
            }
        )
    if topo.postgres_address is not None:
        found.append(
            {
                "type": "postgresql",
                "job_name": "demo-postgresql",
                "options": {"user": "postgres", "dbname": "postgres"},
                "static_configs": [{"targets": [topo.postgres_address]}],
            }
        )
    # SQLite files are not servers: nothing to collect (the topology lists them).
    return found


def _targets(topo: DemoTopology) -> dict[str, Any]:
    # tinct's own collectors section: `tinct up --config targets.yaml` collects them.
    return {"collectors": {"host": {"scrape_interval": "15s"}, "components": _components(topo)}}


_APPLICATION = "tinct-demo"
_TOPOLOGY_FILE = "topology.yaml"
_HEADER = "# Written by `tinct demo` for this run; rewritten at the next.\n"


def _write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` at once: tinct, re-reading it, never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


# The demo's faults, each 90 s long at --speed 1 (tinct.demo.faults), scaled.
_FAULT_SECONDS = 90.0
_EXPORT_SECONDS = 5.0  # the services' RED metric export interval (tinct.demo.service)


def demo_alerting(speed: float = 1.0) -> dict[str, Any]:
    """``global`` and ``alerting`` for the demo's ``tinct up``: the layer rules,
    with windows and ``for`` durations scaled to the fault schedule at ``speed``.

    A fault lasts ``90 / speed`` seconds (tinct.demo.faults). A new error
    series needs two of the services' 5-second exports before ``rate()`` sees
    it, so an alert's condition holds some 5 to 15 s after its fault begins.
    Hence:

    * the ``rate()`` window is a third of a fault, but at least 20 s (four
      exports): 30 s at speed 1. An alert resolves about one window after its
      fault ends, before the next fault (a minute later at speed 1) begins;
    * ``for`` is half a fault less 15 s, never negative: 30 s at speed 1, so
      an alert is pending first and fires halfway through its 90-s fault;
      from speed 3 on it is 0 and alerts fire as soon as the data shows the
      fault;
    * rules run every 5 s, every 2 s once a fault is shorter than 45 s;
    * the interface p99 threshold, 0.35 s, lies between the demo's normal
      p99s (up to about 0.25 s for ``POST /orders`` under load) and those of
      the inventory spike (+400 ms: about 0.5 s).

    Other thresholds and durations (hosts, components) keep tinct's defaults.
    """
    fault = _FAULT_SECONDS / speed
    window = f"{max(4 * round(_EXPORT_SECONDS), round(fault / 3))}s"
    hold = f"{max(0, round(fault / 2 - 15))}s"
    return {
        "global": {"evaluation_interval": "5s" if fault >= 45 else "2s"},
        "alerting": {
            "layer_rules": {
                "window": window,
                "thresholds": {
                    "service_errors": 0.05,
                    "interface_errors": 0.05,
                    "interface_latency_p99": 0.35,
                    "user_errors": 0.05,
                },
                "for": {
                    "service_errors": hold,
                    "interface_errors": hold,
                    "interface_latency_p99": hold,
                    "user_errors": hold,
                },
            }
        },
    }


def write_collection_config(
    workdir: Path, speed: float = 1.0, alertmanagers: Sequence[str] = ()
) -> Path:
    """``tinct.yaml`` for the demo's own ``tinct up``: the host, the
    components from file_sd files that :func:`write_component_targets` fills
    once they run (tinct re-reads them every 5 s), the layer rules with
    timings for the fault schedule at ``speed`` (:func:`demo_alerting`), the
    ``alertmanagers`` (``host:port`` each) the alerts go to, and the static
    topology from ``topology.yaml``.

    ``tinct up`` starts before the services' ports are known, so
    ``topology.yaml`` is reset here to an empty topology (a file left by an
    earlier run names old ports); :func:`write_topology` fills it once the
    services run, and tinct picks it up by its mtime."""
    targets = workdir / "targets"
    targets.mkdir(parents=True, exist_ok=True)
    components = []
    for kind, options in (("redis", {}), ("postgresql", {"user": "postgres"})):
        listing = targets / f"{kind}.json"
        if not listing.exists():
            listing.write_text("[]\n")
        components.append(
            {
                "type": kind,
                "job_name": f"demo-{kind}",
                "scrape_interval": "5s",
                "options": options,
                "file_sd_configs": [{"files": [str(listing)], "refresh_interval": "5s"}],
            }
        )
    config = workdir / "tinct.yaml"
    body: dict[str, Any] = {
        "collectors": {"host": {"scrape_interval": "15s"}, "components": components}
    }
    body |= demo_alerting(speed)
    if alertmanagers:
        static = {"targets": list(alertmanagers)}
        body["alerting"]["alertmanagers"] = [{"static_configs": [static]}]
    # A small app: edges written every 5 s so the topology page is live.
    body["topology"] = {"files": [_TOPOLOGY_FILE], "flush_interval": "5s"}
    _write_atomic(
        workdir / _TOPOLOGY_FILE,
        _HEADER + yaml.safe_dump({"topology": {"applications": []}}, sort_keys=False),
    )
    config.write_text(
        "# Written by `tinct demo` for its own `tinct up`.\n"
        + yaml.safe_dump(body, sort_keys=False)
    )
    return config


def write_component_targets(topo: DemoTopology) -> None:
    """Fill the file_sd files of :func:`write_collection_config`."""
    targets = topo.workdir / "targets"
    targets.mkdir(parents=True, exist_ok=True)
    for entry in _components(topo):
        listing = targets / f"{entry['type']}.json"
        tmp = listing.with_suffix(".tmp")
        tmp.write_text(json.dumps(entry["static_configs"]) + "\n")
        tmp.replace(listing)  # atomic: tinct never reads half a file


def write_topology(topo: DemoTopology) -> tuple[Path, Path]:
    """Write ``topology.yaml`` and ``targets.yaml`` into the working directory,
    each atomically (a running tinct re-reads ``topology.yaml``)."""
    topology = topo.workdir / _TOPOLOGY_FILE
    targets = topo.workdir / "targets.yaml"
    _write_atomic(topology, _HEADER + yaml.safe_dump(_topology(topo), sort_keys=False))
    _write_atomic(targets, _HEADER + yaml.safe_dump(_targets(topo), sort_keys=False))
    return topology, targets
