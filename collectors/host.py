"""The local host, measured as OpenTelemetry's hostmetrics receiver measures it.

Infrastructure dashboards and alert rules are written once against the
catalog's HOST section (:mod:`tinct.catalog`): OpenTelemetry system metric
names, translated to Prometheus names by :mod:`tinct.naming`, with the
attribute names and values the Collector's ``hostmetrics`` receiver
(``receiver/hostmetricsreceiver``, scrapers cpu, load, memory, paging, disk,
filesystem, network, processes) gives them. Every family is built from its
catalog spec, so name, type, unit and help cannot drift from the catalog.

The readings come from psutil. CPU times and memory are the core: when psutil
cannot read them the host cannot be measured and ``collect`` raises
:class:`CollectError`. Every other group of families is optional: its failure
is logged once at debug and only that group is skipped, so a host without
swap accounting or with an unreadable mount still reports the rest. No
target labels (``layer``, ``host``, ``job``, ``instance``) are emitted: the
scheduler adds them.
"""

from __future__ import annotations

import logging
import mmap
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import psutil
from prometheus_client import Metric
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from tinct.catalog import CATALOG
from tinct.collectors.base import CollectError
from tinct.errors import ConfigError
from tinct.standard import MetricType

__all__ = ["HostCollector"]

logger = logging.getLogger(__name__)

_OPTIONS = ("exclude_devices", "exclude_mountpoints")
_LINUX = sys.platform.startswith("linux")

# fmt: off
# psutil cpu_times field -> the receiver's ``state`` (cpu_scraper_linux.go; ``interrupt``
# is Windows' field). guest/guest_nice are left out: Linux already counts them in
# user/nice, and the receiver's total leaves them out for that reason.
_CPU_STATES = {
    "user": "user", "system": "system", "idle": "idle", "irq": "interrupt",
    "interrupt": "interrupt", "nice": "nice", "softirq": "softirq", "steal": "steal",
    "iowait": "wait",
}
# Filesystems with no storage of their own (node_exporter's default fs-types-exclude,
# less overlay and tmpfs, which do hold data); anything reporting 0 bytes is skipped too.
_PSEUDO_FS = frozenset((
    "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs", "devpts",
    "devtmpfs", "efivarfs", "fusectl", "hugetlbfs", "mqueue", "nsfs", "proc", "procfs",
    "pstore", "rpc_pipefs", "securityfs", "selinuxfs", "squashfs", "sysfs", "tracefs",
))
# Every TCP state the receiver reports, 0 when there is none (networkscraper's
# allTCPStates); the kernel's codes in /proc/net/tcp (include/net/tcp_states.h,
# NEW_SYN_RECV counted as SYN_RECV); psutil's names where they differ.
_TCP_STATES = (
    "CLOSE_WAIT", "CLOSE", "CLOSING", "DELETE", "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2",
    "LAST_ACK", "LISTEN", "SYN_SENT", "SYN_RECV", "TIME_WAIT",
)
_TCP_CODES = {
    "01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT_1",
    "05": "FIN_WAIT_2", "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT",
    "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING", "0C": "SYN_RECV",
}
_PSUTIL_TCP = {"FIN_WAIT1": "FIN_WAIT_1", "FIN_WAIT2": "FIN_WAIT_2", "DELETE_TCB": "DELETE"}
# psutil process status -> the receiver's ``status`` (gopsutil's letters as mapped by
# processesscraper's charToState: D blocked, W paging, Z zombies); the rest is unknown.
_PROCESS_STATUS = {
    "running": "running", "sleeping": "sleeping", "disk-sleep": "blocked",
    "stopped": "stopped", "tracing-stop": "stopped", "zombie": "zombies", "idle": "idle",
    "locked": "locked", "waiting": "paging", "waking": "paging",
}
# fmt: on
# node_exporter (collector/cpu_linux.go) treats idle going back by more than this as a
# CPU hotplug and restarts that CPU's counters; smaller dips (iowait, idle under NO_HZ
# are known to step back) are held at the last value so the counters never decrease.
_JUMP_BACK_SECONDS = 3.0
# psutil reports swap-ins/outs in bytes: /proc/vmstat's pswpin/pswpout pages times a
# literal 4 KiB on Linux (psutil/_pslinux.py swap_memory), the page size elsewhere.
_SWAP_PAGE = 4096 if _LINUX else mmap.PAGESIZE


def _family(name: str) -> GaugeMetricFamily | CounterMetricFamily:
    spec = CATALOG.get(name)
    if spec is None:
        raise KeyError(f"{name} is not in the catalog")
    cls = CounterMetricFamily if spec.type is MetricType.COUNTER else GaugeMetricFamily
    return cls(spec.name, spec.help, labels=spec.labels, unit=spec.unit)


def _single(name: str, value: float) -> Metric:
    family = _family(name)
    family.add_metric([], value)
    return family


