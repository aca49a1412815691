"""What to collect: the ``global``, ``scrape_configs`` and ``collectors`` sections of tinct.yaml.

A user's prometheus.yml carries over (DESIGN.md, "Config file"), so the
scrape parts are read in Prometheus's layout and with its rules
(https://prometheus.io/docs/prometheus/latest/configuration/configuration/):
the same defaults (``scrape_interval`` 1m, ``scrape_timeout`` 10s, capped at
the interval, ``metrics_path`` /metrics, ``honor_timestamps`` true), the same
load-time checks, unknown keys refused. Prometheus settings tinct does not
implement are refused when ignoring them would change what is scraped (other
service discoveries, ``tls_config``, ``oauth2``, proxies) and logged as
ignored when they only tune a scrape (``label_limit``, ``enable_http2``...).

tinct's own ``collectors`` section sits beside them::

    collectors:
      host:                     # on unless enabled: false
        scrape_interval: 15s
        options: {...}          # passed to HostCollector
      components:               # scrape_config layout, plus type and options
        - type: redis           # one of collectors.components.COMPONENT_TYPES
          job_name: redis       # defaults to the type
          options: {password: s3cret}
          static_configs:
            - targets: [127.0.0.1:6379]
              labels: {service: users}
      probes:                   # scrape_config layout, plus module; targets are URLs
        - job_name: shop-https  # defaults to "probe"
          module: {valid_status_codes: [200], tls_config: {insecure_skip_verify: true}}
          static_configs:
            - targets: ["https://127.0.0.1:8443/health"]
              labels: {service: shop}

A probe's ``module`` is blackbox_exporter's ``http`` module
(:func:`tinct.collectors.probe_module.parse_module`), checked here so a bad
key fails the config load, not the first probe.

:func:`discover_targets` (from ``collectors.discovery``, re-exported here)
turns a parsed config into the targets to collect.
"""

from __future__ import annotations

import glob
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tinct.collectors.components import COMPONENT_TYPES
from tinct.collectors.discovery import discover_targets
from tinct.collectors.file_sd import (
    FileSDConfig,
    TargetGroup,
    parse_file_sd_configs,
    parse_labels,
    parse_static_configs,
)
from tinct.collectors.http_config import AUTH_KEYS, Authorization, BasicAuth, parse_auth
from tinct.collectors.probe_module import ProbeModule, parse_module
from tinct.collectors.relabel import RelabelConfig, parse_relabel_configs
from tinct.durations import format_duration, parse_duration
from tinct.errors import ConfigError

__all__ = [
    "CollectionConfig",
    "ComponentConfig",
    "GlobalConfig",
    "HostConfig",
    "ProbeConfig",
    "ScrapeConfig",
    "discover_targets",
    "load_collection_config",
    "parse_collection_config",
]

logger = logging.getLogger(__name__)

_GLOBAL_KEYS = "scrape_interval scrape_timeout external_labels sample_limit body_size_limit".split()
# Read by other parts of tinct (rules, query log).
_GLOBAL_OTHERS = ("evaluation_interval", "rule_query_offset", "query_log_file")
# Tuning tinct does not do (yet); dropping it changes no target.
_IGNORED = (
    "label_limit label_name_length_limit label_value_length_limit target_limit "
    "keep_dropped_targets scrape_protocols fallback_scrape_protocol scrape_classic_histograms "
    "always_scrape_classic_histograms convert_classic_histograms_to_nhcb "
    "scrape_native_histograms native_histogram_bucket_limit native_histogram_min_bucket_factor "
    "track_timestamps_staleness metric_name_validation_scheme metric_name_escaping_scheme "
    "scrape_failure_log_file extra_scrape_metrics follow_redirects enable_http2 "
    "enable_compression"
).split()
_UNSUPPORTED_HTTP = (
    "tls_config oauth2 proxy_url no_proxy proxy_from_environment proxy_connect_header http_headers"
).split()
_POOL_KEYS = (
    "job_name scrape_interval scrape_timeout honor_labels honor_timestamps static_configs "
    "file_sd_configs relabel_configs metric_relabel_configs sample_limit"
).split()
_HTTP_KEYS = ["metrics_path", "scheme", "params", "body_size_limit", *AUTH_KEYS]
_HOST_KEYS = "enabled job_name scrape_interval scrape_timeout labels options metric_relabel_configs"
_SIZE_PART = re.compile(r"(\d+\.?\d*|\.\d+)([A-Za-z]+)")
_SIZE_UNITS = {"B": 1} | {
    prefix + suffix: 1024 ** (i + 1) for i, prefix in enumerate("KMGTPE") for suffix in ("B", "iB")
}


