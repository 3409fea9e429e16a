"""Assemble the MCP server: instructions, middleware, tools (by access level), resources and prompts."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from mcp.server.mcpserver import MCPServer

from redu_mcp import __version__
from redu_mcp.arguments import argument_checker, refuse_unknown_arguments_in_schemas
from redu_mcp.client import ReduClient
from redu_mcp.config import Settings
from redu_mcp.resources import register_prompts, register_resources
from redu_mcp.runtime import Runtime
from redu_mcp.tools import register_tools, tool_names

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
