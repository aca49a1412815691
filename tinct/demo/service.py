"""One demo service as its own process, instrumented with tinct.tracing.

``python -m tinct.demo.service NAME --port P --otlp URL --peers gateway=P1,...``
serves NAME's routes (tinct.demo.apps) on 127.0.0.1:P with the standard
library's threading WSGI server, instrumented the way an app would be:
``tinct.tracing.setup(...)`` (the entry service also polls tinct for dye
rules), ``TinctWSGIMiddleware`` with ``x-user-id`` as ``enduser.id`` and the
route template as span name, ``instrument_clients`` naming each peer's
``peer.service`` (Redis too), and ``logs=True``. Before each request it
applies the faults in force from ``--faults`` (tinct.demo.faults).

SIGTERM or SIGINT stops serving, then flushes spans and logs before exiting 0.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import signal
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import requests

from tinct.demo.apps import AppContext, HTTPError, Request, Route, routes_for
from tinct.demo.faults import FaultsFile
from tinct.demo.stores import Database, PostgresDatabase, SqliteDatabase, open_cache
from tinct.demo.topology import SERVICES

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["main", "make_app"]

_MAX_BODY_BYTES = 64 * 1024
_REASONS = {200: "OK", 201: "Created", 202: "Accepted", 400: "Bad Request", 404: "Not Found"}
_REASONS |= {422: "Unprocessable Content", 500: "Internal Server Error", 502: "Bad Gateway"}
_REASONS |= {503: "Service Unavailable"}


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 128


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _match(routes: list[Route], method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    for route in routes:
        if route.method == method and (found := route.pattern.match(path)):
            return route, found.groupdict()
    return None


def make_app(ctx: AppContext, routes: list[Route], faults: FaultsFile) -> WSGIApplication:
    """The WSGI app serving ``routes``, with ``faults`` applied before each request."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        found = _match(routes, method, environ.get("PATH_INFO", ""))
        try:
            if found is None:
                raise HTTPError(404, "no such route")
            route, params = found
            _apply_faults(ctx, faults)
            request = Request(method, environ["PATH_INFO"], params, _user(environ), _body(environ))
            status, answer = route.handler(request)
        except HTTPError as exc:
            if exc.status >= 500:
                ctx.logger.error("%s %s: %s", method, environ.get("PATH_INFO"), exc)
            status, answer = exc.status, {"error": str(exc)}
        body = json.dumps(answer).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        start_response(f"{status} {_REASONS.get(status, 'Status')}", headers)
        return [body]

    return app


def _apply_faults(ctx: AppContext, faults: FaultsFile) -> None:
    for fault in faults.active(ctx.name):
        if fault.kind == "down":
            raise HTTPError(503, f"{ctx.name} is down")
        if fault.kind == "latency":
            time.sleep(fault.latency_ms / 1000)
        elif fault.kind == "errors" and ctx.rng.random() < fault.error_ratio:
            raise HTTPError(500, f"{ctx.name}: upstream processor timed out")


def _user(environ: WSGIEnvironment) -> str | None:
    value = environ.get("HTTP_X_USER_ID")
    return str(value) if value else None


def _body(environ: WSGIEnvironment) -> dict[str, Any]:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise HTTPError(400, "Content-Length: not a number") from None
    if length <= 0:
        return {}
    if length > _MAX_BODY_BYTES:
        raise HTTPError(400, f"body: more than {_MAX_BODY_BYTES} bytes")
    try:
        body = json.loads(environ["wsgi.input"].read(length))
    except ValueError:
        raise HTTPError(400, "body: not JSON") from None
    if not isinstance(body, dict):
        raise HTTPError(400, "body: not a JSON object")
    return body


def _peers(text: str) -> dict[str, int]:
    peers = {}
    for item in filter(None, text.split(",")):
        name, _, port = item.partition("=")
        peers[name] = int(port)
    return peers


def _database(postgres: str | None, workdir: Path, name: str) -> Database:
    if postgres:
        return PostgresDatabase(postgres)
    return SqliteDatabase(workdir / "db" / f"{name}.sqlite3")


def main(argv: list[str] | None = None) -> int:
    """Serve one demo service until SIGTERM/SIGINT; the exit code."""
    parser = argparse.ArgumentParser(prog="python -m tinct.demo.service")
    parser.add_argument("name", choices=[s.name for s in SERVICES])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--peers", required=True, help="name=port,... of every demo service")
    parser.add_argument("--otlp", required=True, help="tinct's OTLP/HTTP base URL")
    parser.add_argument("--tinct-url", help="tinct's main port, polled for dye rules (entry)")
    parser.add_argument("--rules-interval", type=float, default=2.0)
    parser.add_argument("--sampling", type=float, default=0.05)
    parser.add_argument("--redis", help="redis://127.0.0.1:P/0; none: an in-process dict")
    parser.add_argument("--postgres", help="postgresql://... of the demo's database; none: SQLite")
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--faults", type=Path, help="the demo's faults.json")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    service = next(s for s in SERVICES if s.name == args.name)

    import tinct.tracing

    tracing = tinct.tracing.setup(
        service_name=args.name,
        endpoint=args.otlp,
        sampling_probability=args.sampling,
        resource_attributes={"service.namespace": "tinct-demo", "deployment.environment": "demo"},
        rules_server=args.tinct_url if service.entry else None,
        rules_interval=args.rules_interval if service.entry and args.tinct_url else None,
        logs=True,
        metric_export_interval=5.0,  # RED metrics: the service and interface layers, live
    )
    ports = _peers(args.peers)
    peer_service = {f"127.0.0.1:{port}": name for name, port in ports.items()}
    if args.redis:
        peer_service[urlsplit(args.redis).netloc] = "redis"
    if args.postgres:
        pg = urlsplit(args.postgres)
        peer_service[f"{pg.hostname}:{pg.port or 5432}"] = "postgresql"
    clients = tinct.tracing.instrument_clients(peer_service=peer_service)

    ctx = AppContext(
        name=args.name,
        urls={name: f"http://127.0.0.1:{port}" for name, port in ports.items()},
        db=_database(args.postgres, args.workdir, args.name) if service.sqlite else None,
        cache=open_cache(args.redis if service.redis else None),
        session=requests.Session(),
        logger=logging.getLogger(f"tinct.demo.{args.name}"),
        rng=random.Random(f"{args.seed}:{args.name}"),
    )
    routes = routes_for(ctx, args.seed)
    app = make_app(ctx, routes, FaultsFile(args.faults))

    def route_of(environ: WSGIEnvironment) -> str | None:
        found = _match(routes, environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", ""))
        return found[0].template if found else None

    wrapped = tinct.tracing.TinctWSGIMiddleware(
        app, user_header="x-user-id", route_resolver=route_of
    )
    server = make_server(
        "127.0.0.1", args.port, wrapped, server_class=_ThreadingServer, handler_class=_QuietHandler
    )

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    ctx.logger.info("%s serving on 127.0.0.1:%d", args.name, args.port)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
        clients.uninstrument()
        tracing.shutdown()
        ctx.logger.info("%s stopped", args.name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
