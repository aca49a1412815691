"""The static topology section of tinct's config file: model, checks, reloads, demo."""

from __future__ import annotations

import logging
import random
import textwrap
from pathlib import Path

import pytest

from tinct.demo.topology import (
    SERVICE_NAMES,
    SERVICES,
    DemoTopology,
    write_collection_config,
    write_topology,
)
from tinct.errors import ConfigError
from tinct.topology.static import (
    DeclaredComponent,
    DeclaredService,
    StaticTopology,
    StaticTopologySource,
    load_topology,
    parse_topology,
)

CONFIG = """\
collectors: {}
topology:
  files: [topology.d/*.yaml]
  applications:
    - name: shop
      services:
        - name: frontend
          instances: ["127.0.0.1:8000", "127.0.0.1:8001"]
          entry: true
          depends_on: [cart, orders-db]
          interfaces:
            - route: /checkout
              depends_on: ["cart /cart/{id}", orders-db, "payments POST /charge"]
            - route: GET /
      components:
        - name: orders-db
          type: postgresql
          address: 127.0.0.1:5432
"""
CART = """\
topology:
  applications:
    - name: shop
      services:
        - name: cart
          depends_on: [sessions]
          interfaces:
            - route: /cart/{id}
              depends_on: [sessions]
"""
PAYMENTS = """\
applications:
  - name: payments
    services:
      - name: payments
        instances: ["[::1]:9000"]
        interfaces:
          - route: POST /charge
            depends_on: [bank]
    components:
      - {name: sessions, type: redis, address: cache.internal}
      - {name: bank, type: external, address: bank.example.com:443}
"""


def _write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(textwrap.dedent(text))
    return folder / "tinct.yaml"


def _full(folder: Path) -> Path:
    return _write(
        folder,
        {
            "tinct.yaml": CONFIG,
            "topology.d/10-cart.yaml": CART,
            "topology.d/20-payments.yaml": PAYMENTS,
        },
    )


def _errors(folder: Path, files: dict[str, str]) -> list[str]:
    """The problems of a config, one per line, file names relative to ``folder``."""
    with pytest.raises(ConfigError) as caught:
        load_topology(_write(folder, files))
    return str(caught.value).replace(f"{folder}/", "").splitlines()


def test_a_full_config_with_included_files_declares_exactly_what_it_says(tmp_path: Path) -> None:
    topology = load_topology(_full(tmp_path))

    assert topology.applications == ("shop", "payments")
    assert topology.services == {
        "frontend": DeclaredService(
            "frontend",
            "shop",
            ("127.0.0.1:8000", "127.0.0.1:8001"),
            entry=True,
            routes=("/checkout", "GET /"),
        ),
        "cart": DeclaredService("cart", "shop", routes=("/cart/{id}",)),
        "payments": DeclaredService(
            "payments", "payments", ("[::1]:9000",), routes=("POST /charge",)
        ),
    }
    assert topology.components == {
        "orders-db": DeclaredComponent("orders-db", "shop", "postgresql", "127.0.0.1:5432"),
        "sessions": DeclaredComponent("sessions", "payments", "redis", "cache.internal"),
        "bank": DeclaredComponent("bank", "payments", "external", "bank.example.com:443"),
    }
    assert [c.kind for c in topology.components.values()] == ["database", "cache", "external"]
    # An interface's dependency implies its service's: frontend -> payments.
    assert topology.service_edges == {
        ("user", "frontend"),
        ("frontend", "cart"),
        ("frontend", "orders-db"),
        ("frontend", "payments"),
        ("cart", "sessions"),
        ("payments", "bank"),
    }
    assert topology.interface_edges == {
        ("user", "frontend /checkout"),
        ("user", "frontend GET /"),
        ("frontend /checkout", "cart /cart/{id}"),
        ("frontend /checkout", "orders-db"),
        ("frontend /checkout", "payments POST /charge"),
        ("cart /cart/{id}", "sessions"),
        ("payments POST /charge", "bank"),
    }
    assert not topology.is_empty()
    assert topology.application_of("cart") == "shop"
    assert topology.application_of("bank") == "payments"
    assert topology.application_of("payments POST /charge") == "payments"
    assert topology.application_of("user") == topology.application_of("nope") == ""


