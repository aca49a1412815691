"""Go's values and ``fmt`` as Prometheus's templates see them.

The value model the template executor and the functions share (maps,
structs, samples, times, and Go's idea of truth and type names), and Go's
``fmt`` printing of them (``%v`` of a float64 is its shortest ``g`` form,
``printf`` verbs), so ``{{ $value }}`` prints what Prometheus prints. Split
from :mod:`tinct.alerting.template_funcs`, which holds Prometheus's
function map.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

__all__ = [
    "ArgTypeError",
    "CallError",
    "GoMap",
    "GoStruct",
    "GoTime",
    "HTML",
    "Sample",
    "fmt_float",
    "go_quote",
    "go_sprint",
    "go_sprintf",
    "go_type",
    "go_value_text",
    "str_time",
    "truth",
]


class CallError(Exception):
    """A function failed; the executor reports it as ``error calling NAME: msg``."""


class ArgTypeError(Exception):
    """An argument has the wrong Go type (reported without ``error calling``)."""


class GoMap(dict[str, Any]):
    """A Go map; ``zero`` is what a missing key gives (``""`` for ``map[string]string``)."""

    def __init__(self, items: Mapping[str, Any], zero: Any = "", type_name: str = "") -> None:
        super().__init__(items)
        self.zero = zero
        self.type_name = type_name or "map[string]string"


@dataclass
class GoStruct:
    """A Go struct value: fields in declaration order, its type for messages."""

    type_name: str
    fields: dict[str, Any]


@dataclass
class Sample:
    """Prometheus's template ``*sample``: ``.Labels`` and ``.Value``."""

    Labels: GoMap
    Value: float


