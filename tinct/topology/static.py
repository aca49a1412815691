"""The static topology: what should talk to what, as the user declares it.

The topology views compare this declared graph with the dynamic one drawn
from spans: an edge declared but never seen, or seen but never declared, is
worth a look. It is the ``topology`` section of tinct's config file::

    topology:
      files: [topology.d/*.yaml, more.yaml]   # optional, see below
      applications:
        - name: shop
          services:
            - name: frontend                   # no whitespace: ids are "<service> <route>"
              instances: ["127.0.0.1:8000"]    # optional, host:port strings
              entry: true                      # optional (false): users call it
              depends_on: [cart, orders-db]    # services or components, any application
              interfaces:                      # optional, interface level
                - route: /checkout             # an http.route or an operation name
                  depends_on: ["cart /cart/{id}", orders-db]
          components:
            - name: orders-db                  # no whitespace
              type: postgresql                 # a key of COMPONENT_TYPES
              address: 127.0.0.1:5432          # optional host:port (or host)

``files`` are globs relative to the config file's folder, read in sorted
order, each file once; a glob matching no file is an error. Each holds either
a top-level ``topology:`` mapping or the section's keys directly, and only
``applications`` (no nested ``files``). An application may be split over
several files; service and component names are unique over all of them, and
a name is either a service or a component.

An interface dependency names ``"<service> <route>"`` (the service declared,
the route not necessarily) or a component. A service-level dependency names
a service or a component; an interface's dependency implies its service's
(the service edge is added too). ``user`` stands for the people calling entry
services, so it can't be declared.

Every problem found is reported at once, as ``<file>:<line>:<col>: <field
path>: <problem>`` lines in one :class:`~tinct.errors.ConfigError`. The
section's ``wait`` and ``flush_interval`` are the dynamic topology's process
settings (``tinct.config``), not part of the declared graph.
"""

from __future__ import annotations

import difflib
import glob
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from tinct.errors import ConfigError
from tinct.yamlnodes import Checker, Node, join

__all__ = [
    "COMPONENT_TYPES",
    "USER",
    "DeclaredComponent",
    "DeclaredService",
    "StaticTopology",
    "StaticTopologySource",
    "load_topology",
    "parse_topology",
]

logger = logging.getLogger(__name__)

COMPONENT_TYPES: dict[str, str] = {
    "redis": "cache",
    "memcached": "cache",
    "postgresql": "database",
    "mysql": "database",
    "clickhouse": "database",
    "sqlite": "database",
    "nginx": "external",
    "queue": "queue",
    "external": "external",
}
"""Component type -> the kind of node the views draw for it."""

USER = "user"
"""The node id of the people calling entry services."""


@dataclass(frozen=True)
class DeclaredService:
    """A service as declared.

    Attributes:
        instances: ``host:port`` of each instance, as written.
        entry: users call it (the topology has an edge ``user`` -> it).
        routes: its declared interfaces (http.route or operation names).
    """

    name: str
    application: str
    instances: tuple[str, ...] = ()
    entry: bool = False
    routes: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeclaredComponent:
    """A component (database, cache, queue, external system) as declared."""

    name: str
    application: str
    type: str
    address: str = ""

    @property
    def kind(self) -> str:
        """The node kind the views draw: ``database``, ``cache``, ``queue``, ``external``."""
        return COMPONENT_TYPES[self.type]


