"""``tinct up``: every server of the process in one asyncio loop.

One process, one uvloop event loop: three uvicorn servers (httptools) for the
main port, OTLP/HTTP and Zipkin, and a ``grpc.aio`` server for OTLP/gRPC.
Blocking work (store reads, decoding) runs in worker threads.

Startup: bind every port first (a busy port fails fast, exit 1), start
serving, log each URL once with its real port, then open the store in a
thread; until it is open the APIs and receivers answer 503 and ``/-/ready``
says not ready, so health checks and clients see a starting process, not a
refused connection.

Signals: several ``uvicorn.Server`` instances in one loop would each install
their own SIGINT/SIGTERM handlers and re-raise the signal when they stop, so
:class:`_UvicornServer` captures none; tinct installs one handler on the loop.
The first SIGTERM or SIGINT starts a graceful stop, in this order: stop
accepting and let in-flight HTTP requests finish (uvicorn's shutdown) while
gRPC finishes in-flight calls (``server.stop(grace)``), then collection
stops, ``writer.close()`` writes every accepted span (and the log and sample
writers every accepted log record and sample), then the store closes and the
process exits 0. A second signal cuts the request draining short (spans and log records
already accepted are still flushed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from tinct.alerting.process import Alerting, load_alerting
from tinct.collection import Collection, collection_config, emit_span_layers
from tinct.collectors.layers import (
    MeteredSink,
    MeterLayers,
    ObservingSpanWriter,
    SpanLayers,
    SpanObserver,
)
from tinct.config import Settings
from tinct.dashboards.app import create_ui
from tinct.errors import ConfigError, TinctError
from tinct.main_app import (
    create_main_app,
    set_alerting,
    set_engine,
    set_sample_sink,
    set_scheduler,
    set_store,
    wsgi_ui,
)
from tinct.promql.engine import Engine
from tinct.selfmetrics import SelfMetrics
from tinct.storage import (
    BatchWriter,
    LogStore,
    MetricStore,
    SpanStore,
    SqlSpanStore,
    log_batch_writer,
    open_store,
    redact_store_url,
    sample_batch_writer,
)
from tinct.storage.topology import TopologyStore
from tinct.topology.aggregator import TopologyAggregator, run_topology
from tinct.topology.static import StaticTopologySource
from tinct.tracing.grpc_receiver import OtlpGrpcReceiver, create_grpc_server
from tinct.tracing.receivers import (
    MetricsIngest,
    create_otlp_http_app,
    create_zipkin_app,
    set_log_writer,
    set_metric_metadata_sink,
    set_metric_writer,
    set_writer,
)

__all__ = ["run", "serve", "Endpoints", "retention_loop", "RETENTION_EVERY_SECONDS"]

logger = logging.getLogger("tinct")

# How long in-flight HTTP requests and gRPC calls may take to finish on stop.
GRACE_SECONDS = 10.0
# Where the server has no TTL (ClickHouse 18.16), retention drops whole daily
# partitions; checking hourly keeps at most a day and an hour beyond it.
RETENTION_EVERY_SECONDS = 3600.0
# A service whose RED meters arrived this recently is not estimated from spans.
METERED_WITHIN_SECONDS = 600.0
_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@dataclass(frozen=True)
class Endpoints:
    """Where this process serves, with the ports actually bound."""

    main: str
    otlp_grpc: str
    otlp_http: str
    zipkin: str


class _UvicornServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to tinct (see module doc)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _uvicorn_config(app: ASGIApp) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        http="httptools",
        ws="none",
        lifespan="off",
        access_log=False,
        log_config=None,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=int(GRACE_SECONDS),
    )


def _bind(listen: str, port: int, setting: str) -> socket.socket:
    """A listening TCP socket on ``listen:port`` (0 picks a free port)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            listen, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(2048)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
    except OSError as exc:
        raise _ListenError(
            f"cannot listen on {_hostport(listen, port)} ({setting}): {exc}"
        ) from exc
    return sock


class _ListenError(TinctError):
    """A port can't be bound."""


