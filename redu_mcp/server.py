"""Assemble the MCP server: instructions, tools (by access level), resources and prompts."""

from __future__ import annotations

import json
import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp.server.mcpserver.prompts.base import AssistantMessage, UserMessage
from pydantic import BaseModel, ValidationError

from redu_mcp import __version__, errors
from redu_mcp.client import ReduClient
from redu_mcp.config import Settings
from redu_mcp.kinds import DATABASE, REDIS, Kind
from redu_mcp.runtime import Runtime
from redu_mcp.tools import register_tools, tool_names
from redu_mcp.views import InstanceDetail

if TYPE_CHECKING:
    from mcp.server import ServerRequestContext
    from mcp.server.context import CallNext, HandlerResult

    from redu_mcp.sandbox import Sandbox

log = logging.getLogger(__name__)

INTRO = 'Manage Redu Cloud managed PostgreSQL ("database") and Redis instances.'

CREATE_WORKFLOW = """\
Workflow to create one:
1. Look up what the create call needs: list_flavors (size), list_networks, list_keypairs (and optionally
   list_security_groups). If the right choice is not obvious, ask the user rather than guess.
2. create_database or create_redis. It returns at once with status "provisioning". Instances are billed
   while they exist: create only what the user asked for, and never create again because a wait timed out.
3. wait_for_ready(kind, id): polls with progress for up to ~40 s. If it returns ready=false, call it again.
4. Use the connection details it returns. The one-time password is never shown in the chat: it is saved
   in a private credentials file whose path the create and wait results give."""

READ_WORKFLOW = """\
Use list_databases / list_redis and get_database / get_redis to inspect instances, and wait_for_ready to
follow one that is still provisioning. Creating and deleting are not possible through this server: if the
user asks for it, say so rather than look for another way."""

DELETE_NOTE = "Deleting (delete_database / delete_redis) destroys all data and needs the user's confirmation."

WORKFLOW = "\n\n".join([INTRO, CREATE_WORKFLOW, DELETE_NOTE])  # the full-access text

LEVEL_TEXT = {
    "read": "read: you can list and inspect instances, but not create or delete them",
    "create": "create: you can list, inspect and create instances, but not delete them",
    "full": "full: you can list, inspect, create and delete instances",
}


def instructions_for(settings: Settings) -> str:
    """What the model is told: the workflow its access level allows, and the level itself."""
    parts = [INTRO, READ_WORKFLOW if settings.access == "read" else CREATE_WORKFLOW]
    if settings.access == "full":
        parts.append(DELETE_NOTE)
    lines = ["\n\n".join(parts), "", f"Access level of this server: {LEVEL_TEXT[settings.access]}."]
    if settings.secrets == "reveal" and settings.access != "read":
        lines.append("Secrets mode: reveal. Create results carry the one-time password; it is shown once only.")
    if settings.sandbox:
        lines.append("This server runs against the Redu sandbox emulator: nothing is real or billed.")
    if not settings.configured:
        lines.append(
            "Not configured: no REDU_API_KEY is set, so every tool will fail until the server is restarted "
            "with REDU_API_KEY (or with --sandbox to try it out)."
        )
    lines.append("Tools available: " + ", ".join(sorted(tool_names(settings.access))) + ".")
    return "\n".join(lines)


def build_server(
    settings: Settings | None = None,
    *,
    sandbox: Sandbox | None = None,
    client: ReduClient | None = None,
    runtime: Runtime | None = None,
    **mcp_options: Any,
) -> MCPServer[Runtime]:
    """The MCP server for ``settings``. ``sandbox`` or ``client`` replace the upstream (for tests);
    ``mcp_options`` go to ``MCPServer`` (e.g. ``token_verifier``/``auth`` for HTTP)."""
    settings = settings or (runtime.settings if runtime else Settings.from_env())
    runtime = runtime or Runtime(settings, sandbox=sandbox, client=client)

    @asynccontextmanager
    async def lifespan(_: MCPServer[Runtime]):
        async with runtime.session():
            yield runtime

    server: MCPServer[Runtime] = MCPServer(
        "redu-mcp",
        title="Redu Cloud databases",
        instructions=instructions_for(settings),
        version=__version__,
        website_url="https://docs.redu.cloud/API/managed",
        lifespan=lifespan,
        **mcp_options,
    )
    server.middleware.append(argument_checker(server))
    server.middleware.append(tool_deadline)
    register_tools(server, runtime, settings.access)
    refuse_unknown_arguments_in_schemas(server)
    register_resources(server, runtime)  # resources are read-only: offered at every access level
    if settings.access != "read":
        register_prompts(server)  # they walk through creating an instance
    server.runtime = runtime  # type: ignore[attr-defined]  # for tests and the CLI
    return server


