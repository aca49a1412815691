"""Collection inside ``tinct up``: config → targets → scheduler → store.

Reads the collection parts of the config file (``global``,
``scrape_configs``, ``collectors``; see :mod:`tinct.collectors.config`),
discovers targets again every 30 s or the shortest file_sd
``refresh_interval`` (``file_sd_configs`` files change under a running
Prometheus too), and runs the
:class:`~tinct.collectors.scheduler.Scheduler` feeding a sample batch writer.
Without a config file tinct collects its own host, so a fresh ``tinct up``
shows the infrastructure layer at once.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from tinct.collectors.config import (
    CollectionConfig,
    discover_targets,
    load_collection_config,
    parse_collection_config,
)
from tinct.collectors.layers import SpanLayers
from tinct.collectors.scheduler import MetadataSink, SampleSink, Scheduler

__all__ = ["Collection", "collection_config", "emit_span_layers", "REFRESH_SECONDS"]

logger = logging.getLogger(__name__)

# How often targets are discovered again (file_sd files re-read).
REFRESH_SECONDS = 30.0
# How often the span-estimated layers are written (a scrape interval).
SPAN_LAYERS_EVERY_SECONDS = 15.0


def collection_config(path: Path | None) -> CollectionConfig:
    """The config file's collection settings; the host alone without a file.

    Raises:
        ConfigError: the file's collection sections are invalid.
    """
    if path is None:
        return parse_collection_config({"collectors": {"host": {"enabled": True}}})
    return load_collection_config(path)


class Collection:
    """The scheduler and its target refresh, as one background job.

    Args:
        config: what to collect.
        sink: where sample batches go (a sample BatchWriter's ``submit``).
        metadata_sink: where family metadata goes (the store's ``write_metadata``).
        refresh_seconds: how often targets are discovered again at most;
            sooner when a ``file_sd_configs`` ``refresh_interval`` asks for it.
    """

    def __init__(
        self,
        config: CollectionConfig,
        sink: SampleSink,
        metadata_sink: MetadataSink | None = None,
        *,
        refresh_seconds: float = REFRESH_SECONDS,
    ) -> None:
        self.config = config
        self.scheduler = Scheduler(sink, metadata_sink)
        asked = config.refresh_interval
        self._refresh_seconds = min(refresh_seconds, asked) if asked else refresh_seconds

    async def run(self) -> None:
        """Discover targets, then scrape them until cancelled; never raises
        for a failed discovery (the previous targets stay)."""
        runner = asyncio.create_task(self.scheduler.run())
        try:
            while True:
                try:
                    targets = await asyncio.to_thread(discover_targets, self.config)
                    self.scheduler.set_targets(targets)
                except Exception:
                    logger.exception("discovering collection targets failed; keeping the last")
                await asyncio.sleep(self._refresh_seconds)
        finally:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
            self.scheduler.close()


async def emit_span_layers(
    layers: SpanLayers, sink: SampleSink, every_seconds: float = SPAN_LAYERS_EVERY_SECONDS
) -> None:
    """Write the span-estimated series every ``every_seconds`` until cancelled
    (and once more then); never raises."""
    try:
        while True:
            await asyncio.sleep(every_seconds)
            _emit(layers, sink)
    finally:
        _emit(layers, sink)


def _emit(layers: SpanLayers, sink: SampleSink) -> None:
    try:
        table = layers.collect()
        if table.num_rows:
            sink(table)
    except Exception:
        logger.exception("writing the span-estimated layers failed")
