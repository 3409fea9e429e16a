"""The OCI image, run with podman as its README section says: MCP over stdio by default, streamable
HTTP by flag (with a token), as a non-root user, with CA certificates and the registry's label.

``.ci/image-check`` builds the image and ``.ci/run`` exports its name as ``$REDU_MCP_IMAGE`` (and
``$CONTAINERS_CONF``: this host's container settings). Without an image the tests are skipped: the
build needs root, debootstrap and about a minute, which is CI's job, not a test's.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from redu_mcp.server import tools_for
from tests.helpers import CREATE_ARGS, REPO, STARTUP_TIMEOUT, free_port

IMAGE = os.environ.get("REDU_MCP_IMAGE") or ""  # empty: the tests skip (see pytestmark)
PODMAN = shutil.which("podman") or ""  # empty: the tests skip
TOKEN = "image-test-token-0123456789abcdef"

pytestmark = pytest.mark.skipif(
    not IMAGE or not PODMAN,
    reason="no OCI image to test: .ci/image-check builds one (then set REDU_MCP_IMAGE to its name)",
)


def podman_env() -> dict[str, str]:
    """What podman needs from here; MCP clients pass a server command almost nothing on their own."""
    return {name: os.environ[name] for name in ("CONTAINERS_CONF", "XDG_RUNTIME_DIR") if os.environ.get(name)}


def podman(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PODMAN, *args],
        capture_output=True, text=True, timeout=120, check=False, env={**os.environ, **podman_env()},
    )  # fmt: skip


def test_the_image_runs_as_a_non_root_user_with_ca_certificates_and_the_registry_label():
    inspected = json.loads(podman("image", "inspect", IMAGE).stdout)[0]
    registry_name = json.loads((REPO / "server.json").read_text())["name"]
    assert inspected["Config"]["Labels"]["io.modelcontextprotocol.server.name"] == registry_name
    assert inspected["Config"]["User"] == "app"
    assert inspected["Config"]["Entrypoint"] == ["redu-mcp"]
    probe = (
        "import os, ssl, sys, opentelemetry.sdk, truststore\n"
        "paths = ssl.get_default_verify_paths()\n"
        "print(os.getuid(), os.path.getsize(paths.cafile or ''), sys.version_info[:2] >= (3, 11))\n"
    )
    done = podman("run", "--rm", "--network", "none", "--entrypoint", "python3", IMAGE, "-c", probe)
    assert done.returncode == 0, done.stderr
    uid, ca_bytes, python_ok = done.stdout.split()
    assert uid == "10001" and int(ca_bytes) > 100_000 and python_ok == "True"  # Debian's CA bundle; otel extra in


async def test_stdio_by_default():
    server = StdioServerParameters(
        command=PODMAN,
        args=["run", "-i", "--rm", "--network", "none", IMAGE, "--sandbox"],
        env=podman_env(),
    )
    async with Client(server) as client:
        assert len((await client.list_tools()).tools) == len(tools_for("full"))
        me = await client.call_tool("whoami", {})
        assert not me.is_error and me.structured_content["sandbox"] is True
        created = await client.call_tool("create_redis", dict(CREATE_ARGS, name="contained"))
        assert not created.is_error, created.content[0].text  # the credential file is written as the app user
        assert created.structured_content["credentials_file"].startswith("/home/app/")


@pytest.fixture
def http_container(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    name = f"redu-mcp-test-{port}"
    started = podman(
        "run", "-d", "--rm", "--name", name, "-p", f"127.0.0.1:{port}:8000", "-e", f"REDU_MCP_AUTH_TOKEN={TOKEN}",
        IMAGE, "--transport", "http", "--host", "0.0.0.0", "--auth", "token", "--sandbox",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    try:
        url = f"http://127.0.0.1:{port}/mcp"
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:  # until the server inside answers (the port is published before it listens)
            try:
                if httpx2.post(url, timeout=2).status_code == 401:
                    break
            except httpx2.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the container did not serve within {STARTUP_TIMEOUT}s:\n{podman('logs', name).stderr}")
            time.sleep(0.1)
        yield url
    finally:
        podman("stop", "--time", "5", name)


async def test_streamable_http_by_flag_with_a_token(http_container: str):
    assert httpx2.post(http_container, headers={"authorization": "Bearer wrong-token-000000000"}).status_code == 401
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=httpx2.Timeout(30, read=60))
    async with http, Client(streamable_http_client(http_container, http_client=http)) as client:
        assert len((await client.list_tools()).tools) == len(tools_for("full"))
        options = await client.call_tool("list_create_options", {})
        assert not options.is_error and options.structured_content["flavors"]


# --- the README's own lines ----------------------------------------------------------------------------


def readme_container_lines() -> list[list[str]]:
    """The README's podman lines, continuations joined, as words."""
    from tests.test_docs import block_checked_by

    text = block_checked_by("test_the_readme_container_lines_run").replace("\\\n", " ")
    return [shlex.split(line.split("  #")[0]) for line in text.splitlines()]