async def retention_loop(store: SqlSpanStore, every_seconds: float) -> None:
    """Apply retention every ``every_seconds`` until cancelled; never raises.

    Opening the store applied it once already. A failure is logged and
    retried at the next tick: background work must not stop the server.
    """
    while True:
        await asyncio.sleep(every_seconds)
        try:
            dropped = await asyncio.to_thread(store.apply_retention)
        except Exception:
            logger.exception("applying retention failed; retrying in %.0f s", every_seconds)
            continue
        for table, partition in dropped:
            logger.info("retention dropped partition %s of %s", partition, table)


def prometheus_flags(settings: Settings) -> dict[str, str]:
    """``/api/v1/status/flags``: the settings under Prometheus's flag names."""
    from tinct.durations import format_duration

    return {
        "query.timeout": format_duration(settings.query_timeout),
        "query.max-samples": str(settings.query_max_samples),
        "query.lookback-delta": format_duration(settings.query_lookback_delta),
        "query.max-concurrency": str(settings.query_max_concurrency),
        "storage.tsdb.retention.time": f"{settings.retention}d" if settings.retention else "0s",
        "web.listen-address": _hostport(settings.listen, settings.port),
        "config.file": str(settings.config or ""),
        "log.level": settings.log_level,
    }


def redacted_config(path: Any) -> str:
    """The config file as YAML with secrets masked, as Prometheus shows ``<secret>``."""
    if path is None:
        return ""
    import yaml

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return ""

    def mask(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: "<secret>" if k in _SECRET_KEYS and v is not None else mask(v)
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [mask(v) for v in node]
        return node

    return str(yaml.safe_dump(mask(doc), sort_keys=False))


_SECRET_KEYS = frozenset({"admin_token", "password", "credentials", "bearer_token"})


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _install_signals(loop: asyncio.AbstractEventLoop, on_signal: Callable[[int], None]) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)


def _remove_signals(loop: asyncio.AbstractEventLoop) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.remove_signal_handler(sig)


def _on_sighup(loop: asyncio.AbstractEventLoop, reload: Callable[[], None]) -> None:
    async def run() -> None:
        try:
            await asyncio.to_thread(reload)
        except Exception as exc:
            logger.error("SIGHUP: reloading the config failed, keeping the old one: %s", exc)

    loop.create_task(run())


