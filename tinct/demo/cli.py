"""``tinct demo``: run the demo application against tinct.

Usage::

    tinct demo [--server URL] [--otlp URL] [--users N] [--speed X] [--seed S]
               [--faults default|none] [--sampling P] [--duration SECONDS]
               [--with-server [--data DIR] [--port P] [--otlp-http-port P] ...
                              [--alertmanager HOST:PORT]]

Without ``--with-server`` the demo sends to a running ``tinct up`` (``--server``,
default ``TINCT_SERVER`` or ``http://127.0.0.1:3000``; ``--otlp``, default
``http://127.0.0.1:4318``). With it, the demo starts ``tinct up`` itself and
stops it on exit; the port flags are passed on to it (0 picks a free port),
and ``--alertmanager`` adds an Alertmanager to its config for the alerts.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from pathlib import Path

__all__ = ["add_demo_command"]


def _number(low: float, high: float, *, low_open: bool = False) -> type[float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        ok = (low < value if low_open else low <= value) and value <= high
        if not ok or not math.isfinite(value):
            bound = "(" if low_open else "["
            raise argparse.ArgumentTypeError(f"{text} is not within {bound}{low:g}, {high:g}]")
        return value

    return parse  # type: ignore[return-value]


def _users(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= 2000:
        raise argparse.ArgumentTypeError(f"{value} is not within 1..2000")
    return value


def _host_port(text: str) -> str:
    host, _, port = text.rpartition(":")
    if not host or "/" in text or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not a HOST:PORT")
    return text


def _cmd_demo(args: argparse.Namespace) -> int:
    # Imported here so `tinct --help` doesn't pay for requests and OpenTelemetry.
    from tinct.demo.runner import DemoError, DemoOptions, run_demo

    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s tinct demo: %(message)s"
    )
    up_args: list[str] = []
    for flag in ("port", "otlp_http_port", "otlp_grpc_port", "zipkin_port"):
        value = getattr(args, flag)
        if value is not None:
            up_args += [f"--{flag.replace('_', '-')}", str(value)]
    options = DemoOptions(
        server=args.server or os.environ.get("TINCT_SERVER") or None,
        otlp=args.otlp,
        users=args.users,
        speed=args.speed,
        seed=args.seed,
        faults=args.faults,
        sampling=args.sampling,
        duration=args.duration,
        think=args.think,
        workdir=args.workdir.resolve(),
        with_server=args.with_server,
        data=args.data.resolve(),
        up_args=up_args,
        admin_token=args.admin_token or os.environ.get("TINCT_ADMIN_TOKEN") or None,
        alertmanagers=args.alertmanager,
    )
    try:
        return run_demo(options)
    except DemoError as exc:
        print(f"tinct: error: {exc}", file=sys.stderr)
        return 1


def add_demo_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``tinct demo``."""
    demo = subparsers.add_parser(
        "demo",
        help="run a six-service demo shop with load, dyed users and faults",
        description=(
            "Run a demo shop of six services (gateway, users, orders, inventory, payments, "
            "notifications) as separate processes on loopback, instrumented with "
            "tinct.tracing, using Redis (when redis-server is installed) and SQLite; "
            "simulated users, a few of them dyed, and a schedule of faults. "
            "Ctrl-C stops everything it started."
        ),
    )
    target = demo.add_argument_group("where to send")
    target.add_argument("--server", metavar="URL", help="tinct's main port; env TINCT_SERVER")
    target.add_argument("--otlp", metavar="URL", help="tinct's OTLP/HTTP base URL")
    target.add_argument("--admin-token", metavar="T", help="for the dye rules; TINCT_ADMIN_TOKEN")
    target.add_argument(
        "--with-server", action="store_true", help="start `tinct up` too, and stop it on exit"
    )
    target.add_argument(
        "--data", type=Path, default=Path("tinct-data"), help="with --with-server: its --data"
    )
    for flag in ("--port", "--otlp-http-port", "--otlp-grpc-port", "--zipkin-port"):
        target.add_argument(
            flag, type=int, metavar="P", help="with --with-server: passed to `tinct up`"
        )
    target.add_argument(
        "--alertmanager",
        type=_host_port,
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="with --with-server: send its alerts to this Alertmanager (repeatable)",
    )

    run = demo.add_argument_group("the demo")
    run.add_argument("--users", type=_users, default=100, help="simulated users (default 100)")
    run.add_argument(
        "--speed",
        type=_number(0, 10_000, low_open=True),
        default=1.0,
        help="compress the 10-minute fault schedule by this factor (default 1)",
    )
    run.add_argument("--seed", type=int, default=0, help="seeds users, dyes and data (default 0)")
    run.add_argument("--faults", choices=("default", "none"), default="default")
    run.add_argument(
        "--sampling",
        type=_number(0, 1),
        default=0.05,
        help="share of requests traced at the gateway (default 0.05; dyed ones always)",
    )
    run.add_argument(
        "--duration",
        type=_number(0, 7 * 86400, low_open=True),
        metavar="SECONDS",
        help="stop after this long (default: run until Ctrl-C / SIGTERM)",
    )
    run.add_argument(
        "--think",
        type=_number(0.01, 3600),
        default=2.0,
        metavar="SECONDS",
        help="mean pause between a user's requests (default 2)",
    )
    run.add_argument(
        "--workdir",
        type=Path,
        default=Path("tinct-demo"),
        help="SQLite files, logs, topology.yaml and targets.yaml (default ./tinct-demo)",
    )
    demo.set_defaults(handler=_cmd_demo)
