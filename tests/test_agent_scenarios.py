"""Scripted agents: what a new model goes through, counted in calls.

Each agent knows only the user's request. Every value it passes (ids, flavor ids, names to confirm,
the next call itself) it reads from what the server returned: tool descriptions, result text, error
text. Nothing here is a constant the test knows about the sandbox. The counts are the promise:

* "create a Postgres 16 called orders and a Redis cache, wait until both are ready, give me the
  connection details, then delete the Redis" takes at most 6 calls;
* each typical mistake is recovered in exactly one more call, from the error's words alone.

The text results' size is printed (``-s``): it is what the conversation pays for.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from mcp import Client

from redu_mcp.sandbox import Sandbox
from redu_mcp.server import build_server
from tests.confirmation_pages import SHORT_LIFE, PageClient, human_server, typing
from tests.helpers import FAST_RETRY, connect


class Agent:
    """A model stand-in: calls tools, keeps what it read, and follows the server's words."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.calls: list[str] = []
        self.chars = 0  # text the conversation had to carry
        self.descriptions: dict[str, str] = {}

    async def read_tools(self) -> None:
        """The tool list comes with the session (not a tool call)."""
        self.descriptions = {t.name: t.description or "" for t in (await self.client.list_tools()).tools}

    async def call(self, tool: str, **arguments: Any) -> tuple[bool, str]:
        """(is the result an error?, its text)."""
        self.calls.append(tool)
        result = await self.client.call_tool(tool, arguments)
        text = "".join(getattr(block, "text", "") for block in result.content)
        self.chars += len(text)
        return bool(result.is_error), text

    async def ok(self, tool: str, **arguments: Any) -> dict[str, Any]:
        failed, text = await self.call(tool, **arguments)
        assert not failed, text
        data: dict[str, Any] = json.loads(text)
        return data

    # --- reading the server's words -----------------------------------------------------------------

    @staticmethod
    def next_call(text: str) -> tuple[str, dict[str, Any]]:
        """The first "<tool> [again] with a=1 and b='x'" the text tells it to make."""
        match = re.search(
            r"\b(?:call|Call) ([a-z_]+)(?: again)? with ((?:[a-z_]+=(?:'[^']*'|\d+)(?:,? and |, )?)+)", text
        )
        assert match, f"no next call in: {text}"
        arguments = {
            key: int(value) if value.isdigit() else value.strip("'")
            for key, value in re.findall(r"([a-z_]+)=('[^']*'|\d+)", match.group(2))
        }
        return match.group(1), arguments


@asynccontextmanager
async def agent_on(sandbox: Sandbox, make_settings: Any, **settings: Any) -> AsyncIterator[Agent]:
    server = build_server(make_settings(**settings), client=sandbox.client(retry=FAST_RETRY))
    async with connect(server) as client:
        agent = Agent(client)
        await agent.read_tools()
        yield agent


def smallest(options: dict[str, Any]) -> dict[str, str]:
    """What an agent takes from list_create_options without asking: the value it suggests for each
    required argument (the smallest flavor, the private network, the only keypair)."""
    suggested = options["suggested"]
    assert set(suggested) == {"flavor_id", "network_id", "keypair_name"}, suggested  # nothing left to ask
    return {field: suggestion["value"] for field, suggestion in suggested.items()}


@pytest.fixture
def sandbox() -> Sandbox:
    return Sandbox(provisioning_seconds=0.3)


# --- the happy path ------------------------------------------------------------------------------------


async def test_create_both_wait_connect_and_delete_in_six_calls(sandbox, make_settings, capsys):
    async with agent_on(sandbox, make_settings) as agent:
        choice = smallest(await agent.ok("list_create_options"))
        database = await agent.ok("create_database", name="orders", version="16", **choice)
        cache = await agent.ok("create_redis", name="cache", **choice)
        ready = {}
        for created in (database, cache):
            tool, arguments = agent.next_call(created["next_step"])  # "Call wait_for_ready with kind=… and id=…"
            ready[arguments["kind"]] = await agent.ok(tool, **arguments)
        assert all(r["ready"] for r in ready.values())
        details = {kind: r["connection"]["uri"] for kind, r in ready.items()}  # what the user asked for
        assert details["database"].startswith("postgresql://") and details["redis"].startswith("redis://")
        # The delete tool's description says how to confirm in one call: id and the exact name.
        assert "confirm_name" in agent.descriptions["delete_redis"]
        redis = ready["redis"]["instance"]
        deleted = await agent.ok("delete_redis", id=redis["id"], confirm_name=redis["name"])
        assert deleted["deleted"] is True
    assert len(agent.calls) <= 6, agent.calls
    assert agent.calls == ["list_create_options", "create_database", "create_redis", "wait_for_ready", "wait_for_ready", "delete_redis"]  # fmt: skip
    assert sandbox.count("POST") == 2 and sandbox.count("DELETE") == 1
    with capsys.disabled():
        print(f"\nhappy path: {len(agent.calls)} calls, {agent.chars} characters of text results")


