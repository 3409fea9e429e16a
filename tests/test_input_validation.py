"""Input validation comes first: every tool argument is checked against the published input schema
before anything reaches the Redu API.

Property-based: hypothesis throws arbitrary JSON (wrong types, huge and unicode strings, negative and
huge numbers, nested objects, missing and extra arguments, and plausible near-valid values) at every
tool through a real in-process MCP client. For every input: no crash; when the published schema
(``jsonschema``, unknown arguments refused) says invalid, an error result and ZERO upstream requests;
any refusal costs zero upstream requests; and the server still answers afterwards.

Hypothesis drives a plain function; the MCP client lives in an event loop on a blocking portal, so
one client (and one server session) serves all the examples of a test.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from anyio.from_thread import start_blocking_portal
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from mcp import Client, MCPError

from redu_mcp.sandbox import Sandbox
from redu_mcp.server import TOOLS as TOOL_SPECS
from redu_mcp.server import build_server
from tests.helpers import CREATE_ARGS, FAST_RETRY, connect

ALL_TOOLS = sorted(spec.name for spec in TOOL_SPECS)
SECRET_ARGUMENTS = {"password", "db_password"}
EXAMPLES = {"auto": 50, "legacy": 25}

# --- strategies ---------------------------------------------------------------------------------------------------

ODD_STRINGS = st.sampled_from([
    "", " ", "0", "1", "-1", "1e3", "true", "null", "None", "[]", "{}", "redis", "database", "Redis", "16", "7",
    "default", "default-key", "net-private", "é", "ß", "İ", "\u0000", "\n", "a\nb", "💥", "\u202e", "x" * 100_000,
    "DROP TABLE users; --", "../../etc/passwd", "${HOME}", "$(id)", "ａｂｃ", "١٢٣", "orders\n",
])  # fmt: skip
LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | ODD_STRINGS
)
JSON = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def plausible(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values shaped like the schema wants, around its limits: valid ones and near misses."""
    if "anyOf" in schema:
        return st.one_of([plausible(branch) for branch in schema["anyOf"]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"]) | st.sampled_from([str(v).upper() for v in schema["enum"]] + [""])
    kind = schema.get("type")
    if isinstance(kind, list):  # type: [T, "null"]
        return st.one_of([plausible({**schema, "type": one}) for one in kind])
    if kind == "integer":
        low, high = schema.get("minimum", -(2**40)), schema.get("maximum", 2**40)
        return st.integers(low - 3, high + 3) | st.sampled_from([low, high, 0, -1, high + 1])
    if kind == "number":
        high = schema.get("maximum", 1e6)
        return st.floats(-1, high * 1.5, allow_nan=False) | st.sampled_from([0, 0.0, high, high + 0.001, 1e-9])
    if kind == "string":
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True) | st.text(max_size=schema.get("maxLength", 64) + 2)
        return st.text(min_size=0, max_size=schema.get("maxLength", 64) + 2)
    if kind == "array":
        return st.lists(plausible(schema.get("items", {})), max_size=schema.get("maxItems", 3) + 2)
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    return JSON


def arguments_for(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    declared = schema.get("properties", {})
    # Mostly plausible values (so valid calls happen too), sometimes any JSON; extras now and then.
    values = {
        name: st.one_of(plausible(prop), plausible(prop), plausible(prop), JSON) for name, prop in declared.items()
    }
    required = {name: values[name] for name in schema.get("required", [])}
    others = {name: value for name, value in values.items() if name not in required}
    known = st.fixed_dictionaries({}, optional=values) | st.fixed_dictionaries(required, optional=others)
    extra = st.dictionaries(st.text(max_size=20).filter(lambda k: k not in declared), JSON, min_size=1, max_size=2)
    return st.tuples(known, st.sampled_from([False, False, False, True]), extra).map(
        lambda parts: {**parts[0], **(parts[2] if parts[1] else {})}
    )


# --- the property ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["auto", "legacy"])
@pytest.mark.parametrize("tool", ALL_TOOLS)
def test_arbitrary_json_never_crashes_and_invalid_input_never_reaches_the_api(make_settings, tool, mode):
    sandbox = Sandbox(provisioning_seconds=0.2)
    server = build_server(make_settings(data="write"), client=sandbox.client(retry=FAST_RETRY))
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(Client(server, mode=mode)) as client:
        listed = {t.name: t for t in portal.call(client.list_tools).tools}
        schema = listed[tool].input_schema
        assert schema.get("additionalProperties") is False  # what is enforced is what is published
        oracle = Draft202012Validator(schema)
        tally = {"refused": 0, "ran": 0}

        @settings(
            max_examples=EXAMPLES[mode],
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
        )
        @given(arguments=arguments_for(schema))
        @example(arguments={"not_an_argument_of_any_tool": 1})  # at least one refusal, whatever is drawn
        def check(arguments: dict[str, Any]) -> None:
            before = sandbox.count()
            result = portal.call(client.call_tool, tool, arguments)
            text = result.content[0].text if result.content else ""
            refused = text.startswith(f"Invalid arguments for {tool}: ")
            if not oracle.is_valid(arguments):
                assert result.is_error and refused, text[:300]
            if refused:
                tally["refused"] += 1
                assert result.is_error
                assert "Nothing was sent to the Redu API" in text
                assert sandbox.count() == before, "an invalid call reached the API"
                assert len(text) < 2_000  # a refusal names problems; it never repeats a huge value
            else:
                tally["ran"] += 1
            for name in SECRET_ARGUMENTS & arguments.keys():
                value = arguments[name]
                if isinstance(value, str) and len(value) >= 16 and len(set(value)) >= 6:
                    assert value not in json.dumps(result.model_dump(mode="json")), "a typed password was echoed"

        check()
        assert tally["refused"] > 0
        # The server still answers, and nothing the examples did broke it.
        assert not portal.call(client.call_tool, "list_create_options", {}).is_error
        assert portal.call(client.call_tool, "get_redis", {"id": "1"}).is_error


# --- named cases, both eras -------------------------------------------------------------------------------------------

INVALID = [
    ("get_database", {}),  # missing
    ("get_database", {"id": "5"}),  # a string is not an integer (no coercion)
    ("get_database", {"id": True}),  # nor is a boolean
    ("get_database", {"id": 5.5}),
    ("get_database", {"id": 0}),
    ("get_database", {"id": -1}),
    ("get_database", {"id": 2**31}),
    ("get_database", {"id": 10**40}),
    ("get_database", {"id": {"id": 5}}),  # nested object
    ("get_database", {"id": [5]}),
    ("get_redis", {"id": 5, "verbose": True}),  # an unknown argument
    ("list_databases", {"limit": 0}),
    ("list_redis", {"limit": 101}),
    ("list_redis", {"limit": "10"}),
    ("list_create_options", {"region": "eu"}),
    ("whoami", {"as": "root"}),
    ("create_database", {"name": "orders"}),  # missing flavor, network, keypair
    ("create_database", dict(CREATE_ARGS, name="Orders")),
    ("create_database", dict(CREATE_ARGS, name="orders-")),
    ("create_database", dict(CREATE_ARGS, name="ördners")),
    ("create_database", dict(CREATE_ARGS, name="a" * 64)),
    ("create_database", dict(CREATE_ARGS, name="orders\n")),
    ("create_database", dict(CREATE_ARGS, name="orders", version="17")),
    ("create_database", dict(CREATE_ARGS, name="orders", version=16)),
    ("create_database", dict(CREATE_ARGS, name="orders", db_user="Robert'); DROP TABLE students;--")),
    ("create_database", dict(CREATE_ARGS, name="orders", security_group_names=[])),
    ("create_database", dict(CREATE_ARGS, name="orders", security_group_names="default")),
    ("create_database", dict(CREATE_ARGS, name="orders", flavor_id="")),
    ("create_database", dict(CREATE_ARGS, name="orders", flavor_id="x" * 200)),
    ("create_database", dict(CREATE_ARGS, name="orders", password="right-name-wrong-tool")),
    ("create_redis", dict(CREATE_ARGS, name="cache", version="5")),
    ("create_redis", dict(CREATE_ARGS, name="cache", keypair_name=None)),
    ("delete_database", {"id": 1, "confirm_name": "x" * 64}),
    ("delete_redis", {"confirm_name": "cache"}),
    ("delete_redis", {"id": "1", "confirm_name": "cache"}),
    ("wait_for_ready", {"kind": "postgres", "id": 1}),
    ("wait_for_ready", {"kind": "redis", "id": 1, "timeout_seconds": 0}),
    ("wait_for_ready", {"kind": "redis", "id": 1, "timeout_seconds": 46}),
    ("wait_for_ready", {"kind": "redis", "id": 1, "timeout_seconds": "10"}),
    ("wait_for_ready", {"kind": "redis", "id": 1, "poll_interval_seconds": 0.001}),  # the server's to decide
    ("list_databases", {"offset": -1}),
    ("list_redis", {"name_contains": ""}),
    ("create_database", dict(CREATE_ARGS, name="orders", flavor_id=True)),  # a number is an id; a boolean is not
    ("create_database", dict(CREATE_ARGS, name="orders", network_id=-1)),
]


async def test_named_invalid_inputs_are_refused_before_any_request(server, sandbox, mode):
    async with connect(server, mode) as client:
        for tool, arguments in INVALID:
            result = await client.call_tool(tool, arguments)
            text = result.content[0].text
            assert result.is_error, (tool, arguments)
            assert text.startswith(f"Invalid arguments for {tool}: "), text
            assert "Nothing was sent to the Redu API" in text
        assert not (await client.call_tool("list_create_options", {})).is_error
    assert sandbox.count() == 4  # only the final list_create_options (its four look-ups)


async def test_refusals_name_the_problem_but_never_repeat_the_value(server, mode):
    odd = "Robert'); DROP TABLE students;--"
    async with connect(server, mode) as client:
        bad = await client.call_tool("create_database", dict(CREATE_ARGS, name=odd, db_user=odd, extra_arg=odd))
        text = bad.content[0].text
        assert odd not in text
        # Patterns in words, with an example to follow; one message per argument.
        assert "name: use lowercase letters, digits and hyphens, starting with a letter" in text
        assert "e.g. 'orders-db'" in text and "db_user: use lowercase letters, digits and underscores" in text
        assert text.count("; name: ") + text.startswith("Invalid arguments for create_database: name: ") == 1
        assert "pattern" not in text and "^[" not in text
        assert "unknown argument 'extra_arg'" in text and "this tool takes: name, flavor_id" in text
        missing = await client.call_tool("create_redis", {"name": "cache"})
        for argument in ("flavor_id", "network_id", "keypair_name"):
            # A missing value names the tool that supplies it.
            assert f"missing {argument} (a " in missing.content[0].text
        assert missing.content[0].text.count("list_create_options") == 3
        version = await client.call_tool("create_database", dict(CREATE_ARGS, name="orders", version="17"))
        assert version.content[0].text.count("version") == 1 and '"16", "15", "14"' in version.content[0].text
        typed = await client.call_tool("wait_for_ready", {"kind": "redis", "id": "12"})
        assert "id: must be an integer" in typed.content[0].text
        bounded = await client.call_tool("get_redis", {"id": 2**31})
        assert "id: must be at most 2147483647" in bounded.content[0].text


async def test_valid_edge_values_pass(server, sandbox, mode):
    """The checker refuses what the schema refuses, and nothing more."""
    async with connect(server, mode) as client:
        for arguments in ({"id": 1}, {"id": 2**31 - 1}, {"id": 7.0}):  # 7.0 is an integer in JSON Schema
            result = await client.call_tool("get_redis", arguments)
            assert "HTTP 404" in result.content[0].text  # it went to the API: the id was acceptable
        long_name = "a" + "b" * 61 + "c"
        made = await client.call_tool(
            "create_redis", dict(CREATE_ARGS, name=long_name, security_group_names=["default"])
        )
        assert not made.is_error, made.content[0].text
        listed = await client.call_tool("list_redis", {"limit": 100})
        assert listed.structured_content["total"] == 1


@pytest.mark.parametrize("uri", [
    "redu://databases/abc", "redu://databases/0", "redu://databases/-1", "redu://redis/99999999999999999999",
    "redu://redis/2147483648", "redu://redis/١٢٣", "redu://databases/1.5", "redu://databases/",
])  # fmt: skip
async def test_resource_ids_are_validated_before_any_request(server, sandbox, mode, uri):
    async with connect(server, mode) as client:
        with pytest.raises(MCPError) as refused:
            await client.read_resource(uri)
    assert refused.value.code == -32602
    assert re.search(r"ids are integers from 1 to 2147483647|Unknown resource", refused.value.message)
    assert sandbox.count() == 0
