"""The alerting parts of the config file, in Prometheus's layout.

Read from the same YAML document as the rest of tinct's config::

    global:
      evaluation_interval: 1m          # default 1m
      external_labels: {cluster: eu1}
    rule_files: [rules/*.yml]
    alerting:
      alert_relabel_configs: [...]     # <relabel_config>s
      alertmanagers:
        - scheme: http                 # default http
          path_prefix: /               # default /
          api_version: v2              # only v2 (Prometheus 3 dropped v1)
          timeout: 10s
          static_configs:
            - targets: [127.0.0.1:9093]
    webhooks:                          # tinct's own: Alertmanager's webhook payload
      - url: http://chat.example/hook
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tinct.collectors.relabel import RelabelConfig, parse_relabel_configs
from tinct.durations import parse_duration
from tinct.errors import ConfigError

__all__ = ["AlertingConfig", "AlertmanagerConfig", "parse_alerting_config"]

_AM_FIELDS = ("static_configs", "scheme", "path_prefix", "api_version", "timeout")


@dataclass(frozen=True)
class AlertmanagerConfig:
    """One ``alertmanagers`` entry: its base URLs (path prefix included)."""

    urls: tuple[str, ...]
    timeout_s: float = 10.0


@dataclass(frozen=True)
class AlertingConfig:
    """What the evaluator and the notifier are built from.

    Attributes:
        evaluation_interval_s: ``global.evaluation_interval`` (groups without
            their own interval).
        external_labels: ``global.external_labels``.
        rule_files: ``rule_files`` globs, as written (relative to the config
            file's folder, which the caller resolves).
        alertmanagers: ``alerting.alertmanagers``.
        webhooks: ``webhooks[].url``.
        alert_relabel_configs: ``alerting.alert_relabel_configs``.
    """

    evaluation_interval_s: float = 60.0
    external_labels: Mapping[str, str] = field(default_factory=dict)
    rule_files: tuple[str, ...] = ()
    alertmanagers: tuple[AlertmanagerConfig, ...] = ()
    webhooks: tuple[str, ...] = ()
    alert_relabel_configs: tuple[RelabelConfig, ...] = ()

    @property
    def alertmanager_urls(self) -> list[str]:
        return [u for am in self.alertmanagers for u in am.urls]


def _mapping(raw: Any, where: str) -> Mapping[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: must be a mapping")
    return raw


def _list(raw: Any, where: str) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: must be a list")
    return raw


def _str(raw: Any, where: str) -> str:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise ConfigError(f"{where}: {raw!r} is not a string")
    return str(raw)


def _duration(raw: Any, where: str) -> float:
    try:
        seconds = parse_duration(_str(raw, where))
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if seconds <= 0:
        raise ConfigError(f"{where}: must be greater than 0, got {raw!r}")
    return seconds


def _alertmanager(raw: Any, where: str) -> AlertmanagerConfig:
    item = _mapping(raw, where)
    for key in item:
        if key not in _AM_FIELDS:
            raise ConfigError(f"{where}.{key}: not supported (supported: {', '.join(_AM_FIELDS)})")
    scheme = _str(item.get("scheme") or "http", f"{where}.scheme")
    if scheme not in ("http", "https"):
        raise ConfigError(f"{where}.scheme: must be http or https, got {scheme!r}")
    api = _str(item.get("api_version") or "v2", f"{where}.api_version")
    if api != "v2":
        raise ConfigError(f"{where}.api_version: only v2 is supported, got {api!r}")
    prefix = _str(item.get("path_prefix") or "/", f"{where}.path_prefix")
    prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
    timeout = _duration(item["timeout"], f"{where}.timeout") if "timeout" in item else 10.0
    urls = []
    for i, static in enumerate(_list(item.get("static_configs"), f"{where}.static_configs")):
        here = f"{where}.static_configs[{i}]"
        static = _mapping(static, here)
        for j, target in enumerate(_list(static.get("targets"), f"{here}.targets")):
            host = _str(target, f"{here}.targets[{j}]")
            if "/" in host or not host:
                raise ConfigError(f"{here}.targets[{j}]: {host!r} is not a host:port")
            urls.append(f"{scheme}://{host}{prefix}")
    return AlertmanagerConfig(tuple(urls), timeout)


def parse_alerting_config(doc: Mapping[str, Any] | None) -> AlertingConfig:
    """The alerting settings of a parsed config file (``{}`` for none).

    Raises:
        ConfigError: naming the field, e.g. ``alerting.alertmanagers[0].scheme:
            must be http or https, got 'ftp'``.
    """
    doc = _mapping(doc, "config")
    glob = _mapping(doc.get("global"), "global")
    interval = 60.0
    if glob.get("evaluation_interval") is not None:
        interval = _duration(glob["evaluation_interval"], "global.evaluation_interval")
    external = {
        _str(k, "global.external_labels"): _str(v, f"global.external_labels.{k}")
        for k, v in _mapping(glob.get("external_labels"), "global.external_labels").items()
    }
    rule_files = tuple(
        _str(f, f"rule_files[{i}]")
        for i, f in enumerate(_list(doc.get("rule_files"), "rule_files"))
    )
    alerting = _mapping(doc.get("alerting"), "alerting")
    ams = tuple(
        _alertmanager(raw, f"alerting.alertmanagers[{i}]")
        for i, raw in enumerate(_list(alerting.get("alertmanagers"), "alerting.alertmanagers"))
    )
    relabel = parse_relabel_configs(
        alerting.get("alert_relabel_configs"), "alerting.alert_relabel_configs"
    )
    webhooks = []
    for i, raw in enumerate(_list(doc.get("webhooks"), "webhooks")):
        hook = _mapping(raw, f"webhooks[{i}]")
        url = _str(hook.get("url") or "", f"webhooks[{i}].url")
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"webhooks[{i}].url: must be an http(s) URL, got {url!r}")
        webhooks.append(url)
    return AlertingConfig(
        evaluation_interval_s=interval,
        external_labels=external,
        rule_files=rule_files,
        alertmanagers=ams,
        webhooks=tuple(webhooks),
        alert_relabel_configs=relabel,
    )