# --- each mistake costs exactly one more call ---------------------------------------------------------


async def test_a_flavor_name_instead_of_its_id(sandbox, make_settings):
    async with agent_on(sandbox, make_settings) as agent:
        options = await agent.ok("list_create_options")
        choice = smallest(options)
        small = next(f["name"] for f in options["flavors"] if f["id"] == choice["flavor_id"])
        failed, text = await agent.call("create_database", name="orders", **dict(choice, flavor_id=small))
        assert failed and "/v1" not in text
        fixed = re.search(r"pass flavor_id='([^']+)'", text)
        assert fixed, text
        before = len(agent.calls)
        created = await agent.ok("create_database", name="orders", **dict(choice, flavor_id=fixed.group(1)))
    assert created["created"] is True and len(agent.calls) == before + 1


async def test_an_unknown_value_lists_the_valid_ones(sandbox, make_settings):
    async with agent_on(sandbox, make_settings) as agent:
        choice = smallest(await agent.ok("list_create_options"))
        failed, text = await agent.call("create_redis", name="cache", **dict(choice, network_id="lan"))
        assert failed
        valid = re.findall(r"'([^']+)' \(", text.split("is not one of:", 1)[1])
        assert valid, text
        before = len(agent.calls)
        created = await agent.ok("create_redis", name="cache", **dict(choice, network_id=valid[-1]))
    assert created["created"] is True and len(agent.calls) == before + 1


async def test_an_id_of_the_other_kind(sandbox, make_settings):
    async with agent_on(sandbox, make_settings) as agent:
        choice = smallest(await agent.ok("list_create_options"))
        cache = await agent.ok("create_redis", name="cache", **choice)
        failed, text = await agent.call("get_database", id=cache["instance"]["id"])
        assert failed and "confirm with the user that 'cache' is the one they mean" in text
        assert "delete" not in text  # never a nudge towards destroying what the user did not name
        tool, arguments = agent.next_call(text)  # after the user confirmed: "call get_redis with id=…"
        before = len(agent.calls)
        got = await agent.ok(tool, **arguments)
    assert got["name"] == "cache" and len(agent.calls) == before + 1


async def test_a_delete_without_confirm_name(sandbox, make_settings):
    async with agent_on(sandbox, make_settings) as agent:
        choice = smallest(await agent.ok("list_create_options"))
        cache = await agent.ok("create_redis", name="cache", **choice)
        refused = await agent.ok("delete_redis", id=cache["instance"]["id"])
        assert refused["deleted"] is False
        tool, arguments = agent.next_call(refused["message"])  # "call delete_redis again with confirm_name='cache'"
        before = len(agent.calls)
        deleted = await agent.ok(tool, id=cache["instance"]["id"], **arguments)
    assert deleted["deleted"] is True and len(agent.calls) == before + 1
    assert sandbox.count("DELETE") == 1


async def test_a_second_delete_is_not_an_error(sandbox, make_settings):
    async with agent_on(sandbox, make_settings) as agent:
        choice = smallest(await agent.ok("list_create_options"))
        cache = await agent.ok("create_redis", name="cache", **choice)
        target = {"id": cache["instance"]["id"], "confirm_name": "cache"}
        assert (await agent.ok("delete_redis", **target))["deleted"] is True
        again = await agent.ok("delete_redis", **target)  # e.g. retried after a client timeout
    assert again["deleted"] is False and "'cache' (id 1) was deleted through this server at" in again["message"]
    assert sandbox.count("DELETE") == 1


