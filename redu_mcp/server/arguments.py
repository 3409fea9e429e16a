"""Tool arguments: their types, and a check before any tool runs that never quotes a value back.

The types add to the API library's constrained types (``redu_mcp.api``) only what a model needs to
read: descriptions that say where a value comes from. Each call is checked against the tool's input
schema exactly as clients see it, then against its pydantic model; the refusal says, per argument,
the rule in words and where a missing value comes from (``wording.rule``), never the value, which
may be a password the caller typed. Password arguments are also scrubbed from the tool's result.
"""

# No `from __future__ import annotations`: the SDK evaluates the tools' signatures, which use these types.

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel, Field, ValidationError, WithJsonSchema

from redu_mcp import api
from redu_mcp.api import REDACTED
from redu_mcp.server import wording
from redu_mcp.server.kinds import each_kind, either
from redu_mcp.server.specs import Offer

if TYPE_CHECKING:
    from mcp.server import ServerRequestContext
    from mcp.server.context import CallNext, HandlerResult, ServerMiddleware

log = logging.getLogger(__name__)

# --- the types ----------------------------------------------------------------------------------------

InstanceId = Annotated[
    int,
    Field(
        ge=1,
        le=2**31 - 1,
        description=f"The instance's id (from {either([*each_kind('list_{collection}'), 'a create'])})",
    ),
]
Limit = Annotated[int, Field(ge=1, le=100, description="Most instances to return (default 20, at most 100)")]
Offset = Annotated[int, Field(ge=0, le=100_000, description="Newest instances to skip, for the next page (default 0)")]
NameContains = Annotated[
    str | None, Field(min_length=1, max_length=63, description="Only instances whose name contains this")
]
StatusFilter = Annotated[
    str | None,
    Field(min_length=1, max_length=32, description="Only instances in this status: provisioning, ready or error"),
]
Name = Annotated[
    api.InstanceName,
    Field(description="Instance name: lowercase letters, digits and hyphens, starting with a letter (max 63)"),
]
# The API's ids are opaque strings; a bare number means the same id ("1" for 1).
_OPAQUE_ID_SCHEMA = {"anyOf": [{"type": "string", "minLength": 1, "maxLength": 128}, {"type": "integer", "minimum": 0}]}
FlavorId = Annotated[
    api.OpaqueId, WithJsonSchema(_OPAQUE_ID_SCHEMA), Field(description="A flavor id from list_create_options")
]
NetworkId = Annotated[
    api.OpaqueId, WithJsonSchema(_OPAQUE_ID_SCHEMA), Field(description="A network id from list_create_options")
]
KeypairName = Annotated[api.KeypairName, Field(description="A keypair name from list_create_options")]
SecurityGroups = Annotated[
    api.SecurityGroupNames | None,
    Field(description='Security group names from list_create_options (default ["default"])'),
]
PgIdentifier = api.PgIdentifier
# The wire type is a plain string marked secret on the property itself (where clients look to mask
# input); the create body (``api.Password``) holds it as a SecretStr, with the same limits.
Password = Annotated[
    str | None,
    Field(
        min_length=api.PASSWORD_MIN,
        max_length=api.PASSWORD_MAX,
        json_schema_extra={"format": "password", "writeOnly": True},
        description="Optional; omit it to let Redu generate one (recommended: a typed password lands in the chat)",
    ),
]
ConfirmName = Annotated[
    str | None,
    Field(max_length=63, description="The instance's exact current name: required to delete it"),
]


def id_sources(offer: Offer) -> dict[str, str]:
    """The ``id`` argument's description, naming where ids come from among the tools offered."""
    sources = [tool for tool in each_kind("list_{collection}") if offer.has(tool)]
    if any(offer.has(tool) for tool in each_kind("create_{name}")):
        sources.append("a create")
    return {"id": f"The instance's id (from {either(sources)})" if sources else "The instance's id"}


def look_up_sources(offer: Offer) -> dict[str, str]:
    """Where a create's look-up values come from when list_create_options is not offered: the resources."""
    if offer.has("list_create_options"):
        return {}  # the types' own descriptions name it
    return {
        "flavor_id": "A flavor id from the resource redu://flavors",
        "network_id": "A network id from the resource redu://networks",
        "keypair_name": "A keypair name from the resource redu://keypairs",
        "security_group_names": 'Security group names from the resource redu://security-groups (default ["default"])',
    }


# --- the check ------------------------------------------------------------------------------------------


