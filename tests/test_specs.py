"""How a tool is declared (``redu_mcp.server.specs``): compact listed schemas, and the one place a
call's deadline is set. The listed result of all of it is pinned by ``test_tools_snapshot``."""

from __future__ import annotations

from typing import Annotated, Any

import jsonschema
from pydantic import BaseModel, Field

from redu_mcp.api import time_left
from redu_mcp.server.specs import READS, TOOL_DEADLINE_SECONDS, ToolSpec, compact_schema


def test_compact_schema_drops_only_what_costs_tokens():
    schema = {
        "title": "createArguments",
        "type": "object",
        "properties": {
            "name": {"title": "Name", "type": "string", "pattern": "^[a-z]+$"},
            "title": {"title": "Title", "type": "string"},  # a property *named* title stays
            "tags": {
                "title": "Tags",
                "anyOf": [{"type": "array", "items": {"title": "Tag", "type": "string"}}, {"type": "null"}],
                "default": None,
            },
        },
        "required": ["name"],
    }
    compact = compact_schema(schema)
    assert compact == {
        "type": "object",
        "properties": {
            "name": {"type": "string", "pattern": "^[a-z]+$"},
            "title": {"type": "string"},
            "tags": {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}], "default": None},
        },
        "required": ["name"],
    }
    # Output schemas also lose `default: null` and write nullable scalars as a type list.
    output = compact_schema({"properties": {"host": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}}}, output=True)  # fmt: skip
    assert output == {"properties": {"host": {"type": ["string", "null"]}}}


def test_compact_schema_validates_exactly_what_the_full_schema_validates():
    class Item(BaseModel):
        name: Annotated[str, Field(min_length=1, title="The name")]
        size: int | None = None

    full = Item.model_json_schema()
    compact = compact_schema(full, output=True)
    for value in ({"name": "a"}, {"name": "a", "size": None}, {"name": "a", "size": 3}, {"name": ""}, {"size": 1}, {"name": "a", "size": "3"}):  # fmt: skip
        assert jsonschema.Draft202012Validator(full).is_valid(value) == jsonschema.Draft202012Validator(compact).is_valid(value)  # fmt: skip


async def test_a_specs_deadline_is_set_around_its_body():
    seen: list[float | None] = []

    async def body(timeout_seconds: float = 5.0) -> str:
        seen.append(time_left())
        return "ok"

    default = ToolSpec(
        name="fixed", title="Fixed", description="A tool with the default deadline.", profile=READS, fn=body
    )
    computed = ToolSpec(
        name="computed",
        title="Computed",
        description="A tool whose deadline comes from its arguments.",
        profile=READS,
        fn=body,
        deadline=lambda arguments: float(arguments.get("timeout_seconds", 5.0)),
    )
    assert time_left() is None
    await default.build().fn()
    await computed.build().fn(timeout_seconds=2.0)
    assert seen[0] is not None and TOOL_DEADLINE_SECONDS - 1 < seen[0] <= TOOL_DEADLINE_SECONDS
    assert seen[1] is not None and 1 < seen[1] <= 2.0
    assert time_left() is None  # nothing leaks out of the call


def test_the_built_tool_lists_the_body_signature_and_refuses_unknown_arguments():
    async def body(id: int, limit: int = 20) -> dict[str, Any]:
        return {}

    tool = ToolSpec(name="t", title="T", description="A test tool with two arguments.", profile=READS, fn=body).build()
    assert set(tool.parameters["properties"]) == {"id", "limit"} and tool.parameters["required"] == ["id"]
    assert tool.parameters["additionalProperties"] is False
    assert tool.annotations is not None and tool.annotations.read_only_hint is True and tool.annotations.title == "T"
