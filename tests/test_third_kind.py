"""A kind is one entry: a third, test-only kind (``tests/third_kind.py``: its models and its ``Kind``)
gets its tools, resource template, prompt, wait and sentences from the face with no other edit.

The server runs over stdio with the kind registered before anything is imported, and a real MCP
client uses it as a model would: list the options, create, wait, get, delete, and ask a tool of
another kind about its id.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mcp import Client, StdioServerParameters
from mcp.client import ClientRequestContext
from mcp.types import ElicitRequestParams, ElicitResult

from tests.helpers import CREATE_ARGS, REPO


def third_kind_server(state: Path) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=[
            str(REPO / "tests" / "third_kind.py"),
            "--sandbox",
            "--provisioning-seconds",
            "0.1",
            "--log-level",
            "WARNING",
        ],
        env={"XDG_STATE_HOME": str(state)},
        cwd=str(REPO),
    )


async def confirm(context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
    return ElicitResult(action="accept", content={"confirm": True})


def connect(tmp_path: Path) -> Client:
    return Client(third_kind_server(tmp_path / "state"), mode="legacy", elicitation_callback=confirm)


async def test_a_third_kind_gets_its_tools_resource_prompt_and_wait(tmp_path: Path):
    async with connect(tmp_path) as client:
        await _offers_everything(client)


async def test_a_third_kind_is_created_waited_for_and_deleted(tmp_path: Path):
    async with connect(tmp_path) as client:
        await _round_trip(client)


async def _offers_everything(client: Client) -> None:
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert {"list_mysql", "get_mysql", "create_mysql", "delete_mysql"} <= set(tools)
    create = tools["create_mysql"]
    assert create.title == "Create a MySQL database"
    arguments = create.input_schema["properties"]
    assert arguments["version"]["enum"] == ["8", "5.7"] and arguments["version"]["description"] == "MySQL major version"
    assert arguments["mysql_password"]["writeOnly"] is True  # the kind's password field is a secret argument
    assert arguments["db_user"]["description"] == "User to create (default 'appuser')"
    assert tools["wait_for_ready"].input_schema["properties"]["kind"]["enum"] == ["database", "redis", "mysql"]
    assert (
        "'database' (PostgreSQL), 'redis' or 'mysql'"
        in tools["wait_for_ready"].input_schema["properties"]["kind"]["description"]
    )
    assert "mysql" in tools["list_create_options"].output_schema["properties"]

    templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
    assert "redu://mysql/{id}" in templates
    prompts = {p.name: p for p in (await client.list_prompts()).prompts}
    assert prompts["provision_mysql"].title == "Provision a MySQL database"
    assert "MySQL" in client.instructions and "create_database, create_redis or create_mysql" in client.instructions


async def _round_trip(client: Client) -> None:
    options = (await client.call_tool("list_create_options", {})).structured_content
    assert options["mysql"] == {"versions": ["8", "5.7"], "version": "8", "db_name": "app", "db_user": "appuser"}

    created = await client.call_tool("create_mysql", {**CREATE_ARGS, "name": "orders-my", "version": "5.7"})
    assert not created.is_error, created.content[0].text
    result = created.structured_content
    assert result["instance"]["kind"] == "mysql" and result["password_delivery"] == "file"
    id = result["instance"]["id"]
    assert result["next_step"] == f"Call wait_for_ready with kind='mysql' and id={id}."

    for _ in range(20):
        waited = await client.call_tool("wait_for_ready", {"kind": "mysql", "id": id, "timeout_seconds": 5})
        assert not waited.is_error, waited.content[0].text
        if waited.structured_content["ready"]:
            break
    ready = waited.structured_content
    assert ready["instance"]["version"] == "5.7" and ready["instance"]["db_user"] == "appuser"
    assert ready["connection"]["uri"].startswith("mysql://appuser@") and ready["connection"]["port"] == 3306
    env = Path(ready["credentials_file"]).read_text()
    assert "MYSQL_PWD=" in env and f"(id {id})" in env

    resource = await client.read_resource(f"redu://mysql/{id}")
    assert '"kind":"mysql"' in resource.contents[0].text

    # Asked about with another kind's tools, the id is named as a MySQL database: the look-up tries
    # every other kind, not only the first one after the one asked about.
    wrong = await client.call_tool("get_database", {"id": id})
    assert wrong.is_error and f"The MySQL database 'orders-my' (id {id}) is another instance" in wrong.content[0].text
    assert f"call get_mysql with id={id}." in wrong.content[0].text

    deleted = await client.call_tool("delete_mysql", {"id": id, "confirm_name": "orders-my"})
    assert deleted.structured_content == {
        "deleted": True,
        "kind": "mysql",
        "id": id,
        "name": "orders-my",
        "message": f"Deleted MySQL database 'orders-my' (id {id}) and all its data. Its credentials file "
        f"{ready['credentials_file']} was removed too.",
    }
    assert not Path(ready["credentials_file"]).exists()
    listed = (await client.call_tool("list_mysql", {})).structured_content
    assert listed["kind"] == "mysql" and listed["total"] == 0
