"""The main port's app (3000): health, readiness, self-metrics, APIs and the UI.

Paths follow DESIGN.md ("Ports and paths") and Prometheus's management API
(``/-/healthy``, ``/-/ready`` answer in Prometheus's words). The web UI is a
Dash app, which is WSGI: it is mounted at ``/`` through a2wsgi, in this same
process and loop, after every API route so ``/api/...`` and ``/metrics`` win::

    from a2wsgi import WSGIMiddleware
    app = create_main_app(store, metrics=m, ui=WSGIMiddleware(dash_app.server))

Without a UI, ``/`` is a small page listing what the process serves.
"""

from __future__ import annotations

import asyncio
import hmac
import html
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, cast

from a2wsgi import WSGIMiddleware
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp

from tinct import __version__
from tinct.alerting.api import AlertsAPI
from tinct.dye_api import DyeRulesAPI
from tinct.jaeger_api import JaegerQueryAPI
from tinct.logs_api import LogsAPI
from tinct.promql.api import PrometheusAPI
from tinct.remote_write_api import RemoteWriteAPI
from tinct.rum_api import RumAPI
from tinct.selfmetrics import MetricsMiddleware, SelfMetrics
from tinct.storage.base import MetricReader, SpanReader
from tinct.targets_api import TargetsAPI
from tinct.topology.api import TopologyAPI
from tinct.topology.static import StaticTopology

__all__ = [
    "create_main_app",
    "set_store",
    "set_scheduler",
    "set_sample_sink",
    "set_engine",
    "set_alerting",
    "wsgi_ui",
]


def wsgi_ui(wsgi_app: Callable[..., Iterable[bytes]]) -> ASGIApp:
    """A WSGI app (e.g. Dash's Flask server) as the ASGI ``ui`` of :func:`create_main_app`.

    a2wsgi runs it in a thread pool inside this process, so the UI shares the
    main port with the APIs without another server.
    """
    return cast(ASGIApp, WSGIMiddleware(cast(Any, wsgi_app)))


_API_LINKS = (
    ("Jaeger: services", "/api/services"),
    ("Jaeger: operations", "/api/operations?service="),
    ("Jaeger: trace search", "/api/traces?service="),
    ("Jaeger: one trace", "/api/traces/{traceID}"),
    ("OTLP JSON: one trace", "/api/v3/traces/{traceID}"),
    ("Jaeger: service dependencies", "/api/dependencies"),
    ("tinct: topology", "/api/tinct/topology"),
    ("tinct: live dye rules", "/api/tinct/dye-rules"),
    ("tinct: a trace's logs", "/api/tinct/logs?trace_id="),
    ("tinct's own metrics", "/metrics"),
    ("health", "/-/healthy"),
    ("readiness", "/-/ready"),
)


def set_store(app: Starlette, store: SpanReader | None) -> None:
    """Give the main app its store once open; ``/-/ready`` turns 200."""
    app.state.store = store


def set_sample_sink(
    app: Starlette,
    sink: Callable[[Any], None] | None,
    metadata_sink: Callable[[Any], None] | None = None,
) -> None:
    """Where the main port's metric writers (browser beacon, remote_write) send
    samples and family metadata; until set, remote_write answers 503."""
    app.state.sample_sink = sink
    app.state.metadata_sink = metadata_sink


def set_engine(app: Starlette, engine: Any) -> None:
    """Give the main app its PromQL engine (the Prometheus query API answers 503 until then)."""
    app.state.engine = engine


def set_alerting(
    app: Starlette,
    evaluator: Any,
    history: Any,
    reload: Callable[[], None] | None,
    alertmanagers: Sequence[str] = (),
) -> None:
    """Give the main app the rule evaluator (``/api/v1/rules``, ``/api/v1/alerts``),
    the alert history store, what ``/-/reload`` runs and the Alertmanager
    endpoints alerts go to (``/api/v1/alertmanagers``)."""
    app.state.evaluator = evaluator
    app.state.alert_history = history
    app.state.reload = reload
    app.state.alertmanagers = list(alertmanagers)