def test_no_path_no_section_or_an_empty_section_is_an_empty_topology(tmp_path: Path) -> None:
    assert load_topology(None) == StaticTopology()
    for text in ("collectors: {}\n", "", "topology:\n", "topology: {applications: []}\n"):
        assert load_topology(_write(tmp_path, {"tinct.yaml": text})).is_empty(), text


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        pytest.param(
            {"tinct.yaml": "topology:\n  applications:\n    - name: a\n      service: []\n"},
            [
                "tinct.yaml:4:7: topology.applications[0].service: "
                "unknown key (known: name, services, components)"
            ],
            id="unknown-key",
        ),
        pytest.param(
            {"tinct.yaml": "topology: [a]\n"},
            ["tinct.yaml:1:11: topology: must be a mapping, not a list"],
            id="section-not-a-mapping",
        ),
        pytest.param(
            {"tinct.yaml": "topology:\n  applications:\n  - name: a\n    services: {name: x}\n"},
            ["tinct.yaml:4:15: topology.applications[0].services: must be a list, not a mapping"],
            id="not-a-list",
        ),
        pytest.param(
            {
                "tinct.yaml": "topology:\n  applications:\n  - name: a\n    services:\n"
                "    - name: s\n      entry: yes please\n      instances: [12:30]\n"
            },
            [
                "tinct.yaml:6:14: topology.applications[0].services[0].entry: "
                "must be true or false, not a string",
                "tinct.yaml:7:19: topology.applications[0].services[0].instances[0]: "
                "must be a string, not the number 750 (quote it)",
            ],
            id="wrong-scalar-types",
        ),
        pytest.param(
            {
                "tinct.yaml": "topology:\n  applications:\n  - services:\n    - entry: true\n"
                "      interfaces: [{depends_on: []}]\n    components:\n    - name: db\n"
            },
            [
                "tinct.yaml:3:5: topology.applications[0]: missing name",
                "tinct.yaml:4:7: topology.applications[0].services[0]: missing name",
                "tinct.yaml:5:20: topology.applications[0].services[0].interfaces[0]: "
                "missing route",
                "tinct.yaml:7:7: topology.applications[0].components[0]: missing type",
            ],
            id="missing-name-route-type",
        ),
        pytest.param(
            {
                "tinct.yaml": "topology:\n  applications:\n  - name: a\n    components:\n"
                "    - {name: db, type: oracle}\n"
            },
            [
                "tinct.yaml:5:24: topology.applications[0].components[0].type: unknown type "
                "'oracle' (one of: redis, memcached, postgresql, mysql, clickhouse, sqlite, nginx, "
                "queue, external)"
            ],
            id="bad-component-type",
        ),
        pytest.param(
            {
                "tinct.yaml": "topology:\n  files: [more.yaml]\n  applications:\n  - name: a\n"
                "    services: [{name: cart}]\n    components: [{name: db, type: redis}]\n",
                "more.yaml": "applications:\n- name: b\n  services:\n"
                "  - name: cart\n  - name: db\n",
            },
            [
                "more.yaml:4:11: applications[0].services[0].name: service 'cart' is already "
                "declared as a service at tinct.yaml:5:23",
                "more.yaml:5:11: applications[0].services[1].name: 'db' is a service and already "
                "declared as a component at tinct.yaml:6:25",
            ],
            id="duplicate-names-across-files",
        ),
        pytest.param(
            {
                "tinct.yaml": "topology:\n  applications:\n  - name: a\n    services:\n"
                "    - name: web\n      depends_on: [cache, carts]\n      interfaces:\n"
                "      - route: /x\n        depends_on: [cart, 'cache /get', 'nope /y', db]\n"
                "    - {name: cart}\n    components: [{name: cache, type: redis}]\n"
            },
            [
                "tinct.yaml:6:27: topology.applications[0].services[0].depends_on[1]: "
                "no service or component named 'carts' is declared (did you mean 'cart'?)",
                "tinct.yaml:9:22: topology.applications[0].services[0].interfaces[0]"
                ".depends_on[0]: "
                "'cart' is a service: name one of its interfaces, 'cart <route>'",
                "tinct.yaml:9:28: topology.applications[0].services[0].interfaces[0]"
                ".depends_on[1]: "
                "'cache' is a component: name it alone, without a route",
                "tinct.yaml:9:42: topology.applications[0].services[0].interfaces[0]"
                ".depends_on[2]: "
                "no service named 'nope' is declared",
                "tinct.yaml:9:53: topology.applications[0].services[0].interfaces[0]"
                ".depends_on[3]: "
                "no component named 'db' is declared",
            ],
            id="unknown-dependency-targets",
        ),
        pytest.param(
            {"tinct.yaml": "topology:\n  files: [parts/*.yaml, nothing.yaml]\n"},
            [
                "tinct.yaml:2:11: topology.files[0]: 'parts/*.yaml': matches no file in {d}",
                "tinct.yaml:2:25: topology.files[1]: 'nothing.yaml': no such file in {d}",
            ],
            id="globs-matching-nothing",
        ),
        pytest.param(
            {
                "tinct.yaml": "topology:\n  files: [a.yaml, b.yaml]\n",
                "a.yaml": "applications:\n  - name: [x\n",
                "b.yaml": "topology:\n  files: [a.yaml]\n",
            },
            [
                "a.yaml:3:1: not valid YAML: while parsing a flow sequence at line 2, "
                "expected ',' or ']', but got '<stream end>'",
                "b.yaml:2:10: topology.files: not allowed in a file named by files: "
                "only applications",
            ],
            id="invalid-yaml-and-nested-files",
        ),
        pytest.param(
            {
                "tinct.yaml": "topology:\n  applications:\n  - name: a\n    name: b\n"
                "    services:\n    - name: front end\n    - name: user\n"
            },
            [
                "tinct.yaml:4:5: topology.applications[0].name: duplicate key (first at line 3)",
                "tinct.yaml:6:13: topology.applications[0].services[0].name: "
                "'front end' must not contain whitespace",
                "tinct.yaml:7:13: topology.applications[0].services[1].name: "
                "'user' is reserved: it stands for the users",
            ],
            id="duplicate-keys-and-bad-names",
        ),
    ],
)
def test_each_problem_names_file_line_column_and_field(
    tmp_path: Path, files: dict[str, str], expected: list[str]
) -> None:
    assert _errors(tmp_path, files) == [e.replace("{d}", str(tmp_path)) for e in expected]


