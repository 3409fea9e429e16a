"""Tool arguments: their types, and a check before any tool runs that never quotes a value back.

The types add to the API library's constrained types (``redu_mcp.api``) only what a model needs to
read: descriptions that say where a value comes from. Each call is checked against the tool's input
schema exactly as clients see it, then against its pydantic model. A refusal names the argument and
the rule, never the value: the value may be a password the caller typed. Password arguments are
also scrubbed from the tool's result.
"""

# No `from __future__ import annotations`: the SDK evaluates the tools' signatures, which use these types.

import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel, Field, ValidationError

from redu_mcp import api
from redu_mcp.api import REDACTED
from redu_mcp.server import wording

if TYPE_CHECKING:
    from mcp.server import ServerRequestContext
    from mcp.server.context import CallNext, HandlerResult, ServerMiddleware

log = logging.getLogger(__name__)

# --- the types ----------------------------------------------------------------------------------------

InstanceId = Annotated[int, Field(ge=1, le=2**31 - 1, description="Instance id (from a list_* or create_* result)")]
Limit = Annotated[int, Field(ge=1, le=100, description="Most instances to return (default 20)")]
Name = Annotated[
    api.InstanceName,
    Field(description="Instance name: lowercase letters, digits and hyphens, starting with a letter (max 63)"),
]
FlavorId = Annotated[api.OpaqueId, Field(description="A flavor id from list_flavors")]
NetworkId = Annotated[api.OpaqueId, Field(description="A network id from list_networks")]
KeypairName = Annotated[api.KeypairName, Field(description="A keypair name from list_keypairs")]
SecurityGroups = Annotated[
    api.SecurityGroupNames | None,
    Field(description='Security group names from list_security_groups (default ["default"])'),
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
    Field(
        max_length=63,
        description="The instance's current name, to confirm the deletion when the client cannot ask the user",
    ),
]


# --- the check ------------------------------------------------------------------------------------------


def argument_checker(tools: Mapping[str, Tool]) -> "ServerMiddleware":
    """Middleware: a tool runs only with arguments its published input schema allows.

    Each call is checked first against the tool's JSON Schema exactly as clients see it (types are
    not coerced: "5" is not an integer, true is not a number; unknown argument names are refused),
    then against the tool's pydantic model. A refusal names the argument and the rule, never the
    rejected value, which may be a password the caller typed. Nothing reaches the Redu API before
    the arguments pass. Arguments the schema marks ``writeOnly`` (passwords) are also scrubbed from
    the tool's result, in case an upstream message ever echoes one.
    """
    validators: dict[str, Any] = {}

    def refuse(name: str, problems: list[str]) -> CallToolResult:
        log.info("tool %r refused invalid arguments: %s", name, problems)
        return CallToolResult(content=[TextContent(type="text", text=wording.invalid_arguments(name, problems))],
                              is_error=True)  # fmt: skip

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
        if tool is None:
            return await call_next(ctx)  # the SDK answers "Unknown tool"
        arguments = params.get("arguments")
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            return refuse(tool.name, ["arguments: must be a JSON object"])
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
    """Every way ``arguments`` break ``schema``, as "where: rule" texts that never quote a value."""
    problems: list[str] = []
    for error in sorted(validator.iter_errors(arguments), key=lambda e: list(map(str, e.absolute_path))):
        problems.extend(_describe(error, schema, arguments))
    return problems[:10]


def _describe(error: Any, schema: dict[str, Any], instance: Any) -> list[str]:
    where = ".".join(str(p) for p in error.absolute_path) or "arguments"
    rule, value = error.validator, error.validator_value
    if rule in ("anyOf", "oneOf") and error.context:
        # A nullable argument is anyOf[<the type>, null]: report the branch the value was meant for.
        specific = [e for e in error.context if e.validator != "type"]
        if specific:
            return [p for e in specific for p in _describe(e, schema, instance)]
        types = [
            t
            for e in error.context
            for t in ([e.validator_value] if isinstance(e.validator_value, str) else e.validator_value)
        ]
        return [f"{where}: must be {' or '.join(dict.fromkeys(_type_name(t) for t in types))}"]
    if rule == "required":
        present = error.instance if isinstance(error.instance, dict) else {}
        return [f"missing required argument '{name}'" for name in value if name not in present]
    if rule == "additionalProperties":
        declared = set(schema.get("properties", {}))
        unknown = [k for k in (error.instance if isinstance(error.instance, dict) else {}) if k not in declared]
        takes = ", ".join(schema.get("properties", {})) or "no arguments"
        return [f"unknown argument {_short(k)!r} (this tool takes: {takes})" for k in unknown]
    texts = {
        "type": lambda: "must be " + " or ".join(_type_name(t) for t in ([value] if isinstance(value, str) else value)),
        "minLength": lambda: f"must have at least {value} characters",
        "maxLength": lambda: f"must have at most {value} characters",
        "minItems": lambda: f"must have at least {value} items",
        "maxItems": lambda: f"must have at most {value} items",
        "minimum": lambda: f"must be at least {value}",
        "maximum": lambda: f"must be at most {value}",
        "exclusiveMinimum": lambda: f"must be greater than {value}",
        "exclusiveMaximum": lambda: f"must be less than {value}",
        "pattern": lambda: f"must match the pattern {value}",
        "enum": lambda: "must be one of " + ", ".join(json.dumps(v) for v in value),
        "const": lambda: f"must be {json.dumps(value)}",
    }
    text = texts.get(rule)
    return [f"{where}: {text() if text else f'is not allowed here ({rule})'}"]


def _type_name(json_type: str) -> str:
    return {
        "integer": "an integer",
        "number": "a number",
        "string": "a string",
        "boolean": "true or false",
        "array": "a list",
        "object": "an object",
        "null": "null",
    }.get(json_type, json_type)


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


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