async def tool_deadline(ctx: ServerRequestContext, call_next: CallNext) -> HandlerResult:
    """Middleware: every request that may reach the Redu API ends within ``TOOL_DEADLINE_SECONDS``.

    The client clips each HTTP exchange and retry to the time left (``redu_mcp.retry.within``), so
    a slow or rate-limited API cannot keep a call past the ~60 s after which desktop clients give
    up. ``wait_for_ready`` is bounded by its own ``timeout_seconds`` instead."""
    from redu_mcp.retry import TOOL_DEADLINE_SECONDS, within

    params = ctx.params if isinstance(ctx.params, dict) else {}
    if ctx.method == "tools/call" and params.get("name") == "wait_for_ready":
        return await call_next(ctx)
    with within(TOOL_DEADLINE_SECONDS):
        return await call_next(ctx)


def argument_checker(server: MCPServer):
    """Middleware: a tool runs only with arguments its published input schema allows.

    Each call is checked first against the tool's JSON Schema exactly as clients see it (types are
    not coerced: "5" is not an integer, true is not a number; unknown argument names are refused),
    then against the tool's pydantic model. A refusal names the argument and the rule, never the
    rejected value, which may be a password the caller typed. Nothing reaches the Redu API before
    the arguments pass. Arguments the schema marks ``writeOnly`` (passwords) are also scrubbed from
    the tool's result, in case an upstream message ever echoes one.
    """
    from mcp.types import CallToolResult, TextContent

    validators: dict[str, tuple[dict[str, Any], Any]] = {}

    def refuse(name: str, problems: list[str]) -> CallToolResult:
        log.info("tool %r refused invalid arguments: %s", name, problems)
        text = f"Invalid arguments for {name}: {'; '.join(problems)}. Nothing was sent to the Redu API."
        return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)

    def validator_for(name: str, schema: dict[str, Any]) -> Any:
        cached = validators.get(name)
        if cached is None or cached[0] is not schema:
            from jsonschema import Draft202012Validator

            cached = (schema, Draft202012Validator({**schema, "additionalProperties": False}))
            validators[name] = cached
        return cached[1]

    async def check_arguments(ctx: ServerRequestContext, call_next: CallNext) -> HandlerResult:
        params = ctx.params if ctx.method == "tools/call" else None
        if not isinstance(params, dict):
            return await call_next(ctx)
        name = params.get("name")
        tool = server._tool_manager.get_tool(name) if isinstance(name, str) else None  # no public lookup
        if tool is None:
            return await call_next(ctx)  # the SDK answers "Unknown tool"
        arguments = params.get("arguments")
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            return refuse(name, ["arguments: must be a JSON object"])
        problems = schema_problems(validator_for(name, tool.parameters), tool.parameters, arguments)
        if not problems:
            try:
                tool.fn_metadata.validate_arguments(arguments)
            except ValidationError as exc:
                problems = [
                    f"{'.'.join(str(p) for p in err['loc']) or 'arguments'}: {err['msg']}"
                    for err in exc.errors(include_input=False, include_url=False)[:10]
                ]
        if problems:
            return refuse(name, problems)
        result = await call_next(ctx)
        secrets = secret_arguments(tool.parameters, arguments)
        return redact(result, secrets) if secrets else result

    return check_arguments