def test_an_unreadable_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.yaml: cannot read: No such file"):
        load_topology(tmp_path / "missing.yaml")


def test_every_problem_of_every_file_is_reported_at_once(tmp_path: Path) -> None:
    errors = _errors(
        tmp_path,
        {
            "tinct.yaml": CONFIG.replace("type: postgresql", "type: postgres").replace(
                "[cart, orders-db]", "[cart, orders-db, ghost]"
            ),
            "topology.d/10-cart.yaml": CART.replace("name: cart", "name: frontend"),
            "topology.d/20-payments.yaml": PAYMENTS.replace("{name: bank,", "{nme: bank,"),
        },
    )
    # By file in reading order, then line and column; the renamed service's
    # dependants fail too, and the unnamed component's.
    assert errors == [
        "tinct.yaml:10:24: topology.applications[0].services[0].depends_on[0]: "
        "no service or component named 'cart' is declared",
        "tinct.yaml:10:41: topology.applications[0].services[0].depends_on[2]: "
        "no service or component named 'ghost' is declared",
        "tinct.yaml:13:28: topology.applications[0].services[0].interfaces[0].depends_on[0]: "
        "no service named 'cart' is declared",
        "tinct.yaml:17:17: topology.applications[0].components[0].type: unknown type "
        "'postgres' (one of: redis, memcached, postgresql, mysql, clickhouse, sqlite, nginx, "
        "queue, external)",
        "topology.d/10-cart.yaml:5:17: topology.applications[0].services[0].name: "
        "service 'frontend' is already declared as a service at tinct.yaml:7:17",
        "topology.d/20-payments.yaml:8:26: applications[0].services[0].interfaces[0]"
        ".depends_on[0]: no component named 'bank' is declared",
        "topology.d/20-payments.yaml:11:9: applications[0].components[1]: missing name",
        "topology.d/20-payments.yaml:11:10: applications[0].components[1].nme: "
        "unknown key (known: name, type, address)",
    ]


