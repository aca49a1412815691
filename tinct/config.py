"""tinct's process settings: one table, read from flags, environment and file.

Every setting is declared once in :data:`SETTINGS` with its flag, its
``TINCT_<NAME>`` environment variable, its place in the config file and its
validator, so the CLI's flags, the environment and the file are parsed by the
same code and give the same error for the same bad value. Precedence is
flag > environment > config file > default (DESIGN.md, "Interfaces users rely
on"); an empty environment variable counts as unset.

The config file is YAML. Where Prometheus has a setting tinct reads it in
Prometheus's layout (other issues add ``global``, ``rule_files``,
``scrape_configs``...); tinct's own process settings sit in two sections::

    storage:
      data: ./tinct-data          # --data, TINCT_DATA (relative to this file)
      url: chdb:///var/lib/tinct  # --store, TINCT_STORE (default chdb://<data>)
      retention_days: 0           # --retention, TINCT_RETENTION (0 keeps forever)
      max_series_per_metric: 100000  # --max-series-per-metric (per day; 0: no limit)
    server:
      listen: 127.0.0.1           # --listen, TINCT_LISTEN (every port binds it)
      port: 3000                  # --port, TINCT_PORT (UI and APIs)
      otlp_grpc_port: 4317        # --otlp-grpc-port, TINCT_OTLP_GRPC_PORT
      otlp_http_port: 4318        # --otlp-http-port, TINCT_OTLP_HTTP_PORT
      zipkin_port: 9411           # --zipkin-port, TINCT_ZIPKIN_PORT
      admin_token: s3cret         # --admin-token, TINCT_ADMIN_TOKEN
      log_level: info             # --log-level, TINCT_LOG_LEVEL
    query:                        # PromQL, as Prometheus's --query.* flags
      timeout: 2m                 # --query-timeout (--query.timeout)
      max_samples: 50000000       # --query-max-samples (--query.max-samples)
      lookback_delta: 5m          # --query-lookback-delta (--query.lookback-delta)
      max_concurrency: 20         # --query-max-concurrency (--query.max-concurrency)
    rum:
      allowed_origins: [https://shop.example]  # --rum-allowed-origins (browser beacon)
    dashboards:
      path: ./dashboards          # --dashboards: Grafana dashboard JSON/YAML files
    topology:                     # beside the declared topology (tinct.topology.static)
      wait: 10s                   # --topology-wait: how long a trace may stay quiet
      flush_interval: 1m          # --topology-flush-interval: edges written this often

Unknown keys inside ``storage``, ``server``, ``query`` and ``rum`` are errors (a typo should not
silently fall back to a default); other top-level sections are left to the
features that own them. Port 0 asks the OS for a free port.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tinct.errors import ConfigError

__all__ = [
    "Settings",
    "SETTINGS",
    "SettingSpec",
    "add_setting_flags",
    "load_settings",
    "LOG_LEVELS",
]

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
_MAX_RETENTION_DAYS = 36_500
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")


@dataclass(frozen=True)
class Settings:
    """The validated settings of one tinct process."""

    data: Path
    store: str
    listen: str
    port: int
    otlp_grpc_port: int
    otlp_http_port: int
    zipkin_port: int
    config: Path | None
    retention: int
    max_series_per_metric: int
    admin_token: str | None
    log_level: str
    query_timeout: float
    query_max_samples: int
    query_lookback_delta: float
    query_max_concurrency: int
    rum_allowed_origins: tuple[str, ...]
    topology_wait: float = 10.0
    topology_flush_interval: float = 60.0
    dashboards: Path | None = None


# Parsers take the raw value (str from flags/env, any YAML scalar from a file)
# and return the typed value or raise ValueError with the reason, which the
# caller prefixes with the setting's name as the user wrote it.
def _port(raw: Any) -> int:
    value = _int(raw)
    if not 0 <= value <= 65535:
        raise ValueError(f"{raw} is not a port (1-65535, or 0 for a free port)")
    return value


def _int(raw: Any) -> int:
    if isinstance(raw, bool):
        raise ValueError(f"{raw!r} is not an integer")
    if isinstance(raw, int):
        return raw
    try:
        return int(str(raw).strip())
    except ValueError:
        raise ValueError(f"{raw!r} is not an integer") from None


def _retention(raw: Any) -> int:
    value = _int(raw)
    if not 0 <= value <= _MAX_RETENTION_DAYS:
        raise ValueError(
            f"{raw} is not a number of days (0-{_MAX_RETENTION_DAYS}, 0 keeps data forever)"
        )
    return value


def _series_limit(raw: Any) -> int:
    value = _int(raw)
    if value < 0:
        raise ValueError(f"{raw} is not a number of series (>= 0, 0 for no limit)")
    return value


def _address(raw: Any) -> str:
    text = str(raw).strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    if _HOSTNAME.match(text):
        return text
    raise ValueError(f"{raw!r} is not an IP address or host name (e.g. 127.0.0.1, 0.0.0.0, ::)")


def _text(raw: Any) -> str:
    if not isinstance(raw, str | int | float) or isinstance(raw, bool):
        raise ValueError(f"{raw!r} is not a string")
    return str(raw)


def _seconds(raw: Any) -> float:
    """A Prometheus duration (``2m``, ``30s``) or a number of seconds, > 0."""
    from tinct.durations import parse_duration

    text = _text(raw).strip()
    try:
        value = float(text)
    except ValueError:
        value = parse_duration(text)
    if not value > 0:
        raise ValueError(f"{raw!r} is not a positive duration")
    return value


def _positive_int(raw: Any) -> int:
    value = _int(raw)
    if value < 1:
        raise ValueError(f"{raw} is not a positive number")
    return value


def _origins(raw: Any) -> tuple[str, ...]:
    """Comma-separated (flag, environment) or a YAML list of page origins."""
    items = raw if isinstance(raw, list) else str(raw).split(",")
    found = []
    for item in items:
        text = _text(item).strip().rstrip("/")
        if not text:
            continue
        if text != "*" and not re.fullmatch(r"https?://[^/\s]+", text):
            raise ValueError(f"{text!r} is not an origin (scheme://host[:port] or *)")
        found.append(text)
    return tuple(found)


def _store_url(raw: Any) -> str:
    text = _text(raw).strip()
    if not text:
        raise ValueError("the store URL is empty")
    scheme = text.split("://", 1)[0] if "://" in text else ""
    if scheme and scheme not in ("chdb", "clickhouse"):
        raise ValueError(
            f"{text!r} has scheme {scheme!r}; use chdb:///path, a folder, "
            "or clickhouse://host:9000/db"
        )
    return text


def _log_level(raw: Any) -> str:
    text = _text(raw).strip().lower()
    if text not in LOG_LEVELS:
        raise ValueError(f"{raw!r} is not a log level ({', '.join(LOG_LEVELS)})")
    return text


def _path(raw: Any) -> Path:
    text = _text(raw).strip()
    if not text:
        raise ValueError("the path is empty")
    return Path(text).expanduser()


@dataclass(frozen=True)
class SettingSpec:
    """One setting: where it can be given and how it is checked."""

    name: str
    parse: Callable[[Any], Any]
    default: Any
    help: str
    section: str | None  # config file section; None: not settable from the file
    key: str = ""
    metavar: str | None = None
    alias: str | None = None  # another flag, e.g. Prometheus's --query.timeout

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return "TINCT_" + self.name.upper()

    def file_key(self) -> str:
        return f"{self.section}.{self.key or self.name}"


SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec("data", _path, Path("tinct-data"), "data folder", "storage", metavar="DIR"),
    SettingSpec(
        "store",
        _store_url,
        None,
        "store URL: chdb:///path or clickhouse://host:9000/db (default chdb://<data>)",
        "storage",
        key="url",
        metavar="URL",
    ),
    SettingSpec(
        "listen", _address, "127.0.0.1", "address every port binds", "server", metavar="ADDR"
    ),
    SettingSpec("port", _port, 3000, "UI and APIs port", "server", metavar="PORT"),
    SettingSpec("otlp_grpc_port", _port, 4317, "OTLP/gRPC port", "server", metavar="PORT"),
    SettingSpec("otlp_http_port", _port, 4318, "OTLP/HTTP port", "server", metavar="PORT"),
    SettingSpec("zipkin_port", _port, 9411, "Zipkin v2 port", "server", metavar="PORT"),
    SettingSpec("config", _path, None, "YAML config file", None, metavar="FILE"),
    SettingSpec(
        "retention",
        _retention,
        0,
        "days to keep data (0 keeps it forever)",
        "storage",
        key="retention_days",
        metavar="DAYS",
    ),
    SettingSpec(
        "max_series_per_metric",
        _series_limit,
        100_000,
        "most series of one metric name per day; more are dropped and counted (0: no limit)",
        "storage",
        metavar="N",
    ),
    SettingSpec(
        "admin_token", _text, None, "bearer token required by write APIs", "server", metavar="T"
    ),
    SettingSpec("log_level", _log_level, "info", "log level", "server", metavar="LEVEL"),
    SettingSpec(
        "query_timeout",
        _seconds,
        120.0,
        "longest a PromQL query may run (a duration: 2m, 30s)",
        "query",
        key="timeout",
        metavar="DURATION",
        alias="--query.timeout",
    ),
    SettingSpec(
        "query_max_samples",
        _positive_int,
        50_000_000,
        "most samples a PromQL query may load",
        "query",
        key="max_samples",
        metavar="N",
        alias="--query.max-samples",
    ),
    SettingSpec(
        "query_lookback_delta",
        _seconds,
        300.0,
        "how far back an instant vector looks for a sample",
        "query",
        key="lookback_delta",
        metavar="DURATION",
        alias="--query.lookback-delta",
    ),
    SettingSpec(
        "query_max_concurrency",
        _positive_int,
        20,
        "PromQL queries evaluated at once",
        "query",
        key="max_concurrency",
        metavar="N",
        alias="--query.max-concurrency",
    ),
    SettingSpec(
        "rum_allowed_origins",
        _origins,
        (),
        "page origins the browser beacon accepts reports from (comma-separated; * for any)",
        "rum",
        key="allowed_origins",
        metavar="ORIGINS",
    ),
    SettingSpec(
        "dashboards",
        _path,
        None,
        "folder of dashboards in Grafana's dashboard JSON model (YAML too), re-read on change",
        "dashboards",
        key="path",
        metavar="DIR",
    ),
    SettingSpec(
        "topology_wait",
        _seconds,
        10.0,
        "how long the topology waits for the rest of a trace before counting its calls",
        "topology",
        key="wait",
        metavar="DURATION",
    ),
    SettingSpec(
        "topology_flush_interval",
        _seconds,
        60.0,
        "how often counted topology edges are written (and waiting spans saved)",
        "topology",
        key="flush_interval",
        metavar="DURATION",
    ),
)
_BY_NAME = {spec.name: spec for spec in SETTINGS}
_PORTS = ("port", "otlp_grpc_port", "otlp_http_port", "zipkin_port")


def add_setting_flags(parser: argparse.ArgumentParser, names: tuple[str, ...] = ()) -> None:
    """Add the flags of ``names`` (all settings when empty) to ``parser``.

    Flags default to ``None`` so :func:`load_settings` can tell "not given"
    from "given the default"; values stay strings here and are validated by
    the shared parsers, so a bad flag and a bad environment variable read alike.
    """
    for spec in SETTINGS:
        if names and spec.name not in names:
            continue
        default = "" if spec.default is None else f" (default {spec.default})"
        flags = (spec.flag, spec.alias) if spec.alias else (spec.flag,)
        parser.add_argument(
            *flags,
            dest=spec.name,
            default=None,
            metavar=spec.metavar,
            help=f"{spec.help}{default}; env {spec.env}",
        )


def load_settings(
    flags: Mapping[str, Any] | argparse.Namespace,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve every setting: flag > environment > config file > default.

    Args:
        flags: parsed flags (``None`` values mean "not given").
        environ: the environment; ``os.environ`` when omitted.

    Raises:
        ConfigError: naming the setting, where it came from, and the limit.
    """
    given = dict(vars(flags)) if isinstance(flags, argparse.Namespace) else dict(flags)
    env = os.environ if environ is None else environ
    config_path = _pick(_BY_NAME["config"], given, env, {}, None)
    file_values: dict[str, Any] = {}
    if config_path is not None:
        file_values = _read_config_file(config_path)
    values = {
        spec.name: _pick(spec, given, env, file_values, config_path)
        for spec in SETTINGS
        if spec.name != "config"
    }
    values["config"] = config_path
    if values["store"] is None:
        values["store"] = "chdb://" + str(Path(values["data"]).resolve())
    _check_distinct_ports(values)
    return Settings(**values)