def refuse_unknown_arguments_in_schemas(server: MCPServer) -> None:
    """Publish what ``argument_checker`` enforces: no arguments beyond the declared ones."""
    for tool in server._tool_manager.list_tools():
        tool.parameters["additionalProperties"] = False


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
        types = [t for e in error.context for t in ([e.validator_value] if isinstance(e.validator_value, str) else e.validator_value)]
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
    return {"integer": "an integer", "number": "a number", "string": "a string", "boolean": "true or false",
            "array": "a list", "object": "an object", "null": "null"}.get(json_type, json_type)


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
            result = result.replace(secret, "[REDACTED]")
        return result
    if isinstance(result, dict):
        return {key: redact(value, secrets) for key, value in result.items()}
    if isinstance(result, list):
        return [redact(value, secrets) for value in result]
    if isinstance(result, BaseModel):
        return type(result).model_validate(redact(result.model_dump(by_alias=True, exclude_unset=True), secrets))
    return result


# --- resources --------------------------------------------------------------------------------------


def register_resources(server: MCPServer, runtime: Runtime) -> None:
    """Lookups as static JSON resources; instances as templates. Readable at every access level."""

    def lookup(uri: str, title: str, fetch_name: str) -> None:
        async def read() -> str:
            try:
                items = await getattr(runtime.client(), fetch_name)()
            except errors.ReduError as exc:
                raise ResourceError(f"{title}: {exc}. {exc.hint}") from None
            return json.dumps([item.model_dump(mode="json") for item in items], indent=1)

        read.__name__ = fetch_name.removeprefix("list_")
        server.resource(uri, name=read.__name__, title=title, mime_type="application/json",
                        description=f"{title} available to create instances with (JSON)")(read)

    lookup("redu://flavors", "Flavors", "list_flavors")
    lookup("redu://networks", "Networks", "list_networks")
    lookup("redu://keypairs", "Keypairs", "list_keypairs")
    lookup("redu://security-groups", "Security groups", "list_security_groups")

    def instance(kind: Kind) -> None:
        uri = f"redu://{kind.collection}/{{id}}"

        async def read(id: str) -> str:
            # Checked like the tools' id argument before any request: ASCII digits, 1 .. 2**31-1.
            if not (id.isascii() and id.isdigit() and len(id) <= 10 and 1 <= int(id) <= 2**31 - 1):
                raise ResourceNotFoundError(f"no {kind.label} with id {_short(id)!r}: ids are integers from 1 to 2147483647")
            try:
                found = await runtime.client().get_instance(kind, int(id))
            except errors.NotFoundError:
                raise ResourceNotFoundError(f"no {kind.label} with id {id}") from None
            except errors.ReduError as exc:
                raise ResourceError(f"{kind.label} {id}: {exc}. {exc.hint}") from None
            return InstanceDetail.of(kind, found).model_dump_json(indent=1)

        read.__name__ = f"{kind.name}_instance"
        server.resource(uri, name=read.__name__, title=f"A {kind.label}", mime_type="application/json",
                        description=f"One {kind.label} by id (JSON), as get_{kind.name} returns it")(read)

    instance(DATABASE)
    instance(REDIS)


# --- prompts ----------------------------------------------------------------------------------------


def register_prompts(server: MCPServer) -> None:
    @server.prompt(name="provision_postgres", title="Provision a PostgreSQL database")
    def provision_postgres(purpose: str = "an application", name: str = "") -> list:
        """Walk through creating a managed PostgreSQL database, step by step."""
        return _provision_messages("database", "PostgreSQL database", purpose, name)

    @server.prompt(name="provision_redis", title="Provision a Redis instance")
    def provision_redis(purpose: str = "a cache", name: str = "") -> list:
        """Walk through creating a managed Redis instance, step by step."""
        return _provision_messages("redis", "Redis instance", purpose, name)


def _provision_messages(kind: str, label: str, purpose: str, name: str) -> list:
    naming = f"Call it '{name}'." if name else "Suggest a name (lowercase letters, digits, hyphens) and confirm it with me."
    return [
        UserMessage(
            f"I need a managed {label} on Redu Cloud for {purpose}. {naming}\n"
            "Steps: 1) call list_flavors, list_networks and list_keypairs, and pick the smallest flavor that "
            "fits unless I say otherwise; ask me if a choice is ambiguous. "
            f"2) call create_{kind} once. 3) call wait_for_ready(kind='{kind}', id=...) until ready=true "
            "(call it again on ready=false; never create a second instance because of a timeout). "
            "4) give me the host, port and the path of the credentials file; do not print the password."
        ),
        AssistantMessage("I'll start by looking up the available flavors, networks and keypairs."),
    ]
