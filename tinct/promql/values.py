"""The values a PromQL expression evaluates to, at every step at once.

The engine evaluates a query over all its steps together (an instant query
is a range query of one step), so each value holds one column per step:

* :class:`Vector` — an instant vector: series × steps, with a ``present``
  mask (a series has no sample at a step: the mask is False there; NaN is a
  real value, never "absent").
* :class:`Scalar` — one float per step.
* :class:`String` — a string literal.
* :class:`Window` — a range vector as a function argument sees it: each
  series' raw samples, and for every step the index range of the samples in
  that step's window ``(t - range, t]`` (left-open, Prometheus 3).

Labels are sorted ``(name, value)`` tuples (:data:`tinct.metrics.Labels`),
``__name__`` included when the series has one. Everything here is plain
data; :mod:`tinct.promql.engine` makes it, :mod:`tinct.promql.functions`
computes on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinct.metrics import NAME_LABEL, Labels

__all__ = [
    "Vector",
    "Scalar",
    "String",
    "Window",
    "Value",
    "EvalContext",
    "drop_name",
    "NAME_LABEL",
]


@dataclass
class Vector:
    """An instant vector at every step.

    Attributes:
        labels: one label set per series (row).
        values: float64, shape (series, steps).
        present: bool, shape (series, steps); False where the series has
            no sample at that step.
    """

    labels: list[Labels]
    values: np.ndarray
    present: np.ndarray

    @classmethod
    def empty(cls, steps: int) -> Vector:
        return cls([], np.zeros((0, steps)), np.zeros((0, steps), dtype=bool))

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class Scalar:
    """A scalar at every step: float64, shape (steps,)."""

    values: np.ndarray


@dataclass
class String:
    """A string literal (the same at every step)."""

    value: str


@dataclass
class Window:
    """A range vector as a function argument sees it.

    Attributes:
        labels: one label set per series.
        times: per series, its sample timestamps (int64 ms, ascending).
        values: per series, its sample values (float64), staleness markers
            already removed.
        lo, hi: int arrays of shape (series, steps): the samples of series
            ``s`` in the window of step ``i`` are ``times[s][lo[s, i]:hi[s, i]]``.
        ends: int64 ms, shape (steps,): each step's window end ``t`` (after
            ``offset`` and ``@``); the window is ``(t - range_ms, t]``.
        range_ms: the window length.
    """

    labels: list[Labels]
    times: list[np.ndarray]
    values: list[np.ndarray]
    lo: np.ndarray
    hi: np.ndarray
    ends: np.ndarray
    range_ms: int


Value = Vector | Scalar | String | Window


@dataclass
class EvalContext:
    """What every function and operator may need about the evaluation.

    Attributes:
        steps: int64 ms, the evaluation timestamps (one for an instant query).
        lookback_ms: the lookback delta (5 minutes by default).
        warnings, infos: annotations collected while evaluating (strings).
    """

    steps: np.ndarray
    lookback_ms: int = 300_000
    warnings: list[str] = field(default_factory=list)
    infos: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.steps)


def drop_name(labels: Labels) -> Labels:
    """``labels`` without ``__name__`` (what most functions and operators return)."""
    return tuple(p for p in labels if p[0] != NAME_LABEL)
