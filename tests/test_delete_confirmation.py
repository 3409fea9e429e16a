"""Confirmed deletes, through real MCP clients in both protocol eras.

With a client that can elicit, the user is asked (naming the instance) and only an accepted, ticked
confirmation deletes. Without one, ``confirm_name`` must equal the instance's current name, checked
against a fresh GET. Every test asserts on the sandbox itself: the instance is still there, or gone.
"""

from __future__ import annotations

from typing import Any

import pytest
from mcp.types import (
    ClientCapabilities,
    ElicitationCapability,
    ElicitRequestParams,
    ElicitResult,
    FormElicitationCapability,
    UrlElicitationCapability,
)

from redu_mcp.api import KINDS
from redu_mcp.sandbox import Sandbox
from redu_mcp.server.confirmation import can_ask_user
from tests.helpers import connect, seed_instance

KIND_NAMES = ["database", "redis"]


def exists(sandbox: Sandbox, kind: str, id: int) -> bool:
    return sandbox.store.exists(kind, id)


class Asker:
    """An elicitation callback that answers as told and remembers every question."""

    def __init__(self, action: str, content: dict[str, Any] | None = None) -> None:
        self.action = action
        self.content = content
        self.questions: list[ElicitRequestParams] = []

    async def __call__(self, context: Any, params: ElicitRequestParams) -> ElicitResult:
        self.questions.append(params)
        return ElicitResult(action=self.action, content=self.content)


# --- a client that can ask the user ------------------------------------------------------------------


@pytest.mark.parametrize("kind", KIND_NAMES)
async def test_accepted_confirmation_deletes(server, sandbox, mode, kind):
    id = await seed_instance(sandbox, kind, "doomed")
    asker = Asker("accept", {"confirm": True})
    async with connect(server, mode, elicitation_callback=asker) as client:
        result = await client.call_tool(f"delete_{kind}", {"id": id})
    assert not result.is_error, result.content[0].text
    assert result.structured_content["deleted"] is True
    assert not exists(sandbox, kind, id)
    assert sandbox.count("DELETE") == 1
    # The question names the instance: kind, name and id.
    (question,) = asker.questions
    assert f"{KINDS[kind].label} 'doomed' (id {id})" in question.message
    assert "cannot be undone" in question.message
    assert question.requested_schema["properties"]["confirm"]["type"] == "boolean"


@pytest.mark.parametrize(
    "action, content, said",
    [
        ("decline", None, "the user declined the confirmation"),
        ("cancel", None, "the user cancelled the confirmation"),
        ("accept", {"confirm": False}, "the user did not confirm the deletion"),
    ],
)
async def test_anything_but_a_ticked_acceptance_deletes_nothing(server, sandbox, mode, action, content, said):
    id = await seed_instance(sandbox, "database", "precious")
    asker = Asker(action, content)
    async with connect(server, mode, elicitation_callback=asker) as client:
        result = await client.call_tool("delete_database", {"id": id})
    assert not result.is_error
    assert result.structured_content["deleted"] is False
    message = result.structured_content["message"]
    assert message.startswith("Nothing was deleted") and said in message
    assert "Do not retry" in message  # and no hint on how to get around the user's answer
    assert "confirm_name" not in message
    assert len(asker.questions) == 1
    assert exists(sandbox, "database", id)
    assert sandbox.count("DELETE") == 0


@pytest.mark.parametrize("content", [{"confirm": "yes"}, {"confirm": "true"}, {"confirm": 1}, {}, None])
async def test_only_a_real_true_confirms(server, sandbox, mode, content):
    """An acceptance whose content is not exactly ``{"confirm": true}`` is no confirmation."""
    id = await seed_instance(sandbox, "redis", "keep")
    async with connect(server, mode, elicitation_callback=Asker("accept", content)) as client:
        result = await client.call_tool("delete_redis", {"id": id})
    assert result.is_error
    assert exists(sandbox, "redis", id) and sandbox.count("DELETE") == 0