@dataclass(frozen=True)
class GlobalConfig:
    """Prometheus's ``global`` section, as far as collection uses it."""

    scrape_interval: float = 60.0
    scrape_timeout: float = 10.0
    external_labels: Mapping[str, str] = field(default_factory=dict)
    sample_limit: int = 0
    body_size_limit: int = 0


@dataclass(frozen=True)
class ScrapeConfig:
    """One ``<scrape_config>``: a job and how its targets are found and scraped.

    Durations are seconds; ``body_size_limit`` is bytes; 0 limits mean none.
    """

    job_name: str
    scrape_interval: float = 60.0
    scrape_timeout: float = 10.0
    metrics_path: str = "/metrics"
    scheme: str = "http"
    params: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    honor_labels: bool = False
    honor_timestamps: bool = True
    static_configs: tuple[TargetGroup, ...] = ()
    file_sd_configs: tuple[FileSDConfig, ...] = ()
    relabel_configs: tuple[RelabelConfig, ...] = ()
    metric_relabel_configs: tuple[RelabelConfig, ...] = ()
    sample_limit: int = 0
    body_size_limit: int = 0
    basic_auth: BasicAuth | None = None
    authorization: Authorization | None = None


@dataclass(frozen=True)
class ComponentConfig(ScrapeConfig):
    """A ``collectors.components`` entry: a scrape config measured by a component collector.

    The HTTP fields (``metrics_path``, ``scheme``, auth...) are unused; the
    connection settings are in ``options``, passed to the collector.
    """

    type: str = ""
    options: Mapping[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class ProbeConfig(ScrapeConfig):
    """A ``collectors.probes`` entry: a scrape config whose targets are URLs to probe.

    The HTTP fields (``metrics_path``, ``scheme``, auth...) are unused; how to
    probe is ``module``, blackbox_exporter's ``http`` module.
    """

    module: ProbeModule = field(default_factory=ProbeModule)


@dataclass(frozen=True)
class HostConfig:
    """``collectors.host``: the machine tinct runs on."""

    enabled: bool = True
    job_name: str = "host"
    scrape_interval: float = 60.0
    scrape_timeout: float = 10.0
    labels: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict, repr=False)
    metric_relabel_configs: tuple[RelabelConfig, ...] = ()


@dataclass(frozen=True)
class CollectionConfig:
    """Everything tinct collects, parsed from one config file."""

    global_config: GlobalConfig = field(default_factory=GlobalConfig)
    scrape_configs: tuple[ScrapeConfig, ...] = ()
    components: tuple[ComponentConfig, ...] = ()
    host: HostConfig = field(default_factory=HostConfig)
    path: Path | None = None
    probes: tuple[ProbeConfig, ...] = ()

    @property
    def refresh_interval(self) -> float | None:
        """Seconds between :func:`discover_targets` calls that file_sd asks for."""
        intervals = [
            f.refresh_interval
            for sc in (*self.scrape_configs, *self.components, *self.probes)
            for f in sc.file_sd_configs
        ]
        return min(intervals) if intervals else None


def load_collection_config(path: Path) -> CollectionConfig:
    """Read and parse a YAML config file.

    Raises:
        ConfigError: unreadable file, bad YAML, or a bad setting (named).
    """
    return parse_collection_config(_read_yaml(path), path=path)


def parse_collection_config(
    doc: Mapping[str, Any], *, path: Path | None = None
) -> CollectionConfig:
    """Parse the collection sections of a config document.

    Args:
        doc: the whole YAML document; sections other than ``global``,
            ``scrape_configs``, ``scrape_config_files`` and ``collectors``
            are left to their features.
        path: the file, for messages and to resolve relative paths.

    Raises:
        ConfigError: prefixed with the file, naming the setting, e.g.
            ``tinct.yaml: scrape_configs[1].scrape_timeout: 20s is greater
            than scrape_interval 15s``.
    """
    try:
        return _parse(doc, path)
    except ConfigError as exc:
        if path is None:
            raise
        raise ConfigError(f"{path}: {exc}") from None