def test_component_for_matches_names_addresses_and_hosts(tmp_path: Path) -> None:
    topology = parse_topology(
        textwrap.dedent(
            """\
            topology:
              applications:
                - name: infra
                  components:
                    - {name: orders-db, type: postgresql, address: 127.0.0.1:5432}
                    - {name: sessions, type: redis, address: Cache.Internal}
                    - {name: a-db, type: mysql, address: "10.0.0.9:3306"}
                    - {name: b-db, type: mysql, address: "10.0.0.9:3307"}
                    - {name: v6, type: clickhouse, address: "[::1]:9000"}
                    - {name: files, type: sqlite}
            """
        )
    )
    found = {
        peer: (c.name if (c := topology.component_for(peer)) else None)
        for peer in (
            "orders-db",  # its name
            "127.0.0.1:5432",  # its address
            "127.0.0.1",  # the host of its address
            "127.0.0.1:6379",  # another port of that host: not it
            "cache.internal",  # an address given as a host only, any case
            "cache.internal:6379",  # a port on a host-only address
            "10.0.0.9",  # two components on that host: ambiguous
            "10.0.0.9:3307",
            "::1",
            "[::1]:9000",
            "files",
            "nothing",
            "",
        )
    }
    assert found == {
        "orders-db": "orders-db",
        "127.0.0.1:5432": "orders-db",
        "127.0.0.1": "orders-db",
        "127.0.0.1:6379": None,
        "cache.internal": "sessions",
        "cache.internal:6379": "sessions",
        "10.0.0.9": None,
        "10.0.0.9:3307": "b-db",
        "::1": "v6",
        "[::1]:9000": "v6",
        "files": "files",
        "nothing": None,
        "": None,
    }


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_source_rereads_changed_files_at_most_once_per_interval(tmp_path: Path) -> None:
    config = _full(tmp_path)
    clock = _Clock()
    source = StaticTopologySource(config, min_interval_s=5.0, clock=clock)
    first = source.current()
    assert set(first.services) == {"frontend", "cart", "payments"}

    # A new file matching a glob of `files`.
    (tmp_path / "topology.d/30-search.yaml").write_text(
        "applications: [{name: shop, services: [{name: search}]}]\n"
    )
    clock.now += 4.9
    assert source.current() is first  # not due yet
    clock.now += 0.1
    assert set(source.current().services) == {"frontend", "cart", "payments", "search"}

    # An edit of the config file itself.
    config.write_text(CONFIG.replace("entry: true", "entry: false"))
    clock.now += 5
    assert ("user", "frontend") not in source.current().service_edges


def test_the_source_keeps_the_last_good_topology_and_logs_a_bad_edit_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = _full(tmp_path)
    clock = _Clock()
    source = StaticTopologySource(config, clock=clock)
    good = source.current()

    cart = tmp_path / "topology.d/10-cart.yaml"
    cart.write_text(CART.replace("[sessions]", "[sesions]"))
    with caplog.at_level(logging.ERROR, logger="tinct.topology.static"):
        for _ in range(3):
            clock.now += 2
            assert source.current() is good
    (record,) = caplog.records
    assert "keeping the last good one" in record.getMessage()
    assert (
        f"{cart}:6:24: topology.applications[0].services[0].depends_on[0]: " in record.getMessage()
    )
    assert f"{cart}:9:28: topology.applications[0].services[0].interfaces[0]" in record.getMessage()

    cart.write_text(CART.replace("[sessions]", "[sessions, bank]"))
    clock.now += 2
    assert ("cart", "bank") in source.current().service_edges


def test_the_source_raises_on_a_bad_config_at_start(tmp_path: Path) -> None:
    config = _write(tmp_path, {"tinct.yaml": "topology: {files: [none.yaml]}\n"})
    with pytest.raises(ConfigError, match=r"tinct\.yaml:1:20: topology\.files\[0\]"):
        StaticTopologySource(config)
    assert StaticTopologySource(None).current().is_empty()


