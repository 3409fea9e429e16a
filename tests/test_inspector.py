"""An external client: the official MCP Inspector CLI (Node), over stdio and streamable HTTP.

The Inspector is installed by ``.ci/install-npm-tool.sh`` (CI runs it before the tests). The test
finds the ``mcp-inspector`` bin through ``$MCP_INSPECTOR_BIN`` or in that script's cache directory,
and is skipped only when neither exists.

``--format json`` prints one line on stdout, ``{"result": <the MCP result>}``; exit codes: 0 OK,
5 the tool returned ``isError`` (the Inspector CLI's exit codes). Note that the Inspector takes any
option it knows (e.g. ``--log-level``) for itself, wherever it appears: settings for the server go
through ``-e NAME=VALUE``.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import artifacts
from tests.helpers import CREATE_ARGS, REPO, cli_http_server

SNAPSHOT = Path(__file__).parent / "snapshots" / "tools_list.json"


INSTALL_INSPECTOR = ".ci/install-npm-tool.sh @modelcontextprotocol/inspector 2.12.0 mcp-inspector"
INSPECTOR = artifacts.npm_tool("mcp-inspector", "MCP_INSPECTOR_BIN")
pytestmark = pytest.mark.skipif(
    INSPECTOR is None,
    reason=f"MCP Inspector CLI not installed: run {INSTALL_INSPECTOR} (or set MCP_INSPECTOR_BIN)",
)


class Run:
    def __init__(self, done: subprocess.CompletedProcess[str]) -> None:
        self.code = done.returncode
        self.stderr = done.stderr
        self.output: dict[str, Any] | None = json.loads(done.stdout) if done.stdout.strip() else None

    @property
    def result(self) -> dict[str, Any]:
        assert self.output is not None and "result" in self.output, f"exit {self.code}; stderr:\n{self.stderr}"
        return self.output["result"]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Inspector writes ~/.mcp-inspector: give it a home of its own."""
    return tmp_path_factory.mktemp("inspector-home")


def inspector(home: Path, *args: str) -> Run:
    env = dict(os.environ, HOME=str(home), MCP_INSPECTOR_SECRET_STORE="memory")
    done = subprocess.run(
        [str(INSPECTOR), "--cli", *args, "--format", "json", "-q"],  # the module is skipped without it
        stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, cwd=REPO, timeout=120, check=False,
    )  # fmt: skip
    return Run(done)


def snapshot_tools() -> list[dict[str, Any]]:
    return json.loads(SNAPSHOT.read_text())["tools"]


def check_create_options(run: Run) -> None:
    assert run.code == 0, run.stderr
    result = run.result
    assert result.get("isError") is False
    assert [f["id"] for f in result["structuredContent"]["flavors"]] == ["1", "2", "m1.large"]
    assert json.loads(result["content"][0]["text"])["flavors"] == result["structuredContent"]["flavors"]


def check_created(run: Run, name: str, state: Path) -> None:
    assert run.code == 0, run.stderr
    created = run.result["structuredContent"]
    assert created["created"] is True
    assert (created["instance"]["name"], created["instance"]["status"]) == (name, "provisioning")
    assert created["password"] is None and created["password_delivery"] == "file"
    path = Path(created["credentials_file"])
    assert path.is_relative_to(state)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "REDIS_PASSWORD=" in path.read_text()


# --- stdio: the Inspector launches `python -m redu_mcp --sandbox` --------------------------------------


def stdio_server(state: Path) -> list[str]:
    return [
        "-e",
        f"XDG_STATE_HOME={state}",
        "-e",
        "REDU_MCP_LOG_LEVEL=WARNING",
        sys.executable,
        "-m",
        "redu_mcp",
        "--sandbox",
    ]


def test_stdio_tools_list(home: Path, tmp_path: Path):
    run = inspector(home, *stdio_server(tmp_path), "--method", "tools/list")
    assert run.code == 0, run.stderr
    # What an external client parses is exactly the snapshotted wire listing.
    assert run.result["tools"] == snapshot_tools()


def test_stdio_call_list_create_options(home: Path, tmp_path: Path):
    check_create_options(
        inspector(home, *stdio_server(tmp_path), "--method", "tools/call", "--tool-name", "list_create_options")
    )


def test_stdio_call_create_redis(home: Path, tmp_path: Path):
    args = json.dumps(dict(CREATE_ARGS, name="inspected"))
    run = inspector(
        home, *stdio_server(tmp_path), "--method", "tools/call", "--tool-name", "create_redis", "--tool-args-json", args
    )
    check_created(run, "inspected", tmp_path)


# --- streamable HTTP: `redu-mcp --transport http --sandbox` on a free port -------------------------------


@pytest.fixture(scope="module")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, str]]:
    """The default command, which requires the bearer token it prints: the Inspector sends it as a header."""
    directory = tmp_path_factory.mktemp("inspector-http")
    with cli_http_server(directory) as server:
        assert server.token
        yield server.url, server.state, server.token


def with_token(url: str, token: str) -> tuple[str, ...]:
    return (url, "--header", f"Authorization: Bearer {token}")


def test_http_without_the_token_is_refused(home: Path, http_server: tuple[str, Path, str]):
    url, _, _ = http_server
    run = inspector(home, url, "--method", "tools/list")
    assert run.code != 0 and run.output is None
    assert "auth_required" in run.stderr, run.stderr  # the Inspector's word for the 401 it got


def test_http_tools_list(home: Path, http_server: tuple[str, Path, str]):
    url, _, token = http_server
    run = inspector(
        home, *with_token(url, token), "--method", "tools/list"
    )  # the Inspector's default era here: 2025-11-25
    assert run.code == 0, run.stderr
    assert run.result["tools"] == snapshot_tools()


def test_http_modern_era_call_list_create_options(home: Path, http_server: tuple[str, Path, str]):
    url, _, token = http_server
    run = inspector(
        home,
        *with_token(url, token),
        "--protocol-era",
        "modern",
        "--method",
        "tools/call",
        "--tool-name",
        "list_create_options",
    )
    check_create_options(run)
    # Every 2026-07-28 result is stamped with the server's identity.
    assert run.result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "redu-mcp"


def test_http_call_create_redis_then_again(home: Path, http_server: tuple[str, Path, str]):
    url, state, token = http_server
    args = json.dumps(dict(CREATE_ARGS, name="over-http"))
    call = ("--method", "tools/call", "--tool-name", "create_redis", "--tool-args-json", args)
    check_created(inspector(home, *with_token(url, token), *call), "over-http", state)
    # The server outlives each Inspector process: the same create again reports the existing instance.
    again = inspector(home, *with_token(url, token), *call)
    assert again.code == 0, again.stderr
    assert again.result["structuredContent"]["created"] is False
    assert "already exists" in again.result["structuredContent"]["message"]


def test_http_tool_error_exits_5_with_the_error_result(home: Path, http_server: tuple[str, Path, str]):
    url, _, token = http_server
    run = inspector(
        home,
        *with_token(url, token),
        "--method",
        "tools/call",
        "--tool-name",
        "get_redis",
        "--tool-args-json",
        '{"id": 4242}',
    )
    assert run.code == 5, run.stderr
    assert run.result["isError"] is True
    text = run.result["content"][0]["text"]
    assert "HTTP 404" in text and "Next step" in text
    assert "tool_is_error" in run.stderr
