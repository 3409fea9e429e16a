"""Shared fixtures: a fast sandbox as upstream, servers built on it, and real MCP clients.

Every server test drives ``redu_mcp`` through ``mcp.Client``: in-process in both protocol eras
(``mode`` fixture), and, in the transport tests, over stdio and HTTP.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from redu_mcp.api import RetryPolicy
from redu_mcp.sandbox import Sandbox
from redu_mcp.sandbox.engines import Engines
from redu_mcp.server import Settings, build_server
from tests import artifacts
from tests.helpers import FAST_RETRY, MODES

# --- in CI, a skip is a failure ----------------------------------------------------------------------------

#: The marker of the rare test that may skip even in CI (it must say why).
MAY_SKIP_IN_CI = "may_skip_in_ci"


def in_ci() -> bool:
    """CI sets CI=true (``.ci/run`` too): there every test has what it needs, installed by ``.ci/``."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MAY_SKIP_IN_CI}(reason): this test may skip in CI too")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """With CI=true a skip (root, engines, an external client, the image, curl missing) is an error
    that gives the skip's reason: a test that silently does not run in CI proves nothing."""
    report = yield
    if report.skipped and not hasattr(report, "wasxfail") and in_ci() and not item.get_closest_marker(MAY_SKIP_IN_CI):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped in CI (CI=true), where every test must run: {reason.removeprefix('Skipped: ')}"
    return report


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may write credentials into the real home directory."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("REDU_API_KEY", raising=False)
    monkeypatch.delenv("REDU_MCP_AUTH_TOKEN", raising=False)


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def sandbox() -> Sandbox:
    return Sandbox(provisioning_seconds=0.2)


@pytest.fixture
def credentials_dir(tmp_path: Path) -> Path:
    return tmp_path / "credentials"


@pytest.fixture
def make_settings(credentials_dir: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = dict(sandbox=True, credentials_dir=credentials_dir, poll_interval_seconds=0.05)
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def make_server(sandbox: Sandbox, make_settings: Callable[..., Settings]):
    """``make_server(**settings)``: a server on the test's sandbox, with fast retries."""

    def make(*, retry: RetryPolicy = FAST_RETRY, **overrides: Any):
        return build_server(make_settings(**overrides), client=sandbox.client(retry=retry))

    return make


@pytest.fixture
def server(make_server):
    return make_server()


@pytest.fixture
async def engines():
    """The sandbox's engine manager, every engine it started stopped afterwards."""
    manager = Engines()
    try:
        yield manager
    finally:
        await manager.aclose()


# --- built artifacts (see tests/artifacts.py) ---------------------------------------------------------


@pytest.fixture(scope="session")
def python_dists(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The wheel and the sdist: from ``$REDU_MCP_DIST_DIR`` (CI), else built now with ``uv build``."""
    directory = artifacts.dist_dir_from_ci()
    if directory is None:
        if artifacts.uv_bin() is None:
            pytest.skip("uv is not installed: pip install uv")
        directory = tmp_path_factory.mktemp("dist")
        artifacts.build_python_dists(directory)
    wheel, sdist = directory / artifacts.WHEEL_NAME, directory / artifacts.SDIST_NAME
    assert wheel.is_file() and sdist.is_file(), f"{directory} lacks {wheel.name} or {sdist.name}"
    return wheel, sdist


@pytest.fixture(scope="session")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The MCP Bundle: from ``$REDU_MCP_DIST_DIR`` (CI), else built now with the mcpb CLI."""
    directory = artifacts.dist_dir_from_ci()
    if directory is not None:
        path = directory / artifacts.BUNDLE_NAME
        assert path.is_file(), f"{directory} lacks {path.name}"
        return path
    mcpb = artifacts.npm_tool("mcpb", "MCPB_BIN")
    if mcpb is None:
        pytest.skip("the mcpb CLI is not installed: .ci/install-npm-tool.sh @anthropic-ai/mcpb 2.1.2 mcpb")
    return artifacts.build_bundle(tmp_path_factory.mktemp("bundle"), mcpb)
