"""The demo's child processes: started on loopback, stopped by PID.

Every child runs in its own session, so a Ctrl-C in the terminal reaches the
demo alone and the demo stops its children in order (load first, then the
services so they flush their spans, then Redis and tinct). On Linux a child
also gets SIGTERM if the demo itself dies (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import contextlib
import ctypes
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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

__all__ = [
    "Child",
    "TinctUp",
    "free_port",
    "postgres_bindir",
    "redis_server_binary",
    "start_postgres",
    "start_redis",
    "wait_for_port",
]

_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """A loopback TCP port free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _child_env() -> dict[str, str]:
    # The demo passes every setting as an argument: OTEL_*/TINCT_* variables of
    # the user's shell must not redirect or resample the demo's services.
    return {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TINCT_"))}


class Child:
    """One child process whose output goes to ``log`` (a file) or a callback per line."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        *,
        log: Path | None = None,
        on_line: Callable[[str], None] | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
        stop_signal: int = signal.SIGTERM,
    ) -> None:
        self.name = name
        self.stop_signal = stop_signal
        self._file: IO[bytes] | None = open(log, "ab") if log is not None else None  # noqa: SIM115
        preexec = _die_with_parent if sys.platform.startswith("linux") else None
        self.proc = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL if on_line is None else subprocess.PIPE,
            stderr=self._file if on_line is None else subprocess.STDOUT,
            env=_child_env() if env is None else env,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=preexec,  # prctl only: takes no lock the parent might hold
            # As another user: setgid/setuid happen before preexec_fn, so the
            # parent-death signal survives the change of credentials.
            user=user,
            group=user,
            extra_groups=[] if user is not None else None,
        )
        self._pump_thread: threading.Thread | None = None
        if on_line is not None:
            self._pump_thread = threading.Thread(target=self._pump, args=(on_line,), daemon=True)
            self._pump_thread.start()

    def _pump(self, on_line: Callable[[str], None]) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            on_line(raw.decode(errors="replace").rstrip("\n"))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> int:
        """``stop_signal`` (SIGTERM), wait, SIGKILL after ``timeout``; the exit code."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, self.stop_signal)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self._pump_thread is not None:
            self._pump_thread.join(5)
        if self._file is not None:
            self._file.close()
            self._file = None
        return int(self.proc.returncode)


def wait_for_port(port: int, timeout: float, child: Child | None = None) -> None:
    """Wait until 127.0.0.1:``port`` accepts connections.

    Raises:
        RuntimeError: ``child`` exited first.
        TimeoutError: not within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child is not None and not child.running():
            raise RuntimeError(f"{child.name} exited with {child.proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"port {port} did not open within {timeout:g}s")


def redis_server_binary() -> str | None:
    """The ``redis-server`` on PATH (or Debian's), None when not installed."""
    found = shutil.which("redis-server")
    if found is None and os.access("/usr/bin/redis-server", os.X_OK):
        found = "/usr/bin/redis-server"
    return found


def start_redis(binary: str, workdir: Path) -> tuple[Child, int]:
    """A throwaway redis-server on a free loopback port, no persistence."""
    port = free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--dir", str(workdir), "--protected-mode", "no"]
    child = Child("redis-server", command, log=workdir / "logs" / "redis.log", cwd=workdir)
    wait_for_port(port, 15, child)
    return child, port


def postgres_bindir() -> Path | None:
    """Debian's PostgreSQL binaries (/usr/lib/postgresql/<ver>/bin, the newest)
    or those beside ``initdb`` on PATH; None when not installed."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    if (initdb := shutil.which("initdb")) is not None:
        candidates.append(Path(os.path.realpath(initdb)).parent)
    for bindir in candidates:
        if os.access(bindir / "initdb", os.X_OK) and os.access(bindir / "postgres", os.X_OK):
            return bindir
    return None


_PG_USER = "postgres"
_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes, with "/.s.PGSQL.<port>" appended


def _postgres_user() -> str | None:
    """The OS user to run PostgreSQL as: ``postgres`` as root (it refuses root), else us."""
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        pwd.getpwnam(_PG_USER)
    except KeyError:
        raise RuntimeError(f"running as root and there is no {_PG_USER!r} OS user") from None
    return _PG_USER


def _reachable_by(user: str, path: Path) -> bool:
    probe = subprocess.run(
        ["test", "-w", str(path), "-a", "-x", str(path)], user=user, group=user, check=False
    )
    return probe.returncode == 0


def start_postgres(bindir: Path, workdir: Path) -> tuple[Child, int, Path]:
    """A throwaway PostgreSQL cluster on a free loopback port, trust authentication.

    Made anew under ``workdir``/postgres (as root: owned by the ``postgres``
    OS user, which initdb and postgres run as; in a fresh /tmp directory
    when that user cannot reach ``workdir``). Stopped by PID with SIGINT,
    PostgreSQL's fast shutdown. Returns the child, the port and the cluster's
    directory. Raises RuntimeError (or OSError) when it does not start.
    """
    user = _postgres_user()
    pgdir = workdir / "postgres"
    shutil.rmtree(pgdir, ignore_errors=True)
    pgdir.mkdir(parents=True)
    if user is not None:
        shutil.chown(pgdir, user, user)
        if not _reachable_by(user, pgdir):
            shutil.rmtree(pgdir, ignore_errors=True)
            pgdir = Path(tempfile.mkdtemp(prefix="tinct-demo-pg-"))
            shutil.chown(pgdir, user, user)
    data, log = pgdir / "data", workdir / "logs" / "postgres.log"
    with open(log, "ab") as out:
        initdb = [str(bindir / "initdb"), "-D", str(data), "-U", _PG_USER, "--auth=trust"]
        done = subprocess.run(
            [*initdb, "-E", "UTF8", "--no-sync"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=pgdir,
            env=_child_env(),
            user=user,
            group=user,
            extra_groups=[] if user is not None else None,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"initdb exited with {done.returncode} (see {log})")
    sockets = str(pgdir) if len(str(pgdir)) < _SOCKET_PATH_MAX - 20 else ""
    port = free_port()
    command = [str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-k", sockets]
    command += ["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]
    command += ["-c", "synchronous_commit=off", "-c", "max_connections=200"]
    child = Child("postgres", command, log=log, cwd=pgdir, user=user, stop_signal=signal.SIGINT)
    try:
        wait_for_port(port, 30, child)
    except (RuntimeError, TimeoutError):
        child.stop()
        raise
    return child, port, pgdir


_SERVING = re.compile(r"serving (UI and APIs|OTLP/gRPC|OTLP/HTTP|Zipkin) on (\S+)")


class TinctUp(Child):
    """``python -m tinct up`` as a child; ``urls`` are the ones it logged.

    Lines go to ``echo`` until it is ready (so a newcomer sees it start),
    and to ``log`` always.
    """

    def __init__(self, args: Sequence[str], log: Path, echo: Callable[[str], None]) -> None:
        self.urls: dict[str, str] = {}
        self._ready = threading.Event()
        self._echo: Callable[[str], None] | None = echo
        self._log = open(log, "a")  # noqa: SIM115 - closed in stop()
        command = [sys.executable, "-m", "tinct", "up", *args]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        super().__init__("tinct up", command, on_line=self._line, env=env)

    def _line(self, line: str) -> None:
        self._log.write(line + "\n")
        self._log.flush()
        if match := _SERVING.search(line):
            self.urls[match.group(1)] = match.group(2)
        if self._echo is not None:
            self._echo(line)
        if "ready:" in line:
            self._echo = None
            self._ready.set()

    def wait_ready(self, timeout: float) -> None:
        """Wait until the store is open. Raises RuntimeError or TimeoutError."""
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.1):
            if not self.running():
                raise RuntimeError(f"tinct up exited with {self.proc.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"tinct up was not ready within {timeout:g}s")

    def stop(self, timeout: float = 30.0) -> int:
        code = super().stop(timeout)
        self._log.close()
        return code