def _parse(doc: Mapping[str, Any], path: Path | None) -> CollectionConfig:
    directory = path.parent if path is not None else None
    glob_ = _parse_global(_mapping(doc.get("global"), "global"))
    raw_scrapes = doc.get("scrape_configs")
    if raw_scrapes is not None and not isinstance(raw_scrapes, list):
        raise ConfigError("scrape_configs: must be a list of scrape configs")
    jobs: dict[str, str] = {}
    scrapes = [
        _parse_pool(raw, f"scrape_configs[{i}]", glob_, directory, jobs)
        for i, raw in enumerate(raw_scrapes or [])
    ]
    for file in _config_files(doc.get("scrape_config_files"), directory):
        # Prometheus reads scrape_config_files relative to their own folder.
        sub = _mapping(_read_yaml(Path(file)), file)
        for key in sub:
            if key != "scrape_configs":
                raise ConfigError(f"{file}: {key}: only scrape_configs may be set here")
        raws = sub.get("scrape_configs") or []
        if not isinstance(raws, list):
            raise ConfigError(f"{file}: scrape_configs: must be a list of scrape configs")
        for i, raw in enumerate(raws):
            where = f"{file}: scrape_configs[{i}]"
            scrapes.append(_parse_pool(raw, where, glob_, Path(file).parent, jobs))
    section = _mapping(doc.get("collectors"), "collectors")
    # probes is accepted but not listed among the known keys, as the existing
    # message (pinned in tests/collectors/test_scrape_config.py) lists them.
    _check_keys(section, "collectors", ("host", "components", "probes"))
    raw_components = section.get("components")
    if raw_components is not None and not isinstance(raw_components, list):
        raise ConfigError("collectors.components: must be a list")
    components = [
        _parse_pool(raw, f"collectors.components[{i}]", glob_, directory, jobs, component=True)
        for i, raw in enumerate(raw_components or [])
    ]
    raw_probes = section.get("probes")
    if raw_probes is not None and not isinstance(raw_probes, list):
        raise ConfigError("collectors.probes: must be a list")
    probes = [
        _parse_pool(raw, f"collectors.probes[{i}]", glob_, directory, jobs, probe=True)
        for i, raw in enumerate(raw_probes or [])
    ]
    host = _parse_host(_mapping(section.get("host"), "collectors.host"), glob_, jobs)
    return CollectionConfig(
        glob_,
        tuple(scrapes),
        tuple(c for c in components if isinstance(c, ComponentConfig)),
        host,
        path,
        tuple(p for p in probes if isinstance(p, ProbeConfig)),
    )


def _parse_global(body: Mapping[str, Any]) -> GlobalConfig:
    _check_keys(body, "global", _GLOBAL_KEYS, others=_GLOBAL_OTHERS)
    interval = _duration(body.get("scrape_interval"), "global.scrape_interval") or 60.0
    timeout = _duration(body.get("scrape_timeout"), "global.scrape_timeout")
    if timeout and timeout > interval:
        raise ConfigError(
            f"global.scrape_timeout: {format_duration(timeout)} is greater than "
            f"global.scrape_interval {format_duration(interval)}"
        )
    if not timeout:
        timeout = min(10.0, interval)
    return GlobalConfig(
        scrape_interval=interval,
        scrape_timeout=timeout,
        external_labels=_labels(body.get("external_labels"), "global.external_labels"),
        sample_limit=_count(body.get("sample_limit"), "global.sample_limit"),
        body_size_limit=_size(body.get("body_size_limit"), "global.body_size_limit"),
    )


