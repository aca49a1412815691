"""The demo application's declared topology, and the files that describe it.

Six services call each other over loopback HTTP; four keep tables in SQLite,
two cache in Redis. :data:`SERVICES` is the static call graph the topology
views will show beside the dynamic one drawn from traces. The demo writes it
as ``topology.yaml`` (services, components, declared dependencies) and its
components as Prometheus-style ``scrape_configs`` in ``targets.yaml`` in its
working directory, for the topology and component-metrics collectors to pick
up; nothing reads them yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["DemoTopology", "Service", "SERVICES", "SERVICE_NAMES", "write_topology"]


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
    components: list[dict[str, Any]] = []
    if topo.redis_port is not None:
        components.append(
            {
                "name": "redis",
                "kind": "redis",
                "address": f"127.0.0.1:{topo.redis_port}",
                "used_by": [s.name for s in SERVICES if s.redis],
            }
        )
    if topo.postgres_address is not None:
        components.append(
            {
                "name": "postgresql",
                "kind": "postgresql",
                "address": topo.postgres_address,
                "used_by": [s.name for s in SERVICES if s.sqlite],
            }
        )
    else:
        for s in SERVICES:
            if s.sqlite:
                components.append(
                    {
                        "name": f"{s.name}-db",
                        "kind": "sqlite",
                        "path": str(topo.sqlite_path(s.name)),
                        "used_by": [s.name],
                    }
                )
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
                "address": f"127.0.0.1:{topo.ports[s.name]}",
                "entry": s.entry,
                "depends_on": depends,
            }
        )
    return {
        "topology": {
            "application": "tinct-demo",
            "services": services,
            "components": components,
        }
    }


def _targets(topo: DemoTopology) -> dict[str, Any]:
    # Prometheus's scrape_config layout (a tinct config section carries it as
    # is); `layer` says which layer the series belong to (DESIGN.md, "Layers").
    configs: list[dict[str, Any]] = []
    if topo.redis_port is not None:
        configs.append(
            {
                "job_name": "demo-redis",
                "static_configs": [
                    {
                        "targets": [f"127.0.0.1:{topo.redis_port}"],
                        "labels": {"layer": "component", "component": "redis"},
                    }
                ],
            }
        )
    if topo.postgres_address is not None:
        configs.append(
            {
                "job_name": "demo-postgresql",
                "static_configs": [
                    {
                        "targets": [topo.postgres_address],
                        "labels": {"layer": "component", "component": "postgresql"},
                    }
                ],
            }
        )
    else:
        sqlite = [
            {
                "targets": [str(topo.sqlite_path(s.name))],
                "labels": {"layer": "component", "component": "sqlite", "service": s.name},
            }
            for s in SERVICES
            if s.sqlite
        ]
        configs.append({"job_name": "demo-sqlite", "static_configs": sqlite})
    return {"scrape_configs": configs}


def write_topology(topo: DemoTopology) -> tuple[Path, Path]:
    """Write ``topology.yaml`` and ``targets.yaml`` into the working directory."""
    topology = topo.workdir / "topology.yaml"
    targets = topo.workdir / "targets.yaml"
    header = "# Written by `tinct demo` for this run; rewritten at the next.\n"
    topology.write_text(header + yaml.safe_dump(_topology(topo), sort_keys=False))
    targets.write_text(header + yaml.safe_dump(_targets(topo), sort_keys=False))
    return topology, targets