async def serve(settings: Settings, *, started: Callable[[Endpoints], None] | None = None) -> int:
    """Run tinct until SIGTERM/SIGINT; returns the exit code.

    Must run in the main thread (signal handlers). ``started`` is called once
    every port is serving (before the store is open).
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    uvicorns: list[_UvicornServer] = []

    def on_signal(sig: int) -> None:
        if stop.is_set():
            logger.warning(
                "second %s: not waiting for in-flight requests", signal.Signals(sig).name
            )
            for server in uvicorns:
                server.force_exit = True
        else:
            logger.info("%s: stopping", signal.Signals(sig).name)
        stop.set()

    listen = settings.listen
    try:
        # Checked before binding: a bad scrape config or rule file is a config
        # error (exit 2).
        collecting = collection_config(settings.config)
        alerting_setup = load_alerting(settings.config)
        static_topology = StaticTopologySource(settings.config)
    except ConfigError as exc:
        logger.error("%s", exc)
        return 2
    metrics = SelfMetrics()
    # One delta accumulator for OTLP metrics over HTTP and gRPC.
    metrics_ingest = MetricsIngest()
    grpc_receiver = OtlpGrpcReceiver(None, metrics, metrics_ingest=metrics_ingest)
    grpc_server = create_grpc_server(grpc_receiver)
    with contextlib.ExitStack() as on_error:
        # Close what was bound if a later port is busy.
        main_sock, http_sock, zipkin_sock = (
            on_error.enter_context(_bind(listen, port, flag))
            for port, flag in (
                (settings.port, "--port"),
                (settings.otlp_http_port, "--otlp-http-port"),
                (settings.zipkin_port, "--zipkin-port"),
            )
        )
        try:
            grpc_port = grpc_server.add_insecure_port(_hostport(listen, settings.otlp_grpc_port))
        except RuntimeError as exc:
            where = _hostport(listen, settings.otlp_grpc_port)
            raise _ListenError(f"cannot listen on {where} (--otlp-grpc-port): {exc}") from exc
        on_error.pop_all()

    def url(sock: socket.socket, path: str) -> str:
        return f"http://{_hostport(listen, sock.getsockname()[1])}{path}"

    endpoints = Endpoints(
        main=url(main_sock, "/"),
        otlp_grpc=_hostport(listen, grpc_port),
        otlp_http=url(http_sock, "/v1/traces"),
        zipkin=url(zipkin_sock, "/api/v2/spans"),
    )
    about = [
        ("OTLP/gRPC", endpoints.otlp_grpc),
        ("OTLP/HTTP", endpoints.otlp_http),
        ("Zipkin", endpoints.zipkin),
    ]
    ui = create_ui(
        lambda: endpoints.main,
        dashboards_path=settings.dashboards,
        admin_token=settings.admin_token,
    )
    main_app = create_main_app(
        None,
        ui=wsgi_ui(ui.server),
        static_topology=static_topology.current,
        metrics=metrics,
        about=about,
        admin_token=settings.admin_token,
        rum_allowed_origins=settings.rum_allowed_origins,
        prometheus_flags=prometheus_flags(settings),
        config_yaml=lambda: redacted_config(settings.config),
    )
    otlp_app = create_otlp_http_app(None, metrics=metrics, metrics_ingest=metrics_ingest)
    zipkin_app = create_zipkin_app(None, metrics=metrics)
    pairs = ((main_app, main_sock), (otlp_app, http_sock), (zipkin_app, zipkin_sock))
    uvicorns.extend(_UvicornServer(_uvicorn_config(app)) for app, _ in pairs)
    _install_signals(loop, on_signal)
    tasks = [
        asyncio.create_task(server.serve(sockets=[sock]))
        for server, (_, sock) in zip(uvicorns, pairs, strict=True)
    ]
    store: SpanStore | None = None
    writer: BatchWriter | None = None
    log_writer: BatchWriter | None = None
    sample_writer: BatchWriter | None = None
    topology: TopologyAggregator | None = None
    background: list[asyncio.Task[None]] = []
    try:
        await grpc_server.start()
        while not all(s.started for s in uvicorns):
            if any(t.done() for t in tasks):
                raise _ListenError("an HTTP server failed to start (see the log above)")
            await asyncio.sleep(0.01)
        logger.info("serving UI and APIs on %s", endpoints.main)
        logger.info("serving OTLP/gRPC on %s", endpoints.otlp_grpc)
        logger.info("serving OTLP/HTTP on %s", endpoints.otlp_http)
        logger.info("serving Zipkin on %s", endpoints.zipkin)
        if started is not None:
            started(endpoints)
        try:
            store = await asyncio.to_thread(
                open_store,
                settings.store,
                retention_days=settings.retention,
                max_series_per_metric=settings.max_series_per_metric,
            )
        except ConfigError as exc:
            logger.error("%s", exc)
            return 2
        except TinctError as exc:
            logger.error("cannot open the store %s: %s", redact_store_url(settings.store), exc)
            return 1
        # Written spans also feed the span-estimated service/interface/user layers.
        meter_layers = MeterLayers()
        span_layers = SpanLayers(metered=lambda: meter_layers.metered(METERED_WITHIN_SECONDS))
        observers: list[SpanObserver] = [span_layers]
        if isinstance(store, TopologyStore):
            # ... and the dynamic topology, resuming the spans the last run left waiting.
            topology = TopologyAggregator(
                store, wait_s=settings.topology_wait, flush_s=settings.topology_flush_interval
            )
            try:
                await asyncio.to_thread(topology.open)
            except TinctError as exc:
                logger.error("topology: cannot load the waiting spans: %s", exc)
            observers.append(topology)
            every = min(1.0, settings.topology_flush_interval, settings.topology_wait / 4)
            background.append(asyncio.create_task(run_topology(topology, every)))
        writer = BatchWriter(ObservingSpanWriter(store, *observers))
        metrics.watch_writer(writer)
        set_store(main_app, store)
        set_writer(otlp_app, writer)
        set_writer(zipkin_app, writer)
        grpc_receiver.writer = writer
        if isinstance(store, LogStore):
            log_writer = log_batch_writer(store)
            metrics.watch_writer(log_writer, "logs")
            set_log_writer(otlp_app, log_writer)
            grpc_receiver.log_writer = log_writer
        if isinstance(store, MetricStore):
            sample_writer = sample_batch_writer(store)
            metrics.watch_writer(sample_writer, "samples")
            engine = Engine(
                store,
                lookback_delta_ms=int(settings.query_lookback_delta * 1000),
                timeout_s=settings.query_timeout,
                max_samples=settings.query_max_samples,
                max_concurrent=settings.query_max_concurrency,
            )
            set_engine(main_app, engine)
            alerting = Alerting(
                alerting_setup, settings.config, engine, store, endpoints.main.rstrip("/")
            )
            set_sample_sink(main_app, sample_writer.submit, store.write_metadata)
            metered = MeteredSink(sample_writer, meter_layers)
            set_metric_writer(otlp_app, metered)
            set_metric_metadata_sink(otlp_app, store.write_metadata)
            grpc_receiver.metric_writer = metered
            grpc_receiver.metric_metadata_sink = store.write_metadata
            background.append(
                asyncio.create_task(emit_span_layers(span_layers, sample_writer.submit))
            )
            collection = Collection(collecting, sample_writer.submit, store.write_metadata)
            metrics.watch_collection(collection.scheduler, store)
            set_scheduler(main_app, collection.scheduler)
            background.append(asyncio.create_task(collection.run()))
            background.append(asyncio.create_task(alerting.run()))

            def reload() -> None:
                # Prometheus's reload: rules and scrape configs re-read; a bad
                # file raises and leaves what runs as it was.
                new_collection = collection_config(settings.config)
                alerting.reload()
                collection.config = new_collection

            set_alerting(
                main_app, alerting.evaluator, store, reload, alerting.notifier.alertmanagers
            )
            loop.add_signal_handler(signal.SIGHUP, _on_sighup, loop, reload)
        logger.info("ready: store %s open", redact_store_url(settings.store))
        if settings.retention > 0 and isinstance(store, SqlSpanStore):
            background.append(asyncio.create_task(retention_loop(store, RETENTION_EVERY_SECONDS)))
        await stop.wait()
    finally:
        for task in background:
            task.cancel()
        # Collection stops before the writers flush, so nothing is submitted after.
        await asyncio.gather(*background, return_exceptions=True)
        writers = (("spans", writer), ("log records", log_writer), ("samples", sample_writer))
        code = await _shutdown(uvicorns, tasks, grpc_server, writers, store, topology)
        _remove_signals(loop)
    return code


async def _shutdown(
    uvicorns: list[_UvicornServer],
    tasks: list[asyncio.Task[None]],
    grpc_server: Any,
    writers: Sequence[tuple[str, BatchWriter | None]],
    store: SpanStore | None,
    topology: TopologyAggregator | None = None,
) -> int:
    """Stop in the order the module docstring gives; returns the exit code."""
    code = 0
    for server in uvicorns:
        server.should_exit = True
    results = await asyncio.gather(*tasks, grpc_server.stop(GRACE_SECONDS), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            logger.error("a server stopped with an error", exc_info=result)
    for what, pending in writers:
        if pending is None:
            continue
        logger.info("writing %d pending %s", pending.pending_rows, what)
        try:
            # No timeout: accepted data is not dropped while the store is
            # slow (the writer retries); a supervisor's SIGKILL still ends it.
            if not await asyncio.to_thread(pending.close):
                code = 1
        except Exception:
            logger.exception("flushing %s to the store failed", what)
            code = 1
    if topology is not None:
        # After the span writer: every stored span has been observed.
        logger.info("saving %d spans the topology waits on", topology.pending_spans)
        try:
            await asyncio.to_thread(topology.close)
        except Exception:
            logger.exception("saving the topology failed")
            code = 1
    if store is not None:
        try:
            await asyncio.to_thread(store.close)
        except Exception:
            logger.exception("closing the store failed")
            code = 1
    logger.info("stopped")
    return code


def _configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format=_LOG_FORMAT, stream=sys.stderr, force=True)
    if level != "debug":
        # uvicorn's per-server start/stop chatter, three times over; tinct logs
        # its own URLs. Warnings and errors still show.
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows
        return None
    return uvloop.new_event_loop


def run(settings: Settings) -> int:
    """Run ``tinct up`` with ``settings`` in this (main) thread; returns the exit code."""
    _configure_logging(settings.log_level)
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            return runner.run(serve(settings))
    except _ListenError as exc:
        logger.error("%s", exc)
        return 1
