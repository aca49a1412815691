"""From a parsed collection config to the targets to collect, relabelled as Prometheus does.

Each scrape config's target groups (``static_configs``, then the current
content of its ``file_sd_configs``) become label sets; each is relabelled the
way Prometheus's ``scrape/target.go`` (``PopulateLabels``) does, described at
https://prometheus.io/docs/prometheus/latest/configuration/configuration/#scrape_config
and #relabel_config:

* discovered labels: the target's ``__address__``, its group's labels, then,
  where not already set, ``job``, ``__scrape_interval__``,
  ``__scrape_timeout__``, ``__metrics_path__``, ``__scheme__`` and a
  ``__param_<name>`` for the first value of each ``params`` entry;
* ``relabel_configs`` run; a dropped target, or one left without
  ``__address__``, is not collected;
* ``__scrape_interval__`` / ``__scrape_timeout__`` as relabelled set the
  target's schedule (an unparsable one, or a timeout over the interval,
  skips the target with a warning, as Prometheus does);
* ``__meta_*`` labels go, ``instance`` defaults to ``__address__``;
* the URL is ``__scheme__://__address____metrics_path__?params``, the
  ``__param_*`` labels overriding the first value of each parameter (no
  default port is added, as in Prometheus 3);
* labels starting with ``__`` are removed from the target's labels.

Components get ``layer="component"`` and ``component="<type>"`` (unless their
labels set them) and are measured by their component collector at the final
``__address__``; the host gets ``job``, ``instance`` and ``host`` (the host
name) and ``layer="infrastructure"``. Probes get ``layer="user"``; their
final ``__address__`` is the URL probed (and the default ``instance``), by an
:class:`~tinct.collectors.probe.HttpProbe` given the scrape timeout less
blackbox_exporter's timeout offset, so that a failed probe is reported before
the scrape times out; a target that is not an http(s) URL is skipped with a
warning. Targets with the same labels and URL (address, for components) in
one job are collected once.
"""

from __future__ import annotations

import logging
import socket
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

from tinct.collectors.base import Collector, Target
from tinct.collectors.http_config import auth_headers
from tinct.collectors.relabel import relabel
from tinct.durations import format_duration, parse_duration
from tinct.errors import ConfigError

if TYPE_CHECKING:
    from tinct.collectors.config import CollectionConfig, HostConfig, ScrapeConfig
    from tinct.collectors.file_sd import TargetGroup

__all__ = ["discover_targets"]

logger = logging.getLogger(__name__)


def discover_targets(config: CollectionConfig) -> list[Target]:
    """Every target ``config`` asks for now, each with a fresh collector.

    Re-reads the file_sd files (call it again every
    ``config.refresh_interval`` to follow them). Blocks on file I/O; safe to
    call from any thread.

    Raises:
        ConfigError: a collector refused its ``options`` (named by job).
    """
    targets: list[Target] = []
    for scrape in config.scrape_configs:
        targets.extend(_pool_targets(scrape, None))
    for component in config.components:
        targets.extend(_pool_targets(component, component.type))
    for probe in config.probes:
        targets.extend(_pool_targets(probe, None, probe=True))
    if config.host.enabled:
        targets.append(_host_target(config.host))
    return targets


def _pool_targets(
    config: ScrapeConfig, component: str | None, *, probe: bool = False
) -> list[Target]:
    groups: list[TargetGroup] = list(config.static_configs)
    for file_sd in config.file_sd_configs:
        groups.extend(file_sd.target_groups())
    headers = {}
    if component is None and not probe:
        headers = auth_headers(config.basic_auth, config.authorization, config.job_name)
    seen: set[tuple[object, ...]] = set()
    targets = []
    for group in groups:
        for address in group.targets:
            discovered = _discovered_labels(config, group, address, component, probe)
            built = _relabelled(config, discovered, component, probe)
            if built is None:
                continue
            labels, address, url, interval, timeout = built
            key = (tuple(sorted(labels.items())), url or address)
            if key in seen:
                continue
            seen.add(key)
            collector = _collector(config, component, url, address, timeout, headers, probe)
            if collector is None:
                continue
            targets.append(
                Target(
                    job=config.job_name,
                    labels=labels,
                    collector=collector,
                    interval=interval,
                    timeout=timeout,
                    scrape_url=url,
                    discovered_labels=discovered,
                    honor_labels=config.honor_labels,
                    honor_timestamps=config.honor_timestamps,
                    metric_relabel_configs=config.metric_relabel_configs,
                    sample_limit=config.sample_limit,
                )
            )
    return targets


def _discovered_labels(
    config: ScrapeConfig, group: TargetGroup, address: str, component: str | None, probe: bool
) -> dict[str, str]:
    # Target labels win over group labels, which win over the scrape
    # config's (PopulateDiscoveredLabels).
    labels = {**group.labels, "__address__": address}
    defaults = {
        "job": config.job_name,
        "__scrape_interval__": format_duration(config.scrape_interval),
        "__scrape_timeout__": format_duration(config.scrape_timeout),
    }
    if probe:
        defaults["layer"] = "user"
    elif component is None:
        defaults["__metrics_path__"] = config.metrics_path
        defaults["__scheme__"] = config.scheme
        for name, values in config.params.items():
            if values:
                defaults[f"__param_{name}"] = values[0]
    else:
        defaults["layer"] = "component"
        defaults["component"] = component
    for name, value in defaults.items():
        if not labels.get(name):
            labels[name] = value
    return {name: value for name, value in labels.items() if value}


