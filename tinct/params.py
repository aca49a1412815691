"""Query-parameter parsers for the Jaeger query API, with Jaeger's rules.

Jaeger's HTTP API (``cmd/query/app/query_parser.go``) takes durations in Go's
``time.ParseDuration`` syntax, times in microseconds since the epoch, tags as
a JSON object (``tags={"k":"v"}``) or repeated ``tag=k:v``, and trace ids as
up to 32 hex digits. These functions reproduce those rules and raise
:class:`ParamError` naming the parameter, with Jaeger's wording, so the API can
answer 400 with a message a Jaeger client already understands.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from tinct.errors import DecodeError

__all__ = [
    "ParamError",
    "parse_go_duration",
    "parse_lookback",
    "parse_tags",
    "parse_trace_id",
    "parse_int_param",
]


class ParamError(DecodeError):
    """A query parameter can't be understood (HTTP 400); ``param`` names it."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


# Go's time.ParseDuration units (src/time/format.go, unitMap); both the micro
# sign U+00B5 and the Greek mu U+03BC spell microseconds.
_UNITS_NS = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,
    "\u03bcs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_DAY_NS = 24 * _UNITS_NS["h"]
_MAX_INT64 = 2**63 - 1
_TERM = re.compile(r"(\d*)(?:\.(\d*))?([^\d.]+)")


def parse_go_duration(text: str, *, extra_units: dict[str, int] | None = None) -> int:
    """Nanoseconds of a Go duration such as ``1.2ms``, ``4500ns``, ``1h2m3.5s``.

    Follows ``time.ParseDuration``: an optional sign, then one or more
    ``<decimal><unit>`` terms; ``"0"`` alone is allowed; a unit is required
    otherwise. Fractions are truncated to whole nanoseconds.

    Raises:
        ValueError: with Go's message (``time: invalid duration "..."``).
    """
    units = _UNITS_NS if extra_units is None else {**_UNITS_NS, **extra_units}
    rest = text
    sign = 1
    if rest[:1] in ("-", "+"):
        sign = -1 if rest[0] == "-" else 1
        rest = rest[1:]
    if rest == "0":
        return 0
    if not rest:
        raise ValueError(f'time: invalid duration "{text}"')
    total = 0
    pos = 0
    while pos < len(rest):
        match = _TERM.match(rest, pos)
        if match is None:
            raise ValueError(f'time: invalid duration "{text}"')
        whole, frac, unit = match.group(1), match.group(2), match.group(3)
        if not whole and not frac:
            raise ValueError(f'time: invalid duration "{text}"')
        if unit not in units:
            raise ValueError(f'time: unknown unit "{unit}" in duration "{text}"')
        scale = units[unit]
        total += int(whole or "0") * scale
        if frac:
            total += int(frac) * scale // 10 ** len(frac)
        pos = match.end()
    if total > _MAX_INT64:
        raise ValueError(f'time: invalid duration "{text}"')
    return sign * total


def parse_lookback(text: str) -> int:
    """Nanoseconds of a Jaeger UI ``lookback`` value (``1h``, ``2d``, ``7d``...).

    The UI sends Go durations extended with ``d`` for days; its "custom"
    choice carries explicit start/end instead and is handled by the caller.
    """
    try:
        value = parse_go_duration(text, extra_units={"d": _DAY_NS})
    except ValueError as exc:
        raise ParamError("lookback", f"unable to parse param 'lookback': {exc}") from None
    if value <= 0:
        raise ParamError("lookback", f"unable to parse param 'lookback': {text} is not positive")
    return value


def parse_int_param(name: str, text: str, *, minimum: int = 0, maximum: int | None = None) -> int:
    """A decimal integer query parameter within ``[minimum, maximum]``."""
    try:
        value = int(text.strip(), 10)
    except ValueError:
        raise ParamError(
            name, f"unable to parse param '{name}': {text!r} is not an integer"
        ) from None
    if value < minimum or (maximum is not None and value > maximum):
        limit = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise ParamError(name, f"unable to parse param '{name}': {value} must be {limit}")
    return value


def _tag_text(key: str, value: Any) -> str:
    # Jaeger compares typed tags by their string form; a JSON number keeps the
    # form the store gives a value of that type (tinct.spans.value_text).
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    raise ParamError(
        "tags",
        f"unable to parse param 'tags': value of {key!r} must be a string, number or boolean",
    )


def parse_tags(tags_params: Iterable[str], tag_params: Iterable[str]) -> dict[str, str]:
    """Merge ``tags`` (JSON objects) and ``tag`` (``key:value``) parameters.

    ``tag`` splits at the first colon, so values may contain colons (as in
    Jaeger's parser); a later parameter wins for a repeated key.
    """
    tags: dict[str, str] = {}
    for raw in tags_params:
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ParamError("tags", f"unable to parse param 'tags': {exc}") from None
        if not isinstance(obj, dict):
            raise ParamError("tags", "unable to parse param 'tags': expecting a JSON object")
        for key, value in obj.items():
            tags[str(key)] = _tag_text(str(key), value)
    for raw in tag_params:
        key, sep, value = raw.partition(":")
        if not sep:
            raise ParamError(
                "tag", f"malformed 'tag' parameter, expecting key:value, received: {raw}"
            )
        tags[key] = value
    return tags


_HEX = re.compile(r"^[0-9a-fA-F]{1,32}$")


def parse_trace_id(text: str) -> bytes:
    """16 raw bytes of a hex trace id of 1-32 digits, left-padded with zeros.

    Jaeger prints 64-bit ids without leading zeros, so short ids are padded
    as ``model.TraceIDFromString`` does.
    """
    if not _HEX.match(text):
        raise ParamError(
            "traceID", f"malformed parameter 'traceID': {text!r} is not 1-32 hex digits"
        )
    return bytes.fromhex(text.rjust(32, "0"))