@dataclass(frozen=True)
class StaticTopology:
    """The declared graph. Immutable; share it between threads freely.

    Attributes:
        applications: application names, in declaration order.
        services: service name -> its declaration.
        components: component name -> its declaration.
        service_edges: (source, target) service or component names, from
            ``depends_on`` of services and of their interfaces, plus
            (``user``, name) for each entry service.
        interface_edges: (``"<service> <route>"``, ``"<service> <route>"``
            or a component name), plus (``user``, ``"<service> <route>"``)
            for each declared route of an entry service.
    """

    applications: tuple[str, ...] = ()
    services: Mapping[str, DeclaredService] = field(default_factory=dict)
    components: Mapping[str, DeclaredComponent] = field(default_factory=dict)
    service_edges: frozenset[tuple[str, str]] = frozenset()
    interface_edges: frozenset[tuple[str, str]] = frozenset()

    def is_empty(self) -> bool:
        """Nothing to draw: no service and no component declared."""
        return not self.services and not self.components

    def component_for(self, peer: str) -> DeclaredComponent | None:
        """The declared component a dynamic peer name denotes, None if none.

        In order: a component named ``peer``; one whose address is ``peer``;
        for a peer without port, one whose address has that host; for a
        ``host:port`` peer, one whose address is that host only. Hosts
        compare case-insensitively. When several components match at the
        first step that matches any (two databases on one server), the peer
        is ambiguous and None is returned rather than a guess.
        """
        if peer in self.components:
            return self.components[peer]
        by_address, by_host, host_only = self._address_index
        key = peer.strip().lower()
        if key in by_address:
            return _unique(by_address[key])
        split = _split_host_port(key)
        if split is None:
            return None
        host, port = split
        if port is None:
            return _unique(by_host.get(host, []))
        return _unique(host_only.get(host, []))

    def application_of(self, node_id: str) -> str:
        """The application of a service, component or ``"<service> <route>"``; "" if unknown."""
        if node_id in self.services:
            return self.services[node_id].application
        if node_id in self.components:
            return self.components[node_id].application
        service = node_id.split(" ", 1)[0]
        return self.services[service].application if service in self.services else ""

    @cached_property
    def _address_index(self) -> tuple[_Index, _Index, _Index]:
        # Built on first use (cached_property writes the instance dict, which a
        # frozen dataclass allows); two threads racing both build the same.
        by_address: _Index = {}
        by_host: _Index = {}
        host_only: _Index = {}
        for comp in self.components.values():
            split = _split_host_port(comp.address.lower()) if comp.address else None
            if split is not None:
                by_address.setdefault(comp.address.lower(), []).append(comp)
                by_host.setdefault(split[0], []).append(comp)
                if split[1] is None:
                    host_only.setdefault(split[0], []).append(comp)
        return by_address, by_host, host_only


_Index = dict[str, list[DeclaredComponent]]


def _unique(found: list[DeclaredComponent]) -> DeclaredComponent | None:
    return found[0] if len(found) == 1 else None


# ---- reading and checking ---------------------------------------------------

# wait and flush_interval are process settings (tinct.config) in the same section.
_TOP_KEYS = ("files", "applications", "wait", "flush_interval")
_APP_KEYS = ("name", "services", "components")
_SERVICE_KEYS = ("name", "instances", "entry", "depends_on", "interfaces")
_INTERFACE_KEYS = ("route", "depends_on")
_COMPONENT_KEYS = ("name", "type", "address")


@dataclass
class _Dep:
    """A ``depends_on`` entry, resolved once every file is read."""

    file: int
    node: Node
    path: str
    target: str
    source: str  # the declaring service, "" when its name is invalid
    route: str | None  # the declaring interface's route; None: service level