def as_here(words: list[str], volume: str, port: int) -> list[str]:
    """The README's words with this test's image, volume and port in place of the README's."""
    swap = {"redu-mcp": IMAGE, "8000:8000": f"127.0.0.1:{port}:8000",
            "http://localhost:8000/mcp": f"http://localhost:{port}/mcp"}  # fmt: skip
    words = [swap.get(w, w).replace("redu-mcp-state:", f"{volume}:") for w in words]
    assert words[:2] == ["podman", "run"]
    return words[2:]  # after `podman run`


async def test_the_readme_container_lines_run(tmp_path: Path):
    """The build line names this Containerfile; the stdio line keeps a password's file in its volume,
    private, after the container is gone; the HTTP line's banner names the URL a client then uses."""
    build, stdio, http = readme_container_lines()
    assert build[:2] == ["podman", "build"] and "packaging/oci/Containerfile" in build
    port, key = free_port(), "rk-image-test-0123456789"
    volume = f"redu-mcp-test-{port}"
    env = {**podman_env(), "REDU_API_KEY": key, "REDU_MCP_AUTH_TOKEN": TOKEN}
    try:
        server = StdioServerParameters(
            command=PODMAN, args=["run", *as_here(stdio, volume, port), "--sandbox"], env=env
        )
        async with Client(server) as client:
            created = await client.call_tool("create_database", dict(CREATE_ARGS, name="kept"))
        assert not created.is_error, created.content[0].text
        saved = created.structured_content["credentials_file"]
        # In the volume (the sandbox's files in a folder of their own: a real key's go to credentials/).
        assert saved.startswith("/home/app/.local/state/redu-mcp/sandbox-credentials/run-")
        mount = f"{volume}:/home/app/.local/state/redu-mcp"
        kept = podman("run", "--rm", "-v", mount, "--entrypoint", "stat", IMAGE, "-c", "%a %U", saved)
        assert kept.stdout.split() == ["600", "app"], kept.stderr  # the container went, the file stayed

        name = f"redu-mcp-test-http-{port}"
        started = subprocess.run(
            [PODMAN, "run", "-d", "--name", name, *as_here(http, volume, port), "--sandbox"],
            capture_output=True, text=True, timeout=120, check=False, env={**os.environ, **env},
        )  # fmt: skip
        assert started.returncode == 0, started.stderr
        try:
            url = f"http://localhost:{port}/mcp"
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while "serving MCP" not in (banner := podman("logs", name).stderr):
                assert time.monotonic() < deadline, banner
                time.sleep(0.1)
            assert f"at {url}\n" in banner  # what the README promises: a URL a client can use
            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with httpx2.AsyncClient(headers=headers, timeout=30) as http_client:
                async with Client(streamable_http_client(url, http_client=http_client)) as client:
                    me = await client.call_tool("whoami", {})
            assert not me.is_error and me.structured_content["sandbox"] is True
        finally:
            podman("rm", "--force", "--time", "5", name)
    finally:
        for _ in range(20):  # a container's own --rm clean-up may still hold the volume for a moment
            if (
                podman("volume", "rm", "--force", volume).returncode == 0
                or podman("volume", "exists", volume).returncode
            ):
                break
            time.sleep(0.5)
