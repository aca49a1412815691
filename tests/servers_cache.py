"""Real Redis, memcached and nginx for the component collectors' tests.

Each runs the Debian binary in the foreground on a free loopback port, with
every file it writes inside the test's directory, and is stopped by PID.
A test whose server is not installed is skipped.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import free_port, stop_pid, wait_for_port

__all__ = ["memcached_server", "nginx_server", "redis_server", "silent_port"]

_NGINX_CONF = """\
daemon off;
# One process: no workers to switch to an unprivileged user when run as root.
master_process off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location = /stub_status {{ stub_status; }}
        location /missing/ {{ return 404; }}
        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""


def _binary(name: str, debian: str) -> str:
    found = shutil.which(name) or (debian if os.access(debian, os.X_OK) else None)
    if found is None:
        pytest.skip(f"{name} is not installed (Debian package: make debs)")
    return found


@contextlib.contextmanager
def _running(command: list[str], port: int, log: Path, cwd: Path | None = None) -> Iterator[int]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
        try:
            wait_for_port(port, 15, proc)
            yield port
        finally:
            stop_pid(proc)


@contextlib.contextmanager
def redis_server(workdir: Path, databases: int = 16) -> Iterator[int]:
    """A redis-server without persistence on a free loopback port; yield the port."""
    binary = _binary("redis-server", "/usr/bin/redis-server")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--dir", str(workdir), "--databases", str(databases)]
    with _running(command, port, workdir / "redis.log", workdir):
        yield port


@contextlib.contextmanager
def memcached_server(workdir: Path) -> Iterator[int]:
    """A 64 MiB memcached (TCP only) on a free loopback port; yield the port."""
    binary = _binary("memcached", "/usr/bin/memcached")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = [binary, "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-m", "64", "-c", "256"]
    if os.geteuid() == 0:
        command += ["-u", "root"]  # memcached refuses to run as root without it
    with _running(command, port, workdir / "memcached.log"):
        yield port


@contextlib.contextmanager
def nginx_server(workdir: Path) -> Iterator[int]:
    """nginx: ``/stub_status``, 404 under ``/missing/``, 200 "ok" elsewhere; yield the port."""
    binary = _binary("nginx", "/usr/sbin/nginx")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = workdir / "nginx.conf"
    conf.write_text(_NGINX_CONF.format(dir=workdir, port=port))
    command = [binary, "-c", str(conf), "-p", str(workdir), "-e", str(workdir / "error.log")]
    with _running(command, port, workdir / "stdout.log"):
        yield port


@contextlib.contextmanager
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield int(listener.getsockname()[1])
