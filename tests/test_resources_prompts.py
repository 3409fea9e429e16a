"""Resources, resource templates, prompts and server instructions, through a real in-process
``mcp.Client`` in both protocol eras, against the sandbox.

``MCPError`` is caught inside ``async with Client(...)``: outside it, the SDK delivers it wrapped in an
``ExceptionGroup``.
"""

from __future__ import annotations

import json

import pytest
from mcp import MCPError

from redu_mcp.sandbox.store import SEED_FLAVORS, SEED_KEYPAIRS, SEED_NETWORKS, SEED_SECURITY_GROUPS
from redu_mcp.server import build_server
from tests.helpers import connect, create

INVALID_PARAMS = -32602  # what the SDK (and the 2026-07-28 spec) use for "resource not found"
INTERNAL_ERROR = -32603

#: What each look-up resource serves: the declared fields only (a network's undeclared `external`
#: never leaves the server), without empty ones; ids are opaque strings, whatever type the API used.
LOOKUPS = {
    "redu://flavors": SEED_FLAVORS,
    "redu://networks": [{"id": n["id"], "name": n["name"]} for n in SEED_NETWORKS],
    "redu://keypairs": SEED_KEYPAIRS,
    "redu://security-groups": [
        dict(g, id=str(g["id"]), rules=[{k: v for k, v in r.items() if v is not None} for r in g["rules"]])
        for g in SEED_SECURITY_GROUPS
    ],
}
TEMPLATES = {"redu://databases/{id}", "redu://redis/{id}"}


async def read_json(client, uri: str):
    result = await client.read_resource(uri)
    assert len(result.contents) == 1
    content = result.contents[0]
    assert content.uri == uri
    assert content.mime_type == "application/json"
    return json.loads(content.text)


# --- static lookups --------------------------------------------------------------------------------


async def test_lookup_resources_are_listed_and_serve_the_sandbox_seeds(server, mode):
    async with connect(server, mode) as client:
        listed = (await client.list_resources()).resources
        read = {uri: await read_json(client, uri) for uri in LOOKUPS}
    assert {r.uri for r in listed} == set(LOOKUPS)
    for resource in listed:
        assert resource.mime_type == "application/json"
        assert resource.title and resource.description
    assert read == LOOKUPS


async def test_lookup_resource_of_an_unconfigured_server_says_how_to_configure(make_settings, mode):
    server = build_server(make_settings(sandbox=False, api_key=None))
    async with connect(server, mode) as client:
        with pytest.raises(MCPError) as failure:
            await client.read_resource("redu://flavors")
    assert failure.value.code == INTERNAL_ERROR
    assert "REDU_API_KEY" in failure.value.message and "--sandbox" in failure.value.message


# --- instance templates -----------------------------------------------------------------------------


async def test_instance_templates_are_listed(server, mode):
    async with connect(server, mode) as client:
        templates = (await client.list_resource_templates()).resource_templates
    assert {t.uri_template for t in templates} == TEMPLATES
    for template in templates:
        assert template.mime_type == "application/json"
        assert template.title and template.description


@pytest.mark.parametrize("kind, collection", [("database", "databases"), ("redis", "redis")])
async def test_instance_template_reads_what_the_get_tool_returns(server, mode, kind, collection):
    async with connect(server, mode) as client:
        id = (await create(client, kind, f"my-{kind}"))["instance"]["id"]
        waited = await client.call_tool("wait_for_ready", {"kind": kind, "id": id, "timeout_seconds": 20})
        assert waited.structured_content["ready"] is True
        resource = await read_json(client, f"redu://{collection}/{id}")
        tool = json.loads((await client.call_tool(f"get_{kind}", {"id": id})).content[0].text)
    assert resource == tool  # the same compact form the model reads from the tool
    assert (resource["id"], resource["kind"], resource["name"], resource["status"]) == (id, kind, f"my-{kind}", "ready")
    assert resource["host"]
    assert "password" not in json.dumps(resource)


@pytest.mark.parametrize("collection", ["databases", "redis"])
@pytest.mark.parametrize("id", ["4242", "abc", "0", "-1"])
async def test_missing_or_malformed_instance_is_resource_not_found(server, mode, collection, id):
    uri = f"redu://{collection}/{id}"
    async with connect(server, mode) as client:
        with pytest.raises(MCPError) as failure:
            await client.read_resource(uri)
    assert failure.value.code == INVALID_PARAMS
    assert failure.value.data == {"uri": uri}
    assert id in failure.value.message


async def test_a_template_read_of_another_kind_is_not_found(server, mode):
    """Ids are per kind: a database's id does not name a Redis instance."""
    async with connect(server, mode) as client:
        id = (await create(client, "database", "orders"))["instance"]["id"]
        assert (await read_json(client, f"redu://databases/{id}"))["name"] == "orders"
        with pytest.raises(MCPError) as failure:
            await client.read_resource(f"redu://redis/{id}")
    assert failure.value.code == INVALID_PARAMS


# --- prompts -------------------------------------------------------------------------------------------


async def test_prompts_are_listed_with_their_arguments(server, mode):
    async with connect(server, mode) as client:
        prompts = {p.name: p for p in (await client.list_prompts()).prompts}
    assert set(prompts) == {"provision_postgres", "provision_redis"}
    for prompt in prompts.values():
        assert prompt.title and prompt.description
        assert {(a.name, a.required) for a in prompt.arguments or []} == {("purpose", False), ("name", False)}
        assert all(a.description for a in prompt.arguments), "a client shows these to the user: describe them"


@pytest.mark.parametrize(
    "prompt, kind, label", [("provision_postgres", "database", "PostgreSQL"), ("provision_redis", "redis", "Redis")]
)
async def test_provisioning_prompt_walks_through_the_workflow(server, mode, prompt, kind, label):
    async with connect(server, mode) as client:
        named = await client.get_prompt(prompt, {"purpose": "the billing service", "name": "billing"})
        unnamed = await client.get_prompt(prompt)
    roles = [m.role for m in named.messages]
    assert roles == ["user", "assistant"]
    text = named.messages[0].content.text
    assert label in text and "the billing service" in text and "'billing'" in text
    # The workflow, in order: look up, create once, wait, then use without printing the password.
    steps = ["list_create_options", f"create_{kind}", f"wait_for_ready(kind='{kind}'"]
    positions = [text.index(step) for step in steps]
    assert positions == sorted(positions)
    assert "never create a second instance" in text
    assert "do not print the password" in text
    assert "Suggest a name" in unnamed.messages[0].content.text


# --- instructions ---------------------------------------------------------------------------------------


async def test_instructions_name_the_workflow_and_the_access_level(server, mode):
    async with connect(server, mode) as client:
        instructions = client.instructions or ""
        info = client.server_info
    assert info is not None and info.name == "redu-mcp" and info.version
    steps = ["list_create_options", "create_database", "wait_for_ready", "credentials file"]
    positions = [instructions.index(step) for step in steps]
    assert positions == sorted(positions)
    assert "Access level of this server: full" in instructions
    assert "delete_database" in instructions and "confirm_name" in instructions
    assert "sandbox" in instructions


async def test_instructions_follow_the_access_level(make_server, mode):
    async with connect(make_server(access="read"), mode) as client:
        instructions = client.instructions or ""
        tools = {t.name for t in (await client.list_tools()).tools}
    assert "Access level of this server: read" in instructions
    available = instructions.split("Tools available:", 1)[1]
    assert "create_database" not in available and "delete_redis" not in available
    assert "wait_for_ready" in available
    assert tools == {name.strip(" .") for name in available.split(",")}
