"""Alerting inside ``tinct up``: from the config file to a running evaluator.

Reads ``global``, ``rule_files``, ``alerting`` (Alertmanagers, relabelling,
the ``layer_rules`` switch), ``webhooks`` and ``slos`` from the config file,
loads the rule files (relative to the config file, as Prometheus resolves
them), adds the layer rule groups when switched on, and runs a
:class:`~tinct.alerting.evaluator.RuleEvaluator` with a
:class:`~tinct.alerting.notifier.Notifier`. :meth:`Alerting.reload` re-reads
everything (``/-/reload``, SIGHUP) and keeps the state of rules that
survive; a bad file leaves the running rules as they were.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml

from tinct.alerting.config import AlertingConfig, parse_alerting_config
from tinct.alerting.layer_rules import layer_rule_groups
from tinct.alerting.layer_rules_config import parse_layer_rules_config
from tinct.alerting.rules import RuleGroup
from tinct.errors import ConfigError

__all__ = ["Alerting", "AlertingSetup", "load_alerting"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlertingSetup:
    """What the config file asks for: settings and every rule group."""

    config: AlertingConfig
    groups: list[RuleGroup]


def load_alerting(path: Path | None) -> AlertingSetup:
    """Parse the alerting parts of the config file and load its rule files.

    Raises:
        ConfigError: naming the file and field (RuleFileError for rules).
    """
    doc: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: cannot read the config: {exc}") from exc
        doc = loaded if isinstance(loaded, dict) else {}
    try:
        config = parse_alerting_config(doc)
        layer_options = parse_layer_rules_config(doc)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    groups: list[RuleGroup] = []
    if config.rule_files:
        from tinct.alerting.rules import load_rule_files

        base = path.parent if path is not None else Path.cwd()
        groups.extend(load_rule_files(list(config.rule_files), base_dir=base))
    if layer_options is not None:
        groups.extend(layer_rule_groups(layer_options))
    return AlertingSetup(config, groups)


class Alerting:
    """The evaluator, its notifier and its reload, for one ``tinct up``.

    Args:
        setup: from :func:`load_alerting`.
        config_path: re-read by :meth:`reload`.
        engine: the PromQL engine over the store.
        store: the metric store (synchronous writes of rule output, ``for``
            restore, alert history).
        external_url: tinct's main URL (``$externalURL``, ``generatorURL``).
    """

    def __init__(
        self,
        setup: AlertingSetup,
        config_path: Path | None,
        engine: Any,
        store: Any,
        external_url: str,
    ) -> None:
        from tinct.alerting.evaluator import RuleEvaluator
        from tinct.alerting.notifier import Notifier

        self._path = config_path
        config = setup.config
        timeout = config.alertmanagers[0].timeout_s if config.alertmanagers else 10.0
        self.notifier = Notifier(
            config.alertmanager_urls,
            config.webhooks,
            external_url=external_url,
            timeout_s=timeout,
        )
        sink: Callable[[pa.Table], None] = store.write_samples
        self.evaluator = RuleEvaluator(
            engine,
            setup.groups,
            sink=sink,
            external_labels=config.external_labels,
            external_url=external_url,
            alert_relabel_configs=config.alert_relabel_configs,
            default_interval_s=config.evaluation_interval_s,
            notifier=self.notifier,
            history=store,
            restore_from=store,
        )

    async def run(self) -> None:
        """Evaluate until cancelled; the notifier stops with it."""
        self.notifier.start()
        try:
            await self.evaluator.run()
        finally:
            await asyncio.to_thread(self.notifier.stop)

    def reload(self) -> None:
        """Re-read the config file's rules; keep running ones on failure.

        Raises:
            ConfigError: the new rules are invalid (nothing changed).
        """
        setup = load_alerting(self._path)
        self.evaluator.reload(setup.groups)
        logger.info("reloaded %d rule groups", len(setup.groups))