async def test_a_wrong_confirm_name_is_refused_even_when_the_client_could_ask(server, sandbox, mode):
    id = await seed_instance(sandbox, "redis", "production-cache")
    asker = Asker("accept", {"confirm": True})  # a user who would say yes to anything
    async with connect(server, mode, elicitation_callback=asker) as client:
        result = await client.call_tool("delete_redis", {"id": id, "confirm_name": "staging-cache"})
    assert result.structured_content["deleted"] is False
    assert "the confirm_name given is not the name of" in result.structured_content["message"]
    # What the caller passed is never echoed back (it could be anything: an instruction, a secret).
    assert "staging-cache" not in result.structured_content["message"] and "staging-cache" not in str(result.content)
    assert asker.questions == []  # refused before anyone was asked
    assert exists(sandbox, "redis", id) and sandbox.count("DELETE") == 0


async def test_a_right_confirm_name_does_not_skip_the_question(server, sandbox, mode):
    """The model cannot answer for the user: with a client that can ask, the user decides."""
    id = await seed_instance(sandbox, "database", "orders")
    asker = Asker("decline")
    async with connect(server, mode, elicitation_callback=asker) as client:
        result = await client.call_tool("delete_database", {"id": id, "confirm_name": "orders"})
    assert result.structured_content["deleted"] is False
    assert len(asker.questions) == 1
    assert exists(sandbox, "database", id) and sandbox.count("DELETE") == 0


@pytest.mark.parametrize("kind", KIND_NAMES)
async def test_a_missing_instance_is_already_gone_and_nobody_is_asked(server, sandbox, mode, kind):
    """Deleting what does not exist (a second delete, say) is not an error: it is already gone."""
    asker = Asker("accept", {"confirm": True})
    async with connect(server, mode, elicitation_callback=asker) as client:
        result = await client.call_tool(f"delete_{kind}", {"id": 4242})
    assert not result.is_error and result.structured_content["deleted"] is False
    text = result.structured_content["message"]
    assert "Nothing to delete" in text and "id 4242 (already deleted, or never created)" in text
    assert asker.questions == []
    assert sandbox.count("DELETE") == 0


# --- a client that cannot ask: confirm_name ---------------------------------------------------------------


@pytest.mark.parametrize(
    "near_miss",
    ["old-stuf", "old-stuff-2", "Old-Stuff", "old-stuff ", " old-stuff", "old_stuff", "old-stuff\n", "old"],
)
async def test_a_confirm_name_that_is_almost_the_name_deletes_nothing(server, sandbox, near_miss):
    """Exactly the current name: a prefix, a longer name, another case, a blank or a look-alike is refused."""
    id = await seed_instance(sandbox, "database", "old-stuff")
    async with connect(server) as client:
        refused = await client.call_tool("delete_database", {"id": id, "confirm_name": near_miss})
        assert refused.structured_content["deleted"] is False, refused.content[0].text
        assert exists(sandbox, "database", id) and sandbox.count("DELETE") == 0
        right = await client.call_tool("delete_database", {"id": id, "confirm_name": "old-stuff"})  # the control
    assert right.structured_content["deleted"] is True and sandbox.count("DELETE") == 1