async def test_a_wait_that_ends_before_the_instance_is_ready(make_settings):
    sandbox = Sandbox(provisioning_seconds=0.6)
    async with agent_on(sandbox, make_settings) as agent:
        choice = smallest(await agent.ok("list_create_options"))
        created = await agent.ok("create_database", name="orders", **choice)
        tool, arguments = agent.next_call(created["next_step"])
        first = await agent.ok(tool, **arguments, timeout_seconds=0.2)  # an impatient agent
        assert first["ready"] is False and "since it was created" in first["next_step"]
        tool, arguments = agent.next_call(first["next_step"])
        before = len(agent.calls)
        second = await agent.ok(tool, **arguments)
    assert second["ready"] is True and len(agent.calls) == before + 1
    assert sandbox.count("POST") == 1  # never a second instance because of a wait


@pytest.mark.parametrize(
    "mistake, fix",
    [
        (dict(name="Orders"), lambda text, choice: {"name": "orders"} if "lowercase" in text else {}),
        (dict(version="17"), lambda text, choice: {"version": re.findall(r'"(\d+)"', text)[0]}),
        (
            dict(keypair_name=None),
            lambda text, choice: {"keypair_name": choice["keypair_name"]} if "list_create_options" in text else {},
        ),
    ],
    ids=["uppercase-name", "unknown-version", "missing-keypair"],
)
async def test_an_argument_refusal_says_how_to_fix_it(sandbox, make_settings, mistake, fix):
    async with agent_on(sandbox, make_settings) as agent:
        choice = smallest(await agent.ok("list_create_options"))
        arguments = {"name": "orders", **choice, **mistake}
        failed, text = await agent.call("create_database", **{k: v for k, v in arguments.items() if v is not None})
        assert failed and "Nothing was sent" in text and "pattern" not in text
        repaired = {**arguments, **fix(text, choice)}
        before = len(agent.calls)
        created = await agent.ok("create_database", **repaired)
    assert created["created"] is True and len(agent.calls) == before + 1
    assert sandbox.count("POST") == 1


async def test_the_newest_come_first_and_the_rest_is_one_call_away(sandbox, make_settings):
    async with agent_on(sandbox, make_settings) as agent:
        choice = smallest(await agent.ok("list_create_options"))
        for n in range(22):
            await agent.ok("create_redis", name=f"cache-{n:02d}", **choice)
        first = await agent.ok("list_redis")
        assert [i["name"] for i in first["instances"][:2]] == ["cache-21", "cache-20"]  # the newest are shown
        assert "cache-00" not in json.dumps(first)
        tool, arguments = agent.next_call(first["next_step"])  # "… call list_redis with offset=20"
        before = len(agent.calls)
        rest = await agent.ok(tool, **arguments)
    assert [i["name"] for i in rest["instances"]] == ["cache-01", "cache-00"] and len(agent.calls) == before + 1


async def test_a_bare_number_is_an_id(sandbox, make_settings):
    async with agent_on(sandbox, make_settings) as agent:
        choice = smallest(await agent.ok("list_create_options"))
        created = await agent.ok("create_database", name="orders", **dict(choice, flavor_id=int(choice["flavor_id"])))
    assert created["created"] is True and len(agent.calls) == 2  # no mistake at all


async def test_read_only_texts_never_point_at_a_tool_it_does_not_have(sandbox, make_settings):
    """At --access read, nothing the agent reads names create_* or delete_*."""
    async with agent_on(sandbox, make_settings, access="read") as agent:
        read_everything = json.dumps(agent.descriptions) + (agent.client.instructions or "")
        await agent.ok("list_databases")
        failed, text = await agent.call("wait_for_ready", kind="database", id=1)
        assert failed
    for tool in ("create_database", "create_redis", "delete_database", "delete_redis", "list_create_options"):
        assert tool not in read_everything and tool not in text


async def test_a_failed_provisioning_at_access_create_does_not_suggest_a_delete(sandbox, make_settings):
    async with agent_on(sandbox, make_settings, access="create") as agent:
        choice = smallest(await agent.ok("list_create_options"))
        created = await agent.ok("create_redis", name="fail-cache", **choice)
        tool, arguments = agent.next_call(created["next_step"])
        failed, text = await agent.call(tool, **arguments)
    assert failed and "Provisioning failed" in text
    assert "delete_redis" not in text and "tell the user" in text


async def test_a_tool_above_the_level_says_what_the_operator_changes(sandbox, make_settings):
    """An agent that calls a delete anyway learns, in one call, that only the operator can allow it."""
    async with agent_on(sandbox, make_settings, access="create") as agent:
        failed, text = await agent.call("delete_redis", id=1, confirm_name="cache")
    assert failed and "access level 'create'" in text and "--access full" in text and "tell the user" in text
    assert sandbox.count() == 0


