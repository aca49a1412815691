"""The metric catalog: every family tinct's own collectors emit, as data.

Dashboards and alert templates are generated from it, and a test checks
every series the collectors emit against it (name, type, unit, ``layer`` and
the required entity labels). Host metrics carry OpenTelemetry's system
metric names, translated by :func:`tinct.naming.prometheus_name`; component
metrics carry the standard exporters' names so their dashboards and alert
rules work unchanged. A family's name is written as prometheus_client
writes it: a counter's without ``_total``.
"""

from __future__ import annotations

from tinct.naming import prometheus_name, prometheus_unit
from tinct.standard import Catalog, Layer, MetricSpec, MetricType

__all__ = ["CATALOG", "SPECS"]

C, G, U = MetricType.COUNTER, MetricType.GAUGE, MetricType.UNKNOWN
INFRA, COMP = Layer.INFRASTRUCTURE, Layer.COMPONENT


def _otel(
    name: str, unit: str, type_: MetricType, help_: str, *labels: str, layer: Layer = INFRA
) -> MetricSpec:
    """A family named from its OpenTelemetry semantic-convention name."""
    counter, gauge = type_ is C, type_ is G
    full = prometheus_name(name, unit, counter=counter, gauge=gauge)
    family = full.removesuffix("_total") if counter else full
    return MetricSpec(family, type_, prometheus_unit(unit, gauge=gauge), help_, layer, labels)


def _comp(name: str, type_: MetricType, help_: str, *labels: str, unit: str = "") -> MetricSpec:
    """A component family under its standard exporter's name."""
    return MetricSpec(name, type_, unit, help_, COMP, labels)


# Families any layer has: Prometheus's synthetic scrape series, carrying the
# target's layer (and none when the target's config gives none).
SCRAPE = (
    MetricSpec("up", G, "", "1 if the last collection succeeded, else 0.", None),
    MetricSpec("scrape_duration_seconds", G, "seconds", "Duration of the last collection.", None),
    MetricSpec("scrape_samples_scraped", G, "", "Samples the target exposed.", None),
    MetricSpec(
        "scrape_samples_post_metric_relabeling",
        G,
        "",
        "Samples left after metric relabelling.",
        None,
    ),
    MetricSpec("scrape_series_added", G, "", "Series new in the last collection.", None),
)

# --- infrastructure: the host (OpenTelemetry system metrics) -----------------
HOST = (
    _otel(
        "system.cpu.time", "s", C, "Seconds each logical CPU spent in each mode.", "cpu", "state"
    ),
    _otel("system.cpu.utilization", "1", G, "CPU busy share per logical CPU.", "cpu", "state"),
    _otel("system.cpu.logical.count", "{cpu}", G, "Logical CPUs."),
    _otel("system.cpu.load_average.1m", "{thread}", G, "Load average over 1 minute."),
    _otel("system.cpu.load_average.5m", "{thread}", G, "Load average over 5 minutes."),
    _otel("system.cpu.load_average.15m", "{thread}", G, "Load average over 15 minutes."),
    _otel("system.memory.usage", "By", G, "Memory in use per state.", "state"),
    _otel("system.memory.utilization", "1", G, "Memory share per state.", "state"),
    _otel("system.memory.limit", "By", G, "Total memory."),
    _otel("system.paging.usage", "By", G, "Swap space per state.", "state"),
    _otel("system.paging.utilization", "1", G, "Swap share per state.", "state"),
    _otel("system.paging.operations", "{operation}", C, "Pages swapped.", "direction"),
    _otel("system.disk.io", "By", C, "Disk bytes read and written.", "device", "direction"),
    _otel("system.disk.operations", "{operation}", C, "Disk operations.", "device", "direction"),
    _otel(
        "system.disk.operation_time",
        "s",
        C,
        "Time spent in disk operations.",
        "device",
        "direction",
    ),
    _otel("system.disk.io_time", "s", C, "Time the disk was busy.", "device"),
    _otel(
        "system.filesystem.usage",
        "By",
        G,
        "Filesystem space per state.",
        "device",
        "mountpoint",
        "type",
        "state",
    ),
    _otel(
        "system.filesystem.utilization",
        "1",
        G,
        "Share of the filesystem in use.",
        "device",
        "mountpoint",
        "type",
    ),
    _otel("system.network.io", "By", C, "Network bytes per direction.", "device", "direction"),
    _otel("system.network.packets", "{packet}", C, "Network packets.", "device", "direction"),
    _otel("system.network.errors", "{error}", C, "Network errors.", "device", "direction"),
    _otel("system.network.dropped", "{packet}", C, "Dropped packets.", "device", "direction"),
    _otel(
        "system.network.connections",
        "{connection}",
        G,
        "Connections per state.",
        "protocol",
        "state",
    ),
    _otel("system.process.count", "{process}", G, "Processes per status.", "status"),
    _otel("system.process.created", "{process}", C, "Processes created."),
    _otel("system.uptime", "s", G, "Seconds since the host booted."),
)

