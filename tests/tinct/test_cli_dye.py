"""``tinct dye add/ls/rm`` against real HTTP servers (uvicorn in a thread, `tinct up`)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.appserver import serve_app
from tests.servers import TinctProcess, free_port, stop_pid
from tinct.cli import main
from tinct.dye_cli import parse_duration
from tinct.main_app import create_main_app
from tinct.storage import InMemorySpanStore

PATH = "/api/tinct/dye-rules"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.delenv("TINCT_SERVER", raising=False)
    monkeypatch.delenv("TINCT_ADMIN_TOKEN", raising=False)
    with serve_app(create_main_app(InMemorySpanStore(), admin_token="s3cret")) as base:
        yield base


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["dye", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_add_ls_rm(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    opts = ("--server", server, "--admin-token", "s3cret")
    code, out, _ = run(capsys, "add", "user:42", "--for", "30m", *opts)
    assert code == 0
    user_id = out.strip()
    assert len(user_id) == 16
    code, out, _ = run(
        capsys, "add", "header:on", "--key", "X-Canary", "--ratio", "0.5", "--service", "shop",
        "--for", "1h30m", *opts,
    )  # fmt: skip
    header_id = out.strip()

    rules = {r["id"]: r for r in httpx.get(server + PATH).json()["rules"]}
    assert rules[user_id]["ttl_seconds"] == 1800 and rules[user_id]["ratio"] == 1.0
    assert rules[header_id]["match"] == {"kind": "header", "key": "x-canary", "value": "on"}
    assert (rules[header_id]["service"], rules[header_id]["ttl_seconds"]) == ("shop", 5400)

    code, out, _ = run(capsys, "ls", "--server", server)
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["ID", "MATCH", "KEY", "SERVICE", "RATIO", "EXPIRES"]
    assert lines[1].split()[:5] == [user_id, "user:42", "-", "*", "1"]
    assert lines[1].endswith(")") and "(in 29m" in lines[1]
    assert lines[2].split()[:5] == [header_id, "header:on", "x-canary", "shop", "0.5"]
    assert "(in 1h29m)" in lines[2] or "(in 1h30m)" in lines[2]
    code, out, _ = run(capsys, "ls", "--server", server, "--service", "other")
    assert [line.split()[0] for line in out.splitlines()] == ["ID", user_id]

    assert run(capsys, "rm", user_id, *opts)[:2] == (0, f"ended dye rule {user_id}\n")
    code, out, err = run(capsys, "rm", user_id, *opts)
    assert (code, out) == (1, "")
    assert err == f"tinct: error: {server} answered 404: id: no live dye rule '{user_id}'\n"
    run(capsys, "rm", header_id, *opts)
    assert run(capsys, "ls", "--server", server)[1] == "no live dye rules\n"


def test_environment_finds_the_server_and_token(
    server: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TINCT_SERVER", server + "/")
    code, _, err = run(capsys, "add", "tenant:acme")
    assert code == 1
    assert "answered 401: authorization: this write needs 'Authorization: Bearer" in err
    assert err.count("\n") == 1
    monkeypatch.setenv("TINCT_ADMIN_TOKEN", "wrong")
    assert run(capsys, "add", "tenant:acme")[2].endswith(
        "answered 403: authorization: wrong admin token\n"
    )
    # The flag beats the environment.
    assert run(capsys, "add", "tenant:acme", "--admin-token", "s3cret")[0] == 0


def test_unreachable_server_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "ls", "--server", f"http://127.0.0.1:{free_port()}")
    assert (code, out) == (1, "")
    assert err.startswith("tinct: error: cannot reach tinct at http://127.0.0.1:")
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["add", "user42"],
        ["add", "ip:1.2.3.4"],
        ["add", "user:"],
        ["add", "user:42", "--for", "30"],
        ["add", "user:42", "--for", "8d"],
        ["add", "user:42", "--ratio", "0"],
        ["add", "header:on"],  # no --key
        ["rm"],
        ["ls", "--server", "ftp://x"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        code = main(["dye", *argv])
        raise SystemExit(code)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err


def test_durations() -> None:
    assert [parse_duration(t) for t in ("90s", "30m", "2h", "1d", "1h30m", "7d")] == [
        90,
        1800,
        7200,
        86400,
        5400,
        604800,
    ]


@pytest.mark.server
def test_against_tinct_up(tmp_path: Path) -> None:
    proc = TinctProcess(tmp_path / "data", "--admin-token", "tok")
    try:
        proc.wait_ready()
        env = {"TINCT_SERVER": proc.main, "TINCT_ADMIN_TOKEN": "tok", "TINCT_CONFIG": ""}

        def tinct(*argv: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "tinct", "dye", *argv],
                env={**_base_env(), **env},
                capture_output=True,
                text=True,
                timeout=60,
            )

        added = tinct("add", "route:GET /orders/{id}", "--for", "2h")
        assert added.returncode == 0, added.stderr
        rule_id = added.stdout.strip()
        listed = tinct("ls")
        assert rule_id in listed.stdout and "route:GET /orders/{id}" in listed.stdout
        assert httpx.post(proc.main + PATH, json={"match": {}}).status_code == 401
        assert tinct("rm", rule_id).returncode == 0
        assert tinct("ls").stdout == "no live dye rules\n"
    finally:
        stop_pid(proc.proc)


def _base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("TINCT_")}
