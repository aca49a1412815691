"""``tinct dye``: add, list and end dye rules on a running tinct.

Usage::

    tinct dye add KIND:VALUE [--for 30m] [--ratio R] [--service S] [--key NAME]
    tinct dye ls [--service S]
    tinct dye rm ID

``KIND`` is ``user``, ``tenant``, ``route`` or ``header``; everything after the
first colon is the value (``route:GET /orders/{id}``). A ``header`` rule names
its header with ``--key``: ``tinct dye add header:on --key x-canary`` dyes
requests carrying ``x-canary: on``. ``--for`` takes ``90s``, ``30m``, ``2h``,
``1d`` or sums like ``1h30m`` (default 30m, at most 7d). ``add`` prints the new
rule's id; ``ls`` prints a table of live rules; ``rm`` ends one.

Every subcommand finds the server through ``--server`` / ``TINCT_SERVER``
(default ``http://127.0.0.1:3000``) and sends ``--admin-token`` /
``TINCT_ADMIN_TOKEN`` as a bearer token when set. It speaks the HTTP API of
``tinct.dye_api`` with the standard library only. Exit codes as for every
``tinct`` command: 1 when the server is unreachable or refuses (its error on
one line), 2 for usage errors (a bad flag, a header rule without ``--key``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, urlencode

from tinct.errors import ConfigError

__all__ = ["add_dye_command", "parse_duration", "DEFAULT_SERVER", "DyeClientError"]

DEFAULT_SERVER = "http://127.0.0.1:3000"
_PATH = "/api/tinct/dye-rules"
_KINDS = ("user", "header", "route", "tenant")
_MAX_SECONDS = 7 * 24 * 3600  # tinct.dye_api.MAX_TTL_SECONDS
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d+)([smhd])")
_TIMEOUT_SECONDS = 10.0


class DyeClientError(Exception):
    """The server could not be reached or refused; the message is one line."""


def parse_duration(text: str) -> int:
    """Seconds in ``90s``, ``30m``, ``2h``, ``1d``, ``1h30m`` (1 s to 7 d).

    Raises:
        argparse.ArgumentTypeError: not such a duration, or out of range.
    """
    spec = text.strip().lower()
    pos, total = 0, 0
    while pos < len(spec):
        match = _DURATION.match(spec, pos)
        if match is None:
            break
        total += int(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not spec or pos != len(spec):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration (e.g. 90s, 30m, 2h, 1d, 1h30m)"
        )
    if not 1 <= total <= _MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 1s and 7d")
    return total


def _match(text: str) -> tuple[str, str]:
    kind, sep, value = text.partition(":")
    if not sep or kind not in _KINDS or not value:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not KIND:VALUE with KIND one of {', '.join(_KINDS)} (e.g. user:42)"
        )
    return kind, value


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text} must be > 0 and <= 1")
    return value


def _request(args: argparse.Namespace, method: str, path: str, body: Any = None) -> Any:
    """Send one request; the decoded JSON answer (None for 204)."""
    server = (args.server or os.environ.get("TINCT_SERVER") or DEFAULT_SERVER).rstrip("/")
    if not server.startswith(("http://", "https://")):
        raise ConfigError(f"--server / TINCT_SERVER: {server!r} is not an http(s):// URL")
    headers = {"Accept": "application/json"}
    token = args.admin_token or os.environ.get("TINCT_ADMIN_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(server + path, data, headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT_SECONDS) as response:
            raw = response.read()
    except urllib.error.HTTPError as exc:
        raise DyeClientError(f"{server} answered {exc.code}: {_error_text(exc)}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise DyeClientError(f"cannot reach tinct at {server}: {reason}") from exc
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise DyeClientError(f"{server} answered something that is not JSON: {exc}") from exc


def _error_text(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read())
    except (ValueError, OSError):
        return str(exc.reason)
    message = body.get("error") if isinstance(body, dict) else None
    return message if isinstance(message, str) else str(exc.reason)


def _cmd_add(args: argparse.Namespace) -> int:
    kind, value = args.match
    if kind == "header" and not args.key:
        raise ConfigError("--key: a header rule needs the header name (--key x-canary)")
    match = {"kind": kind, "value": value}
    if args.key is not None:
        match["key"] = args.key
    body: dict[str, Any] = {"match": match, "ttl_seconds": args.duration}
    if args.ratio is not None:
        body["ratio"] = args.ratio
    if args.service:
        body["service"] = args.service
    rule = _request(args, "POST", _PATH, body)
    print(rule["id"])
    return 0


def _remaining(expires_at: str, now: float) -> str:
    try:
        left = dt.datetime.fromisoformat(expires_at).timestamp() - now
    except ValueError:
        return expires_at
    seconds = max(0, int(left))
    if seconds >= 3600:
        return f"{expires_at} (in {seconds // 3600}h{seconds % 3600 // 60:02d}m)"
    return f"{expires_at} (in {seconds // 60}m{seconds % 60:02d}s)"


def _cmd_ls(args: argparse.Namespace) -> int:
    query = "?" + urlencode({"service": args.service}) if args.service else ""
    rules = _request(args, "GET", _PATH + query)["rules"]
    if not rules:
        print("no live dye rules")
        return 0
    now = time.time()
    header = ("ID", "MATCH", "KEY", "SERVICE", "RATIO", "EXPIRES")
    rows = [
        (
            r["id"],
            f"{r['match']['kind']}:{r['match']['value']}",
            r["match"]["key"] or "-",
            r["service"] or "*",
            f"{r['ratio']:g}",
            _remaining(r["expires_at"], now),
        )
        for r in rules
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header) - 1)]
    for row in (header, *rows):
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]))
    return 0


def _cmd_rm(args: argparse.Namespace) -> int:
    _request(args, "DELETE", f"{_PATH}/{quote(args.id, safe='')}")
    print(f"ended dye rule {args.id}")
    return 0


def _run(args: argparse.Namespace) -> int:
    try:
        code: int = args.dye_handler(args)
    except DyeClientError as exc:
        print(f"tinct: error: {exc}", file=sys.stderr)
        return 1
    return code


def add_dye_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``tinct dye`` and its ``add``, ``ls``, ``rm`` subcommands."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--server",
        metavar="URL",
        help=f"tinct's main port (default {DEFAULT_SERVER}); env TINCT_SERVER",
    )
    common.add_argument(
        "--admin-token",
        metavar="T",
        help="bearer token for writes, when the server has one; env TINCT_ADMIN_TOKEN",
    )
    dye = subparsers.add_parser(
        "dye",
        help="add, list and end dye rules on a running tinct",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    actions = dye.add_subparsers(dest="dye_command", metavar="ACTION", required=True)

    add = actions.add_parser(
        "add",
        parents=[common],
        help="dye requests matching KIND:VALUE for a while; prints the rule id",
        description="Dye requests matching KIND:VALUE (user:42, tenant:acme, "
        "'route:GET /orders/{id}', header:on --key x-canary) for a while.",
    )
    add.add_argument("match", type=_match, metavar="KIND:VALUE")
    add.add_argument(
        "--for",
        dest="duration",
        type=parse_duration,
        default=1800,
        metavar="DURATION",
        help="how long the rule lives: 90s, 30m, 2h, 1d, 1h30m (default 30m, at most 7d)",
    )
    add.add_argument(
        "--ratio", type=_ratio, metavar="R", help="share of matching requests to dye (default 1)"
    )
    add.add_argument("--service", metavar="S", help="only for this entry service (default all)")
    add.add_argument("--key", metavar="NAME", help="the header name, for header:VALUE rules")
    add.set_defaults(dye_handler=_cmd_add)

    ls = actions.add_parser("ls", parents=[common], help="list the live dye rules")
    ls.add_argument("--service", metavar="S", help="only rules applying to this service")
    ls.set_defaults(dye_handler=_cmd_ls)

    rm = actions.add_parser("rm", parents=[common], help="end a dye rule now")
    rm.add_argument("id", metavar="ID")
    rm.set_defaults(dye_handler=_cmd_rm)

    dye.set_defaults(handler=_run)
