"""The packages for PyPI as built (wheel and sdist): what they hold, their metadata, and the server
they install, launched the way MCP users launch it (``uvx`` from the built file, in a fresh
environment) and driven by an MCP client over stdio: tools/list, then tool calls that reach the
upstream with the configured key.
"""

from __future__ import annotations

import email.parser
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from redu_mcp.server import tools_for
from tests import artifacts
from tests.helpers import REPO

MARKER = "mcp-name: io.github.redu-cloud/redu-mcp"


def package_files() -> set[str]:
    """The package's files as the repository has them (tracked, or new and not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", "redu_mcp"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    return {name for name in listed if (REPO / name).is_file()}


def test_the_wheel_holds_the_package_and_nothing_else(python_dists: tuple[Path, Path]):
    wheel, _ = python_dists
    names = set(zipfile.ZipFile(wheel).namelist())
    dist_info = f"redu_mcp-{artifacts.VERSION}.dist-info/"
    assert {n for n in names if not n.startswith(dist_info)} == package_files()
    assert {n.removeprefix(dist_info) for n in names if n.startswith(dist_info)} == {
        "METADATA", "WHEEL", "entry_points.txt", "RECORD", "licenses/LICENSE",
    }  # fmt: skip
    entry_points = zipfile.ZipFile(wheel).read(dist_info + "entry_points.txt").decode()
    assert "redu-mcp = redu_mcp.cli:main" in entry_points


def test_the_sdist_holds_the_package_and_nothing_else(python_dists: tuple[Path, Path]):
    _, sdist = python_dists
    root = f"redu_mcp-{artifacts.VERSION}/"
    with tarfile.open(sdist) as archive:
        names = {m.name.removeprefix(root) for m in archive.getmembers() if m.isfile()}
    # hatchling always adds the VCS ignore file to an sdist; it is harmless.
    top_level = {"pyproject.toml", "README.md", "LICENSE", "PKG-INFO", ".gitignore"}
    assert names == package_files() | top_level
    assert not any(n.startswith(("tests/", "bench/", ".ci/", "packaging/")) for n in names)


def test_the_metadata_is_complete_for_pypi(python_dists: tuple[Path, Path]):
    wheel, _ = python_dists
    raw = zipfile.ZipFile(wheel).read(f"redu_mcp-{artifacts.VERSION}.dist-info/METADATA").decode()
    metadata = email.parser.Parser().parsestr(raw)
    assert (metadata["Name"], metadata["Version"]) == ("redu-mcp", artifacts.VERSION)
    assert (metadata["License-Expression"], metadata["License-File"]) == ("MIT", "LICENSE")
    assert metadata["Requires-Python"] == ">=3.11"
    assert metadata["Summary"] and metadata["Author"] and "postgresql" in metadata["Keywords"].split(",")
    urls = dict(url.split(", ", 1) for url in metadata.get_all("Project-URL"))
    assert {"Homepage", "Repository", "Issues"} <= set(urls)
    classifiers = metadata.get_all("Classifier")
    assert [c.rsplit(" :: ", 1)[1] for c in classifiers if c.startswith("Programming Language :: Python :: 3.")] == [
        "3.11", "3.12", "3.13",
    ]  # exactly the interpreters CI tests on (.ci/python-matrix)  # fmt: skip
    assert not any(c.startswith("License ::") for c in classifiers)  # PEP 639: the expression says it
    assert metadata.get_all("Provides-Extra") == ["otel", "redis"]  # telemetry export; replicas sharing state
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert MARKER in metadata.get_payload()  # the MCP Registry's proof that this PyPI package is ours


@pytest.mark.parametrize("artifact", ["wheel", "sdist"])
async def test_uvx_from_the_built_file_serves_over_stdio(python_dists: tuple[Path, Path], artifact: str,
                                                         tmp_path: Path):  # fmt: skip
    """``uvx --from <file> redu-mcp``: uv builds a fresh environment from the built file (the sdist is
    built into a wheel first) and runs its console script, as a client configured so would."""
    path = python_dists[0] if artifact == "wheel" else python_dists[1]
    uv = artifacts.uv_bin()
    assert uv
    async with artifacts.serving_sandbox() as (api_url, sandbox):
        server = StdioServerParameters(
            command=uv,
            # --refresh-package: the file just built, never a copy cached by an earlier run
            args=["tool", "run", "--refresh-package", "redu-mcp", "--from", str(path), "redu-mcp"],
            env={
                **artifacts.network_env(),
                "REDU_API_KEY": artifacts.API_KEY,
                "REDU_API_URL": api_url,
                "REDU_MCP_ACCESS": "create",
                "XDG_STATE_HOME": str(tmp_path / "state"),
            },
            cwd=str(tmp_path),  # nothing of the repository on the path: only what uv installed
        )
        async with Client(server) as client:
            assert client.server_info.version == artifacts.VERSION
            tools = {t.name for t in (await client.list_tools()).tools}
            assert tools == {s.name for s in tools_for("create")}  # REDU_MCP_ACCESS reached it: no deletes
            me = await client.call_tool("whoami", {})
            assert not me.is_error, me.content[0].text
            assert me.structured_content["user"]["id"] == "usr_artifacts"
            options = await client.call_tool("list_create_options", {})
            assert not options.is_error and options.structured_content["flavors"]
    assert sandbox.count("GET", "/v1/me") == 1
