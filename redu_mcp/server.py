"""Assemble the MCP server: instructions, tools (by access level), resources and prompts."""

from __future__ import annotations

import json
import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp.server.mcpserver.prompts.base import AssistantMessage, UserMessage
from pydantic import ValidationError

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

WORKFLOW = """\
Manage Redu Cloud managed PostgreSQL ("database") and Redis instances.

Workflow to create one:
1. Look up what the create call needs: list_flavors (size), list_networks, list_keypairs (and optionally
   list_security_groups). If the right choice is not obvious, ask the user rather than guess.
2. create_database or create_redis. It returns at once with status "provisioning". Instances are billed
   while they exist: create only what the user asked for, and never create again because a wait timed out.
3. wait_for_ready(kind, id): polls with progress for up to ~40 s. If it returns ready=false, call it again.
4. Use the connection details it returns. The one-time password is never shown in the chat: it is saved
   in a private credentials file whose path the create and wait results give.

Deleting (delete_database / delete_redis) destroys all data and needs the user's confirmation."""


def instructions_for(settings: Settings) -> str:
    level = {
        "read": "read: you can list and inspect instances, but not create or delete them",
        "create": "create: you can list, inspect and create instances, but not delete them",
        "full": "full: you can list, inspect, create and delete instances",
    }[settings.access]
    lines = [WORKFLOW, "", f"Access level of this server: {level}."]
    if settings.secrets == "reveal":
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
    register_tools(server, runtime, settings.access)
    register_resources(server, runtime)
    register_prompts(server)
    server.runtime = runtime  # type: ignore[attr-defined]  # for tests and the CLI
    return server


def argument_checker(server: MCPServer):
    """Middleware: report invalid tool arguments by field and reason only.

    The SDK's own message repeats the rejected values, and a rejected value may be a password the
    caller typed: it must not be echoed back into the transcript or the logs. Valid calls pass
    through untouched (and are validated again by the SDK, which costs microseconds).
    """
    from mcp.types import CallToolResult, TextContent

    async def check_arguments(ctx: ServerRequestContext, call_next: CallNext) -> HandlerResult:
        params = ctx.params if ctx.method == "tools/call" else None
        if not isinstance(params, dict) or not isinstance(params.get("arguments") or {}, dict):
            return await call_next(ctx)
        name = params.get("name")
        tool = server._tool_manager.get_tool(name) if isinstance(name, str) else None  # no public lookup
        if tool is None:
            return await call_next(ctx)
        try:
            tool.fn_metadata.validate_arguments(params.get("arguments") or {})
        except ValidationError as exc:
            problems = [
                f"{'.'.join(str(p) for p in err['loc']) or 'arguments'}: {err['msg']}"
                for err in exc.errors(include_input=False, include_url=False)[:10]
            ]
            log.info("tool %r refused invalid arguments: %s", name, problems)
            text = f"Invalid arguments for {name}: {'; '.join(problems)}. Nothing was sent to the Redu API."
            return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)
        return await call_next(ctx)

    return check_arguments


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
            if not id.isdigit() or int(id) < 1:
                raise ResourceNotFoundError(f"no {kind.label} with id {id!r}: ids are positive integers")
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