@dataclass
class GoTime:
    """A ``time.Time`` (UTC), with the methods templates call."""

    at: datetime

    def call(self, name: str, args: Sequence[Any]) -> Any:
        if name == "Format" and len(args) == 1 and isinstance(args[0], str):
            return _go_time_format(self.at, args[0])
        if name == "Unix" and not args:
            return int(self.at.timestamp() // 1)
        if name == "UTC" and not args:
            return self
        if name == "String" and not args:
            return str_time(self.at)
        raise ArgTypeError(f"can't evaluate field {name} in type time.Time")


def go_type(value: Any) -> str:
    """Go's ``%T`` of a modelled value."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, HTML):
        return "template.HTML"
    if isinstance(value, str):
        return "string"
    if isinstance(value, GoMap):
        return value.type_name
    if isinstance(value, dict):
        return "map[string]interface {}"
    if isinstance(value, Sample):
        return "*template.sample"
    if isinstance(value, list):
        return "template.queryResult"
    if isinstance(value, GoStruct):
        return value.type_name
    if isinstance(value, GoTime):
        return "time.Time"
    return type(value).__name__


class HTML(str):
    """``html/template.HTML``: what ``safeHtml`` returns."""


def truth(value: Any) -> bool:
    """Go template truth: false, 0, nil and empty strings, slices and maps are false."""
    if value is None:
        return False
    if isinstance(value, bool | int | float | str | list | dict):
        return bool(value)
    return True


# ---- fmt ------------------------------------------------------------------


def _shortest_digits(v: float) -> tuple[str, int]:
    """(digits, decimal point position) of the shortest repr of ``abs(v)``."""
    sign, digits, exp = Decimal(repr(abs(v))).as_tuple()
    text = "".join(map(str, digits)).rstrip("0") or "0"
    assert isinstance(exp, int)
    dp = len(digits) + exp
    return text, dp if text != "0" else 1


def _format_e(neg: bool, digits: str, dp: int, upper: bool = False) -> str:
    mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    exp = dp - 1
    e = "E" if upper else "e"
    return f"{'-' if neg else ''}{mant}{e}{'-' if exp < 0 else '+'}{abs(exp):02d}"


def go_float_v(v: float) -> str:
    """Go's ``%v`` of a float64 (``strconv.FormatFloat(v, 'g', -1, 64)``)."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    neg = math.copysign(1.0, v) < 0
    if v == 0:
        return "-0" if neg else "0"
    digits, dp = _shortest_digits(v)
    exp = dp - 1
    if exp < -4 or exp >= 6:  # "if precision was the shortest possible, use 6"
        return _format_e(neg, digits, dp)
    if dp <= 0:
        text = "0." + "0" * -dp + digits
    elif dp >= len(digits):
        text = digits + "0" * (dp - len(digits))
    else:
        text = digits[:dp] + "." + digits[dp:]
    return ("-" if neg else "") + text


def go_value_text(value: Any, top: bool = True) -> str:
    """``fmt.Sprint`` of one value (what ``{{ . }}`` prints)."""
    if value is None:
        return "<no value>" if top else "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float_v(value)
    if isinstance(value, int | str):
        return str(value)
    if isinstance(value, dict):
        inner = " ".join(f"{k}:{go_value_text(value[k], False)}" for k in sorted(value))
        return f"map[{inner}]"
    if isinstance(value, list):
        return "[" + " ".join(go_value_text(v, False) for v in value) + "]"
    if isinstance(value, Sample):
        return f"&{{{go_value_text(value.Labels, False)} {go_float_v(value.Value)}}}"
    if isinstance(value, GoStruct):
        return "{" + " ".join(go_value_text(v, False) for v in value.fields.values()) + "}"
    if isinstance(value, GoTime):
        return str_time(value.at)
    return str(value)


def go_sprint(args: Sequence[Any]) -> str:
    """``fmt.Sprint``: spaces between operands when neither side is a string."""
    out: list[str] = []
    for i, arg in enumerate(args):
        if i > 0 and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(go_value_text(arg, False) if arg is not None else "<nil>")
    return "".join(out)


_VERB = re.compile(r"%([-+# 0]*)(\d+|\*)?(?:\.(\d*|\*))?(.)", re.DOTALL)


def _bad_verb(verb: str, arg: Any) -> str:
    if arg is None:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({go_type(arg)}={go_value_text(arg, False)})"


def _pad(text: str, flags: str, width: int | None) -> str:
    if width is None or len(text) >= width:
        return text
    if "-" in flags:
        return text.ljust(width)
    if "0" in flags and text and (text[0].isdigit() or text[0] in "+-"):
        sign = text[0] if text[0] in "+-" else ""
        return sign + text[len(sign) :].rjust(width - len(sign), "0")
    return text.rjust(width)


def fmt_float(v: float, verb: str, flags: str, prec: int | None) -> str:
    if math.isnan(v):
        return "+NaN" if "+" in flags else "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if verb in "gG" and prec is None:
        text = go_float_v(v)
        text = text.upper() if verb == "G" else text
    elif verb in "vV":
        text = go_float_v(v)
    else:
        spec = f"{'#' if '#' in flags else ''}.{6 if prec is None else prec}{verb}"
        text = format(v, spec)
    if "+" in flags and not text.startswith("-"):
        text = "+" + text
    elif " " in flags and not text.startswith("-"):
        text = " " + text
    return text


def go_quote(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _fmt_one(verb: str, flags: str, prec: int | None, arg: Any) -> str:
    if verb == "T":
        return go_type(arg)
    if verb == "v":
        if isinstance(arg, float):
            return fmt_float(arg, "v", flags, prec)
        return go_value_text(arg, False)
    if isinstance(arg, bool):
        return ("true" if arg else "false") if verb == "t" else _bad_verb(verb, arg)
    if isinstance(arg, int):
        if verb == "d":
            return ("+" if "+" in flags and arg >= 0 else "") + str(arg)
        if verb in "xXob":
            return format(arg, verb)
        if verb == "c":
            return chr(arg)
        if verb == "q":
            return "'" + chr(arg) + "'"
        if verb in "eEfFgG":
            return _bad_verb(verb, arg)
        return _bad_verb(verb, arg)
    if isinstance(arg, float):
        if verb in "eEfFgG":
            return fmt_float(arg, verb, flags, prec)
        return _bad_verb(verb, arg)
    if isinstance(arg, str):
        if verb == "s":
            return arg if prec is None else arg[:prec]
        if verb == "q":
            return go_quote(arg)
        if verb in "xX":
            text = arg.encode().hex()
            return text.upper() if verb == "X" else text
        return _bad_verb(verb, arg)
    if isinstance(arg, list) and verb in "sdq":
        return "[" + " ".join(_fmt_one(verb, flags, prec, a) for a in arg) + "]"
    if verb == "s" and arg is not None and not isinstance(arg, list):
        return go_value_text(arg, False)
    return _bad_verb(verb, arg)


def go_sprintf(fmt: str, args: Sequence[Any]) -> str:
    """``fmt.Sprintf`` for the verbs templates use (``%s %d %f %.2f %e %g %v %q %x %t %T``)."""
    out: list[str] = []
    pos = 0
    argi = 0
    while True:
        pct = fmt.find("%", pos)
        if pct < 0:
            out.append(fmt[pos:])
            break
        out.append(fmt[pos:pct])
        m = _VERB.match(fmt, pct)
        if not m:
            out.append("%!(NOVERB)")
            break
        pos = m.end()
        flags, width_s, prec_s, verb = m.groups()
        if verb == "%":
            out.append("%")
            continue
        width = int(width_s) if width_s and width_s != "*" else None
        prec = int(prec_s or "0") if prec_s is not None and prec_s != "*" else None
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        arg = args[argi]
        argi += 1
        out.append(_pad(_fmt_one(verb, flags, prec, arg), flags, width))
    if argi < len(args):
        extra = ", ".join(
            f"{go_type(a)}={go_value_text(a, False)}" if a is not None else "<nil>"
            for a in args[argi:]
        )
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


# ---- time -----------------------------------------------------------------


def str_time(at: datetime) -> str:
    """Go's ``time.Time.String()`` in UTC: ``2015-06-23 13:19:44.128 +0000 UTC``."""
    frac = f"{at.microsecond:06d}".rstrip("0")
    return at.strftime("%Y-%m-%d %H:%M:%S") + (f".{frac}" if frac else "") + " +0000 UTC"


_GO_LAYOUT = [
    ("January", "%B"),
    ("Jan", "%b"),
    ("Monday", "%A"),
    ("Mon", "%a"),
    ("2006", "%Y"),
    ("MST", "UTC"),
    ("Z07:00", "Z"),
    ("-07:00", "+00:00"),
    ("-0700", "+0000"),
    ("01", "%m"),
    ("02", "%d"),
    ("06", "%y"),
    ("15", "%H"),
    ("03", "%I"),
    ("04", "%M"),
    ("05", "%S"),
    ("PM", "%p"),
    (".000", ".{ms}"),
]


def _go_time_format(at: datetime, layout: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(layout):
        for token, repl in _GO_LAYOUT:
            if layout.startswith(token, i):
                out.append(repl.replace("{ms}", f"{at.microsecond // 1000:03d}"))
                i += len(token)
                break
        else:
            out.append(layout[i].replace("%", "%%"))
            i += 1
    return at.strftime("".join(out))
