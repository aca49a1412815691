"""Settings precedence (flag > env > file > default) and validation messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from tinct.cli import build_parser, main
from tinct.config import load_settings
from tinct.errors import ConfigError


def parse(argv: list[str], env: dict[str, str] | None = None):
    args = build_parser().parse_args(["up", *argv])
    return load_settings(args, env or {})


def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = parse([])
    assert (s.port, s.otlp_grpc_port, s.otlp_http_port, s.zipkin_port) == (3000, 4317, 4318, 9411)
    assert s.listen == "127.0.0.1"
    assert s.data == Path("tinct-data")
    assert s.store == f"chdb://{tmp_path.resolve()}/tinct-data"
    assert s.retention == 0
    assert s.admin_token is None
    assert s.log_level == "info"
    assert s.config is None


def test_precedence_flag_env_file_default(tmp_path: Path) -> None:
    cfg = tmp_path / "tinct.yaml"
    cfg.write_text(
        "global: {scrape_interval: 15s}\n"
        "storage: {data: d, retention_days: 7}\n"
        "server: {port: 3100, otlp_http_port: 4400, zipkin_port: 9500, listen: 0.0.0.0}\n"
    )
    env = {"TINCT_CONFIG": str(cfg), "TINCT_PORT": "3200", "TINCT_OTLP_HTTP_PORT": "4500"}
    s = parse(["--port", "3300"], env)
    assert s.port == 3300  # flag beats env and file
    assert s.otlp_http_port == 4500  # env beats file
    assert s.zipkin_port == 9500  # file beats default
    assert s.otlp_grpc_port == 4317  # default
    assert s.listen == "0.0.0.0"
    assert s.retention == 7
    # Relative paths in the file are relative to the file.
    assert s.data == tmp_path / "d"
    assert s.store == f"chdb://{(tmp_path / 'd').resolve()}"
    assert s.config == cfg


def test_store_flag_and_empty_env_is_unset() -> None:
    s = parse(["--store", "clickhouse://db:9000/tinct"], {"TINCT_PORT": "", "TINCT_LOG_LEVEL": ""})
    assert s.store == "clickhouse://db:9000/tinct"
    assert s.port == 3000


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--port", "70000"], {}, "--port / TINCT_PORT: 70000 is not a port (1-65535"),
        ([], {"TINCT_ZIPKIN_PORT": "abc"}, "--zipkin-port / TINCT_ZIPKIN_PORT: 'abc' is not an"),
        (["--retention", "-1"], {}, "--retention / TINCT_RETENTION: -1 is not a number of days"),
        (["--log-level", "loud"], {}, "--log-level / TINCT_LOG_LEVEL: 'loud' is not a log level"),
        (["--listen", "not an address"], {}, "--listen / TINCT_LISTEN:"),
        (["--store", "mysql://x"], {}, "--store / TINCT_STORE: 'mysql://x' has scheme 'mysql'"),
        (
            ["--port", "4317"],
            {},
            "--otlp-grpc-port / TINCT_OTLP_GRPC_PORT: 4317 is already used by --port",
        ),
    ],
)
def test_invalid_values_name_the_setting(
    argv: list[str], env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse(argv, env)
    assert str(info.value).startswith(message)


def test_port_zero_allowed_and_not_a_conflict() -> None:
    s = parse(
        ["--port", "0", "--otlp-grpc-port", "0", "--otlp-http-port", "0", "--zipkin-port", "0"]
    )
    assert (s.port, s.otlp_grpc_port, s.otlp_http_port, s.zipkin_port) == (0, 0, 0, 0)


def test_config_file_errors(tmp_path: Path) -> None:
    cfg = tmp_path / "tinct.yaml"
    cfg.write_text("server:\n  port: 99999\n")
    with pytest.raises(ConfigError, match=rf"server.port in {cfg}: 99999 is not a port"):
        parse(["--config", str(cfg)])
    cfg.write_text("server:\n  prot: 3000\n")
    with pytest.raises(ConfigError, match=r"server.prot in .*unknown setting \(known: .*port"):
        parse(["--config", str(cfg)])
    cfg.write_text("server: [1, 2]\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        parse(["--config", str(cfg)])
    cfg.write_text("server: {port: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse(["--config", str(cfg)])
    with pytest.raises(ConfigError, match="--config / TINCT_CONFIG: cannot read"):
        parse(["--config", str(tmp_path / "missing.yaml")])


def test_cli_exits_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["up", "--port", "70000"]) == 2
    err = capsys.readouterr().err
    expected = "--port / TINCT_PORT: 70000 is not a port (1-65535, or 0 for a free port)"
    assert err == f"tinct: error: {expected}\n"


def test_cli_requires_a_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    assert "COMMAND" in capsys.readouterr().err


def test_query_settings_take_prometheus_flags_and_durations(tmp_path: Path) -> None:
    config = tmp_path / "tinct.yaml"
    config.write_text("query:\n  lookback_delta: 2m\n  max_concurrency: 4\n")
    settings = parse(
        ["--config", str(config), "--query.timeout", "30s", "--query-max-samples", "9"]
    )
    assert settings.query_timeout == 30.0 and settings.query_max_samples == 9
    assert settings.query_lookback_delta == 120.0 and settings.query_max_concurrency == 4
    assert parse([]).query_timeout == 120.0
    with pytest.raises(ConfigError, match="query_max_samples|max-samples"):
        parse(["--query.max-samples", "0"])
    with pytest.raises(ConfigError, match="timeout"):
        parse(["--query.timeout", "soon"])