@pytest.mark.parametrize(("redis_port", "postgres"), [(6390, None), (None, "127.0.0.1:5433")])
def test_the_demo_topology_loads_with_the_calls_it_declares(
    tmp_path: Path, redis_port: int | None, postgres: str | None
) -> None:
    config = write_collection_config(tmp_path)
    clock = _Clock()
    source = StaticTopologySource(config, clock=clock)
    assert source.current().is_empty()  # tinct up starts before the services

    ports = {name: 9100 + i for i, name in enumerate(SERVICE_NAMES)}
    write_topology(DemoTopology(ports, tmp_path, redis_port, "", "", postgres))
    clock.now += 1
    declared = source.current()

    expected = {("user", "gateway")} | {(s.name, c) for s in SERVICES for c in s.calls}
    expected |= {
        (s.name, postgres and "postgresql" or f"{s.name}-db") for s in SERVICES if s.sqlite
    }
    expected |= {(s.name, "redis") for s in SERVICES if s.redis and redis_port}
    assert declared.service_edges == expected
    assert declared.applications == ("tinct-demo",)
    assert declared.services["orders"].instances == (f"127.0.0.1:{ports['orders']}",)
    kinds = {c.name: (c.type, c.address) for c in declared.components.values()}
    if postgres:
        assert kinds == {"postgresql": ("postgresql", postgres)}
    else:
        sqlite = {f"{s.name}-db": ("sqlite", "") for s in SERVICES if s.sqlite}
        assert kinds == {"redis": ("redis", f"127.0.0.1:{redis_port}"), **sqlite}
    assert declared.component_for(f"127.0.0.1:{redis_port}") == declared.components.get("redis")


_SCALARS = [
    "",
    "~",
    "yes",
    "12:30",
    "[a",
    "{",
    "*x",
    "&a",
    "!!int q",
    "2001-02-30",
    "- x",
    "'",
    '"',
    "user",
    "a b",
    "h:99999",
    "[]",
    "{}",
    "null",
    "true",
    "3.5",
    "!!binary x",
    "cart /x",
    "frontend",
    "orders-db",
    "topology.d/*.yaml",
    "[cart, cart]",
    "{name: x}",
    "\t",
    "?",
]


def _mutate(text: str, rng: random.Random) -> str:
    lines = text.splitlines()
    for _ in range(rng.randint(1, 2)):
        i = rng.randrange(len(lines))
        op = rng.randrange(5)
        if op == 0 and len(lines) > 1:
            del lines[i]
        elif op == 1:
            lines.insert(i, lines[rng.randrange(len(lines))])
        elif op == 2:
            lines[i] = lines[rng.randrange(len(lines))]
        elif op == 3:
            head, sep, _ = lines[i].partition(": ")
            if not sep:
                head, sep = lines[i].rstrip().removesuffix(":"), ": "
            lines[i] = head + sep + rng.choice(_SCALARS)
        else:
            lines[i] = " " * rng.randrange(4) + lines[i].strip() + rng.choice(["", ":", " #"])
    return "\n".join(lines) + "\n"


def test_random_edits_of_a_valid_config_load_or_raise_config_error(tmp_path: Path) -> None:
    rng = random.Random(20240601)
    files = {
        "tinct.yaml": CONFIG,
        "topology.d/10-cart.yaml": CART,
        "topology.d/20-payments.yaml": PAYMENTS,
    }
    outcomes = {"loaded": 0, "refused": 0}
    for case in range(300):
        folder = tmp_path / str(case)
        mutated = dict(files)
        name = rng.choice(list(files))
        mutated[name] = _mutate(files[name], rng)
        config = _write(folder, mutated)
        try:
            load_topology(config)
            outcomes["loaded"] += 1
        except ConfigError as exc:
            outcomes["refused"] += 1
            for line in str(exc).splitlines():
                assert line.startswith(str(folder)), (mutated[name], line)
    assert outcomes["refused"] > 100 and outcomes["loaded"] > 10, outcomes