@pytest.mark.parametrize("kind", KIND_NAMES)
async def test_confirm_name_without_elicitation(server, sandbox, mode, kind):
    id = await seed_instance(sandbox, kind, "old-stuff")
    keeper = await seed_instance(sandbox, kind, "keeper")
    async with connect(server, mode) as client:
        missing = await client.call_tool(f"delete_{kind}", {"id": id})
        assert missing.structured_content["deleted"] is False
        assert "cannot ask the user, so confirm_name is required" in missing.structured_content["message"]
        assert "confirm_name='old-stuff'" in missing.structured_content["message"]  # the one call that follows
        assert exists(sandbox, kind, id)

        wrong = await client.call_tool(f"delete_{kind}", {"id": id, "confirm_name": "keeper"})
        assert wrong.structured_content["deleted"] is False
        assert "is not the name of" in wrong.structured_content["message"]
        assert exists(sandbox, kind, id) and exists(sandbox, kind, keeper)
        assert sandbox.count("DELETE") == 0

        right = await client.call_tool(f"delete_{kind}", {"id": id, "confirm_name": "old-stuff"})
        assert right.structured_content["deleted"] is True, right.content[0].text
        assert not exists(sandbox, kind, id) and exists(sandbox, kind, keeper)

        again = await client.call_tool(f"delete_{kind}", {"id": id, "confirm_name": "old-stuff"})
        assert not again.is_error and again.structured_content["deleted"] is False
        assert "already deleted" in again.structured_content["message"]
    assert sandbox.count("DELETE") == 1


async def test_confirm_name_is_checked_against_a_fresh_get(server, sandbox, mode):
    """Renamed since the model last looked: the old name no longer confirms anything."""
    id = await seed_instance(sandbox, "database", "before")
    async with connect(server, mode) as client:
        looked = await client.call_tool("get_database", {"id": id})
        assert looked.structured_content["name"] == "before"
        sandbox.store.record("database", id).public["name"] = "after"  # renamed upstream
        stale = await client.call_tool("delete_database", {"id": id, "confirm_name": "before"})
        assert stale.structured_content["deleted"] is False
        assert "which is 'after'" in stale.structured_content["message"]
        assert exists(sandbox, "database", id)
    assert sandbox.count("GET", f"/v1/databases/{id}") == 2  # the get, and the check's own GET
    assert sandbox.count("DELETE") == 0


@pytest.mark.parametrize("smuggled", ["target", "decision", "answer", "confirm", "confirmed"])
async def test_the_confirmation_cannot_be_smuggled_in_as_an_argument(server, sandbox, mode, smuggled):
    id = await seed_instance(sandbox, "redis", "guarded")
    forged = {"action": "accept", "data": {"confirm": True, "confirmed": True}, "id": id, "name": "guarded"}
    async with connect(server, mode) as client:
        result = await client.call_tool("delete_redis", {"id": id, smuggled: forged if smuggled != "confirm" else True})
    assert result.is_error
    assert f"unknown argument '{smuggled}'" in result.content[0].text
    assert exists(sandbox, "redis", id)
    assert sandbox.count() == 1  # only the setup's POST: not even a GET


async def test_a_failing_check_deletes_nothing(server, sandbox, mode):
    """A 503 on the check's GET is retried, then reported; nothing is deleted on the way."""
    id = await seed_instance(sandbox, "redis", "flaky")
    sandbox.faults.add(method="GET", path=f"/v1/redis/{id}", status=503, times=-1)
    async with connect(server, mode) as client:
        result = await client.call_tool("delete_redis", {"id": id, "confirm_name": "flaky"})
    assert result.is_error and "HTTP 503" in result.content[0].text
    assert exists(sandbox, "redis", id) and sandbox.count("DELETE") == 0


# --- which clients count as able to ask -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "capabilities, asks",
    [
        (None, False),
        (ClientCapabilities(), False),
        (ClientCapabilities(elicitation=ElicitationCapability()), True),  # bare {} = form, by the spec
        (ClientCapabilities(elicitation=ElicitationCapability(form=FormElicitationCapability())), True),
        (
            ClientCapabilities(
                elicitation=ElicitationCapability(form=FormElicitationCapability(), url=UrlElicitationCapability())
            ),
            True,
        ),
        # URL-only clients cannot show the form: fall back to confirm_name instead of a protocol error.
        (ClientCapabilities(elicitation=ElicitationCapability(url=UrlElicitationCapability())), False),
    ],
)
def test_which_clients_are_asked(capabilities, asks):
    assert can_ask_user(capabilities) is asks
