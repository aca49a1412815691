"""Parameters and values of the Prometheus HTTP API, read and written as Prometheus does.

The rules are those of Prometheus's ``web/api/v1/api.go`` (the HTTP API
reference, "Format overview", "Expression queries", "Querying metadata"):

* times (``time``, ``start``, ``end``) are Unix seconds as a float, rounded
  to the millisecond, or RFC 3339 (``parseTime``); the two strings Prometheus
  prints for its own minimum and maximum time are accepted too;
* durations (``step``, ``timeout``) are float seconds or Prometheus
  durations (``parseDuration``);
* ``limit`` is a non-negative integer, 0 meaning none (``parseLimitParam``);
* ``match[]`` are series selectors, each needing a matcher that does not
  match the empty string (``parseMatchersParam``);
* sample values are JSON strings in Go's shortest form (``MarshalValue``:
  ``strconv.AppendFloat`` with ``'f'``, or ``'e'`` below 1e-6 and from 1e21
  on) and timestamps JSON numbers of seconds with the milliseconds written
  out (``MarshalTimestamp``: ``1.500``).

Errors are :class:`~tinct.promql.result.BadQueryError` with Prometheus's
wording, ``invalid parameter "<name>": ...``, so a client sees the same
message from tinct as from Prometheus.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Sequence
from typing import Any

import promql_parser

from tinct.durations import parse_duration
from tinct.goregex import compile_go_regex
from tinct.metrics import NAME_LABEL, Matcher
from tinct.promql.result import BadQueryError

__all__ = [
    "MIN_TIME_MS",
    "MAX_TIME_MS",
    "invalid_param",
    "parse_time",
    "parse_duration_ms",
    "parse_limit",
    "parse_expr",
    "parse_match_params",
    "parse_error_message",
    "format_value",
    "format_timestamp",
]

# Prometheus's v1.MinTime / v1.MaxTime: the times the Go time package can still
# turn into int64 milliseconds, and how Go prints them (RFC 3339 with years
# past 9999, which time.Parse cannot read back, hence the special case).
MIN_TIME_MS = (-(2**63) // 1000 + 1 + 62135596801) * 1000
MAX_TIME_MS = ((2**63 - 1) // 1000 - 62135596801) * 1000 + 999
_MIN_TIME_TEXT = "-292273086-05-16T16:47:06Z"
_MAX_TIME_TEXT = "292277025-08-18T07:12:54.999999999Z"

# strconv.ParseFloat's decimal syntax (Go also reads hex floats and
# underscores after a base prefix; nobody sends those as times).
_GO_FLOAT = re.compile(
    r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf(?:inity)?|nan)\Z", re.IGNORECASE
)
# time.RFC3339Nano as time.Parse reads it.
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})\Z"
)
_INT = re.compile(r"[+-]?\d+\Z")
_MAX_INT64 = 2**63 - 1
_NS_PER_S = 1_000_000_000


def invalid_param(name: str, message: str) -> BadQueryError:
    """Prometheus's ``invalidParamError``: ``invalid parameter "<name>": <message>``."""
    return BadQueryError(f'invalid parameter "{name}": {message}')


def _go_float(text: str) -> float | None:
    if not _GO_FLOAT.match(text):
        return None
    return float(text)


def _round_half_away(x: float) -> float:
    # Go's math.Round; Python's round() rounds half to even.
    return math.copysign(math.floor(abs(x) + 0.5), x)


