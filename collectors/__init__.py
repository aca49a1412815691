"""Collectors: what measures the infrastructure and component layers.

Every collector implements :class:`Collector` (one method, ``collect()``,
returning prometheus_client metric families): the host
(``collectors.host``), any Prometheus target over HTTP (``collectors.scrape``)
and the components under their standard exporters' names
(:func:`component_collector`). :func:`parse_collection_config` reads the
``global``, ``scrape_configs`` and ``collectors`` sections,
:func:`discover_targets` turns them into :class:`Target` objects, and the
:class:`Scheduler` runs them as Prometheus's scrape loop does.
"""

from tinct.collectors.base import CollectError, Collector, Target
from tinct.collectors.components import COMPONENT_TYPES, component_collector
from tinct.collectors.config import (
    CollectionConfig,
    discover_targets,
    load_collection_config,
    parse_collection_config,
)
from tinct.collectors.scheduler import Scheduler, TargetHealth

__all__ = [
    "Collector",
    "CollectError",
    "Target",
    "COMPONENT_TYPES",
    "component_collector",
    "CollectionConfig",
    "parse_collection_config",
    "load_collection_config",
    "discover_targets",
    "Scheduler",
    "TargetHealth",
]