def _parse_pool(
    raw: Any,
    where: str,
    glob_: GlobalConfig,
    directory: Path | None,
    jobs: dict[str, str],
    *,
    component: bool = False,
    probe: bool = False,
) -> ScrapeConfig:
    body = _mapping(raw, where)
    if probe:
        hint = "probes (request settings go in module)"
        _check_keys(body, where, (*_POOL_KEYS, "module"), http=_HTTP_KEYS, http_hint=hint)
        job = _text(body.get("job_name", "probe"), f"{where}.job_name")
    elif component:
        _check_keys(body, where, (*_POOL_KEYS, "type", "options"), http=_HTTP_KEYS)
        kind = _text(body.get("type"), f"{where}.type")
        if kind not in COMPONENT_TYPES:
            known = ", ".join(sorted(COMPONENT_TYPES))
            raise ConfigError(f"{where}.type: unknown component type {kind!r} (known: {known})")
        job = _text(body.get("job_name", kind), f"{where}.job_name")
    else:
        _check_keys(body, where, (*_POOL_KEYS, *_HTTP_KEYS))
        job = _text(body.get("job_name"), f"{where}.job_name")
    _claim_job(job, f"{where}.job_name", jobs)
    interval, timeout = _interval_timeout(body, where, glob_)
    relabel_configs = parse_relabel_configs(body.get("relabel_configs"), f"{where}.relabel_configs")
    # config.go checks static targets for URLs only when no relabelling could
    # rewrite them (the blackbox exporter's targets are URLs).
    address_check = not component and not probe and not relabel_configs
    common: dict[str, Any] = dict(
        job_name=job,
        scrape_interval=interval,
        scrape_timeout=timeout,
        honor_labels=_bool(body.get("honor_labels"), f"{where}.honor_labels", False),
        honor_timestamps=_bool(body.get("honor_timestamps"), f"{where}.honor_timestamps", True),
        static_configs=parse_static_configs(
            body.get("static_configs"), f"{where}.static_configs", address_check=address_check
        ),
        file_sd_configs=parse_file_sd_configs(
            body.get("file_sd_configs"), f"{where}.file_sd_configs", directory=directory
        ),
        relabel_configs=relabel_configs,
        metric_relabel_configs=parse_relabel_configs(
            body.get("metric_relabel_configs"), f"{where}.metric_relabel_configs"
        ),
        sample_limit=_count(body.get("sample_limit"), f"{where}.sample_limit")
        or glob_.sample_limit,
    )
    if probe:
        module = dict(_mapping(body.get("module"), f"{where}.module"))
        if "body_size_limit" in module:  # a size, read as Prometheus reads body_size_limit
            limit = module["body_size_limit"]
            module["body_size_limit"] = _size(limit, f"{where}.module.body_size_limit")
        parsed = parse_module(module, f"{where}.module", directory=directory)
        return ProbeConfig(**common, module=parsed)
    if component:
        options = _mapping(body.get("options"), f"{where}.options")
        return ComponentConfig(**common, type=kind, options=dict(options))
    scheme = _text(body.get("scheme", "http"), f"{where}.scheme")
    if scheme not in ("http", "https"):
        raise ConfigError(f"{where}.scheme: {scheme!r} is not http or https")
    basic, authorization = parse_auth(body, where, directory)
    return ScrapeConfig(
        **common,
        metrics_path=_text(body.get("metrics_path", "/metrics"), f"{where}.metrics_path"),
        scheme=scheme,
        params=_params(body.get("params"), f"{where}.params"),
        body_size_limit=_size(body.get("body_size_limit"), f"{where}.body_size_limit")
        or glob_.body_size_limit,
        basic_auth=basic,
        authorization=authorization,
    )


def _interval_timeout(
    body: Mapping[str, Any], where: str, glob_: GlobalConfig
) -> tuple[float, float]:
    # config.go's ScrapeConfig.Validate: an unset timeout is the global one,
    # capped at this job's interval; a set one may not exceed the interval.
    interval = _duration(body.get("scrape_interval"), f"{where}.scrape_interval")
    interval = interval or glob_.scrape_interval
    timeout = _duration(body.get("scrape_timeout"), f"{where}.scrape_timeout")
    if timeout and timeout > interval:
        raise ConfigError(
            f"{where}.scrape_timeout: {format_duration(timeout)} is greater than "
            f"scrape_interval {format_duration(interval)}"
        )
    return interval, timeout or min(glob_.scrape_timeout, interval)


def _parse_host(body: Mapping[str, Any], glob_: GlobalConfig, jobs: dict[str, str]) -> HostConfig:
    where = "collectors.host"
    _check_keys(body, where, _HOST_KEYS.split())
    enabled = _bool(body.get("enabled"), f"{where}.enabled", True)
    job = _text(body.get("job_name", "host"), f"{where}.job_name")
    if enabled:
        _claim_job(job, f"{where}.job_name", jobs)
    interval, timeout = _interval_timeout(body, where, glob_)
    return HostConfig(
        enabled=enabled,
        job_name=job,
        scrape_interval=interval,
        scrape_timeout=timeout,
        labels=_labels(body.get("labels"), f"{where}.labels"),
        options=dict(_mapping(body.get("options"), f"{where}.options")),
        metric_relabel_configs=parse_relabel_configs(
            body.get("metric_relabel_configs"), f"{where}.metric_relabel_configs"
        ),
    )


