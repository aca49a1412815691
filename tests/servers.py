"""Real servers for tests, started on free loopback ports and stopped by PID."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

CLICKHOUSE_SERVER = shutil.which("clickhouse-server") or "/usr/sbin/clickhouse-server"

_CLICKHOUSE_CONFIG = """<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{dir}/server.log</log>
    <errorlog>{dir}/err.log</errorlog><console>false</console></logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>{port}</tcp_port>
  <path>{dir}/data/</path>
  <tmp_path>{dir}/tmp/</tmp_path>
  <user_files_path>{dir}/user_files/</user_files_path>
  <format_schema_path>{dir}/format_schemas/</format_schema_path>
  <mark_cache_size>268435456</mark_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
  <users_config>{dir}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
</yandex>
"""

_CLICKHOUSE_USERS = """<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip></networks>
    <profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries>
    <errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows>
    <execution_time>0</execution_time></interval></default></quotas>
</yandex>
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before port {port} opened")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"port {port} did not open within {timeout}s")


def stop_pid(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    if proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


@contextlib.contextmanager
def clickhouse_server(workdir: Path) -> Iterator[int]:
    """Run Debian's clickhouse-server on a free loopback port; yield the TCP port."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    (workdir / "users.xml").write_text(_CLICKHOUSE_USERS)
    config = workdir / "config.xml"
    config.write_text(_CLICKHOUSE_CONFIG.format(dir=workdir, port=port))
    log = open(workdir / "stdout.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [CLICKHOUSE_SERVER, f"--config-file={config}"],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=workdir,
    )
    try:
        wait_for_port(port, 60, proc)
        yield port
    finally:
        stop_pid(proc)
        log.close()


ALERTMANAGER = "/usr/bin/prometheus-alertmanager"


@contextlib.contextmanager
def alertmanager_server(workdir: Path, config_yaml: str) -> Iterator[str]:
    """Debian's Alertmanager with ``config_yaml`` on a free loopback port, not
    clustered; yields ``127.0.0.1:<port>`` and stops it by PID."""
    port = free_port()
    config = workdir / "alertmanager.yml"
    config.write_text(config_yaml)
    with open(workdir / "alertmanager.log", "wb") as log:
        proc = subprocess.Popen(
            [
                ALERTMANAGER,
                f"--config.file={config}",
                f"--storage.path={workdir / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_port(port, 30, proc)
            yield f"127.0.0.1:{port}"
        finally:
            stop_pid(proc)


def postgres_bindir() -> Path | None:
    """Debian's PostgreSQL binaries (/usr/lib/postgresql/<ver>/bin), the newest; None if absent."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    found = [p for p in found if (p / "initdb").exists() and (p / "postgres").exists()]
    return found[-1] if found else None


def _wait_accepting(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """Past "the database system is starting up": a session opens."""
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres").close()
            return
        except psycopg.OperationalError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextlib.contextmanager
def postgres_server(workdir: Path) -> Iterator[int]:
    """A throwaway PostgreSQL cluster on a free loopback port; yield the port.

    Trust authentication, superuser ``postgres``, database ``postgres``. As
    root, initdb and postgres run as the ``postgres`` OS user (in a directory
    of /tmp it owns: pytest's own are private to root). Skips the test when
    PostgreSQL is not installed.
    """
    import pytest

    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (Debian package postgresql: make debs)")
    user: str | None = None
    if os.geteuid() == 0:
        user = "postgres"
        workdir = Path(tempfile.mkdtemp(prefix="tinct-test-pg-"))
        shutil.chown(workdir, user, user)
    workdir.mkdir(parents=True, exist_ok=True)
    data, port = workdir / "data", free_port()
    as_user = {"user": user, "group": user} if user else {}
    subprocess.run(
        [bindir / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
        cwd=workdir,
        **as_user,  # type: ignore[call-overload]
    )
    log = open(workdir / "postgres.log", "wb")  # noqa: SIM115
    command = [bindir / "postgres", "-D", data, "-p", str(port), "-k", str(workdir)]
    command += ["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]
    proc = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=workdir,
        **as_user,  # type: ignore[call-overload]
    )
    try:
        wait_for_port(port, 60, proc)
        _wait_accepting(port, proc)
        yield port
    finally:
        # SIGINT: PostgreSQL's fast shutdown (SIGTERM waits for every session).
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGINT)
        stop_pid(proc)
        log.close()
        if user is not None:
            shutil.rmtree(workdir, ignore_errors=True)


_SERVING = re.compile(r"serving (UI and APIs|OTLP/gRPC|OTLP/HTTP|Zipkin) on (\S+)")


class TinctProcess:
    """`python -m tinct up` on free ports (all 0); URLs read from its log.

    ``urls`` maps "UI and APIs", "OTLP/gRPC", "OTLP/HTTP", "Zipkin" to what
    the process logged; ``main`` is the main port's base URL without the
    trailing slash. ``lines`` collects stderr.
    """

    def __init__(self, data: Path, *extra: str, prefix: Sequence[str] = ()) -> None:
        ports = ["--port", "0", "--otlp-grpc-port", "0", "--otlp-http-port", "0", "--zipkin-port"]
        self.proc = subprocess.Popen(
            [
                *prefix,
                sys.executable,
                "-m",
                "tinct",
                "up",
                "--data",
                str(data),
                *ports,
                "0",
                *extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "TINCT_CONFIG": ""},
        )
        self.lines: list[str] = []
        self.urls: dict[str, str] = {}
        self._ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            if match := _SERVING.search(line):
                self.urls[match.group(1)] = match.group(2)
            if "ready:" in line:
                self._ready.set()
        self._ready.set()  # exited: don't make wait_ready sit out its timeout

    def wait_ready(self, timeout: float = 60) -> None:
        """Wait for the store to be open (the process logs "ready:")."""
        if not self._ready.wait(timeout) or self.proc.poll() is not None:
            raise AssertionError("tinct did not become ready:\n" + "".join(self.lines))

    @property
    def main(self) -> str:
        return self.urls["UI and APIs"].rstrip("/")

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then the exit code (SIGKILL after ``timeout``)."""
        stop_pid(self.proc, timeout)
        return int(self.proc.returncode)
