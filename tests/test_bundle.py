"""The MCP Bundle for Claude Desktop, as built: what it holds, its manifest, and the server it
launches. The test unpacks the ``.mcpb`` and starts the server exactly as its ``mcp_config`` says,
the way a host does: ``${__dirname}`` is the unpacked directory, ``${user_config.*}`` the user's
answers (or the defaults); the host's own environment comes on top (here: what uv needs to reach
PyPI through this machine's proxy, and the API URL of a sandbox on a loopback port).
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

from redu_mcp.config import settings_from_env
from redu_mcp.server import tools_for
from tests import artifacts
from tests.helpers import CREATE_ARGS, REPO
from tests.test_distribution import package_files

USER_CONFIG = re.compile(r"\$\{user_config\.([A-Za-z0-9_]+)\}")


@pytest.fixture(scope="module")
def unpacked(bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("unpacked-bundle")
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(directory)
    return directory


@pytest.fixture(scope="module")
def manifest(unpacked: Path) -> dict[str, Any]:
    return json.loads((unpacked / "manifest.json").read_text())


def host_substitute(value: str, directory: Path, answers: dict[str, str]) -> str:
    """What an MCPB host does to each string of ``mcp_config`` before launching it."""
    value = value.replace("${__dirname}", str(directory)).replace("${HOME}", str(Path.home()))
    return USER_CONFIG.sub(lambda m: answers[m.group(1)], value)


def answers_for(manifest: dict[str, Any], **given: str) -> dict[str, str]:
    """The user's answers: ``given``, else each option's default."""
    options = manifest["user_config"]
    return {key: given.get(key, str(option.get("default", ""))) for key, option in options.items()}


def test_the_bundle_holds_the_source_its_lock_and_nothing_else(bundle: Path):
    names = set(zipfile.ZipFile(bundle).namelist())
    top_level = {"manifest.json", "pyproject.toml", "uv.lock", "README.md", "LICENSE"}
    assert names == package_files() | top_level
    archive = zipfile.ZipFile(bundle)
    # The lock travels as it is: the host installs exactly the locked versions (uv run --frozen).
    assert archive.read("uv.lock") == (REPO / "uv.lock").read_bytes()
    assert archive.read("pyproject.toml") == (REPO / "pyproject.toml").read_bytes()
    assert archive.read("manifest.json") == (REPO / "packaging" / "mcpb" / "manifest.json").read_bytes()


def test_the_manifest_matches_the_project(manifest: dict[str, Any]):
    assert manifest["manifest_version"] == "0.4"
    assert (manifest["name"], manifest["version"]) == ("redu-mcp", artifacts.VERSION)
    assert manifest["license"] == artifacts.PROJECT["license"]
    server = manifest["server"]
    assert server["type"] == "uv"
    assert (REPO / server["entry_point"]).is_file()
    assert server["mcp_config"]["command"] == "uv"
    assert server["mcp_config"]["args"] == ["run", "--directory", "${__dirname}", "--frozen", "--no-dev", "redu-mcp"]
    # The tools a user sees before installing: the server's own, at the full access level.
    assert [(t["name"], t["description"]) for t in manifest["tools"]] == [(s.name, s.title) for s in tools_for("full")]


def test_the_api_key_is_a_sensitive_option_and_every_option_reaches_the_server(manifest: dict[str, Any]):
    options, env = manifest["user_config"], manifest["server"]["mcp_config"]["env"]
    api_key = options["api_key"]
    # sensitive: the host masks it and keeps it in the OS keychain, not in a JSON file.
    assert (api_key["type"], api_key["sensitive"], api_key["required"]) == ("string", True, True)
    assert not any(option.get("sensitive") for key, option in options.items() if key != "api_key")
    used = {m.group(1) for value in env.values() for m in USER_CONFIG.finditer(value)}
    assert used == set(options)  # every option is passed on, and nothing refers to a missing one
    assert env["REDU_API_KEY"] == "${user_config.api_key}"
    registry = json.loads((REPO / "server.json").read_text())["packages"][0]["environmentVariables"]
    assert set(env) <= {variable["name"] for variable in registry}  # variables the server reads
    # The defaults are values the server accepts (a typo would stop it at start-up).
    defaults = {name: host_substitute(value, Path("/b"), answers_for(manifest)) for name, value in env.items()}
    settings_from_env({name: value for name, value in defaults.items() if name != "REDU_API_KEY"})


async def launch(manifest: dict[str, Any], unpacked: Path, api_url: str, state: Path, **given: str) -> Client:
    config = manifest["server"]["mcp_config"]
    answers = answers_for(manifest, api_key=artifacts.API_KEY, **given)
    env = {name: host_substitute(value, unpacked, answers) for name, value in config["env"].items()}
    host_env = {**artifacts.network_env(), "REDU_API_URL": api_url, "XDG_STATE_HOME": str(state)}
    return Client(
        StdioServerParameters(
            command=host_substitute(config["command"], unpacked, answers),
            args=[host_substitute(arg, unpacked, answers) for arg in config["args"]],
            env={**host_env, **env},
        )
    )


async def test_the_host_launches_it_as_mcp_config_says(manifest: dict[str, Any], unpacked: Path, tmp_path: Path):
    state = tmp_path / "state"
    async with artifacts.serving_sandbox() as (api_url, sandbox):
        async with await launch(manifest, unpacked, api_url, state) as client:  # defaults: full, file
            assert client.server_info.version == artifacts.VERSION
            tools = {t.name for t in (await client.list_tools()).tools}
            assert tools == {t["name"] for t in manifest["tools"]}
            me = await client.call_tool("whoami", {})
            assert not me.is_error, me.content[0].text
            assert me.structured_content["user"]["id"] == "usr_artifacts"  # the key came from user_config
            created = await client.call_tool("create_redis", dict(CREATE_ARGS, name="bundled"))
            assert not created.is_error, created.content[0].text
            assert Path(created.structured_content["credentials_file"]).is_relative_to(state)  # secrets: file

        # Another answer to an option reaches the server too: read-only tools only.
        async with await launch(manifest, unpacked, api_url, state, access="read", secrets="reveal") as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            assert tools == {s.name for s in tools_for("read")}
    assert sandbox.count("POST", "/v1/redis") == 1
    # uv made its environment inside the bundle's directory and left the lock as it was (--frozen).
    assert (unpacked / ".venv").is_dir()
    assert (unpacked / "uv.lock").read_bytes() == (REPO / "uv.lock").read_bytes()
