"""What the distribution tests need: the built artifacts, the tools that build and launch them, and
the environment a child ``uv`` needs to reach PyPI from here.

Artifacts come from ``$REDU_MCP_DIST_DIR`` when set (``.ci/dist-check`` builds the wheel, the sdist
and the bundle there, and ``.ci/run`` exports it): then each must be there, or the test fails.
Otherwise the session fixtures in ``conftest.py`` build them into a temporary directory. A test is
skipped only when a tool it needs is genuinely absent (``uv``; the ``mcpb`` CLI for the bundle; the
Claude Code CLI), with the command that installs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from redu_mcp.sandbox import Sandbox
from redu_mcp.sandbox.store import Account
from tests.helpers import REPO, serving_asgi

PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
VERSION: str = PROJECT["version"]
WHEEL_NAME = f"redu_mcp-{VERSION}-py3-none-any.whl"
SDIST_NAME = f"redu_mcp-{VERSION}.tar.gz"
BUNDLE_NAME = f"redu-mcp-{VERSION}.mcpb"

#: The variables a child ``uv`` (or a server it launches) needs on this machine and that MCP
#: clients do not pass on by themselves: the TLS-inspecting proxy's CA bundle, proxies, uv's cache
#: and index settings. On a user's machine none of these is needed.
NETWORK_VARIABLES = (
    "SSL_CERT_FILE", "SSL_CERT_DIR", "UV_SYSTEM_CERTS", "UV_NATIVE_TLS", "UV_CACHE_DIR", "UV_INDEX_URL",
    "UV_DEFAULT_INDEX", "UV_EXTRA_INDEX_URL", "UV_PYTHON_DOWNLOADS", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
    "http_proxy", "https_proxy", "no_proxy",
)  # fmt: skip


def network_env() -> dict[str, str]:
    return {name: os.environ[name] for name in NETWORK_VARIABLES if os.environ.get(name)}


def dist_dir_from_ci() -> Path | None:
    configured = os.environ.get("REDU_MCP_DIST_DIR")
    return Path(configured) if configured else None


def uv_bin() -> str | None:
    """The ``uv`` running these tests (``uv run`` sets ``$UV``), else the one on PATH."""
    return os.environ.get("UV") or shutil.which("uv")


def npm_tool(bin_name: str, env_var: str) -> str | None:
    """A CLI installed by ``.ci/install-npm-tool.sh``: ``$<env_var>``, else its cache directory."""
    configured = os.environ.get(env_var)
    if configured:
        return configured  # set but wrong is a broken CI set-up: fail loudly, do not skip
    base = Path(os.environ.get("REDU_MCP_NPM_TOOLS_DIR") or Path.home() / ".cache" / "redu-mcp-npm-tools")
    candidate = base / bin_name / "node_modules" / ".bin" / bin_name
    return str(candidate) if os.access(candidate, os.X_OK) else None


def build_python_dists(out: Path) -> None:
    uv = uv_bin()
    assert uv, "uv is needed to build the wheel and the sdist"
    subprocess.run([uv, "build", "--out-dir", str(out), str(REPO)], check=True, capture_output=True, timeout=300)


def build_bundle(out: Path, mcpb: str) -> Path:
    done = subprocess.run(
        ["bash", str(REPO / "packaging" / "mcpb" / "build.sh"), str(out)],
        env=dict(os.environ, MCPB_BIN=mcpb), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip())


# --- an upstream for launched servers: the sandbox API on a loopback port ---------------------------------

#: The Redu API key the launched servers are configured with (the served sandbox's only account).
API_KEY = "rk-artifact-test-0123456789"


@asynccontextmanager
async def serving_sandbox() -> AsyncIterator[tuple[str, Sandbox]]:
    """The sandbox API on a free loopback port, accepting only ``API_KEY``; yield its base URL."""
    sandbox = Sandbox(api_keys={API_KEY: Account("usr_artifacts", "artifacts", "artifacts@example.com")},
                      provisioning_seconds=0.2)  # fmt: skip
    async with serving_asgi(sandbox.app) as port:
        yield f"http://127.0.0.1:{port}/v1", sandbox
