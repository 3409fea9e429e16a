"""Access levels (``--access read|create|full``, env ``REDU_MCP_ACCESS``, default full).

A tool above the server's level is not registered at all: absent from tools/list, and when called
anyway the answer says which level the server runs at and what the operator changes; nothing
reaches the API. Resources stay readable at every level, the
instructions name the level, and a bad value stops the server at start-up (exit 2, with a message).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from redu_mcp.config import ConfigError, settings_from_env
from redu_mcp.server import TOOLS, Settings, tools_for
from redu_mcp.server.instructions import instructions_for
from tests.helpers import CREATE_ARGS, connect, seed_instance

REPO = Path(__file__).resolve().parent.parent

READ_TOOLS = {"list_databases", "get_database", "list_redis", "get_redis", "wait_for_ready", "whoami"}
#: The data tools offered at the default --data read (apply_migration needs --data write).
READ_TOOLS |= {"check_connection", "describe_database", "run_sql", "list_migrations"}
READ_TOOLS |= {"describe_redis", "run_redis_command"}
#: list_create_options only serves creates: offered where creating is.
CREATE_TOOLS = READ_TOOLS | {"create_database", "create_redis", "list_create_options"}
FULL_TOOLS = CREATE_TOOLS | {"delete_database", "delete_redis"}
EXPECTED = {"read": READ_TOOLS, "create": CREATE_TOOLS, "full": FULL_TOOLS}

#: A valid call of every tool that some level hides, so the refusal is not a validation artefact.
HIDDEN_CALLS = {
    "list_create_options": {},
    "create_database": dict(CREATE_ARGS, name="sneaky"),
    "create_redis": dict(CREATE_ARGS, name="sneaky"),
    "delete_database": {"id": 1, "confirm_name": "keep-me"},
    "delete_redis": {"id": 1, "confirm_name": "keep-me"},
}


def test_the_tool_specs_match_the_documented_sets():
    assert {spec.name for spec in TOOLS} == FULL_TOOLS | {"apply_migration"}
    for level, expected in EXPECTED.items():
        assert {spec.name for spec in tools_for(level)} == expected
    data_tools = {"check_connection", "describe_database", "run_sql", "list_migrations", "apply_migration"}
    data_tools |= {"describe_redis", "run_redis_command"}
    assert not {spec.name for spec in tools_for("full", "off")} & data_tools
    assert {spec.name for spec in tools_for("create", "write")} == CREATE_TOOLS | {"apply_migration"}
    run_sql = {data: next(s for s in tools_for("full", data) if s.name == "run_sql") for data in ("read", "write")}
    assert run_sql["read"].profile.read_only and not run_sql["write"].profile.read_only
    redis = {
        data: next(s for s in tools_for("full", data) if s.name == "run_redis_command") for data in ("read", "write")
    }
    assert redis["read"].profile.read_only and not redis["write"].profile.read_only


@pytest.mark.parametrize("level", ["read", "create", "full"])
async def test_tools_above_the_level_are_not_registered(make_server, sandbox, mode, level):
    async with connect(make_server(access=level), mode) as client:
        listed = {tool.name for tool in (await client.list_tools()).tools}
        assert listed == EXPECTED[level]

        for name in sorted(FULL_TOOLS - EXPECTED[level]):
            before = sandbox.count()
            result = await client.call_tool(name, HIDDEN_CALLS[name])
            assert result.is_error
            needs = "full" if name.startswith("delete_") else "create"
            assert result.content[0].text.startswith(
                f"{name} is not available: this server runs at access level '{level}' "
            )
            assert f"{name} needs '{needs}'. Nothing was done." in result.content[0].text
            assert f"restarting the server with --access {needs} (REDU_MCP_ACCESS={needs})" in result.content[0].text
            assert sandbox.count() == before  # nothing reached the API
        unknown = await client.call_tool("drop_everything", {})
        assert unknown.is_error and unknown.content[0].text == "Unknown tool: drop_everything"  # not ours at all

        assert f"Access level of this server: {level}:" in (client.instructions or "")
        assert "Tools available: " + ", ".join(sorted(EXPECTED[level])) + "." in (client.instructions or "")
        whoami = await client.call_tool("whoami", {})
        assert whoami.structured_content["access"] == level
    assert not sandbox.store.records  # no level let a hidden create through


@pytest.mark.parametrize("level", ["read", "create", "full"])
async def test_resources_stay_readable_at_every_level(make_server, sandbox, mode, level):
    made = await seed_instance(sandbox, "database", "seen-by-all")  # behind the server's back
    async with connect(make_server(access=level), mode) as client:
        listed = {r.uri for r in (await client.list_resources()).resources}
        assert listed == {"redu://flavors", "redu://networks", "redu://keypairs", "redu://security-groups"}
        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
        assert templates == {"redu://databases/{id}", "redu://redis/{id}"}
        for uri in sorted(listed):
            assert json.loads((await client.read_resource(uri)).contents[0].text)
        instance = json.loads((await client.read_resource(f"redu://databases/{made}")).contents[0].text)
        assert instance["name"] == "seen-by-all"
        assert "password" not in json.dumps(instance).lower()
        # The provisioning prompts walk through a create: offered only where create exists.
        prompts = {p.name for p in (await client.list_prompts()).prompts}
        assert prompts == (set() if level == "read" else {"provision_postgres", "provision_redis"})


def test_instructions_describe_only_what_the_level_allows(make_settings):
    def instructions(level: str) -> str:
        return instructions_for(make_settings(access=level), [spec.name for spec in tools_for(level)])

    read, create, full = instructions("read"), instructions("create"), instructions("full")
    assert "Access level of this server: read: you can list and inspect instances, but not create or delete" in read
    assert "create_database" not in read and "delete_database" not in read
    assert "Creating and deleting are not possible through this server" in read
    assert "create_database" in create and "delete_database" not in create
    assert "delete_database" in full and "confirm_name" in full


def test_default_is_full_and_env_and_flags_choose_the_level():
    assert Settings().access == "full"
    assert settings_from_env({}).access == "full"
    assert settings_from_env({"REDU_MCP_ACCESS": "read"}).access == "read"
    assert settings_from_env({"REDU_MCP_ACCESS": "full"}, access="read").access == "read"  # the flag wins
    assert settings_from_env({"REDU_MCP_ACCESS": " Create "}).access == "create"  # case and blanks forgiven


@pytest.mark.parametrize("value", ["bogus", "readonly", "read-only", "ro", "admin", "", "FULL!"])
def test_a_bad_level_is_a_configuration_error(value):
    with pytest.raises(ConfigError) as error:
        Settings(access=value)
    message = str(error.value)
    assert "access level" in message and repr(value) in message
    assert "read, create, full" in message and "REDU_MCP_ACCESS" in message


def _run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("REDU_")}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "redu_mcp", *args],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, cwd=REPO, env=environment,
    )  # fmt: skip


def test_cli_refuses_a_bad_access_flag_at_start_up():
    done = _run_cli("--sandbox", "--access", "bogus")
    assert done.returncode == 2
    assert "invalid access level 'bogus'" in done.stderr
    assert "use one of read, create, full" in done.stderr
    assert done.stdout == ""  # nothing on the MCP wire


def test_cli_refuses_a_bad_access_env_at_start_up():
    done = _run_cli("--sandbox", env={"REDU_MCP_ACCESS": "readonly"})
    assert done.returncode == 2
    assert "invalid access level 'readonly'" in done.stderr and "REDU_MCP_ACCESS" in done.stderr


async def test_cli_access_flag_reaches_a_real_stdio_client(tmp_path: Path):
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "redu_mcp", "--sandbox", "--access", "read", "--log-level", "WARNING"],
        env={"XDG_STATE_HOME": str(tmp_path / "state")},
        cwd=str(REPO),
    )
    async with Client(params) as client:
        assert {tool.name for tool in (await client.list_tools()).tools} == READ_TOOLS
        refused = await client.call_tool("delete_redis", {"id": 1, "confirm_name": "x"})
        assert refused.is_error and "runs at access level 'read'" in refused.content[0].text
        assert "--access full" in refused.content[0].text
        assert "Access level of this server: read" in (client.instructions or "")


def test_the_data_level_is_read_by_default_and_write_needs_create_access():
    assert settings_from_env({}).data == "read"
    assert settings_from_env({"REDU_MCP_DATA": "off"}).data == "off"
    assert settings_from_env({"REDU_MCP_DATA": "write"}, data="read").data == "read"  # the flag wins
    with pytest.raises(ConfigError, match="--data / REDU_MCP_DATA"):
        settings_from_env({"REDU_MCP_DATA": "everything"})
    with pytest.raises(ConfigError, match="--data write needs --access create or full"):
        settings_from_env({"REDU_MCP_DATA": "write", "REDU_MCP_ACCESS": "read"})


def test_a_read_only_server_that_would_write_refuses_to_start_in_one_line(tmp_path: Path):
    started = subprocess.run(
        [sys.executable, "-m", "redu_mcp", "--sandbox", "--access", "read", "--data", "write"],
        capture_output=True,
        text=True,
        env={**os.environ, "XDG_STATE_HOME": str(tmp_path)},
        cwd=REPO,
        timeout=60,
    )
    assert started.returncode == 2
    assert started.stderr.strip().splitlines() == [
        "redu-mcp: --data write needs --access create or full: a read-only server cannot write to instances"
    ]