def argument_checker(
    tools: Mapping[str, Tool], unavailable: Mapping[str, str] | None = None
) -> "ServerMiddleware[Any]":
    """Middleware: a tool runs only with arguments its published input schema allows.

    A call of a tool this server does not offer (above its access level, or outside its allow-list)
    is answered with the text ``unavailable`` holds for it: why, and what the operator changes. (The
    SDK would answer only "Unknown tool"; any other name still gets that answer.)

    Each call is checked first against the tool's JSON Schema exactly as clients see it (types are
    not coerced: "5" is not an integer, true is not a number; unknown argument names are refused),
    then against the tool's pydantic model. Nothing reaches the Redu API before the arguments pass.
    Arguments the schema marks ``writeOnly`` (passwords) are also scrubbed from the tool's result,
    in case an upstream message ever echoes one.
    """
    validators: dict[str, Any] = {}
    unavailable = unavailable or {}

    def refuse(name: str, problems: list[str]) -> CallToolResult:
        log.info("tool %r refused invalid arguments: %s", name, problems)
        text = wording.invalid_arguments(name, problems)
        return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)

    def validator_for(tool: Tool) -> Any:
        if tool.name not in validators:
            from jsonschema import Draft202012Validator  # on first use: start-up does not need it

            validators[tool.name] = Draft202012Validator(tool.parameters)
        return validators[tool.name]

    async def check_arguments(ctx: "ServerRequestContext[Any, Any]", call_next: "CallNext") -> "HandlerResult":
        params = ctx.params if ctx.method == "tools/call" else None
        if not isinstance(params, dict):
            return await call_next(ctx)
        name = params.get("name")
        tool = tools.get(name) if isinstance(name, str) else None
        if tool is None and isinstance(name, str) and name in unavailable:
            log.info("tool %r is not offered by this server", name)
            return CallToolResult(content=[TextContent(type="text", text=unavailable[name])], is_error=True)
        if tool is None:
            return await call_next(ctx)  # the SDK answers "Unknown tool"
        arguments = params.get("arguments")
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            return refuse(tool.name, ["the arguments must be a JSON object"])
        problems = schema_problems(validator_for(tool), tool.parameters, arguments)
        if not problems:
            try:
                tool.fn_metadata.validate_arguments(arguments)
            except ValidationError as exc:
                problems = [
                    f"{'.'.join(str(p) for p in err['loc']) or 'arguments'}: {err['msg']}"
                    for err in exc.errors(include_input=False, include_url=False)[:10]
                ]
        if problems:
            return refuse(tool.name, problems)
        result = await call_next(ctx)
        secrets = secret_arguments(tool.parameters, arguments)
        return redact(result, secrets) if secrets else result

    return check_arguments


def schema_problems(validator: Any, schema: dict[str, Any], arguments: dict[str, Any]) -> list[str]:
    """Every way ``arguments`` break ``schema``, one text per argument, never quoting a value."""
    by_argument: dict[str, str] = {}
    for error in sorted(validator.iter_errors(arguments), key=lambda e: list(map(str, e.absolute_path))):
        for where, text in _describe(error, schema):
            by_argument.setdefault(where, text)  # the first (most specific) problem of each argument
    return list(by_argument.values())[:10]


def _describe(error: Any, schema: dict[str, Any]) -> list[tuple[str, str]]:
    """``(argument, text)`` for one schema error."""
    properties: dict[str, Any] = schema.get("properties", {})
    path = [str(p) for p in error.absolute_path]
    where = ".".join(path) or "arguments"
    rule, value = error.validator, error.validator_value
    if rule in ("anyOf", "oneOf") and error.context:
        # A nullable argument is anyOf[<the type>, null]: report the branch the value was meant for.
        specific = [e for e in error.context if e.validator != "type"]
        if specific:
            return [pair for e in specific for pair in _describe(e, schema)]
        types = [
            t
            for e in error.context
            for t in ([e.validator_value] if isinstance(e.validator_value, str) else e.validator_value)
        ]
        return [(where, wording.rule(where, "type", list(dict.fromkeys(types))))]
    if rule == "required":
        present = error.instance if isinstance(error.instance, dict) else {}
        return [
            (name, wording.missing(name, properties.get(name, {}).get("description")))
            for name in value
            if name not in present
        ]
    if rule == "additionalProperties":
        unknown = [k for k in (error.instance if isinstance(error.instance, dict) else {}) if k not in properties]
        return [(key, wording.unknown_argument(key, list(properties))) for key in unknown]
    return [(where, wording.rule(where, rule, value))]


def secret_arguments(schema: dict[str, Any], arguments: dict[str, Any]) -> list[str]:
    """The values of arguments the schema marks as secret (``writeOnly`` or ``format: password``)."""
    found = []
    for name, prop in schema.get("properties", {}).items():
        marked = [prop, *prop.get("anyOf", [])]
        if any(p.get("writeOnly") or p.get("format") == "password" for p in marked):
            value = arguments.get(name)
            if isinstance(value, str) and value:
                found.append(value)
    return found


def redact(result: Any, secrets: list[str]) -> Any:
    """``result`` with every occurrence of each secret replaced, at any depth."""
    if isinstance(result, str):
        for secret in secrets:
            result = result.replace(secret, REDACTED)
        return result
    if isinstance(result, dict):
        return {key: redact(value, secrets) for key, value in result.items()}
    if isinstance(result, list):
        return [redact(value, secrets) for value in result]
    if isinstance(result, BaseModel):
        return type(result).model_validate(redact(result.model_dump(by_alias=True, exclude_unset=True), secrets))
    return result
