"""`tinct demo --with-server` as a child process of a test, and what it logged."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_URL = re.compile(r"open (http://\S+)/ \(UI\)")
_DYED = re.compile(r"dyed users: (.+)$")


@dataclass
class Demo:
    """A running demo: its process, working directory and the log lines read so far."""

    proc: subprocess.Popen[str]
    workdir: Path
    lines: list[str] = field(default_factory=list)
    main: str = ""
    dyed: list[str] = field(default_factory=list)
    running: threading.Event = field(default_factory=threading.Event)

    def read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            if match := _URL.search(line):
                self.main = match.group(1)
            if match := _DYED.search(line.rstrip()):
                self.dyed = match.group(1).split(", ")
            if "running; Ctrl-C" in line:
                self.running.set()
        self.running.set()

    def output(self) -> str:
        logs = sorted((self.workdir / "logs").glob("*.log"))
        parts = [f"--- {p.name} ---\n{p.read_text(errors='replace')[-3000:]}" for p in logs]
        return "".join(self.lines[-200:]) + "\n".join(parts)


@contextlib.contextmanager
def run_demo(tmp: Path, options: Sequence[str], ready_seconds: float = 60) -> Iterator[Demo]:
    """Start the demo on free ports in ``tmp`` with ``options``; SIGTERM it at the end.

    The caller passes ``--duration`` among the options, so a run the test
    fails to stop still ends.
    """
    command = [sys.executable, "-m", "tinct", "demo", "--with-server", "--data", str(tmp / "data")]
    command += ["--port", "0", "--otlp-http-port", "0", "--otlp-grpc-port", "0"]
    command += ["--zipkin-port", "0", "--workdir", str(tmp / "work"), *options]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TINCT_"))}
    proc = subprocess.Popen(
        command,
        cwd=tmp,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    running = Demo(proc, tmp / "work")
    reader = threading.Thread(target=running.read, daemon=True)
    reader.start()
    try:
        assert running.running.wait(ready_seconds) and proc.poll() is None, running.output()
        yield running
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        reader.join(10)  # it reads to the end of the output, then the pipe can close
        if proc.stderr is not None and not reader.is_alive():
            proc.stderr.close()