def _claim_job(job: str, where: str, jobs: dict[str, str]) -> None:
    if not job:
        raise ConfigError(f"{where}: must be set")
    if job in jobs:
        raise ConfigError(f"{where}: {job!r} is already used by {jobs[job]}")
    jobs[job] = where.rsplit(".", 1)[0]


def _check_keys(
    body: Mapping[str, Any],
    where: str,
    known: tuple[str, ...] | list[str],
    *,
    others: tuple[str, ...] = (),
    http: tuple[str, ...] | list[str] = (),
    http_hint: str = "component collectors (connection settings go in options)",
) -> None:
    for key in body:
        if key in known or key in others:
            continue
        here = f"{where}.{key}"
        if key in http:
            raise ConfigError(f"{here}: not used by {http_hint}")
        if key in _IGNORED:
            logger.warning("%s: Prometheus setting ignored by tinct", here)
        elif key in _UNSUPPORTED_HTTP or key.endswith("_sd_configs"):
            raise ConfigError(
                f"{here}: not supported by tinct (service discovery: static_configs, "
                "file_sd_configs; HTTP: basic_auth, authorization)"
            )
        else:
            raise ConfigError(f"{here}: unknown field (known: {', '.join(sorted(known))})")


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    return {} if doc is None else doc


def _config_files(raw: Any, directory: Path | None) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigError("scrape_config_files: must be a list of file globs")
    files: list[str] = []
    for i, pattern in enumerate(raw):
        resolved = _resolve(_text(pattern, f"scrape_config_files[{i}]"), directory)
        files.extend(sorted(glob.glob(resolved)))
    return files


def _resolve(name: str, directory: Path | None) -> str:
    path = Path(name).expanduser()
    return str(directory / path if directory is not None and not path.is_absolute() else path)


def _mapping(raw: Any, where: str) -> Mapping[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: must be a mapping")
    return raw


def _text(raw: Any, where: str = "") -> str:
    if raw is None:
        raise ConfigError(f"{where}: must be set")
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if not isinstance(raw, str | int | float):
        raise ConfigError(f"{where}: {raw!r} is not a string")
    return str(raw)


def _duration(raw: Any, where: str) -> float:
    if raw is None:
        return 0.0
    try:
        return parse_duration(_text(raw, where))
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _bool(raw: Any, where: str, default: bool) -> bool:
    if raw is None:
        return default
    if not isinstance(raw, bool):
        raise ConfigError(f"{where}: {raw!r} is not true or false")
    return raw


def _count(raw: Any, where: str) -> int:
    if raw is None:
        return 0
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        raise ConfigError(f"{where}: {raw!r} is not a whole number >= 0 (0 for no limit)")
    return raw


def _size(raw: Any, where: str) -> int:
    # units.ParseBase2Bytes, as Prometheus reads body_size_limit: KB and KiB
    # are both 1024 bytes; a bare number other than 0 needs a unit.
    text = "0" if raw is None else _text(raw, where)
    if text == "0":
        return 0
    total = 0.0
    pos = 0
    while pos < len(text):
        part = _SIZE_PART.match(text, pos)
        if part is None or part[2] not in _SIZE_UNITS:
            raise ConfigError(
                f"{where}: {text!r} is not a size (e.g. 10MB, 512KiB, 1.5GB; KB = KiB = 1024 B)"
            )
        total += float(part[1]) * _SIZE_UNITS[part[2]]
        pos = part.end()
    if total >= 2**63:
        raise ConfigError(f"{where}: {text!r} is too large")
    return int(total)


def _labels(raw: Any, where: str) -> dict[str, str]:
    try:
        return parse_labels(raw, where)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _params(raw: Any, where: str) -> dict[str, tuple[str, ...]]:
    params: dict[str, tuple[str, ...]] = {}
    for name, values in _mapping(raw, where).items():
        if not isinstance(values, list):
            raise ConfigError(f"{where}.{name}: must be a list of values, e.g. [http_2xx]")
        params[str(name)] = tuple(_text(v, f"{where}.{name}") for v in values)
    return params
