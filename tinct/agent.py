"""``tinct agent``: collection on another machine, shipped by remote_write.

Runs the same collection as ``tinct up`` (the config file's ``global``,
``scrape_configs`` and ``collectors`` sections: host, components, probes, any
Prometheus target) without a store, and sends the samples to a tinct
server's ``POST /api/v1/write`` through a disk buffer
(:mod:`tinct.collectors.remote_write_client`): while the server is
unreachable collection goes on, and once it is back every sample arrives,
in order. Stopping (SIGTERM, SIGINT) ends collection, then gives the sender
up to ``--drain`` seconds to empty the buffer; what is left stays on disk
and goes first at the next start.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tinct.errors import ConfigError

if TYPE_CHECKING:
    from tinct.collectors.config import CollectionConfig

__all__ = ["add_agent_command", "run_agent"]

logger = logging.getLogger("tinct.agent")

_DEFAULT_SERVER = "http://127.0.0.1:3000"
_DEFAULT_BUFFER = "./tinct-agent-buffer"


def add_agent_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    agent = subparsers.add_parser(
        "agent",
        help="collect here and send to a tinct server by remote_write",
        description=(
            "Run the host, component, probe and scrape collectors of --config and "
            "send what they collect to a tinct server's /api/v1/write, buffering on "
            "disk while it is unreachable."
        ),
    )
    agent.add_argument("--config", help="YAML config (collection sections); env TINCT_CONFIG")
    agent.add_argument(
        "--server", help=f"tinct's main URL (default {_DEFAULT_SERVER}); env TINCT_SERVER"
    )
    agent.add_argument(
        "--buffer", help=f"buffer folder (default {_DEFAULT_BUFFER}); env TINCT_AGENT_BUFFER"
    )
    agent.add_argument(
        "--max-buffer-bytes",
        type=int,
        default=1 << 30,
        help="bound of the buffer folder; the oldest batches go past it (default 1 GiB)",
    )
    agent.add_argument(
        "--drain", type=float, default=10.0, help="seconds to keep sending on stop (default 10)"
    )
    agent.add_argument("--log-level", default="info", help="log level (default info)")
    agent.set_defaults(handler=_cmd_agent)


def _cmd_agent(args: argparse.Namespace) -> int:
    config = args.config or os.environ.get("TINCT_CONFIG") or None
    server = (args.server or os.environ.get("TINCT_SERVER") or _DEFAULT_SERVER).rstrip("/")
    if not server.startswith(("http://", "https://")):
        raise ConfigError(f"--server / TINCT_SERVER: {server!r} is not an http(s) URL")
    buffer = Path(args.buffer or os.environ.get("TINCT_AGENT_BUFFER") or _DEFAULT_BUFFER)
    if args.max_buffer_bytes < 1 << 20:
        raise ConfigError("--max-buffer-bytes: must be at least 1048576 (1 MiB)")
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Imported here so `tinct --help` does not pay for the collectors.
    from tinct.collection import collection_config

    collecting = collection_config(Path(config) if config else None)
    return asyncio.run(
        run_agent(collecting, server, buffer, args.max_buffer_bytes, drain_seconds=args.drain)
    )


async def run_agent(
    config: CollectionConfig,
    server: str,
    buffer_folder: Path,
    max_buffer_bytes: int = 1 << 30,
    *,
    drain_seconds: float = 10.0,
) -> int:
    """Collect and send until SIGTERM/SIGINT; returns the exit code (0, or 1
    when the buffer could not be emptied in ``drain_seconds``)."""
    from tinct.collection import Collection
    from tinct.collectors.remote_write_client import DiskBuffer, RemoteWriteSender

    buffer = DiskBuffer(buffer_folder, max_bytes=max_buffer_bytes)
    sender = RemoteWriteSender(buffer, server + "/api/v1/write")
    sender.start()
    collection = Collection(config, sender.submit, sender.submit_metadata)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    left = len(buffer)
    logger.info(
        "sending to %s/api/v1/write; buffer %s (%d batches waiting)", server, buffer_folder, left
    )
    task = asyncio.create_task(collection.run())
    try:
        await stop.wait()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        empty = await asyncio.to_thread(sender.drain, drain_seconds)
        sender.stop()
    if not empty:
        logger.warning("%d batches left in %s for the next start", len(buffer), buffer_folder)
        return 1
    logger.info("stopped; buffer empty")
    return 0
