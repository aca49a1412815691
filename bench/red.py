"""Cost of the RED meters per request: ``python -m bench.red``.

One unsampled request (probability 0, the common case under 1/1024 sampling)
through ``TinctWSGIMiddleware``, called directly — environ in, body iterated
and closed, no sockets — in the same run:

* ``no meters``: the middleware on OpenTelemetry's no-op meter provider, so
  ``http.server.request.duration`` is not recorded (the cost before the RED
  meters, plus one attribute-cache look-up);
* ``meters``: the middleware on an SDK ``MeterProvider`` with a reader, the
  histogram recorded for every request as in production.

Requests spread over four routes and two statuses. Prints µs per request for
each (the minimum over several timeit runs), the difference and the ratio.
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable
from typing import Any
from wsgiref.util import setup_testing_defaults

from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tinct.tracing import TinctWSGIMiddleware, setup

ROUTES = ("/orders/{id}", "/users/{id}", "/carts/{id}", "/health")


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    failed = environ["PATH_INFO"].endswith("7")
    start_response("500 Internal Server Error" if failed else "200 OK", [])
    return [b"ok"]


def route(environ: dict[str, Any]) -> str | None:
    path = environ["PATH_INFO"]
    for template in ROUTES:
        if path.startswith(template.partition("{")[0]):
            return template
    return None


def environs(count: int) -> list[dict[str, Any]]:
    result = []
    for i in range(count):
        environ: dict[str, Any] = {
            "PATH_INFO": ROUTES[i % len(ROUTES)].replace("{id}", str(i)),
            "HTTP_X_USER_ID": f"user-{i % 50}",
        }
        setup_testing_defaults(environ)
        result.append(environ)
    return result


def _start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
    return lambda data: None


def requests_through(
    middleware: TinctWSGIMiddleware, batch: list[dict[str, Any]]
) -> Callable[[], None]:
    def run() -> None:
        for environ in batch:
            body = middleware(environ, _start_response)
            for _ in body:
                pass
            body.close()  # type: ignore[attr-defined]

    return run


def best_of(runs: dict[str, Callable[[], None]], number: int, repeat: int) -> dict[str, float]:
    """Seconds per pass of each run: the minimum over ``repeat`` timeit runs, taking turns."""
    best = {name: float("inf") for name in runs}
    for run in runs.values():
        run()  # warm-up
    for _ in range(repeat):
        for name, run in runs.items():
            best[name] = min(best[name], timeit.timeit(run, number=number) / number)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1000, help="requests per pass")
    parser.add_argument("--number", type=int, default=5, help="passes per timeit run")
    parser.add_argument("--repeat", type=int, default=15, help="timeit runs (min is kept)")
    args = parser.parse_args()

    tracing = setup(
        "bench", sampling_probability=0.0, span_exporter=InMemorySpanExporter(), set_global=False
    )
    meters = MeterProvider(metric_readers=[InMemoryMetricReader()])
    batch = environs(args.requests)
    runs = {
        "no meters": requests_through(
            TinctWSGIMiddleware(
                app,
                route_resolver=route,
                tracer_provider=tracing.tracer_provider,
                meter_provider=NoOpMeterProvider(),
            ),
            batch,
        ),
        "meters": requests_through(
            TinctWSGIMiddleware(
                app,
                route_resolver=route,
                tracer_provider=tracing.tracer_provider,
                meter_provider=meters,
            ),
            batch,
        ),
    }
    best = best_of(runs, args.number, args.repeat)
    per_request = {name: seconds / args.requests * 1e6 for name, seconds in best.items()}
    print(f"unsampled WSGI request, {args.requests} per pass (min of {args.repeat} runs):")
    for name, micros in per_request.items():
        print(f"  {name:<10} {micros:7.2f} µs/request")
    added = per_request["meters"] - per_request["no meters"]
    ratio = per_request["meters"] / per_request["no meters"]
    print(f"  added      {added:7.2f} µs/request  (ratio {ratio:.2f})")
    meters.shutdown()
    tracing.shutdown()


if __name__ == "__main__":
    main()
