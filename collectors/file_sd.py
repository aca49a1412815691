"""Target groups: the ``static_configs`` of a scrape config and the files of ``file_sd_configs``.

Both are Prometheus's ``<static_config>`` shape, ``{targets: [...], labels:
{...}}``. File-based discovery is Prometheus's ``<file_sd_config>``
(https://prometheus.io/docs/prometheus/latest/configuration/configuration/#file_sd_config):
``files`` are globs (``*`` in the last path element only) of ``.json``,
``.yml`` or ``.yaml`` files, relative to the config file; every target of a
file gets ``__meta_filepath``. As Prometheus's ``discovery/file`` does, a
file that cannot be read or parsed keeps the groups last read from it (and
a warning is logged), while a file that no longer exists takes its targets
with it. Files are re-read on every :meth:`FileSDConfig.target_groups` call;
``refresh_interval`` tells the caller how often to make one.
"""

from __future__ import annotations

import glob
import json
import logging
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tinct.durations import parse_duration
from tinct.errors import ConfigError

__all__ = [
    "FileSDConfig",
    "TargetGroup",
    "parse_file_sd_configs",
    "parse_labels",
    "parse_static_configs",
    "read_target_file",
]

logger = logging.getLogger(__name__)

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# discovery/file's patFileSDName.
_FILE_PATTERN = re.compile(r"[^*]*(\*[^/]*)?\.(json|yml|yaml|JSON|YML|YAML)")
_DEFAULT_REFRESH = 300.0


@dataclass(frozen=True)
class TargetGroup:
    """Targets sharing labels: a ``<static_config>`` or one entry of an SD file.

    Attributes:
        targets: the ``__address__`` of each target.
        labels: labels every target of the group gets.
        source: where the group came from (``path:index`` for files).
    """

    targets: tuple[str, ...]
    labels: Mapping[str, str] = field(default_factory=dict)
    source: str = ""