def _pick(
    spec: SettingSpec,
    given: Mapping[str, Any],
    env: Mapping[str, str],
    file_values: Mapping[str, Any],
    config_path: Path | None,
) -> Any:
    if given.get(spec.name) is not None:
        return _parse(spec, given[spec.name], f"{spec.flag} / {spec.env}")
    if env.get(spec.env, "") != "":
        return _parse(spec, env[spec.env], f"{spec.flag} / {spec.env}")
    if spec.name in file_values:
        where = f"{spec.file_key()} in {config_path}"
        value = _parse(spec, file_values[spec.name], where)
        relative = spec.name in ("data", "dashboards") and not value.is_absolute()
        if relative and config_path is not None:
            # Relative paths in a config file are relative to the file, as
            # Prometheus resolves rule_files.
            value = config_path.parent / value
        return value
    return spec.default


def _parse(spec: SettingSpec, raw: Any, where: str) -> Any:
    try:
        return spec.parse(raw)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _read_config_file(path: Path) -> dict[str, Any]:
    """The file's ``storage`` and ``server`` values keyed by setting name."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--config / TINCT_CONFIG: cannot read {path}: {exc.strerror}") from exc
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    by_key = {(s.section, s.key or s.name): s.name for s in SETTINGS if s.section}
    values: dict[str, Any] = {}
    for section in ("storage", "server", "query", "rum", "topology", "dashboards"):
        body = doc.get(section)
        if body is None:
            continue
        if not isinstance(body, dict):
            raise ConfigError(f"{section} in {path}: must be a mapping")
        for key, value in body.items():
            name = by_key.get((section, str(key)))
            if name is None and section == "topology":
                continue  # the declared topology: tinct.topology.static reads it
            if name is None:
                known = sorted(k for (sec, k) in by_key if sec == section)
                raise ConfigError(
                    f"{section}.{key} in {path}: unknown setting (known: {', '.join(known)})"
                )
            if value is not None:
                values[name] = value
    return values


def _check_distinct_ports(values: Mapping[str, Any]) -> None:
    seen: dict[int, str] = {}
    for name in _PORTS:
        port = values[name]
        if port == 0:
            continue
        spec = _BY_NAME[name]
        if port in seen:
            other = _BY_NAME[seen[port]]
            raise ConfigError(f"{spec.flag} / {spec.env}: {port} is already used by {other.flag}")
        seen[port] = name