def _relabelled(
    config: ScrapeConfig, discovered: dict[str, str], component: str | None, probe: bool
) -> tuple[dict[str, str], str, str, float, float] | None:
    """(labels, address, url, interval, timeout), or None when not collected."""
    job = config.job_name
    labels = relabel(discovered, config.relabel_configs)
    if labels is None:
        return None
    address = labels.get("__address__", "")
    if not address:
        logger.warning("job %s: target %s has no __address__ after relabelling", job, discovered)
        return None
    if component is None and not probe and "/" in address:
        logger.warning("job %s: %r is not a valid host:port address, skipped", job, address)
        return None
    try:
        interval = parse_duration(labels.get("__scrape_interval__", ""))
        timeout = parse_duration(labels.get("__scrape_timeout__", ""))
    except ValueError as exc:
        logger.warning(
            "job %s: target %s skipped: bad scrape interval or timeout: %s", job, address, exc
        )
        return None
    if interval <= 0 or timeout <= 0 or timeout > interval:
        logger.warning(
            "job %s: target %s skipped: scrape timeout %s and interval %s must be > 0, "
            "the timeout not above the interval",
            job,
            address,
            format_duration(timeout),
            format_duration(interval),
        )
        return None
    for name in [n for n in labels if n.startswith("__meta_")]:
        del labels[name]
    labels.setdefault("instance", address)
    if probe:
        url = address if "://" in address else f"http://{address}"  # as blackbox_exporter
    elif component is None:
        url = _scrape_url(config, labels, address)
    else:
        url = ""
    public = {name: value for name, value in labels.items() if not name.startswith("__")}
    return public, address, url, interval, timeout


def _scrape_url(config: ScrapeConfig, labels: dict[str, str], address: str) -> str:
    # scrape/target.go's URL(): the configured params, the first value of each
    # replaced by its __param_ label; Go's url.Values.Encode sorts by key.
    params = {name: list(values) for name, values in config.params.items()}
    for name, value in labels.items():
        if name.startswith("__param_"):
            key = name[len("__param_") :]
            if params.get(key):
                params[key][0] = value
            else:
                params[key] = [value]
    path = labels.get("__metrics_path__", "")
    if path and not path.startswith("/"):
        path = "/" + path
    # Go's URL.EscapedPath leaves these reserved characters as they are.
    url = f"{labels.get('__scheme__', '')}://{address}{quote(path, safe='/$&+,:;=@')}"
    query = urlencode(sorted(params.items()), doseq=True)
    return f"{url}?{query}" if query else url


def _collector(
    config: ScrapeConfig,
    component: str | None,
    url: str,
    address: str,
    timeout: float,
    headers: dict[str, str],
    probe: bool,
) -> Collector | None:
    if probe:
        from tinct.collectors.probe import TIMEOUT_OFFSET, HttpProbe

        # blackbox_exporter's --timeout-offset; a timeout under a second is halved instead.
        budget = max(timeout - TIMEOUT_OFFSET, timeout / 2)
        try:
            return HttpProbe(url, timeout=budget, options=getattr(config, "module", None))
        except ConfigError as exc:  # the module was checked with the config: a bad URL
            logger.warning("job %s: target skipped: %s", config.job_name, exc)
            return None
    if component is None:
        from tinct.collectors.scrape import HttpCollector

        return HttpCollector(
            url, timeout=timeout, headers=headers, body_size_limit=config.body_size_limit
        )
    from tinct.collectors.components import component_collector

    options = getattr(config, "options", {})
    try:
        return component_collector(component, address, timeout=timeout, options=options)
    except ConfigError as exc:
        raise ConfigError(f"collectors.components (job {config.job_name!r}): {exc}") from None
    except ImportError as exc:
        # A missing client library only affects its own component type.
        logger.error("job %s: cannot collect %s targets: %s", config.job_name, component, exc)
        return None


def _host_target(host: HostConfig) -> Target:
    from tinct.collectors.host import HostCollector

    name = socket.gethostname()
    labels = {"job": host.job_name, "instance": name, "host": name, "layer": "infrastructure"}
    labels = {k: v for k, v in {**labels, **host.labels}.items() if v}
    try:
        collector = HostCollector(options=host.options)
    except ConfigError as exc:
        raise ConfigError(f"collectors.host.options: {exc}") from None
    return Target(
        job=host.job_name,
        labels=labels,
        collector=collector,
        interval=host.scrape_interval,
        timeout=host.scrape_timeout,
        discovered_labels=dict(labels),
        metric_relabel_configs=host.metric_relabel_configs,
    )