class _FileState:
    """What each file held when last read successfully."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.groups: dict[str, list[TargetGroup]] = {}


@dataclass(frozen=True)
class FileSDConfig:
    """One ``<file_sd_config>``; keeps the last good groups of each file.

    Attributes:
        files: glob patterns, already joined to the config file's folder.
        refresh_interval: seconds between re-reads (Prometheus also watches
            the files; tinct re-reads on each discovery).
    """

    files: tuple[str, ...]
    refresh_interval: float = _DEFAULT_REFRESH
    _state: _FileState = field(default_factory=_FileState, repr=False, compare=False)

    def target_groups(self) -> list[TargetGroup]:
        """Read every matching file now; thread-safe, blocks on file I/O."""
        with self._state.lock:
            found: dict[str, list[TargetGroup]] = {}
            for path in self._list_files():
                try:
                    found[path] = read_target_file(path)
                except (OSError, ValueError, yaml.YAMLError) as exc:
                    # Keep the last good list, as discovery/file's refresh does.
                    logger.warning(
                        "file_sd: cannot read %s, keeping its previous targets: %s", path, exc
                    )
                    found[path] = self._state.groups.get(path, [])
            self._state.groups = found
            return [group for groups in found.values() for group in groups]

    def _list_files(self) -> list[str]:
        paths: list[str] = []
        for pattern in self.files:
            paths.extend(sorted(glob.glob(pattern, include_hidden=True)))
        return list(dict.fromkeys(paths))


def read_target_file(path: str) -> list[TargetGroup]:
    """The target groups in one JSON or YAML file.

    Raises:
        OSError: the file can't be read.
        ValueError: it is not a list of ``{targets, labels}`` groups.
    """
    text = Path(path).read_text(encoding="utf-8")
    doc: Any
    if path.lower().endswith(".json"):
        doc = json.loads(text)
    else:
        doc = yaml.safe_load(text)
        if doc is None:  # an empty YAML file is an empty list, as in Go
            doc = []
    if not isinstance(doc, list):
        raise ValueError("must be a list of target groups ({targets: [...], labels: {...}})")
    groups = []
    for i, raw in enumerate(doc):
        group = _group(raw, f"[{i}]", address_check=False)
        labels = {**group.labels, "__meta_filepath": path}
        groups.append(TargetGroup(group.targets, labels, f"{path}:{i}"))
    return groups


def parse_static_configs(
    raw: Any, where: str, *, address_check: bool = True
) -> tuple[TargetGroup, ...]:
    """Parse ``static_configs``.

    Args:
        raw: the YAML value (``None`` for none).
        where: its place in the config for messages.
        address_check: refuse targets with a ``/`` (URLs), as Prometheus
            does for scrape targets when no relabelling can rewrite them;
            component addresses may be URLs.

    Raises:
        ConfigError: naming the entry and field.
    """
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: must be a list of {{targets: [...], labels: {{...}}}}")
    try:
        return tuple(
            _group(item, f"{where}[{i}]", address_check=address_check) for i, item in enumerate(raw)
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def parse_file_sd_configs(
    raw: Any, where: str, *, directory: Path | None
) -> tuple[FileSDConfig, ...]:
    """Parse ``file_sd_configs``; relative ``files`` are joined to ``directory``.

    Raises:
        ConfigError: naming the entry and field.
    """
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: must be a list of {{files: [...], refresh_interval: 5m}}")
    configs = []
    for i, item in enumerate(raw):
        here = f"{where}[{i}]"
        if not isinstance(item, Mapping):
            raise ConfigError(f"{here}: must be a mapping {{files: [...], refresh_interval: 5m}}")
        for key in item:
            if key not in ("files", "refresh_interval"):
                raise ConfigError(f"{here}.{key}: unknown field (known: files, refresh_interval)")
        files = item.get("files")
        if not isinstance(files, list) or not files:
            raise ConfigError(f"{here}.files: must list at least one file")
        patterns = []
        for j, name in enumerate(files):
            if not isinstance(name, str) or not _FILE_PATTERN.fullmatch(name):
                raise ConfigError(
                    f"{here}.files[{j}]: {name!r} is not valid for file discovery (a .json, "
                    ".yml or .yaml path; * only in the file name)"
                )
            path = Path(name).expanduser()
            if directory is not None and not path.is_absolute():
                path = directory / path
            patterns.append(str(path))
        refresh = _DEFAULT_REFRESH
        if item.get("refresh_interval") is not None:
            try:
                refresh = parse_duration(_text(item["refresh_interval"]))
            except ValueError as exc:
                raise ConfigError(f"{here}.refresh_interval: {exc}") from None
            if refresh <= 0:
                raise ConfigError(f"{here}.refresh_interval: must be greater than 0")
        configs.append(FileSDConfig(tuple(patterns), refresh))
    return tuple(configs)


def _group(raw: Any, where: str, *, address_check: bool) -> TargetGroup:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: must be a mapping {{targets: [...], labels: {{...}}}}")
    for key in raw:
        if key not in ("targets", "labels"):
            raise ValueError(f"{where}.{key}: unknown field (known: targets, labels)")
    targets_raw = raw.get("targets") or []
    if not isinstance(targets_raw, list):
        raise ValueError(f"{where}.targets: must be a list of addresses (host:port)")
    targets = []
    for i, target in enumerate(targets_raw):
        address = _text(target, f"{where}.targets[{i}]")
        if address_check and "/" in address:
            # config.CheckTargetAddress: the scheme and path have their own settings.
            raise ValueError(
                f"{where}.targets[{i}]: {address!r} is not a host:port address (set the "
                "scheme with `scheme` and the path with `metrics_path`)"
            )
        targets.append(address)
    return TargetGroup(tuple(targets), parse_labels(raw.get("labels"), f"{where}.labels"))


def parse_labels(raw: Any, where: str) -> dict[str, str]:
    """A ``labels`` mapping: valid label names to string values; empty values dropped.

    Raises:
        ValueError: naming the label; callers turn it into a ``ConfigError``.
    """
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: must be a mapping of label names to values")
    labels = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not _LABEL_NAME.fullmatch(name):
            raise ValueError(
                f"{where}: {name!r} is not a valid label name (letters, digits and _, "
                "not starting with a digit)"
            )
        text = "" if value is None else _text(value, f"{where}.{name}")
        if text:
            labels[name] = text
    return labels


def _text(value: Any, where: str = "") -> str:
    # YAML scalars read into Go strings keep their text: `port: 9100` is "9100".
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise ValueError(f"{where}: {value!r} is not a string" if where else f"{value!r} is not text")
