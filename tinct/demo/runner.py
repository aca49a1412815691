"""One run of the demo: start everything, drive the load, stop everything.

Order of start: ``tinct up`` (with ``--with-server``), redis-server (when
installed), PostgreSQL (when installed, with psycopg; else SQLite), the six
services, the dye rules for a few users, the fault schedule, the load. Order
of stop (SIGINT, SIGTERM or ``--duration``): the load, the dye rules, the
services (each flushes its spans and logs), PostgreSQL, Redis, ``tinct up``.
Every child is stopped by its PID.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

from tinct.demo.faults import CYCLE_SECONDS, DEFAULT_FAULTS, Fault, FaultSchedule
from tinct.demo.load import LoadGenerator, user_ids
from tinct.demo.processes import (
    Child,
    TinctUp,
    free_port,
    postgres_bindir,
    redis_server_binary,
    start_postgres,
    start_redis,
    wait_for_port,
)
from tinct.demo.topology import (
    SERVICES,
    DemoTopology,
    write_collection_config,
    write_component_targets,
    write_topology,
)

__all__ = ["DemoError", "DemoOptions", "run_demo"]

logger = logging.getLogger("tinct.demo")

_DYED_USERS = 3
_STATS_EVERY_SECONDS = 10.0
_DYE_RULES = "/api/tinct/dye-rules"
_DATABASE = "shop"


class DemoError(Exception):
    """The demo could not start or a part of it died; the message is one line."""


@dataclass
class DemoOptions:
    """The settings of one run (``tinct demo --help`` explains each)."""

    server: str | None
    otlp: str | None
    users: int
    speed: float
    seed: int
    faults: str
    sampling: float
    duration: float | None
    think: float
    workdir: Path
    with_server: bool
    data: Path
    up_args: list[str]
    admin_token: str | None
    alertmanagers: list[str] = field(default_factory=list)


def _http(url: str, method: str = "GET", body: Any = None, token: str | None = None) -> Any:
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data, headers, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


def _check_packages() -> None:
    import importlib.util

    needed = (
        "requests",
        "opentelemetry.instrumentation.wsgi",
        "opentelemetry.instrumentation.requests",
    )
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        raise DemoError(
            f"the demo needs {', '.join(missing)}: pip install 'tinct[demo]' (or run `make run`)"
        )


class _Demo:
    def __init__(self, options: DemoOptions) -> None:
        self.o = options
        self.stop_event = threading.Event()
        self.tinct: TinctUp | None = None
        self.redis: Child | None = None
        self.postgres: Child | None = None
        self.postgres_url: str | None = None
        self.postgres_dir: Path | None = None
        self.services: dict[str, Child] = {}
        self.load: LoadGenerator | None = None
        self.rule_ids: list[str] = []
        self.main_url = ""
        self.otlp_url = ""

    # --- start -----------------------------------------------------------------

    def start_tinct(self) -> None:
        o = self.o
        if o.with_server:
            logs = o.workdir / "logs"
            echo = lambda line: print(f"[tinct up] {line}", file=sys.stderr, flush=True)  # noqa: E731
            args = ["--data", str(o.data), *o.up_args]
            if not any(a == "--config" or a.startswith("--config=") for a in o.up_args):
                # Collect the host and the demo's components (once they run).
                config = write_collection_config(o.workdir, o.speed, o.alertmanagers)
                args += ["--config", str(config)]
            self.tinct = TinctUp(args, logs / "tinct-up.log", echo)
            try:
                self.tinct.wait_ready(120)
            except (RuntimeError, TimeoutError) as exc:
                raise DemoError(
                    f"tinct up did not start: {exc} (see {logs / 'tinct-up.log'})"
                ) from None
            self.main_url = self.tinct.urls["UI and APIs"].rstrip("/")
            self.otlp_url = self.tinct.urls["OTLP/HTTP"].removesuffix("/v1/traces").rstrip("/")
        else:
            self.main_url = (o.server or "http://127.0.0.1:3000").rstrip("/")
            self.otlp_url = (o.otlp or "http://127.0.0.1:4318").rstrip("/")
            try:
                _http(self.main_url + "/-/ready")
            except (urllib.error.URLError, OSError, ValueError) as exc:
                raise DemoError(
                    f"tinct is not ready at {self.main_url} ({exc}): start `tinct up` "
                    "first, or run `tinct demo --with-server`"
                ) from None

    def start_redis(self) -> int | None:
        binary = redis_server_binary()
        if binary is None:
            logger.warning("redis-server not found: running users/inventory without Redis")
            return None
        try:
            import redis  # noqa: F401
        except ImportError:
            logger.warning(
                "the redis Python package is missing (pip install 'tinct[demo]'): "
                "running users/inventory without Redis"
            )
            return None
        self.redis, port = start_redis(binary, self.o.workdir)
        logger.info("redis-server (pid %d) on 127.0.0.1:%d", self.redis.pid, port)
        return port

    def start_postgres(self) -> None:
        """PostgreSQL for the services' tables; SQLite (logged why) when it can't run."""
        sqlite = f"using SQLite databases in {self.o.workdir / 'db'}"
        bindir = postgres_bindir()
        if bindir is None:
            logger.warning("PostgreSQL is not installed (Debian: postgresql): %s", sqlite)
            return
        try:
            import psycopg  # noqa: F401
        except ImportError:
            logger.warning(
                "the psycopg Python package is missing (pip install 'tinct[demo]'): %s", sqlite
            )
            return
        from tinct.demo.stores import create_postgres_database

        try:
            self.postgres, port, pgdir = start_postgres(bindir, self.o.workdir)
            url = f"postgresql://postgres@127.0.0.1:{port}"
            create_postgres_database(f"{url}/postgres", _DATABASE)
        except Exception as exc:  # psycopg.Error, OSError, RuntimeError, TimeoutError
            logger.warning(
                "PostgreSQL did not start (%s; see %s): %s",
                str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
                self.o.workdir / "logs" / "postgres.log",
                sqlite,
            )
            if self.postgres is not None:
                self.postgres.stop()
                self.postgres = None
            return
        self.postgres_url = f"{url}/{_DATABASE}"
        self.postgres_dir = pgdir
        logger.info(
            "PostgreSQL %s (pid %d) on 127.0.0.1:%d, database %s, cluster in %s",
            bindir.parent.name,
            self.postgres.pid,
            port,
            _DATABASE,
            pgdir,
        )

    def start_services(self, topo: DemoTopology) -> None:
        peers = ",".join(f"{name}={port}" for name, port in topo.ports.items())
        for s in SERVICES:
            command = [sys.executable, "-m", "tinct.demo.service", s.name]
            command += ["--port", str(topo.ports[s.name]), "--peers", peers]
            command += ["--otlp", topo.otlp_url, "--sampling", str(self.o.sampling)]
            command += ["--workdir", str(topo.workdir), "--seed", str(self.o.seed)]
            command += ["--faults", str(topo.workdir / "faults.json")]
            if s.entry:
                command += ["--tinct-url", topo.tinct_url]
            if s.sqlite and self.postgres_url is not None:
                command += ["--postgres", self.postgres_url]
            if s.redis and topo.redis_port is not None:
                command += ["--redis", f"redis://127.0.0.1:{topo.redis_port}/0"]
            log = topo.workdir / "logs" / f"{s.name}.log"
            self.services[s.name] = Child(s.name, command, log=log)
        for name, child in self.services.items():
            try:
                wait_for_port(topo.ports[name], 60, child)
            except (RuntimeError, TimeoutError) as exc:
                raise DemoError(f"service {name} did not start: {exc} (see its log)") from None

    def dye_users(self) -> list[str]:
        rng = random.Random(self.o.seed)
        users = sorted(rng.sample(user_ids(self.o.users), min(_DYED_USERS, self.o.users)), key=int)
        ttl = int(min(7 * 86400, (self.o.duration or 86400) + 600))
        for user in users:
            body = {"match": {"kind": "user", "value": user}, "ttl_seconds": ttl}
            try:
                rule = _http(self.main_url + _DYE_RULES, "POST", body, self.o.admin_token)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                logger.warning("could not add a dye rule for user %s: %s", user, exc)
                continue
            self.rule_ids.append(rule["id"])
        return users

    # --- run -------------------------------------------------------------------

    def run(self) -> int:
        o = self.o
        _check_packages()
        (o.workdir / "logs").mkdir(parents=True, exist_ok=True)
        self.start_tinct()
        dyed = self.dye_users()  # before the gateway starts: its first poll finds them
        redis_port = self.start_redis()
        ports = {s.name: free_port() for s in SERVICES}
        topo = DemoTopology(ports, o.workdir, redis_port, self.main_url, self.otlp_url)
        faults = FaultSchedule(
            DEFAULT_FAULTS if o.faults == "default" else (), time.time(), o.speed
        )
        faults_file = o.workdir / "faults.json"
        faults.write(faults_file)  # no fault until the load starts: rewritten below
        self.start_postgres()
        if self.postgres_url is not None:
            topo.postgres_address = urlsplit(self.postgres_url).netloc.rpartition("@")[2]
        self.start_services(topo)
        topology, targets = write_topology(topo)
        write_component_targets(topo)

        faults = FaultSchedule(faults.faults, time.time(), o.speed)
        faults.write(faults_file)
        self.load = LoadGenerator(topo.url("gateway"), o.users, seed=o.seed, think_seconds=o.think)
        self.load.start()
        self._banner(topo, dyed, faults, topology, targets)
        return self._watch(faults)

    def _banner(
        self, topo: DemoTopology, dyed: list[str], faults: FaultSchedule, *files: Path
    ) -> None:
        logger.info("services: %s", ", ".join(f"{n} :{p}" for n, p in topo.ports.items()))
        logger.info("load: %d users against %s", self.o.users, topo.url("gateway"))
        logger.info("dyed users: %s", ", ".join(dyed) if dyed else "none")
        if faults.faults:
            cycle = CYCLE_SECONDS / faults.speed
            logger.info("faults: a %gs cycle at speed %g:", cycle, faults.speed)
            for f in faults.faults:
                start, end = f.start / faults.speed, f.end / faults.speed
                logger.info("  %gs-%gs %s", start, end, f.describe())
        else:
            logger.info("faults: none")
        logger.info("topology: %s, targets: %s, logs: %s", *files, self.o.workdir / "logs")
        logger.info("open %s/ (UI); Jaeger API %s/api/services", self.main_url, self.main_url)
        logger.info("running; Ctrl-C stops the demo")

    def _watch(self, faults: FaultSchedule) -> int:
        started = time.monotonic()
        deadline = None if self.o.duration is None else started + self.o.duration
        next_stats = started + _STATS_EVERY_SECONDS
        active: set[Fault] = set()
        while not self.stop_event.wait(0.1):
            now = time.monotonic()
            current = set(faults.active())
            for fault in sorted(current - active, key=lambda f: f.start):
                logger.info("fault begins: %s", fault.describe())
            for fault in sorted(active - current, key=lambda f: f.start):
                logger.info("fault ends: %s", fault.describe())
            active = current
            for child in [*self.services.values(), self.postgres, self.redis, self.tinct]:
                if child is not None and not child.running():
                    logger.error("%s exited with %s: stopping", child.name, child.proc.returncode)
                    return 1
            if now >= next_stats and self.load is not None:
                logger.info("load: %s", self.load.stats().describe())
                next_stats = now + _STATS_EVERY_SECONDS
            if deadline is not None and now >= deadline:
                logger.info("--duration reached")
                break
        return 0

    # --- stop ------------------------------------------------------------------

    def stop(self) -> int:
        """Stop everything that was started; 1 when a child did not exit cleanly."""
        code = 0
        if self.load is not None:
            self.load.stop()
            stats = self.load.stats()
            logger.info("load stopped: %s", stats.describe())
            answered = [
                {"method": m, "route": r, "status_class": c, "count": n}
                for (m, r, c), n in sorted(stats.answered.items())
            ]
            # What the gateway's RED metrics must count, for checks and curious users.
            (self.o.workdir / "load.json").write_text(
                json.dumps({"answered": answered, "outcomes": dict(stats.counts)}, indent=1)
            )
        for rule in self.rule_ids:
            try:
                _http(f"{self.main_url}{_DYE_RULES}/{rule}", "DELETE", token=self.o.admin_token)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                logger.warning("could not end dye rule %s: %s", rule, exc)
        for name, child in reversed(self.services.items()):
            if (exit_code := child.stop()) not in (0, -signal.SIGTERM):
                logger.warning("service %s exited with %d", name, exit_code)
                code = 1
        if self.postgres is not None:
            if (exit_code := self.postgres.stop()) != 0:
                logger.warning("postgres exited with %d", exit_code)
            if self.postgres_dir is not None and not self.postgres_dir.is_relative_to(
                self.o.workdir
            ):
                shutil.rmtree(self.postgres_dir, ignore_errors=True)  # a /tmp fallback
        if self.redis is not None:
            self.redis.stop()
        if self.tinct is not None:
            if (exit_code := self.tinct.stop()) != 0:
                logger.warning("tinct up exited with %d", exit_code)
                code = 1
        logger.info("stopped")
        return code


def run_demo(options: DemoOptions) -> int:
    """Run the demo until SIGINT/SIGTERM or ``options.duration``; the exit code.

    Blocks. Installs SIGINT and SIGTERM handlers (call from the main thread).

    Raises:
        DemoError: something did not start; what was started is stopped first.
    """
    demo = _Demo(options)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        logger.info("%s: stopping", signal.Signals(signum).name)
        demo.stop_event.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = demo.run()
    finally:
        stopped = demo.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code or stopped