def parse_time(text: str, param: str) -> int:
    """Unix milliseconds of a time parameter (Prometheus's ``parseTime``).

    Float seconds are rounded to the millisecond; RFC 3339 is truncated to
    it. Times beyond Prometheus's MinTime/MaxTime are clamped to them.

    Raises:
        BadQueryError: ``invalid parameter "<param>": cannot parse "<text>" to
            a valid timestamp``.
    """
    number = _go_float(text)
    if number is not None:
        if math.isnan(number):
            raise invalid_param(param, f"cannot parse {_go_quote(text)} to a valid timestamp")
        if math.isinf(number):
            return MAX_TIME_MS if number > 0 else MIN_TIME_MS
        whole = math.trunc(number)
        frac_ms = int(_round_half_away((number - whole) * 1000))
        return min(max(int(whole) * 1000 + frac_ms, MIN_TIME_MS), MAX_TIME_MS)
    match = _RFC3339.match(text)
    if match is not None:
        ms = _rfc3339_ms(match)
        if ms is not None:
            return ms
    if text == _MIN_TIME_TEXT:
        return MIN_TIME_MS
    if text == _MAX_TIME_TEXT:
        return MAX_TIME_MS
    raise invalid_param(param, f"cannot parse {_go_quote(text)} to a valid timestamp")


def _rfc3339_ms(match: re.Match[str]) -> int | None:
    year, month, day, hour, minute, second, frac, zone = match.groups()
    try:
        moment = dt.datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=dt.UTC
        )
    except ValueError:
        return None
    offset_s = 0
    if zone != "Z":
        zone_h, zone_m = int(zone[1:3]), int(zone[4:6])
        if zone_h > 23 or zone_m > 59:
            return None
        offset_s = (zone_h * 60 + zone_m) * 60 * (1 if zone[0] == "+" else -1)
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    seconds = (moment - epoch) // dt.timedelta(seconds=1) - offset_s
    return seconds * 1000 + int((frac or "0").ljust(9, "0")[:3])


def parse_duration_ms(text: str, param: str) -> int:
    """Milliseconds of a duration parameter (Prometheus's ``parseDuration``):
    float seconds (``30``, ``0.5``) or a Prometheus duration (``1m30s``).

    Raises:
        BadQueryError: ``invalid parameter "<param>": cannot parse "<text>" to
            a valid duration``.
    """
    number = _go_float(text)
    if number is not None:
        ns = number * _NS_PER_S
        if math.isnan(ns) or ns > _MAX_INT64 or ns < -(2**63):
            raise invalid_param(
                param, f"cannot parse {_go_quote(text)} to a valid duration. It overflows int64"
            )
        # time.Duration(ns), then the engine's durationMilliseconds (truncating).
        return int(int(ns) / 1_000_000)
    try:
        return round(parse_duration(text) * 1000)
    except ValueError:
        raise invalid_param(param, f"cannot parse {_go_quote(text)} to a valid duration") from None


def parse_limit(text: str, param: str = "limit") -> int:
    """A ``limit`` parameter (``parseLimitParam``): "" is 0 (no limit).

    Raises:
        BadQueryError: not an integer, or negative.
    """
    if text == "":
        return 0
    if not _INT.match(text):
        raise invalid_param(param, f"strconv.Atoi: parsing {_go_quote(text)}: invalid syntax")
    value = int(text)
    if value < 0:
        raise invalid_param(param, "limit must be non-negative")
    return value


def _go_quote(text: str) -> str:
    # Go's %q for the printable text users send; JSON escaping is close enough.
    out = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + out.replace("\n", "\\n").replace("\t", "\\t") + '"'


# promql-parser's messages for input that ended too early; Prometheus reports
# those at the end of the input.
_AT_END = ("end of input", "unclosed left", "no expression found")


def parse_error_message(query: str, message: str) -> str:
    """A promql-parser error in Prometheus's form, ``<line>:<col>: parse error: <msg>``.

    promql-parser does not report positions; where the error can only be at
    the end of the input (the query stopped too early) the position is
    given as Prometheus gives it, otherwise it is left out.
    """
    if any(marker in message for marker in _AT_END):
        data = query.encode()
        line = data.count(b"\n") + 1
        col = len(data) - (data.rfind(b"\n") + 1) + 1
        return f"{line}:{col}: parse error: {message}"
    return f"parse error: {message}"


def parse_expr(query: str, param: str = "query") -> Any:
    """Parse a PromQL expression with promql-parser.

    Raises:
        BadQueryError: ``invalid parameter "<param>": <line>:<col>: parse error: ...``.
    """
    try:
        return promql_parser.parse(query)
    except BaseException as exc:  # the extension raises ValueError, or panics
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        raise invalid_param(param, parse_error_message(query, str(exc))) from None


