"""Real SQL servers for the collector tests, on free loopback ports, stopped by PID.

MariaDB (Debian's mariadb-server) gets a throwaway data directory and a
password user (:data:`MARIADB_USER`), so the collector authenticates for real.
:func:`silent_port` is a listener that never answers, for timeout tests.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.servers import free_port, stop_pid, wait_for_port

MARIADBD = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
MARIADB_INSTALL_DB = shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db"
MARIADB_USER = "tinct"
MARIADB_PASSWORD = "tinct-secret"


def _wait_mariadb(port: int, proc: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    """Until root (no password on a fresh install) gets a session over TCP."""
    import pymysql

    deadline = time.monotonic() + timeout
    while True:
        try:
            pymysql.connect(host="127.0.0.1", port=port, user="root", connect_timeout=2).close()
            return
        except pymysql.MySQLError as exc:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mariadbd did not start:\n{log.read_text()}") from exc
            time.sleep(0.1)


@contextlib.contextmanager
def mariadb_server(workdir: Path) -> Iterator[int]:
    """A throwaway MariaDB server on a free loopback port; yield the port.

    User :data:`MARIADB_USER` / :data:`MARIADB_PASSWORD` has every privilege
    from 127.0.0.1. Skips the test when mariadbd is not installed.
    """
    import pymysql
    import pytest

    if not Path(MARIADBD).exists() or not Path(MARIADB_INSTALL_DB).exists():
        pytest.skip("MariaDB is not installed (Debian package mariadb-server)")
    workdir.mkdir(parents=True, exist_ok=True)
    data, port = workdir / "data", free_port()
    # A Unix socket path is limited to ~107 bytes; pytest's directories can be longer.
    rundir = Path(tempfile.mkdtemp(prefix="tinct-mdb-"))
    subprocess.run(
        [
            MARIADB_INSTALL_DB,
            "--no-defaults",
            f"--datadir={data}",
            "--user=root",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--skip-name-resolve",
        ],
        check=True,
        capture_output=True,
        cwd=workdir,
    )
    log = workdir / "error.log"
    command = [
        MARIADBD,
        "--no-defaults",
        f"--datadir={data}",
        f"--socket={rundir / 'mysqld.sock'}",
        f"--pid-file={rundir / 'mysqld.pid'}",
        f"--port={port}",
        "--bind-address=127.0.0.1",
        "--skip-name-resolve",
        "--user=root",
        f"--log-error={log}",
        "--innodb-buffer-pool-size=16M",
    ]
    out = open(workdir / "stdout.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=workdir)
    try:
        wait_for_port(port, 60, proc)
        _wait_mariadb(port, proc, log)
        root = pymysql.connect(host="127.0.0.1", port=port, user="root", autocommit=True)
        with root, root.cursor() as cursor:
            cursor.execute(
                f"CREATE USER '{MARIADB_USER}'@'127.0.0.1' IDENTIFIED BY '{MARIADB_PASSWORD}'"
            )
            cursor.execute(f"GRANT ALL PRIVILEGES ON *.* TO '{MARIADB_USER}'@'127.0.0.1'")
        yield port
    finally:
        stop_pid(proc)
        out.close()
        shutil.rmtree(rundir, ignore_errors=True)


@contextlib.contextmanager
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never says a word."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        yield int(listener.getsockname()[1])
    finally:
        listener.close()
