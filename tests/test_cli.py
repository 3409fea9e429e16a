"""The ``redu-mcp`` command line, run as a real process."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import httpx2
import pytest

from tests import artifacts
from tests.helpers import missing_engines

REDU_MCP = [sys.executable, "-m", "redu_mcp"]


def test_sandbox_command_serves_the_api_on_a_port():
    with subprocess.Popen(
        [*REDU_MCP, "sandbox", "--port", "0"], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    ) as process:
        try:
            _check_serving(process)
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=10)


def _check_serving(process: subprocess.Popen) -> None:
    """The banner names a URL and key; that URL answers the documented envelope."""
    banner = process.stderr.readline()
    match = re.search(r"(http://127\.0\.0\.1:\d+/v1)\s+\(API key: (\S+)\)", banner)
    assert match, banner
    url, key = match.groups()
    deadline = time.monotonic() + 15
    while True:
        try:
            response = httpx2.get(f"{url}/flavors", headers={"x-api-key": key})
            break
        except httpx2.ConnectError:
            assert time.monotonic() < deadline, "the sandbox never started listening"
            time.sleep(0.05)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"items", "next_cursor"}
    assert {"id", "name"} <= set(body["items"][0])
    assert httpx2.get(f"{url}/flavors", headers={"x-api-key": "wrong"}).status_code == 401


def _run(*args: str, env: dict[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*REDU_MCP, *args], capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL
    )


def test_engines_without_the_programs_fail_at_start_naming_them(tmp_path):
    env = {**os.environ, "PATH": str(tmp_path)}  # nothing on PATH: redis-server cannot be found
    for args in (["sandbox", "--engines", "--port", "0"], ["--sandbox", "--engines"]):
        result = _run(*args, env=env)
        assert result.returncode == 2, result.stderr
        assert "redis-server" in result.stderr
        assert "apt-get install" in result.stderr or "redis-server" in result.stderr.split("install", 1)[-1]


def test_engines_without_sandbox_is_a_configuration_error():
    result = _run("--engines")
    assert result.returncode == 2
    assert "--engines only makes sense with --sandbox" in result.stderr


def test_version_prints_the_packages_version():
    result = _run("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"redu-mcp {artifacts.VERSION}\n"


def test_help_names_the_commands():
    result = _run("--help")
    assert result.returncode == 0
    for word in ("demo", "sandbox", "--access", "--secrets", "--transport"):
        assert word in result.stdout


def test_demo_walks_the_whole_flow():
    result = _run("demo", env={**os.environ, "NO_COLOR": "1"}, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    for step in ("whoami", "create_database", "create_redis", "wait_for_ready", "get_database", "delete_redis"):
        assert f"→ {step}(" in out, step
    assert "Deleted PostgreSQL database 'demo-db'" in out
    assert "Deleted Redis instance 'demo-cache'" in out
    assert '"total": 0' in out  # nothing left behind
    assert "Demo finished" in out


@pytest.mark.skipif(missing_engines() is not None, reason=f"engines missing: {missing_engines()}")
def test_demo_with_engines_connects_for_real():
    result = _run("demo", "--engines", env={**os.environ, "NO_COLOR": "1"}, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    # check → migrate → insert → select, all through the server's data tools
    assert '"authenticated": true' in result.stdout and '"applied": true' in result.stdout
    assert '"committed": true' in result.stdout
    assert re.search(r'\[\s*1,\s*"coffee"\s*\]', result.stdout) and re.search(r'\[\s*2,\s*"tea"\s*\]', result.stdout)
    # The version get_database shows is the one the server connected to, not merely the one asked for.
    running = re.search(r'"server_version": "(\d+)\.', result.stdout)
    shown = re.search(r'"version": "(\d+)"', result.stdout[result.stdout.index("Inspect one") :])
    assert running and shown and running.group(1) == shown.group(1), result.stdout
    # SET, GET and describe_redis through the server too: the greeting read back, and its key sampled
    assert re.search(r'"command": "GET",\s*"value": "hello from redu-mcp"', result.stdout), result.stdout
    assert '"name": "greeting"' in result.stdout and "→ describe_redis(" in result.stdout