# --- components: redis_exporter -----------------------------------------------
REDIS = (
    _comp("redis_up", G, "1 if Redis answered."),
    _comp("redis_uptime_in_seconds", G, "Seconds since Redis started.", unit="seconds"),
    _comp("redis_connected_clients", G, "Client connections."),
    _comp("redis_blocked_clients", G, "Clients blocked on a call."),
    _comp("redis_memory_used_bytes", G, "Memory Redis allocated.", unit="bytes"),
    _comp("redis_memory_max_bytes", G, "maxmemory.", unit="bytes"),
    _comp("redis_commands_processed", C, "Commands processed."),
    _comp("redis_connections_received", C, "Connections accepted."),
    _comp("redis_rejected_connections", C, "Connections rejected (maxclients)."),
    _comp("redis_keyspace_hits", C, "Key lookups that hit."),
    _comp("redis_keyspace_misses", C, "Key lookups that missed."),
    _comp("redis_expired_keys", C, "Keys expired."),
    _comp("redis_evicted_keys", C, "Keys evicted."),
    _comp("redis_net_input_bytes", C, "Bytes received.", unit="bytes"),
    _comp("redis_net_output_bytes", C, "Bytes sent.", unit="bytes"),
    _comp("redis_db_keys", G, "Keys per database.", "db"),
    _comp("redis_db_keys_expiring", G, "Keys with an expiry per database.", "db"),
    _comp("redis_commands", C, "Calls per command.", "cmd"),
    _comp("redis_commands_duration_seconds", C, "Time per command.", "cmd", unit="seconds"),
    _comp("redis_connected_slaves", G, "Connected replicas."),
)

# --- components: postgres_exporter --------------------------------------------
POSTGRES = (
    _comp("pg_up", G, "1 if PostgreSQL answered."),
    # pg_stat_database_*: one series per database, labelled by OID and name
    # (postgres_exporter's collector/pg_stat_database.go); counters keep the
    # exporter's names, without _total.
    _comp("pg_stat_database_numbackends", G, "Backends per database.", "datid", "datname"),
    _comp("pg_stat_database_xact_commit", C, "Transactions committed.", "datid", "datname"),
    _comp("pg_stat_database_xact_rollback", C, "Transactions rolled back.", "datid", "datname"),
    _comp("pg_stat_database_blks_read", C, "Disk blocks read.", "datid", "datname"),
    _comp("pg_stat_database_blks_hit", C, "Buffer cache hits.", "datid", "datname"),
    _comp("pg_stat_database_tup_returned", C, "Rows returned.", "datid", "datname"),
    _comp("pg_stat_database_tup_fetched", C, "Rows fetched.", "datid", "datname"),
    _comp("pg_stat_database_tup_inserted", C, "Rows inserted.", "datid", "datname"),
    _comp("pg_stat_database_tup_updated", C, "Rows updated.", "datid", "datname"),
    _comp("pg_stat_database_tup_deleted", C, "Rows deleted.", "datid", "datname"),
    _comp("pg_stat_database_conflicts", C, "Queries cancelled by conflicts.", "datid", "datname"),
    _comp("pg_stat_database_deadlocks", C, "Deadlocks.", "datid", "datname"),
    _comp("pg_stat_database_temp_files", C, "Temporary files.", "datid", "datname"),
    _comp(
        "pg_stat_database_temp_bytes",
        C,
        "Temporary file bytes.",
        "datid",
        "datname",
        unit="bytes",
    ),
    _comp("pg_stat_activity_count", G, "Connections per database and state.", "datname", "state"),
    _comp(
        "pg_stat_activity_max_tx_duration",
        G,
        "Longest running transaction per database and state, seconds.",
        "datname",
        "state",
    ),
    _comp("pg_database_size_bytes", G, "Database size.", "datname", unit="bytes"),
    _comp("pg_settings_max_connections", G, "max_connections."),
    _comp("pg_locks_count", G, "Locks per database and mode.", "datname", "mode"),
    _comp(
        "pg_postmaster_start_time_seconds",
        G,
        "When the server started, Unix seconds.",
        unit="seconds",
    ),
)