def _reload_route(admin_token: str | None) -> Callable[[Request], Awaitable[Response]]:
    """``POST /-/reload``, as Prometheus's: 200, or 500 naming what failed."""
    token = admin_token.encode() if admin_token else None

    async def reload(request: Request) -> Response:
        if token is not None:
            scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                credentials.strip().encode(), token
            ):
                return PlainTextResponse(
                    "authorization: reloading needs 'Authorization: Bearer <admin token>'\n",
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
        run = request.app.state.reload
        if run is None:
            return PlainTextResponse("tinct is starting: nothing to reload yet\n", 503)
        try:
            await asyncio.to_thread(run)
        except Exception as exc:
            return PlainTextResponse(f"failed to reload config: {exc}\n", status_code=500)
        return PlainTextResponse("")

    return reload


def set_scheduler(app: Starlette, scheduler: Any) -> None:
    """Give the main app the running collection scheduler (``/api/v1/targets``)."""
    app.state.scheduler = scheduler


def _healthy(request: Request) -> Response:
    return PlainTextResponse("tinct is Healthy.\n")


def _ready(request: Request) -> Response:
    if request.app.state.store is None:
        return PlainTextResponse("tinct is not ready: the store is opening.\n", 503)
    return PlainTextResponse("tinct is Ready.\n")


def _metrics(request: Request) -> Response:
    # A sync endpoint: Starlette runs it in the threadpool (it reads /proc).
    metrics: SelfMetrics = request.app.state.metrics
    body, content_type = metrics.exposition()
    return Response(body, headers={"Content-Type": content_type})


def _index_page(about: Sequence[tuple[str, str]]) -> Callable[[Request], Response]:
    items = "".join(
        f'<li>{html.escape(label)}: <a href="{html.escape(url)}">{html.escape(url)}</a></li>'
        for label, url in (*_API_LINKS, *about)
    )
    page = (
        "<!doctype html><html><head><meta charset=utf-8><title>tinct</title></head><body>"
        f"<h1>tinct {html.escape(__version__)}</h1><p>The web UI is not installed in this "
        f"build. This process serves:</p><ul>{items}</ul></body></html>"
    )

    def index(request: Request) -> Response:
        return HTMLResponse(page)

    return index


def create_main_app(
    store: SpanReader | None = None,
    *,
    metrics: SelfMetrics | None = None,
    ui: ASGIApp | None = None,
    about: Sequence[tuple[str, str]] = (),
    clock: Callable[[], int] = time.time_ns,
    admin_token: str | None = None,
    rum_allowed_origins: Sequence[str] = (),
    prometheus_flags: Mapping[str, str] | None = None,
    config_yaml: Callable[[], str] = lambda: "",
    static_topology: Callable[[], StaticTopology] = StaticTopology,
) -> Starlette:
    """Build the main port's Starlette app.

    Args:
        store: the span store; ``None`` while it opens (APIs answer 503,
            ``/-/ready`` 503) until :func:`set_store`.
        metrics: the process's self-metrics, exposed at ``/metrics``.
        ui: an ASGI app mounted at ``/`` after every other route (the Dash
            UI through ``a2wsgi.WSGIMiddleware``).
        about: extra ``(label, url)`` lines for the index page when there is
            no UI (the receivers' URLs).
        clock: Unix time in nanoseconds, for the trace search's default
            window and dye rule times.
        admin_token: bearer token the write APIs (dye rules) require;
            ``None`` leaves them open.
        rum_allowed_origins: page origins the browser beacon accepts
            (``*`` for any); none by default.
        prometheus_flags: what ``/api/v1/status/flags`` shows (Prometheus's
            flag names: ``query.timeout``...).
        config_yaml: the config file's text, secrets redacted, for
            ``/api/v1/status/config``.
        static_topology: the configured topology, current at each call
            (``/api/tinct/topology`` diffs the traffic against it).
    """
    metrics = metrics or SelfMetrics()
    # The API reads the store from the app's state at request time, so
    # set_store() takes effect without rebuilding routes.
    api = JaegerQueryAPI(lambda: app.state.store, metrics, clock=clock)
    dye_api = DyeRulesAPI(lambda: app.state.store, metrics, admin_token=admin_token, clock=clock)
    logs_api = LogsAPI(lambda: app.state.store, metrics)
    targets_api = TargetsAPI(lambda: app.state.scheduler)
    remote_write = RemoteWriteAPI(
        lambda: app.state.sample_sink, lambda: app.state.metadata_sink, metrics
    )
    metrics.watch_remote_write(remote_write)
    alerts_api = AlertsAPI(
        lambda: app.state.evaluator,
        lambda: app.state.alert_history,
        get_alertmanagers=lambda: app.state.alertmanagers,
    )
    topology_api = TopologyAPI(
        lambda: app.state.store, static_topology, clock=lambda: clock() / 1e9
    )
    reload = _reload_route(admin_token)
    prometheus_api = PrometheusAPI(
        lambda: app.state.engine,
        lambda: app.state.store if isinstance(app.state.store, MetricReader) else None,
        flags=dict(prometheus_flags or {}),
        config_yaml=config_yaml,
    )
    rum_api = RumAPI(
        lambda: app.state.store,
        lambda: app.state.sample_sink,
        allowed_origins=rum_allowed_origins,
        clock=clock,
    )
    routes: list[BaseRoute] = [
        Route("/-/healthy", _healthy, methods=["GET"]),
        Route("/-/ready", _ready, methods=["GET"]),
        Route("/metrics", _metrics, methods=["GET"]),
        Route("/-/reload", reload, methods=["POST", "PUT"]),
        *api.routes(),
        *dye_api.routes(),
        *logs_api.routes(),
        *targets_api.routes(),
        *rum_api.routes(),
        *remote_write.routes(),
        *prometheus_api.routes(),
        *alerts_api.routes(),
        *topology_api.routes(),
    ]
    if ui is not None:
        routes.append(Mount("/", app=ui))
    else:
        routes.append(Route("/", _index_page(about), methods=["GET"]))
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(MetricsMiddleware, metrics=metrics, server="main"),
            # The UI's pages, figures and API answers are text: compressed
            # for any client that accepts gzip.
            Middleware(GZipMiddleware, minimum_size=1024),
        ],
    )
    app.state.store = store
    app.state.metrics = metrics
    app.state.scheduler = None
    app.state.sample_sink = None
    app.state.metadata_sink = None
    app.state.engine = None
    app.state.evaluator = None
    app.state.alert_history = None
    app.state.reload = None
    app.state.alertmanagers = []
    return app
