"""The ``tinct`` command line: one parser, one subcommand per role.

``tinct up`` runs everything in one process (DESIGN.md, "Interfaces users rely
on"); ``tinct dye`` manages dye rules on a running one (``tinct.dye_cli``);
``tinct demo`` runs a traced demo application (``tinct.demo``); ``tinct
agent`` collects on another machine and ships by remote_write
(``tinct.agent``); ``tinct rules check|test`` validates and unit-tests rule
files as ``promtool`` does (``tinct.rules_cli``). Later roles are added by
writing a ``_add_<name>(subparsers)`` function that registers its subparser
with a ``handler`` and appending it to ``_COMMANDS``; settings flags come from
:func:`tinct.config.add_setting_flags` so every subcommand spells and validates
them the same way.

Exit codes: 0 success, 1 runtime failure (e.g. a port already in use, the store
can't open), 2 usage or configuration error (argparse's convention), printed as
one line without a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from tinct import __version__
from tinct.agent import add_agent_command
from tinct.config import add_setting_flags, load_settings
from tinct.demo import add_demo_command
from tinct.dye_cli import add_dye_command
from tinct.errors import ConfigError
from tinct.rules_cli import add_rules_command

__all__ = ["main", "build_parser"]


def _cmd_up(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    # Imported here so `tinct --help` and config errors don't pay for uvicorn,
    # grpc and the store.
    from tinct.server import run

    return run(settings)


def _add_up(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    up = subparsers.add_parser(
        "up",
        help="run ingest, storage, query APIs and UI in one process",
        description=(
            "Run tinct in one process: OTLP/gRPC, OTLP/HTTP and Zipkin receivers, "
            "the embedded store (or a ClickHouse server), the query APIs and the UI. "
            "Every flag can also be set as TINCT_<NAME> or in the --config file; "
            "precedence is flag > environment > config file > default."
        ),
    )
    add_setting_flags(up)
    up.set_defaults(handler=_cmd_up)


_COMMANDS: tuple[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None], ...] = (
    _add_up,
    add_dye_command,
    add_demo_command,
    add_agent_command,
    add_rules_command,
)


def build_parser() -> argparse.ArgumentParser:
    """The ``tinct`` parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="tinct",
        description="Ops observability and tracing on one data standard, with dyed requests.",
    )
    parser.add_argument("--version", action="version", version=f"tinct {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in _COMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except ConfigError as exc:
        print(f"tinct: error: {exc}", file=sys.stderr)
        return 2