class _Reader(Checker):
    """Reads a config file and the files it names, collecting every problem."""

    def __init__(self) -> None:
        super().__init__()
        self.globs: list[str] = []
        self.applications: list[str] = []
        self.services: dict[str, DeclaredService] = {}
        self.components: dict[str, DeclaredComponent] = {}
        self.service_edges: set[tuple[str, str]] = set()
        self.interface_edges: set[tuple[str, str]] = set()
        self._declared: dict[str, tuple[str, str]] = {}  # name -> (kind, file:line:col)
        self._deps: list[_Dep] = []

    def result(self) -> StaticTopology:
        if problems := self.messages():
            raise ConfigError("\n".join(problems))
        return StaticTopology(
            tuple(self.applications),
            dict(self.services),
            dict(self.components),
            frozenset(self.service_edges),
            frozenset(self.interface_edges),
        )

    # -- files

    def read_config(self, text: str | None, name: str, base_dir: Path) -> None:
        """Read the config file (``text`` None: from disk) and the files it names."""
        root = self.open(name, text)
        if root is None or root.value is None:
            return
        if not isinstance(root.value, dict):
            self.error(root, "", "the top level must be a mapping of sections")
            return
        for dup, first in root.duplicates:
            if dup.value == "topology":
                self.error(dup, "topology", f"duplicate key (first at line {first.line})")
        if "topology" in root.value:
            section = self.fields(root.value["topology"][1], "topology", _TOP_KEYS)
            if section is not None:
                self._applications(section.get("applications"), "topology")
                self._read_files(section.get("files"), name, base_dir)
        self._resolve()

    def _read_files(self, node: Node | None, config: str, base_dir: Path) -> None:
        config_file, seen = self.file, {_resolved(config)}
        for pnode, path, pattern in self.texts(node, "topology.files"):
            relative = not Path(pattern).is_absolute()
            full = str(Path(glob.escape(str(base_dir))) / pattern) if relative else pattern
            self.globs.append(full)
            matches = [m for m in sorted(glob.glob(full)) if Path(m).is_file()]
            if not matches:
                problem = "matches no file" if set("*?[") & set(pattern) else "no such file"
                self.error(pnode, path, f"{pattern!r}: {problem}" + f" in {base_dir}" * relative)
            for match in matches:
                if _resolved(match) not in seen:
                    seen.add(_resolved(match))
                    self._included(match)
                    self.file = config_file

    def _included(self, name: str) -> None:
        root = self.open(name, None)
        if root is None or root.value is None:
            return
        prefix = ""
        if isinstance(root.value, dict) and "topology" in root.value:
            self.fields(root, "", ("topology",))
            root, prefix = root.value["topology"][1], "topology"
        section = self.fields(root, prefix, ("applications", "files"))
        if section is None:
            return
        if "files" in section:
            self.error(
                section["files"],
                join(prefix, "files"),
                "not allowed in a file named by files: only applications",
            )
        self._applications(section.get("applications"), prefix)

    # -- declarations

    def _applications(self, node: Node | None, prefix: str) -> None:
        where = join(prefix, "applications")
        for i, app in enumerate(self.sequence(node, where)):
            path = f"{where}[{i}]"
            fields = self.fields(app, path, _APP_KEYS)
            if fields is None:
                continue
            name = self._name(app, fields, path, "application")
            if name and name not in self.applications:
                self.applications.append(name)
            for j, item in enumerate(self.sequence(fields.get("services"), f"{path}.services")):
                self._service(item, f"{path}.services[{j}]", name)
            for j, item in enumerate(self.sequence(fields.get("components"), f"{path}.components")):
                self._component(item, f"{path}.components[{j}]", name)

    def _service(self, node: Node, path: str, app: str) -> None:
        fields = self.fields(node, path, _SERVICE_KEYS)
        if fields is None:
            return
        name = self._name(node, fields, path, "service")
        instances = []
        for inode, ipath, text in self.texts(fields.get("instances"), f"{path}.instances"):
            problem = _address_problem(text, port_required=True)
            if problem:
                self.error(inode, ipath, problem)
            instances.append(text)
        entry = self.flag(fields.get("entry"), f"{path}.entry")
        for dnode, dpath, text in self.texts(fields.get("depends_on"), f"{path}.depends_on"):
            self._deps.append(_Dep(self.file, dnode, dpath, text, name, None))
        routes: dict[str, Node] = {}
        for k, inode in enumerate(self.sequence(fields.get("interfaces"), f"{path}.interfaces")):
            ipath = f"{path}.interfaces[{k}]"
            ifields = self.fields(inode, ipath, _INTERFACE_KEYS)
            if ifields is None:
                continue
            route = ""
            if "route" not in ifields:
                self.error(inode, ipath, "missing route")
            elif (declared := self.text(ifields["route"], f"{ipath}.route")) is not None:
                route = declared.strip()
                if route in routes:
                    line = routes[route].line
                    self.error(
                        ifields["route"],
                        f"{ipath}.route",
                        f"{route!r} already declared at line {line}",
                    )
                routes.setdefault(route, ifields["route"])
            for dnode, dpath, text in self.texts(ifields.get("depends_on"), f"{ipath}.depends_on"):
                self._deps.append(_Dep(self.file, dnode, dpath, text, name, route))
        if name:
            self.services[name] = DeclaredService(name, app, tuple(instances), entry, tuple(routes))
            if entry:
                self.service_edges.add((USER, name))
                self.interface_edges.update((USER, f"{name} {r}") for r in routes)

    def _component(self, node: Node, path: str, app: str) -> None:
        fields = self.fields(node, path, _COMPONENT_KEYS)
        if fields is None:
            return
        name = self._name(node, fields, path, "component")
        type_ = ""
        if "type" not in fields:
            self.error(node, path, "missing type")
        elif (text := self.text(fields["type"], f"{path}.type")) is not None:
            if text in COMPONENT_TYPES:
                type_ = text
            else:
                known = ", ".join(COMPONENT_TYPES)
                self.error(
                    fields["type"], f"{path}.type", f"unknown type {text!r} (one of: {known})"
                )
        address = ""
        if (anode := fields.get("address")) is not None and anode.value is not None:
            if (text := self.text(anode, f"{path}.address")) is not None:
                problem = _address_problem(text, port_required=False)
                if problem:
                    self.error(anode, f"{path}.address", problem)
                address = text
        if name and type_:
            self.components[name] = DeclaredComponent(name, app, type_, address)

    def _name(self, node: Node, fields: dict[str, Node], path: str, kind: str) -> str:
        """The declaration's name, "" when missing or invalid (reported)."""
        if "name" not in fields:
            self.error(node, path, "missing name")
            return ""
        nnode, path = fields["name"], f"{path}.name"
        name = self.text(nnode, path)
        if name is None or kind == "application":
            return name or ""
        if any(c.isspace() for c in name):
            self.error(nnode, path, f"{name!r} must not contain whitespace")
            return ""
        if name == USER:
            self.error(nnode, path, f"{USER!r} is reserved: it stands for the users")
            return ""
        if name in self._declared:
            other, where = self._declared[name]
            also = f"{kind} {name!r} is" if other == kind else f"{name!r} is a {kind} and"
            self.error(nnode, path, f"{also} already declared as a {other} at {where}")
            return ""
        self._declared[name] = (kind, f"{self.files[self.file]}:{nnode.where}")
        return name

    def _resolve(self) -> None:
        """Check each dependency's target, now that every name is known, and add its edges."""
        kinds = {name: kind for name, (kind, _) in self._declared.items()}
        for dep in self._deps:
            self.file = dep.file
            target = dep.target.strip()
            service, _, route = target.partition(" ")
            node, route = (service, route.strip()) if dep.route is not None else (target, "")
            kind = kinds.get(node, "")
            problem = ""
            if dep.route is None and " " in target:
                problem = "a service's depends_on names services and components: "
                problem += "put dependencies on interfaces under interfaces"
            elif not kind:
                wanted = "service" if route else "component" if dep.route is not None else ""
                names = [n for n, k in kinds.items() if not wanted or k == wanted]
                close = difflib.get_close_matches(node, names, n=1)
                problem = f"no {wanted or 'service or component'} named {node!r} is declared"
                problem += f" (did you mean {close[0]!r}?)" if close else ""
            elif route and kind == "component":
                problem = f"{node!r} is a component: name it alone, without a route"
            elif dep.route is not None and not route and kind == "service":
                problem = f"{node!r} is a service: name one of its interfaces, '{node} <route>'"
            if problem:
                self.error(dep.node, dep.path, problem)
            elif dep.source and dep.route is None:
                self.service_edges.add((dep.source, node))
            elif dep.source and dep.route:
                self.interface_edges.add((f"{dep.source} {dep.route}", f"{node} {route}".strip()))
                if node != dep.source:
                    self.service_edges.add((dep.source, node))


