"""JavaScript number semantics, so tinct's texts match Grafana's to the character.

Grafana formats values in the browser: ``String(x)`` (ECMA-262 §6.1.6.1.20
Number::toString), ``Math.round`` (§21.3.2.28: halves round towards +∞) and
``toLocaleString`` differ from Python's ``repr``/``round``/``format`` (banker's
rounding, exponents from 1e16 on). Both work on the same IEEE-754 doubles, so
porting these few primitives makes ``toFixed`` below — a port of
``toFixed``/``getDecimalsForValue`` in grafana/packages/grafana-data/src/
valueFormats/valueFormats.ts — give Grafana's exact strings.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext

__all__ = [
    "js_str",
    "js_round",
    "to_fixed",
    "auto_decimals",
    "guess_decimals",
    "to_locale",
    "to_exponential",
]

# Number.prototype.toLocaleString() of ±Infinity in en-US.
_INF = "∞"
# Enough digits for any double written out in full (1.8e308 has 309).
_WIDE = Context(prec=800)


def _digits(x: float) -> tuple[str, int]:
    """The shortest round-trip digits of ``abs(x)`` and ECMA-262's ``n``.

    ``abs(x) == 0.<digits> × 10**n`` with no trailing zeros; Python's ``repr``
    and JavaScript both produce the shortest digit string that round-trips.
    """
    sign, digits, exp = Decimal(repr(abs(x))).normalize().as_tuple()
    ds = "".join(map(str, digits))
    assert isinstance(exp, int)
    return ds, exp + len(ds)


def js_str(x: float) -> str:
    """``String(x)`` for a JavaScript number (ECMA-262 Number::toString)."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    ds, n = _digits(x)
    k = len(ds)
    if k <= n <= 21:
        return sign + ds + "0" * (n - k)
    if 0 < n <= 21:
        return sign + ds[:n] + "." + ds[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + ds
    e = n - 1
    exp = ("+" if e >= 0 else "-") + str(abs(e))
    mantissa = ds if k == 1 else ds[0] + "." + ds[1:]
    return sign + mantissa + "e" + exp


def js_round(x: float) -> float:
    """``Math.round``: nearest integer, halves towards +∞ (``-2.5`` → ``-2``)."""
    if not math.isfinite(x):
        return x
    f = float(math.floor(x))
    # x - floor(x) is exact for doubles, so 0.49999999999999994 stays below 0.5.
    return f + 1.0 if x - f >= 0.5 else f


def auto_decimals(value: float) -> int:
    """Grafana's ``getDecimalsForValue``: the decimals shown when none are set.

    Grafana computes ``norm = |v| / 10**(floor(log10|v|) - 1)``, which is always
    in [10, 100), so its "special case for 2.5" (``norm > 2.25``) always adds a
    decimal: two significant digits after the leading one, none for integers.
    """
    if value == 0 or not math.isfinite(value) or value.is_integer():
        return 0
    log10 = math.floor(math.log(abs(value)) / math.log(10))
    return max(0, -log10 + 2)


def to_fixed(value: float, decimals: int | None = None) -> str:
    """Grafana's ``toFixed(value, decimals)`` (valueFormats.ts).

    Rounds half up to ``decimals`` (automatic when None), pads with zeros to
    exactly that many, and leaves exponent forms (``1e-10``) as JavaScript
    writes them.
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return _INF if value > 0 else "-" + _INF
    if decimals is None:
        decimals = auto_decimals(value)
    # Grafana clamps to toFixed's 0..100 (a count from dashboard JSON is unchecked).
    decimals = min(max(decimals, 0), 100)
    if value == 0:
        return f"{0.0:.{decimals}f}"
    factor = float(10**decimals) if decimals else 1.0
    formatted = js_str(js_round(value * factor) / factor)
    if "e" in formatted:
        return formatted
    dot = formatted.find(".")
    precision = 0 if dot == -1 else len(formatted) - dot - 1
    if precision < decimals:
        return (formatted if precision else formatted + ".") + "0" * (decimals - precision)
    return formatted


def guess_decimals(num: float) -> int:
    """@grafana/ui's ``guessDecimals(roundDecimals(num, 6))``: digits after the point."""
    if not math.isfinite(num):
        return 0
    if not num.is_integer():
        # uPlot's roundDec: nudged by (1 + EPSILON) so 0.1 * 3 lands on 0.3.
        num = js_round(num * 1e6 * (1 + 2.220446049250313e-16)) / 1e6
    s = js_str(num)
    if "e" in s or "." not in s:
        return 0
    return len(s.split(".", 1)[1])


def to_locale(value: float, decimals: int | None) -> str:
    """``value.toLocaleString(undefined, {maximumFractionDigits})`` in en-US.

    Grouped thousands, at most ``decimals`` digits after the point (3 when
    None), trailing zeros dropped, halves rounded away from zero as ECMA-402's
    ``halfExpand`` does.
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return _INF if value > 0 else "-" + _INF
    digits = 3 if decimals is None else min(max(decimals, 0), 100)
    q = Decimal(value).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP, context=_WIDE)
    text = format(q, ",f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def to_exponential(value: float, decimals: int | None) -> str:
    """``value.toExponential(decimals)`` (Grafana's ``sci`` unit): "1.2345e+4"."""
    if not math.isfinite(value):
        return js_str(value)
    if decimals is None:
        if value == 0:
            return "0e+0"
        # Without an argument JavaScript keeps the shortest round-trip digits.
        ds, n = _digits(value)
        mantissa = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
        e = n - 1
        return ("-" if value < 0 else "") + f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"
    decimals = min(max(decimals, 0), 100)
    if value == 0:
        return ("0." + "0" * decimals if decimals else "0") + "e+0"
    with localcontext(_WIDE) as ctx:
        # Ties go up on the exact binary value, as ECMA-262 picks "the larger n".
        ctx.rounding = ROUND_HALF_UP
        return format(Decimal(value), f".{decimals}e")