# promql_parser.MatchOp is not hashable; its int() is the key.
_OPS = {
    int(promql_parser.MatchOp.Equal): "=",
    int(promql_parser.MatchOp.NotEqual): "!=",
    int(promql_parser.MatchOp.Re): "=~",
    int(promql_parser.MatchOp.NotRe): "!~",
}


def _matcher(name: str, op: Any, value: str, param: str) -> Matcher:
    symbol = _OPS[int(op)]
    if symbol in ("=~", "!~"):
        try:
            compile_go_regex(value)
        except ValueError as exc:
            raise invalid_param(
                param, f"parse error: invalid regular expression {_go_quote(value)}: {exc}"
            ) from None
    try:
        return Matcher(name, symbol, value)
    except ValueError as exc:
        raise invalid_param(param, str(exc)) from None


def parse_match_params(selectors: Sequence[str], param: str = "match[]") -> list[list[Matcher]]:
    """The matcher sets of ``match[]`` selectors (``parseMatchersParam``).

    Each selector must be a vector selector (``up{job="x"}``); one with
    ``or`` (``{a="1" or b="2"}``, Prometheus 3) gives one set per branch.
    The answer is the union of what the sets select.

    Raises:
        BadQueryError: a selector does not parse, is not a vector selector, or
            has no matcher that rejects the empty string.
    """
    sets: list[list[Matcher]] = []
    for text in selectors:
        expr = parse_expr(text, param)
        if not isinstance(expr, promql_parser.VectorSelector):
            raise invalid_param(
                param, f"1:1: parse error: expected a series selector, got {text!r}"
            )
        named = [Matcher(NAME_LABEL, "=", expr.name)] if expr.name else []
        branches = expr.matchers.or_matchers or [expr.matchers.matchers]
        for branch in branches:
            found = named + [_matcher(m.name, m.op, str(m.value), param) for m in branch]
            if all(m.matches("") for m in found):
                raise BadQueryError("match[] must contain at least one non-empty matcher")
            sets.append(found)
    return sets


def format_value(value: float) -> str:
    """A sample value as Prometheus writes it (``jsonutil.MarshalValue``).

    Go's shortest round-trip digits, as ``strconv.AppendFloat(v, fmt, -1, 64)``
    with ``fmt`` ``'e'`` when ``|v|`` is below 1e-6 or at least 1e21 (and not
    0), ``'f'`` otherwise; ``NaN``, ``+Inf``, ``-Inf``.
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = repr(value)
    sign = ""
    if text[0] == "-":
        sign, text = "-", text[1:]
    mantissa, _, exp_text = text.partition("e")
    whole, _, frac = mantissa.partition(".")
    # The value is 0.<digits> × 10**point.
    all_digits = whole + frac
    point = len(whole) + (int(exp_text) if exp_text else 0)
    digits = all_digits.lstrip("0")
    if not digits:
        return sign + "0"
    point -= len(all_digits) - len(digits)
    digits = digits.rstrip("0")
    return sign + _go_digits(digits, point, abs(value))


def _go_digits(digits: str, point: int, magnitude: float) -> str:
    if magnitude < 1e-6 or magnitude >= 1e21:
        exp = point - 1
        head = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{head}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return "0." + "0" * -point + digits
    if point >= len(digits):
        return digits + "0" * (point - len(digits))
    return digits[:point] + "." + digits[point:]


def format_timestamp(ms: int) -> str:
    """A timestamp as Prometheus writes it (``jsonutil.MarshalTimestamp``):
    seconds, and the milliseconds as three digits when not zero (``1.500``)."""
    sign = ""
    if ms < 0:
        sign, ms = "-", -ms
    seconds, fraction = divmod(ms, 1000)
    return f"{sign}{seconds}.{fraction:03d}" if fraction else f"{sign}{seconds}"
