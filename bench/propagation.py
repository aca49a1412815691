"""Cost of propagation per request: ``python -m bench.propagation``.

One inject + extract round (what a service does per request it receives and
calls on) through tinct's ``DyePropagator`` and, in the same run, through the
plain OpenTelemetry SDK's default composite (``TraceContextTextMapPropagator``
+ ``W3CBaggagePropagator``). The header set is a realistic one: a
``traceparent`` with ids unique to each round (as in production, so nothing
keyed on it can be cached), a two-member ``tracestate`` and a ``baggage`` with
the dye and two other members. Prints µs per round for each (the minimum over
several timeit runs) and the ratio; the issue's goal is a ratio of 0.5 or less.
"""

from __future__ import annotations

import argparse
import random
import timeit
from collections.abc import Callable

from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from tinct.tracing.propagator import DyePropagator

TRACESTATE = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
BAGGAGE = "tinct.dye=route:GET%20%2Forders%2F%7Bid%7D,tenant=acme,region=eu-west-1"


def header_sets(count: int, seed: int = 7, distinct_dyes: bool = False) -> list[dict[str, str]]:
    """``count`` incoming header sets, each with its own trace and parent id.

    With ``distinct_dyes`` each also carries a dye of its own, so none is found
    in the propagator's (bounded) dye cache: the worst case, a caller that
    sends a new dye per request.
    """
    rng = random.Random(seed)
    return [
        {
            "traceparent": f"00-{rng.getrandbits(128):032x}-{rng.getrandbits(64):016x}-03",
            "tracestate": TRACESTATE,
            "baggage": BAGGAGE.replace("%7Bid%7D", f"{i}") if distinct_dyes else BAGGAGE,
        }
        for i in range(count)
    ]


def round_trip(propagator: TextMapPropagator, headers: list[dict[str, str]]) -> Callable[[], None]:
    """A callable doing extract + inject once per header set."""

    def run() -> None:
        for incoming in headers:
            context = propagator.extract(incoming)
            propagator.inject({}, context)

    return run


def best_of(runs: dict[str, Callable[[], None]], number: int, repeat: int) -> dict[str, float]:
    """Seconds per pass of each run: the minimum over ``repeat`` timeit runs.

    The runs take turns, so a slow phase of a shared machine hits them alike.
    """
    best = {name: float("inf") for name in runs}
    for run in runs.values():
        run()  # warm-up
    for _ in range(repeat):
        for name, run in runs.items():
            best[name] = min(best[name], timeit.timeit(run, number=number) / number)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--headers", type=int, default=1000, help="distinct header sets")
    parser.add_argument("--number", type=int, default=5, help="passes per timeit run")
    parser.add_argument("--repeat", type=int, default=15, help="timeit runs (min is kept)")
    args = parser.parse_args()
    headers = header_sets(args.headers)
    otel = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
    cold = header_sets(args.headers, distinct_dyes=True)
    runs = {
        "OpenTelemetry composite": round_trip(otel, headers),
        "tinct DyePropagator": round_trip(DyePropagator(), headers),
        "  with a new dye each time": round_trip(DyePropagator(), cold),
    }
    best = best_of(runs, args.number, args.repeat)
    us = {name: seconds / args.headers * 1e6 for name, seconds in best.items()}
    base = us["OpenTelemetry composite"]
    print(f"{'inject+extract':<30}{'µs/request':>12}{'ratio':>8}")
    for name, value in us.items():
        print(f"{name:<30}{value:>12.2f}{value / base:>8.2f}")
    print("goal: ratio <= 0.50")


if __name__ == "__main__":
    main()