# --- components: mysqld_exporter (MySQL, MariaDB) ----------------------------------
MYSQL = (
    _comp("mysql_up", G, "1 if MySQL answered."),
    _comp("mysql_global_status_uptime", U, "Seconds since the server started."),
    _comp("mysql_global_status_threads_connected", U, "Open connections."),
    _comp("mysql_global_status_threads_running", U, "Threads not sleeping."),
    _comp("mysql_global_status_connections", U, "Connection attempts."),
    _comp("mysql_global_status_aborted_connects", U, "Failed connection attempts."),
    _comp("mysql_global_status_queries", U, "Statements executed."),
    _comp("mysql_global_status_questions", U, "Statements sent by clients."),
    _comp("mysql_global_status_slow_queries", U, "Slow queries."),
    _comp("mysql_global_status_bytes_received", U, "Bytes received."),
    _comp("mysql_global_status_bytes_sent", U, "Bytes sent."),
    # The status groups mysqld_exporter labels (collector/global_status.go).
    _comp("mysql_global_status_commands", C, "Statements per command.", "command"),
    _comp("mysql_global_status_handlers", C, "Handler calls per handler.", "handler"),
    _comp("mysql_global_status_connection_errors", C, "Connection errors per cause.", "error"),
    _comp("mysql_global_status_buffer_pool_pages", G, "InnoDB buffer pool pages.", "state"),
    _comp("mysql_global_status_buffer_pool_dirty_pages", G, "Dirty InnoDB buffer pool pages."),
    _comp(
        "mysql_global_status_buffer_pool_page_changes",
        C,
        "InnoDB buffer pool page state changes.",
        "operation",
    ),
    _comp("mysql_global_status_innodb_row_ops", C, "InnoDB row operations.", "operation"),
    _comp(
        "mysql_global_status_performance_schema_lost",
        C,
        "Instrumentations performance_schema could not create.",
        "instrumentation",
    ),
    _comp("mysql_global_variables_max_connections", G, "max_connections."),
    _comp("mysql_version_info", G, "Server version (gauge 1).", "version"),
    # Every other numeric status and variable: the set depends on the server
    # and its version. Consulted only when no name above matches.
    _comp("mysql_global_status_*", U, "SHOW GLOBAL STATUS values, untyped as the exporter."),
    _comp("mysql_global_variables_*", G, "SHOW GLOBAL VARIABLES values."),
)

# --- components: nginx-prometheus-exporter (stub_status) ------------------------
NGINX = (
    _comp("nginx_up", G, "1 if stub_status answered."),
    # Counters named without _total, as nginx-prometheus-exporter exposes them.
    _comp("nginx_connections_accepted", C, "Client connections accepted."),
    _comp("nginx_connections_handled", C, "Client connections handled."),
    _comp("nginx_connections_active", G, "Active client connections."),
    _comp("nginx_connections_reading", G, "Connections reading the request."),
    _comp("nginx_connections_writing", G, "Connections writing the response."),
    _comp("nginx_connections_waiting", G, "Idle keep-alive connections."),
    _comp("nginx_http_requests", C, "Client requests."),
)

# --- components: memcached_exporter ---------------------------------------------
MEMCACHED = (
    _comp("memcached_up", G, "1 if memcached answered."),
    # A counter named without _total, as memcached_exporter exposes it.
    _comp("memcached_uptime_seconds", C, "Seconds since memcached started.", unit="seconds"),
    _comp("memcached_current_connections", G, "Open connections."),
    _comp("memcached_connections", C, "Connections opened."),
    _comp("memcached_max_connections", G, "Connection limit."),
    _comp("memcached_commands", C, "Commands per command and status.", "command", "status"),
    _comp("memcached_current_items", G, "Items stored."),
    _comp("memcached_items", C, "Items stored since start."),
    _comp("memcached_items_evicted", C, "Items evicted."),
    _comp("memcached_current_bytes", G, "Bytes used by items.", unit="bytes"),
    _comp("memcached_limit_bytes", G, "Memory limit.", unit="bytes"),
    _comp("memcached_read_bytes", C, "Bytes read.", unit="bytes"),
    _comp("memcached_written_bytes", C, "Bytes written.", unit="bytes"),
)

# --- components: ClickHouse's own Prometheus endpoint ----------------------------------
CLICKHOUSE = (
    _comp("ClickHouseMetrics_*", G, "system.metrics: values right now."),
    _comp("ClickHouseProfileEvents_*", C, "system.events: counts since start."),
    _comp("ClickHouseAsyncMetrics_*", G, "system.asynchronous_metrics."),
)

