"""One hop of the dyeing end-to-end test's call chain (tests/tracing/test_dye_e2e.py).

Run as ``python -m tests.tracing._dye_app --name gateway --port P [--next URL]
--mode tinct|plain --otlp http://127.0.0.1:<otlp-http> [--tinct-url URL]``.

``GET /orders/<id>`` (and ``GET /vip/<id>``) logs ``handled <path>`` at DEBUG,
calls ``<next>/orders/<id>`` with ``requests`` when there is a next hop, and
answers JSON: this hop's service, trace id and server span id, and the next
hop's answer under ``next``. ``/vip/<id>`` wraps the downstream call in
``tinct.tracing.dye("user:vip")`` (the dye from code).

Modes:

* ``tinct``: ``tinct.tracing.setup`` at sampling probability 0 (polling
  ``--tinct-url`` for dye rules when given), ``TinctWSGIMiddleware`` with
  ``x-user-id`` as ``enduser.id``, ``instrument_clients()``, and
  ``instrument_logging`` with the app's logger at WARNING.
* ``plain``: the OpenTelemetry SDK as the SDK documents it, nothing of tinct:
  ``ParentBased(ALWAYS_ON)``, the SDK's OTLP/HTTP exporter in a
  ``BatchSpanProcessor``, the default propagators (tracecontext + baggage),
  ``OpenTelemetryMiddleware`` and ``RequestsInstrumentor``.

SIGTERM shuts the server down and flushes spans and logs before exiting.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import signal
import sys
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import requests
from opentelemetry import trace

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

logger = logging.getLogger("tests.dye_app")

_PATH = re.compile(r"/(orders|vip)/([^/]+)\Z")
VIP_DYE = "user:vip"


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def route(environ: WSGIEnvironment) -> str | None:
    """The route template of a request: ``/orders/{id}`` or ``/vip/{id}``."""
    match = _PATH.match(environ.get("PATH_INFO", ""))
    return f"/{match.group(1)}/{{id}}" if match else None


def make_app(name: str, next_url: str | None) -> WSGIApplication:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        match = _PATH.match(path)
        if match is None:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        kind, order = match.groups()
        context = trace.get_current_span().get_span_context()
        answer: dict[str, Any] = {
            "service": name,
            "trace_id": format(context.trace_id, "032x"),
            "span_id": format(context.span_id, "016x"),
        }
        if kind == "vip":
            import tinct.tracing

            with tinct.tracing.dye(VIP_DYE):
                logger.debug("handled %s", path)
                answer["next"] = _call(next_url, order)
        else:
            logger.debug("handled %s", path)
            answer["next"] = _call(next_url, order)
        body = json.dumps(answer).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]

    return app


def _call(next_url: str | None, order: str) -> Any:
    if next_url is None:
        return None
    response = requests.get(f"{next_url}/orders/{order}", timeout=10)
    response.raise_for_status()
    return response.json()


def _tinct(args: argparse.Namespace, app: WSGIApplication) -> tuple[Any, Callable[[], None]]:
    import tinct.tracing
    from tinct.tracing.logging import instrument_logging, uninstrument_logging

    handle = tinct.tracing.setup(
        service_name=args.name,
        endpoint=args.otlp,
        sampling_probability=0.0,
        rules_server=args.tinct_url,
        rules_interval=args.rules_interval if args.tinct_url else None,
    )
    tinct.tracing.instrument_clients(libraries=["requests"])
    logger.setLevel(logging.WARNING)
    instrument_logging(
        endpoint=args.otlp + "/v1/logs", resource_attributes={"service.name": args.name}
    )
    wrapped = tinct.tracing.TinctWSGIMiddleware(app, user_header="x-user-id", route_resolver=route)

    def close() -> None:
        handle.shutdown()
        uninstrument_logging()

    return wrapped, close


def _plain(args: argparse.Namespace, app: WSGIApplication) -> tuple[Any, Callable[[], None]]:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.requests import RequestsInstrumentor
    from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased

    provider = TracerProvider(
        resource=Resource.create({"service.name": args.name}), sampler=ParentBased(ALWAYS_ON)
    )
    exporter = OTLPSpanExporter(endpoint=args.otlp + "/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=200))
    trace.set_tracer_provider(provider)
    RequestsInstrumentor().instrument()
    return OpenTelemetryMiddleware(app), provider.shutdown


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.tracing._dye_app")
    parser.add_argument("--name", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--next", dest="next_url")
    parser.add_argument("--mode", choices=("tinct", "plain"), required=True)
    parser.add_argument("--otlp", required=True, help="OTLP/HTTP base URL")
    parser.add_argument("--tinct-url", help="tinct's main port, polled for dye rules")
    parser.add_argument("--rules-interval", type=float, default=0.2)
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, format="%(name)s %(levelname)s %(message)s")

    app = make_app(args.name, args.next_url)
    wrapped, close = (_tinct if args.mode == "tinct" else _plain)(args, app)
    server = make_server(
        "127.0.0.1", args.port, wrapped, server_class=_ThreadingServer, handler_class=_QuietHandler
    )

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    print(f"{args.name} ({args.mode}) serving on {args.port}", file=sys.stderr, flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
        close()
        print(f"{args.name} stopped", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