def _resolved(name: str) -> str:
    try:
        return str(Path(name).resolve())
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop
        return name


def _split_host_port(text: str) -> tuple[str, str | None] | None:
    """(host, port or None) of ``host:port``, ``host``, ``[v6]:port`` or a bare
    IPv6 address; None when malformed."""
    if text.startswith("["):
        end = text.find("]")
        rest = text[end + 1 :]
        if end < 0 or (rest and not rest.startswith(":")):
            return None
        return text[1:end], rest[1:] if rest else None
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, port
    return text, None


def _address_problem(text: str, *, port_required: bool) -> str:
    """Why ``text`` is no ``host:port`` (or ``host``); "" when it is one."""
    split = _split_host_port(text)
    wanted = "host:port" if port_required else "host:port or host"
    if split is None or not split[0] or any(c.isspace() for c in text):
        return f"{text!r} is not {wanted}"
    port = split[1]
    if port is None:
        return f"{text!r} has no port" if port_required else ""
    if not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        return f"{text!r}: the port must be a number from 1 to 65535"
    return ""


def _watched(config: Path, globs: tuple[str, ...]) -> tuple[tuple[str, int, int], ...]:
    """(name, mtime_ns, size) of the config file and of each file its globs match now."""
    names = [str(config)]
    for pattern in globs:
        names.extend(sorted(glob.glob(pattern)))
    stamp = []
    for name in names:
        try:
            st = os.stat(name)
            stamp.append((name, st.st_mtime_ns, st.st_size))
        except OSError:
            stamp.append((name, -1, -1))
    return tuple(stamp)


