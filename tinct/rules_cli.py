"""``tinct rules check`` and ``tinct rules test``: promtool's rule commands, on tinct.

A team moving from Prometheus keeps its CI step: ``promtool check rules
FILE...`` becomes ``tinct rules check FILE...`` and ``promtool test rules
FILE...`` becomes ``tinct rules test FILE...``, with the same output
(``Checking FILE`` / ``  SUCCESS: N rules found``, ``Unit Testing:  FILE`` /
``  SUCCESS``; ``  FAILED:`` and the problems on stderr) and exit codes
(0 all good, 1 any file failed).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tinct.alerting.rules import RuleFileError, parse_rule_file

__all__ = ["add_rules_command", "check_rules", "test_rules"]


def check_rules(files: Sequence[str]) -> int:
    """Check rule files as ``promtool check rules``; returns the exit code."""
    failed = False
    for file in files:
        print(f"Checking {file}")
        try:
            groups = parse_rule_file(file)
        except RuleFileError as exc:
            failed = True
            print("  FAILED:", file=sys.stderr)
            for line in exc.errors:
                print(line, file=sys.stderr)
            print()
            continue
        count = sum(len(g.rules) for g in groups)
        print(f"  SUCCESS: {count} rules found")
        print()
    return 1 if failed else 0


def test_rules(files: Sequence[str]) -> int:
    """Run rule unit test files as ``promtool test rules``; returns the exit code."""
    from tinct.alerting.unittest import run_test_file

    failed = False
    for file in files:
        print(f"Unit Testing:  {file}")
        errors = run_test_file(file)
        if errors:
            failed = True
            print("  FAILED:", file=sys.stderr)
            for err in errors:
                print(err, file=sys.stderr)
        else:
            print("  SUCCESS")
        print()
    return 1 if failed else 0


def _cmd_check(args: argparse.Namespace) -> int:
    return check_rules(args.files)


def _cmd_test(args: argparse.Namespace) -> int:
    return test_rules(args.files)


def add_rules_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``tinct rules check|test FILE...``."""
    rules = subparsers.add_parser(
        "rules",
        help="check rule files and run rule unit tests (as promtool)",
        description="Check Prometheus rule files and run their unit tests, as promtool does.",
    )
    sub = rules.add_subparsers(dest="rules_command", metavar="ACTION", required=True)
    check = sub.add_parser(
        "check",
        help="check rule files (promtool check rules)",
        description="Check rule files: syntax, expressions, names, durations, templates.",
    )
    check.add_argument("files", nargs="+", metavar="FILE", help="rule files")
    check.set_defaults(handler=_cmd_check)
    test = sub.add_parser(
        "test",
        help="run rule unit tests (promtool test rules)",
        description="Run rule unit test files in promtool's format.",
    )
    test.add_argument("files", nargs="+", metavar="FILE", help="unit test files")
    test.set_defaults(handler=_cmd_test)
