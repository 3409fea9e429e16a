"""``--tools`` / ``REDU_MCP_TOOLS``: an allow-list of tool names and groups, under the access level.

The list only ever narrows: a tool the access level hides stays hidden whatever the list says. An
unknown name, or a list that leaves no tool, stops the server at start-up with one line. What the
model reads (instructions, tool descriptions, results) names only the tools the server offers, and
a call of a tool left out says why and who can change it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from redu_mcp.config import settings_from_env
from redu_mcp.server import TOOLS, ConfigError, Settings, build_server, tools_for
from redu_mcp.server.tools import GROUPS, allowed_tools
from tests.helpers import CREATE_ARGS, FAST_RETRY, connect

REPO = Path(__file__).resolve().parent.parent
ALL_NAMES = {spec.name for spec in TOOLS}


def names(access: str, *only: str, data: str = "read") -> set[str]:
    return {spec.name for spec in tools_for(access, data, only)}  # type: ignore[arg-type]


def test_groups_name_every_tool_once():
    grouped = [name for group in GROUPS.values() for name in dict.fromkeys(spec.name for spec in group)]
    assert sorted(grouped) == sorted(ALL_NAMES) and len(grouped) == len(set(grouped))  # run_sql: two variants, one name
    assert set(GROUPS) >= {"instances", "lookups", "data"}
    assert not set(GROUPS) & ALL_NAMES  # a group name is never also a tool name
    assert {spec.name for spec in GROUPS["lookups"]} == {"list_create_options", "whoami"}


def test_the_list_narrows_and_never_widens():
    assert names("full", data="write") == ALL_NAMES  # no list: every tool of the levels
    assert names("full", "lookups") == {"list_create_options", "whoami"}
    data_tools = {spec.name for spec in GROUPS["data"]}
    assert names("full", "instances", "whoami", data="write") == ALL_NAMES - {"list_create_options"} - data_tools
    assert names("full", "get_redis", "delete_redis") == {"get_redis", "delete_redis"}
    # Under the level: a read server never gets a create or a delete, whatever the list says.
    assert names("read", "instances") == {"list_databases", "get_database", "list_redis", "get_redis", "wait_for_ready"}
    assert names("create", "delete_redis", "get_redis") == {"get_redis"}
    # … and under the data level: no data tool at --data off, no migration applied at --data read.
    assert names("full", "data") == data_tools - {"apply_migration"}
    assert names("full", "data", "get_redis", data="off") == {"get_redis"}
    assert allowed_tools(()) is None


@pytest.mark.parametrize("bad", ["delete_everything", "instance", "list_database", "run_sql_as_root"])
def test_an_unknown_name_is_a_configuration_error(bad):
    with pytest.raises(ConfigError) as error:
        tools_for("full", "read", ("instances", bad))
    message = str(error.value)
    assert "\n" not in message and repr(bad) in message and "REDU_MCP_TOOLS" in message
    assert "instances, lookups, data" in message and "get_database" in message  # what would have been right


def test_a_list_that_leaves_no_tool_is_a_configuration_error():
    with pytest.raises(ConfigError, match="leaves no tool at access level read"):
        tools_for("read", "read", ("create_database", "delete_redis"))
    with pytest.raises(ConfigError, match="leaves no tool at access level full and data level off"):
        tools_for("full", "off", ("data",))


def test_env_and_flags_set_the_list_and_blanks_and_case_are_forgiven():
    assert settings_from_env({}).tools == ()
    assert settings_from_env({"REDU_MCP_TOOLS": " Instances, whoami ,,"}).tools == ("instances", "whoami")
    assert settings_from_env({"REDU_MCP_TOOLS": "lookups"}, tools=("get_redis",)).tools == ("get_redis",)
    assert Settings(tools=("whoami", "WHOAMI")).tools == ("whoami",)


def _run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("REDU_")}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "redu_mcp", *args],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, cwd=REPO, env=environment,
    )  # fmt: skip


@pytest.mark.parametrize(
    "args, env",
    [(("--sandbox", "--tools", "instances,drop_all"), {}), (("--sandbox",), {"REDU_MCP_TOOLS": "drop_all"})],
    ids=["flag", "env"],
)
def test_the_cli_refuses_an_unknown_name_in_one_line(args, env, tmp_path):
    done = _run_cli(*args, env={**env, "XDG_STATE_HOME": str(tmp_path)})
    assert done.returncode == 2 and done.stdout == ""  # nothing on the MCP wire
    assert done.stderr.startswith("redu-mcp: unknown tool or group 'drop_all'") and done.stderr.count("\n") == 1


async def test_a_real_stdio_client_sees_only_the_listed_tools(tmp_path: Path):
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "redu_mcp", "--sandbox", "--tools", "lookups", "--tools", "get_redis", "--log-level", "WARNING"],
        env={"XDG_STATE_HOME": str(tmp_path / "state")},
        cwd=str(REPO),
    )
    async with Client(params) as client:
        assert {tool.name for tool in (await client.list_tools()).tools} == {
            "list_create_options",
            "whoami",
            "get_redis",
        }
        assert "Tools available: get_redis, list_create_options, whoami." in (client.instructions or "")


async def test_a_tool_left_out_says_so_and_sends_nothing(make_server, sandbox, mode):
    async with connect(make_server(tools=("lookups", "list_redis")), mode) as client:
        refused = await client.call_tool("create_redis", dict(CREATE_ARGS, name="sneaky"))
        text = refused.content[0].text
        assert refused.is_error and text.startswith("create_redis is not available: the operator limited")
        assert "--tools / REDU_MCP_TOOLS" in text and "Nothing was done" in text
        above = await client.call_tool("delete_redis", {"id": 1, "confirm_name": "x"})
        assert above.is_error and "not available" in above.content[0].text
    assert sandbox.count() == 0 and not sandbox.store.records


#: Tool names as whole words, in any text.
_TOOL_WORD = re.compile(r"\b(" + "|".join(sorted(ALL_NAMES, key=len, reverse=True)) + r")\b")


def named_tools(text: str) -> set[str]:
    return set(_TOOL_WORD.findall(text))


@pytest.mark.parametrize(
    "only",
    [("instances",), ("create_database", "get_database"), ("create_redis", "list_redis"), ("lookups", "get_redis")],
    ids="+".join,
)
async def test_what_the_model_reads_names_only_offered_tools(sandbox, make_settings, mode, only):
    """Instructions, descriptions, schemas and the results of typical calls (and their errors)."""
    server = build_server(make_settings(tools=only), client=sandbox.client(retry=FAST_RETRY))
    offered = names("full", *only)
    async with connect(server, mode) as client:
        listed = (await client.list_tools()).tools
        assert {tool.name for tool in listed} == offered
        read = [client.instructions or "", json.dumps([tool.model_dump(mode="json") for tool in listed])]
        prompts = (await client.list_prompts()).prompts
        for prompt in prompts:
            got = await client.get_prompt(prompt.name, {})
            read.append(json.dumps(got.model_dump(mode="json")))
        for kind in ("database", "redis"):
            if f"create_{kind}" in offered:
                created = await client.call_tool(f"create_{kind}", dict(CREATE_ARGS, name=f"a-{kind}"))
                again = await client.call_tool(f"create_{kind}", dict(CREATE_ARGS, name=f"a-{kind}", flavor_id="2"))
                wrong = await client.call_tool(f"create_{kind}", dict(CREATE_ARGS, name=f"b-{kind}", network_id="x"))
                read += [created.content[0].text, again.content[0].text, wrong.content[0].text]
            if f"get_{kind}" in offered:
                read.append((await client.call_tool(f"get_{kind}", {"id": 4242})).content[0].text)
                read.append((await client.call_tool(f"get_{kind}", {"id": 1})).content[0].text)
    assert all(text for text in read)
    mentioned = set().union(*(named_tools(text) for text in read))
    assert mentioned <= offered, f"names tools it does not offer: {sorted(mentioned - offered)}"
