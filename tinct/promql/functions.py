"""The PromQL function table: every function's signature and implementation.

Signatures mirror Prometheus's ``promql/parser/functions.go`` (argument
types, optional and variadic arguments, the ``experimental`` flag, which
Prometheus only accepts with ``--enable-feature=promql-experimental-functions``);
implementations follow ``promql/functions.go`` (Prometheus 3.x) and live in
``functions_math`` (per-sample math, dates, time), ``functions_range``
(``rate`` and the other range-vector functions), ``functions_over_time``,
``functions_histogram`` (quantiles) and ``functions_labels`` (labels,
ordering, ``absent``, ``info``).

The engine's side of the contract:

* it evaluates the arguments and calls ``spec.impl(ctx, args, call)``:
  ``Vector`` for "vector", ``Window`` for "matrix", ``Scalar`` (one value per
  step) for "scalar", ``String`` for "string"; optional arguments that are
  left out are simply not passed;
* ``call`` is a :class:`CallInfo` carrying what values alone do not hold
  (``absent``'s matchers, ``timestamp``'s sample times, ``info``'s series);
* results already have ``__name__`` dropped where Prometheus drops it
  (``keeps_name`` says which functions keep it), so the engine must not
  drop it again; the engine still rejects duplicate label sets at a step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from tinct.metrics import Matcher
from tinct.promql import functions_labels as _labels
from tinct.promql import functions_math as _math
from tinct.promql.functions_histogram import HISTOGRAM_FUNCTIONS, NATIVE_ONLY_FUNCTIONS
from tinct.promql.functions_over_time import OVER_TIME_FUNCTIONS
from tinct.promql.functions_range import RANGE_FUNCTIONS
from tinct.promql.values import EvalContext, Value, Vector

__all__ = [
    "CallInfo",
    "FunctionSpec",
    "FunctionImpl",
    "FUNCTIONS",
    "call_function",
    "function_names",
    "returns_ordered",
]

FunctionImpl = Callable[..., Value]
"""``impl(ctx: EvalContext, args: list[Value], call: CallInfo | None = None) -> Value``."""


@dataclass
class CallInfo:
    """What a function needs from the call's syntax, beyond the argument values.

    Attributes:
        matchers: the label matchers of the first argument when it is a
            (vector or matrix) selector, ``__name__="x"`` included: ``absent``
            and ``absent_over_time`` build their labels from them. Empty for
            any other argument.
        timestamps: int64 ms, shape (series, steps): the timestamp of each
            sample of ``timestamp()``'s argument when it is a plain vector
            selector (the sample the lookback found). None: the step times.
        info_series: for ``info()``: the info series at every step, selected
            by the second argument's ``__name__`` matchers (``target_info``
            when it has none) with the usual lookback.
        info_matchers: for ``info()``: the second argument's matchers.
    """

    matchers: list[Matcher] = field(default_factory=list)
    timestamps: np.ndarray | None = None
    info_series: Vector | None = None
    info_matchers: list[Matcher] = field(default_factory=list)


@dataclass(frozen=True)
class FunctionSpec:
    """One PromQL function.

    Attributes:
        name: as written in queries.
        arg_types: "vector", "matrix", "scalar" or "string" per parameter;
            with ``max_args == -1`` the last type repeats.
        min_args, max_args: how many arguments are accepted (-1: no limit).
        return_type: "vector" or "scalar".
        impl: the implementation (see :data:`FunctionImpl`).
        experimental: Prometheus gates it behind
            ``--enable-feature=promql-experimental-functions``.
        keeps_name: the result keeps ``__name__`` (all others drop it).
        ordered: the result's row order is meaningful (instant queries).
    """

    name: str
    arg_types: tuple[str, ...]
    min_args: int
    max_args: int
    return_type: str
    impl: FunctionImpl
    experimental: bool = False
    keeps_name: bool = False
    ordered: bool = False


def _spec(
    name: str,
    arg_types: str,
    impl: FunctionImpl,
    *,
    returns: str = "vector",
    variadic: int = 0,
    experimental: bool = False,
    keeps_name: bool = False,
    ordered: bool = False,
) -> FunctionSpec:
    """A spec from Prometheus's notation: ``variadic`` 0 means exactly
    ``arg_types``; n > 0 makes the last one optional and lets it repeat up to
    n times; -1 lets it repeat without limit."""
    types = tuple(t for t in arg_types.split() if t)
    if variadic == 0:
        lo, hi = len(types), len(types)
    else:
        lo = len(types) - 1
        hi = -1 if variadic < 0 else lo + variadic
    return FunctionSpec(name, types, lo, hi, returns, impl, experimental, keeps_name, ordered)


def _build() -> dict[str, FunctionSpec]:
    specs = [
        _spec(name, "vector", _math.math_impl(fn)) for name, fn in _math.MATH_FUNCTIONS.items()
    ]
    specs += [
        _spec(name, "vector", _math.date_impl(name), variadic=1) for name in _math.DATE_FUNCTIONS
    ]
    experimental_range = {
        "double_exponential_smoothing",
        "mad_over_time",
        "first_over_time",
        "ts_of_max_over_time",
        "ts_of_min_over_time",
        "ts_of_first_over_time",
        "ts_of_last_over_time",
    }
    range_args = {
        "predict_linear": "matrix scalar",
        "double_exponential_smoothing": "matrix scalar scalar",
        "quantile_over_time": "scalar matrix",
    }
    specs += [
        _spec(
            name,
            range_args.get(name, "matrix"),
            impl,
            experimental=name in experimental_range,
            keeps_name=name in ("last_over_time", "first_over_time"),
        )
        for name, impl in {**RANGE_FUNCTIONS, **OVER_TIME_FUNCTIONS}.items()
    ]
    hist = HISTOGRAM_FUNCTIONS
    specs += [_spec(name, "vector", hist[name]) for name in NATIVE_ONLY_FUNCTIONS]
    specs += [
        _spec("histogram_quantile", "scalar vector", hist["histogram_quantile"]),
        _spec("histogram_fraction", "scalar scalar vector", hist["histogram_fraction"]),
        _spec(
            "histogram_quantiles",
            "vector string scalar scalar",
            hist["histogram_quantiles"],
            variadic=9,
            experimental=True,
        ),
        _spec("absent", "vector", _labels.absent),
        _spec("absent_over_time", "matrix", _labels.absent_over_time),
        _spec("clamp", "vector scalar scalar", _math.clamp),
        _spec("clamp_max", "vector scalar", _math.clamp_max),
        _spec("clamp_min", "vector scalar", _math.clamp_min),
        _spec("round", "vector scalar", _math.round_, variadic=1),
        _spec("sgn", "vector", _math.sgn),
        _spec("timestamp", "vector", _math.timestamp),
        _spec("vector", "scalar", _math.vector),
        _spec("scalar", "vector", _math.scalar, returns="scalar"),
        _spec("time", "", _math.time_, returns="scalar"),
        _spec("pi", "", _math.pi, returns="scalar"),
        _spec("start", "", _math.query_start, returns="scalar", experimental=True),
        _spec("end", "", _math.query_end, returns="scalar", experimental=True),
        _spec("range", "", _math.query_range, returns="scalar", experimental=True),
        _spec("step", "", _math.query_step, returns="scalar", experimental=True),
        _spec("min_of", "scalar scalar", _math.min_of, returns="scalar", experimental=True),
        _spec("max_of", "scalar scalar", _math.max_of, returns="scalar", experimental=True),
        _spec(
            "label_replace",
            "vector string string string string",
            _labels.label_replace,
            keeps_name=True,
        ),
        _spec(
            "label_join",
            "vector string string string",
            _labels.label_join,
            variadic=-1,
            keeps_name=True,
        ),
        _spec("sort", "vector", _labels.sort, keeps_name=True, ordered=True),
        _spec("sort_desc", "vector", _labels.sort_desc, keeps_name=True, ordered=True),
        _spec(
            "sort_by_label",
            "vector string",
            _labels.sort_by_label,
            variadic=-1,
            experimental=True,
            keeps_name=True,
            ordered=True,
        ),
        _spec(
            "sort_by_label_desc",
            "vector string",
            _labels.sort_by_label_desc,
            variadic=-1,
            experimental=True,
            keeps_name=True,
            ordered=True,
        ),
        _spec(
            "info",
            "vector vector",
            _labels.info,
            variadic=1,
            experimental=True,
            keeps_name=True,
        ),
    ]
    return {spec.name: spec for spec in specs}


FUNCTIONS: dict[str, FunctionSpec] = _build()


def function_names(*, experimental: bool = True) -> list[str]:
    """Every function's name, sorted; without the experimental ones if asked."""
    return sorted(n for n, s in FUNCTIONS.items() if experimental or not s.experimental)


def returns_ordered(name: str) -> bool:
    """Whether ``name``'s result order is meaningful (``sort``, ``sort_by_label`` …)."""
    spec = FUNCTIONS.get(name)
    return spec is not None and spec.ordered


def call_function(
    name: str, ctx: EvalContext, args: list[Value], info: CallInfo | None = None
) -> Value:
    """Call function ``name`` (a convenience for tests and the engine)."""
    return FUNCTIONS[name].impl(ctx, args, info)