def parse_topology(
    text: str, *, path: str = "<config>", base_dir: Path | None = None
) -> StaticTopology:
    """The topology of a config file's text; the files it names are read.

    Args:
        text: the whole config file (other sections are ignored).
        path: the file's name, for messages.
        base_dir: where relative ``files`` globs start; default: the folder of
            ``path``.

    Raises:
        ConfigError: every problem found, one ``<file>:<line>:<col>: <field
            path>: <problem>`` line each.
    """
    reader = _Reader()
    reader.read_config(text, path, Path(path).parent if base_dir is None else base_dir)
    return reader.result()


def load_topology(config_path: Path | None) -> StaticTopology:
    """The topology declared in the config file and the files it names.

    Blocking (reads files). An empty topology when ``config_path`` is None
    or the file has no ``topology`` section.

    Raises:
        ConfigError: the file can't be read, or every problem found.
    """
    if config_path is None:
        return StaticTopology()
    reader = _Reader()
    reader.read_config(None, str(config_path), config_path.parent)
    return reader.result()


class StaticTopologySource:
    """The current StaticTopology of a config path, re-read when its files change.

    :meth:`current` checks, at most once per ``min_interval_s`` of ``clock``,
    whether the config file or any file its ``files`` globs match (now) has
    another mtime_ns or size, and if so re-reads them all. A bad edit after a
    good one is logged with ``logger.error`` once per change, and the last
    good topology stays current: a typo must not blank the views.

    Thread-safe; :meth:`current` blocks on file reads at most once per interval.
    """

    def __init__(
        self,
        config_path: Path | None,
        *,
        min_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Read the topology once.

        Raises:
            ConfigError: the config is bad at start (``tinct up`` exits 2).
        """
        self._path = config_path
        self._interval = min_interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._globs: tuple[str, ...] = ()
        self._topology = self._load()
        self._stamp = () if config_path is None else _watched(config_path, self._globs)
        self._checked_at = clock()

    def current(self) -> StaticTopology:
        """The last good topology, re-read first if due and any file changed."""
        with self._lock:
            now = self._clock()
            if self._path is None or now - self._checked_at < self._interval:
                return self._topology
            self._checked_at = now
            stamp = _watched(self._path, self._globs)
            if stamp == self._stamp:
                return self._topology
            # Stamped before reading: a write during the read is seen next time.
            self._stamp, globs = stamp, self._globs
            try:
                self._topology = self._load()
            except ConfigError as exc:
                logger.error(
                    "static topology of %s not reloaded, keeping the last good one:\n%s",
                    self._path,
                    exc,
                )
            except Exception:
                logger.exception("static topology of %s not reloaded", self._path)
            else:
                logger.info("static topology reloaded from %s", self._path)
            if self._globs != globs:  # the config names other files now: watch those
                self._stamp = _watched(self._path, self._globs)
            return self._topology

    def _load(self) -> StaticTopology:
        if self._path is None:
            return StaticTopology()
        reader = _Reader()
        try:
            reader.read_config(None, str(self._path), self._path.parent)
        finally:
            self._globs = tuple(reader.globs)
        return reader.result()