def _patterns(options: Mapping[str, Any], key: str) -> list[re.Pattern[str]]:
    raw = options.get(key, [])
    if isinstance(raw, str) or not isinstance(raw, Iterable):
        raise ConfigError(f"host option {key!r} must be a list of regular expressions")
    try:
        return [re.compile(str(pattern)) for pattern in raw]
    except re.error as exc:
        raise ConfigError(f"host option {key!r}: bad regular expression: {exc}") from exc


def _memory() -> list[Metric]:
    vm = psutil.virtual_memory()
    states = {"used": float(vm.used), "free": float(vm.free)}
    buffers, cached = getattr(vm, "buffers", None), getattr(vm, "cached", None)
    if buffers is not None and cached is not None:
        # gopsutil's (so the receiver's) used, not psutil's total - available, so the
        # four states add up to the total. cached includes SReclaimable in both.
        used = vm.total - vm.free - buffers - cached
        states.update(used=float(used if used >= 0 else vm.used), buffered=buffers, cached=cached)
    usage, share = _family("system_memory_usage_bytes"), _family("system_memory_utilization_ratio")
    for state, value in states.items():
        usage.add_metric([state], value)
        share.add_metric([state], value / vm.total if vm.total else 0.0)
    return [usage, share, _single("system_memory_limit_bytes", vm.total)]


def _load() -> list[Metric]:
    averages = zip(("1m", "5m", "15m"), psutil.getloadavg(), strict=True)
    return [_single(f"system_cpu_load_average_{window}", value) for window, value in averages]