async def test_an_existing_name_is_reported_with_how_it_differs(sandbox, make_settings):
    async with agent_on(sandbox, make_settings) as agent:
        options = await agent.ok("list_create_options")
        choice = smallest(options)
        first = await agent.ok("create_database", name="orders", **choice)
        bigger = next(f["id"] for f in options["flavors"] if f["id"] != choice["flavor_id"])
        again = await agent.ok("create_database", name="orders", **dict(choice, flavor_id=bigger))
    assert again["created"] is False and sandbox.count("POST") == 1
    assert again["differences"] == [{"field": "flavor_id", "requested": bigger, "existing": choice["flavor_id"]}]
    assert again["credentials_file"] == first["credentials_file"] and again["password_delivery"] == "file"
    assert "Tell the user it exists and how it differs" in again["next_step"]


async def test_a_deleted_id_is_reported_as_deleted(sandbox, make_settings):
    async with agent_on(sandbox, make_settings) as agent:
        choice = smallest(await agent.ok("list_create_options"))
        created = await agent.ok("create_database", name="orders", **choice)
        id = created["instance"]["id"]
        deleted = await agent.ok("delete_database", id=id, confirm_name="orders")
        assert "credentials file" in deleted["message"] and "removed" in deleted["message"]
        failed, text = await agent.call("get_database", id=id)
    assert failed and f"'orders' (id {id}) was deleted through this server at" in text and "do not wait" in text


async def test_a_limited_tool_set_never_points_at_a_missing_tool(sandbox, make_settings):
    """--tools instances (no look-ups): nothing the agent reads names list_create_options or whoami, and
    the create's description sends it to the resources instead."""
    async with agent_on(sandbox, make_settings, tools=("instances",)) as agent:
        assert "list_create_options" not in agent.descriptions
        assert "redu://flavors" in agent.descriptions["create_redis"]
        looked_up = {}
        for field, uri, key in (("flavor_id", "redu://flavors", "id"), ("network_id", "redu://networks", "id"),
                                ("keypair_name", "redu://keypairs", "name")):  # fmt: skip
            items = json.loads((await agent.client.read_resource(uri)).contents[0].text)
            looked_up[field] = items[-1][key]
        created = await agent.ok("create_redis", name="cache", **looked_up)
        failed, wrong = await agent.call("create_redis", name="cache-2", **dict(looked_up, network_id="lan"))
        assert failed
        tool, arguments = agent.next_call(created["next_step"])
        waited = await agent.ok(tool, **arguments)
        read_everything = json.dumps([agent.descriptions, created, waited]) + wrong + (agent.client.instructions or "")
    assert waited["ready"] is True
    for tool in ("list_create_options", "whoami"):
        assert tool not in read_everything


# --- --confirm human: the agent's client says yes to everything ----------------------------------------------


async def test_under_confirm_human_an_auto_approving_client_deletes_nothing_until_the_page_is_used(
    sandbox, make_settings
):
    pages = PageClient()  # accepts every prompt, opens nothing: no person is there
    server, _ = human_server(sandbox, make_settings(confirm="human"), lifetime=SHORT_LIFE)
    async with connect(server, elicitation_callback=pages) as client:
        agent = Agent(client)
        await agent.read_tools()
        assert "only a person approves it on a confirmation page" in agent.descriptions["delete_redis"]
        cache = await agent.ok("create_redis", name="cache", **smallest(await agent.ok("list_create_options")))
        id = cache["instance"]["id"]
        refused = await agent.ok("delete_redis", id=id, confirm_name="cache")  # the exact name, and a yes
        assert refused["deleted"] is False and "no person approved it on its confirmation page" in refused["message"]
        assert sandbox.store.exists("redis", id) and sandbox.count("DELETE") == 0
        # The agent asks the user, who wants it gone: this time a person uses the page the client opens.
        assert "use the page their client opens" in refused["message"]
        pages.person = typing("cache")
        deleted = await agent.ok("delete_redis", id=id)
        await pages.finished()
    assert deleted["deleted"] is True and sandbox.count("DELETE") == 1 and len(pages.urls) == 2
    assert agent.calls == ["list_create_options", "create_redis", "delete_redis", "delete_redis"]