# --- user: the browser beacon (tinct/rum.js -> POST /api/tinct/rum) ----------------
# Written by tinct.rum_api as cumulative values it keeps in memory (a restart
# starts them again from zero, which rate() reads as a counter reset). Labels
# are the app and the page's path (numeric and UUID segments as ":id", pages
# past the API's cap as "other"); the user id is never a label.
BROWSER = (
    MetricSpec(
        "browser_page_load_seconds",
        MetricType.HISTOGRAM,
        "seconds",
        "Page load time (navigation start to the end of the load event).",
        Layer.USER,
        ("app", "page"),
    ),
    MetricSpec(
        "browser_navigation_timing_seconds",
        MetricType.HISTOGRAM,
        "seconds",
        "Navigation timings: dns, connect, tls (durations), ttfb and dom_content_loaded "
        "(from navigation start).",
        Layer.USER,
        ("app", "page", "timing"),
    ),
    MetricSpec(
        "browser_page_transfer_bytes",
        MetricType.SUMMARY,
        "bytes",
        "Bytes transferred for the page document (header and body).",
        Layer.USER,
        ("app", "page"),
    ),
    MetricSpec(
        "browser_errors",
        C,
        "",
        "Errors in pages: js (uncaught), resource (failed to load), promise (unhandled).",
        Layer.USER,
        ("app", "page", "kind"),
    ),
)

# --- services, interfaces and users: from RED meters and spans (collectors.layers) --
# Histograms: rate is rate(_count), errors are status_class="5xx", latency is
# histogram_quantile over _bucket. Span-derived series carry estimated="true".
SERVICE_LAYER = (
    MetricSpec(
        "service_request_duration_seconds",
        MetricType.HISTOGRAM,
        "seconds",
        "Server requests of a service, by status class.",
        Layer.SERVICE,
        ("status_class",),
    ),
)
INTERFACE_LAYER = (
    MetricSpec(
        "interface_request_duration_seconds",
        MetricType.HISTOGRAM,
        "seconds",
        "Server requests of an interface (route or operation), by method and status class.",
        Layer.INTERFACE,
        ("method", "status_class"),
    ),
)
USER_LAYER = (
    MetricSpec(
        "user_request_duration_seconds",
        MetricType.HISTOGRAM,
        "seconds",
        "Requests of one user (or other) to a service, estimated from spans.",
        Layer.USER,
        ("user", "service", "status_class"),
    ),
)


# --- user: synthetic probes, blackbox_exporter's http prober (collectors.probe) ----
# Every family under blackbox_exporter's name and type (all gauges, as it
# registers them), so its dashboards and alert rules work on probe targets.
def _probe(name: str, help_: str, *labels: str, unit: str = "") -> MetricSpec:
    """A probe family: a gauge in the user layer."""
    return MetricSpec(name, G, unit, help_, Layer.USER, labels)


PROBES = (
    _probe("probe_success", "Displays whether or not the probe was a success"),
    _probe(
        "probe_duration_seconds",
        "Returns how long the probe took to complete in seconds",
        unit="seconds",
    ),
    _probe(
        "probe_dns_lookup_time_seconds",
        "Returns the time taken for probe dns lookup in seconds",
        unit="seconds",
    ),
    _probe(
        "probe_http_duration_seconds",
        "Duration of http request by phase, summed over all redirects",
        "phase",
        unit="seconds",
    ),
    _probe("probe_http_status_code", "Response HTTP status code"),
    _probe("probe_http_content_length", "Length of http content response"),
    _probe("probe_http_uncompressed_body_length", "Length of uncompressed response body"),
    _probe("probe_http_version", "Returns the version of HTTP of the probe response"),
    _probe("probe_http_ssl", "Indicates if SSL was used for the final redirect"),
    _probe("probe_http_redirects", "The number of redirects"),
    _probe("probe_failed_due_to_regex", "Indicates if probe failed due to regex"),
    _probe(
        "probe_http_last_modified_timestamp_seconds",
        "Returns the Last-Modified HTTP response header in unixtime",
        unit="seconds",
    ),
    _probe("probe_ssl_earliest_cert_expiry", "Returns last SSL chain expiry in unixtime"),
    _probe(
        "probe_ssl_last_chain_expiry_timestamp_seconds",
        "Returns last SSL chain expiry in timestamp",
        unit="seconds",
    ),
    _probe("probe_tls_version_info", "Returns the TLS version used or NaN when unknown", "version"),
    _probe("probe_ip_protocol", "Specifies whether probe ip protocol is IP4 or IP6"),
    _probe(
        "probe_ip_addr_hash",
        "Specifies the hash of IP address. It's useful to detect if the IP address changes.",
    ),
)

SPECS: tuple[MetricSpec, ...] = (
    *SCRAPE,
    *HOST,
    *REDIS,
    *POSTGRES,
    *MYSQL,
    *NGINX,
    *MEMCACHED,
    *CLICKHOUSE,
    *SERVICE_LAYER,
    *INTERFACE_LAYER,
    *USER_LAYER,
    *BROWSER,
    *PROBES,
)
CATALOG = Catalog(SPECS)