def _paging() -> list[Metric]:
    swap = psutil.swap_memory()
    usage, share = _family("system_paging_usage_bytes"), _family("system_paging_utilization_ratio")
    for state, value in (("used", swap.used), ("free", swap.free)):
        usage.add_metric([state], value)
        if swap.total:
            share.add_metric([state], value / swap.total)
    ops = _family("system_paging_operations")
    ops.add_metric(["page_in"], swap.sin // _SWAP_PAGE)
    ops.add_metric(["page_out"], swap.sout // _SWAP_PAGE)
    return [usage, share, ops] if swap.total else [usage, ops]


def _connections() -> list[Metric]:
    counts = dict.fromkeys(_TCP_STATES, 0)
    if _LINUX:
        # The socket tables directly: psutil.net_connections would also walk every
        # process's fds to find owners, which is slow and needs privileges.
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                with open(table, encoding="ascii") as lines:
                    next(lines, None)
                    for line in lines:
                        fields = line.split(maxsplit=4)
                        state = _TCP_CODES.get(fields[3] if len(fields) > 3 else "", "")
                        counts[state] = counts.get(state, 0) + 1
            except FileNotFoundError:  # no IPv6 on this host
                continue
        counts.pop("", None)
    else:
        for conn in psutil.net_connections("tcp"):
            if conn.status != psutil.CONN_NONE:
                state = _PSUTIL_TCP.get(conn.status, conn.status)
                counts[state] = counts.get(state, 0) + 1
    family = _family("system_network_connections")
    for state, count in counts.items():
        family.add_metric(["tcp", state], count)
    return [family]


def _processes() -> list[Metric]:
    counts = {"running": 0, "blocked": 0}
    for proc in psutil.process_iter(["status"]):
        status = _PROCESS_STATUS.get(proc.info.get("status") or "", "unknown")
        counts[status] = counts.get(status, 0) + 1
    family = _family("system_process_count")
    for status, count in counts.items():
        family.add_metric([status], count)
    return [family]


def _created() -> list[Metric]:
    # psutil has no fork count; Linux's is /proc/stat's ``processes`` (proc(5)).
    with open("/proc/stat", encoding="ascii") as stat:
        for line in stat:
            if line.startswith("processes "):
                return [_single("system_process_created", int(line.split()[1]))]
    return []


def _uptime() -> list[Metric]:
    return [_single("system_uptime_seconds", time.time() - psutil.boot_time())]


class HostCollector:
    """Measures the host it runs on (CPU, memory, swap, disks, filesystems, network).

    Args:
        options: ``exclude_devices`` (regular expressions; a disk, filesystem or
            network interface whose ``device`` label matches anywhere is skipped)
            and ``exclude_mountpoints`` (likewise for filesystem mountpoints).

    Raises:
        ConfigError: an unknown option, or a value that is not a list of valid
            regular expressions.

    ``collect`` blocks on local reads only (procfs, statvfs); like every
    collector it is called by one thread at a time. CPU utilization is the share
    of each state since the previous ``collect``, so the first one emits none,
    as the receiver's cpu scraper does.
    """

    def __init__(self, *, options: Mapping[str, Any] | None = None) -> None:
        options = dict(options or {})
        for key in options:
            if key not in _OPTIONS:
                raise ConfigError(
                    f"host option {key!r} is not known (known: {', '.join(_OPTIONS)})"
                )
        self._exclude_devices = _patterns(options, "exclude_devices")
        self._exclude_mountpoints = _patterns(options, "exclude_mountpoints")
        self._cpu: dict[str, dict[str, float]] = {}
        self._logged: set[str] = set()

    def collect(self) -> list[Metric]:
        """This collection's families. Raises CollectError when psutil fails."""
        try:
            families = [*self._cpu_families(), *_memory()]
        except Exception as exc:
            raise CollectError(f"psutil could not read CPU times or memory: {exc}") from exc
        optional: tuple[tuple[str, Callable[[], list[Metric]]], ...] = (
            ("load", _load),
            ("paging", _paging),
            ("disk", self._disks),
            ("filesystem", self._filesystems),
            ("network", self._network),
            ("connections", _connections),
            ("processes", _processes),
            ("processes created", _created),
            ("uptime", _uptime),
        )
        for group, read in optional:
            try:
                families.extend(read())
            except Exception:
                if group not in self._logged:
                    self._logged.add(group)
                    logger.debug("host %s metrics skipped", group, exc_info=True)
        return families

    def _excluded(self, patterns: list[re.Pattern[str]], value: str) -> bool:
        return any(pattern.search(value) for pattern in patterns)

    def _cpu_families(self) -> list[Metric]:
        times = psutil.cpu_times(percpu=True)
        count = psutil.cpu_count(logical=True) or len(times)
        seconds, share = _family("system_cpu_time_seconds"), _family("system_cpu_utilization_ratio")
        for index, reading in enumerate(times):
            cpu = f"cpu{index}"
            new = {
                state: float(getattr(reading, f))
                for f, state in _CPU_STATES.items()
                if hasattr(reading, f)
            }
            old = self._cpu.get(cpu)
            if (
                old is not None
                and old.get("idle", 0.0) - new.get("idle", 0.0) <= _JUMP_BACK_SECONDS
            ):
                new = {state: max(value, old.get(state, value)) for state, value in new.items()}
                elapsed = sum(new.values()) - sum(old.values())
                if elapsed > 0:  # 0 when collected within one clock tick: no share to give
                    for state, value in new.items():
                        # min(): float rounding may put a lone busy state a hair over 1.
                        ratio = min(1.0, (value - old.get(state, value)) / elapsed)
                        share.add_metric([cpu, state], ratio)
            self._cpu[cpu] = new
            for state, value in new.items():
                seconds.add_metric([cpu, state], value)
        return [seconds, share, _single("system_cpu_logical_count", count)]

    def _disks(self) -> list[Metric]:
        names = ("io_bytes", "operations", "operation_time_seconds", "io_time_seconds")
        io, ops, op_time, busy = (_family(f"system_disk_{name}") for name in names)
        for device, c in psutil.disk_io_counters(perdisk=True).items():
            if self._excluded(self._exclude_devices, device):
                continue
            for direction, nbytes, count, ms in (
                ("read", c.read_bytes, c.read_count, c.read_time),
                ("write", c.write_bytes, c.write_count, c.write_time),
            ):
                io.add_metric([device, direction], nbytes)
                ops.add_metric([device, direction], count)
                op_time.add_metric([device, direction], ms / 1000)
            if hasattr(c, "busy_time"):  # Linux and FreeBSD only
                busy.add_metric([device], c.busy_time / 1000)
        return [io, ops, op_time, busy]

    def _filesystems(self) -> list[Metric]:
        # Keyed by mountpoint: a mount stacked on another lists both, the later visible.
        mounts = {p.mountpoint: p for p in psutil.disk_partitions(all=True)}
        usage = _family("system_filesystem_usage_bytes")
        share = _family("system_filesystem_utilization_ratio")
        for mountpoint, part in mounts.items():
            if (
                part.fstype in _PSEUDO_FS
                or self._excluded(self._exclude_mountpoints, mountpoint)
                or self._excluded(self._exclude_devices, part.device or "none")
            ):
                continue
            try:
                du = psutil.disk_usage(mountpoint)
            except OSError:  # gone, or not ours to stat: skip this mount only
                continue
            if not du.total:
                continue
            # psutil turns /proc/mounts' "none" into "", which Prometheus reads as no label.
            labels = [part.device or "none", mountpoint, part.fstype]
            # statvfs: free is what unprivileged users may still use (f_bavail); the
            # rest of the unused blocks is reserved for root. Utilization is df's Use%,
            # used / (used + free), as the receiver's (gopsutil UsedPercent).
            reserved = du.total - du.used - du.free
            for state, value in (("used", du.used), ("free", du.free), ("reserved", reserved)):
                usage.add_metric([*labels, state], value)
            share.add_metric(labels, du.used / (du.used + du.free) if du.used + du.free else 0.0)
        return [usage, share]

    def _network(self) -> list[Metric]:
        io, packets, errors, dropped = (
            _family(f"system_network_{name}")
            for name in ("io_bytes", "packets", "errors", "dropped")
        )
        for device, c in psutil.net_io_counters(pernic=True).items():
            if self._excluded(self._exclude_devices, device):
                continue
            for family, received, sent in (
                (io, c.bytes_recv, c.bytes_sent),
                (packets, c.packets_recv, c.packets_sent),
                (errors, c.errin, c.errout),
                (dropped, c.dropin, c.dropout),
            ):
                family.add_metric([device, "receive"], received)
                family.add_metric([device, "transmit"], sent)
        return [io, packets, errors, dropped]
