"""The server over its real transports, driven by ``mcp.Client`` in both protocol eras:

* stdio: ``python -m redu_mcp --sandbox`` as a child process, the way desktop clients launch it;
* streamable HTTP on a real loopback port: the app from ``build_http_app`` under uvicorn in-process,
  and the ``redu-mcp --transport http`` command as a child process.

Each runs the whole workflow: list tools, create, wait with progress, read a resource, get a
prompt, delete (by ``confirm_name``: these clients do not offer elicitation).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client, MCPError, StdioServerParameters

from redu_mcp.sandbox import Sandbox
from tests.helpers import CREATE_ARGS, REPO, cli_command, cli_http_server, free_port, http_client, serving_http

TOKEN = "transport-test-token-7c1d9e2f4a"
ALL_TOOLS = {
    "list_databases", "get_database", "create_database", "delete_database",
    "list_redis", "get_redis", "create_redis", "delete_redis",
    "wait_for_ready", "list_create_options", "whoami",
    "check_connection", "describe_database", "run_sql", "list_migrations", "describe_redis", "run_redis_command",
}  # fmt: skip


# --- the workflow every transport must carry ----------------------------------------------------------


async def round_trip(client: Client, kind: str, name: str) -> dict[str, Any]:
    """Create, wait (with progress), read, prompt and delete; return what was seen."""
    tools = {t.name for t in (await client.list_tools()).tools}
    assert tools == ALL_TOOLS

    args = dict(CREATE_ARGS, name=name)
    created = await client.call_tool(f"create_{kind}", args)
    assert not created.is_error, created.content[0].text
    id = created.structured_content["instance"]["id"]
    assert created.structured_content["instance"]["status"] == "provisioning"

    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))

    waited = await client.call_tool(
        "wait_for_ready",
        {"kind": kind, "id": id, "timeout_seconds": 20},
        progress_callback=on_progress,
        read_timeout_seconds=30,
    )
    assert not waited.is_error, waited.content[0].text
    result = waited.structured_content
    assert result["ready"] is True and result["connection"]["host"]
    # Every poll's status reached the client as a progress notification.
    assert len(progress) >= 1
    assert all("status: " in (message or "") for _, _, message in progress)
    assert "status: ready" in (progress[-1][2] or "")
    credentials = Path(created.structured_content["credentials_file"])
    file_text = credentials.read_text()  # completed with the host once ready

    collection = "databases" if kind == "database" else "redis"
    resource = await client.read_resource(f"redu://{collection}/{id}")
    assert json.loads(resource.contents[0].text)["name"] == name
    flavors = json.loads((await client.read_resource("redu://flavors")).contents[0].text)
    assert args["flavor_id"] in {f["id"] for f in flavors}
    prompt = await client.get_prompt("provision_redis" if kind == "redis" else "provision_postgres", {"name": name})
    assert f"create_{kind}" in prompt.messages[0].content.text

    deleted = await client.call_tool(f"delete_{kind}", {"id": id, "confirm_name": name})
    assert deleted.structured_content["deleted"] is True, deleted.content[0].text
    assert not credentials.exists()  # removed with the instance
    gone = await client.call_tool(f"get_{kind}", {"id": id})
    assert gone.is_error and "HTTP 404" in gone.content[0].text
    with pytest.raises(MCPError) as missing:
        await client.read_resource(f"redu://{collection}/{id}")
    assert missing.value.code == -32602
    return {"created": created.structured_content, "waited": result, "progress": progress, "file_text": file_text}


# --- stdio --------------------------------------------------------------------------------------------


def stdio_server(state: Path) -> StdioServerParameters:
    # The child inherits only HOME, LOGNAME, PATH, SHELL, TERM and USER: everything else goes in env.
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "redu_mcp", "--sandbox", "--provisioning-seconds", "0.2", "--log-level", "WARNING"],
        env={"XDG_STATE_HOME": str(state)},
        cwd=str(REPO),
    )


async def test_stdio_subprocess_round_trip(tmp_path: Path, mode: str):
    state = tmp_path / "child-state"
    async with Client(stdio_server(state), mode=mode) as client:
        assert client.protocol_version == ("2026-07-28" if mode == "auto" else "2025-11-25")
        assert "wait_for_ready" in (client.instructions or "")
        seen = await round_trip(client, "database", f"stdio-{mode}")
    credentials = Path(seen["created"]["credentials_file"])
    assert credentials.parent.parent == state / "redu-mcp" / "sandbox-credentials"  # the sandbox's own, per run
    assert f"PGHOST={seen['waited']['connection']['host']}" in seen["file_text"]


# --- streamable HTTP, in-process uvicorn on a real port --------------------------------------------------


async def test_streamable_http_round_trip_with_progress_over_sse(make_settings, mode: str):
    sandbox = Sandbox(provisioning_seconds=0.2)
    settings = make_settings(transport="http", auth_token=TOKEN)
    async with serving_http(settings, sandbox) as url, http_client(url, mode, TOKEN) as client:
        assert client.protocol_version == ("2026-07-28" if mode == "auto" else "2025-11-25")
        seen = await round_trip(client, "redis", f"http-{mode}")
    assert len(seen["progress"]) >= 2  # several polls, each streamed as it happened
    assert sandbox.count("POST", "/v1/redis") == 1
    assert sandbox.count("DELETE") == 1


async def test_streamable_http_refuses_a_foreign_host_header(make_settings):
    """DNS-rebinding protection is on for a loopback bind: a page on evil.example cannot drive it."""
    settings = make_settings(transport="http", auth_token=TOKEN)
    async with serving_http(settings, Sandbox()) as url, httpx2.AsyncClient() as http:
        response = await http.post(
            url,
            headers={
                "authorization": f"Bearer {TOKEN}",
                "host": "evil.example",
                "content-type": "application/json",
                "accept": "application/json, text/event-stream",
            },
            content=json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}),
        )
        assert response.status_code == 421
        async with http_client(url, bearer=TOKEN) as client:  # while the right Host works
            assert len((await client.list_tools()).tools) == len(ALL_TOOLS)


# --- the CLI, serving HTTP as a child process ---------------------------------------------------------------


async def test_cli_serves_streamable_http(tmp_path: Path):
    """The default command: a generated token, printed at start-up, which the client then sends."""
    with cli_http_server(tmp_path) as server:
        assert server.token
        for mode in ("auto", "legacy"):
            async with server.client(mode) as client:
                assert client.protocol_version == ("2026-07-28" if mode == "auto" else "2025-11-25")
                assert {t.name for t in (await client.list_tools()).tools} == ALL_TOOLS
                flavors = await client.call_tool("list_create_options", {})
                assert not flavors.is_error
                assert [f["id"] for f in flavors.structured_content["flavors"]] == ["1", "2", "m1.large"]
                me = await client.call_tool("whoami", {})
                assert me.structured_content["sandbox"] is True
        async with server.client("legacy") as client:
            seen = await round_trip(client, "redis", "cli-http")
    assert Path(seen["created"]["credentials_file"]).is_relative_to(tmp_path / "cli-state")


def test_cli_refuses_a_public_bind_without_auth(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if k != "REDU_MCP_AUTH_TOKEN"}
    done = subprocess.run(
        [*cli_command(), "--transport", "http", "--sandbox", "--host", "0.0.0.0", "--port", str(free_port())],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, cwd=REPO, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "refusing to serve HTTP on 0.0.0.0 without authentication" in done.stderr
    assert "REDU_MCP_AUTH_TOKEN" in done.stderr and "127.0.0.1" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
