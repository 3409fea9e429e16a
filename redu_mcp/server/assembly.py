"""Assemble the MCP server: instructions, middleware, tools (by access level), resources and prompts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from mcp.server.mcpserver import MCPServer

from redu_mcp import __version__
from redu_mcp.api import ReduClient
from redu_mcp.server.arguments import argument_checker
from redu_mcp.server.confirmation import single_use_request_state
from redu_mcp.server.instructions import instructions_for
from redu_mcp.server.prompts import register_prompts
from redu_mcp.server.resources import register_resources
from redu_mcp.server.runtime import Runtime
from redu_mcp.server.settings import Settings
from redu_mcp.server.telemetry import operation_metrics
from redu_mcp.server.tools import tools_for

if TYPE_CHECKING:
    from redu_mcp.sandbox import Sandbox


#: The server's name: also the audience sealed request state is bound to, the same on every replica.
NAME = "redu-mcp"


def build_server(
    settings: Settings,
    *,
    sandbox: Sandbox | None = None,
    client: ReduClient | None = None,
    runtime: Runtime | None = None,
    **mcp_options: Any,
) -> MCPServer[Runtime]:
    """The MCP server for ``settings``. ``sandbox`` or ``client`` replace the upstream (for tests);
    ``mcp_options`` go to ``MCPServer`` (e.g. ``token_verifier``/``auth`` for HTTP)."""
    runtime = runtime or Runtime(settings, sandbox=sandbox, client=client)
    tools = {spec.name: spec.build() for spec in tools_for(settings.access)}

    @asynccontextmanager
    async def lifespan(_: MCPServer[Runtime]) -> AsyncIterator[Runtime]:
        async with runtime.session():
            yield runtime

    if settings.state_keys and "request_state_security" not in mcp_options:
        # Every replica seals and unseals with the same keys, so any of them continues what another began.
        from mcp.server.request_state import RequestStateSecurity

        mcp_options["request_state_security"] = RequestStateSecurity(keys=list(settings.state_keys), audience=NAME)
    server: MCPServer[Runtime] = MCPServer(
        NAME,
        title="Redu Cloud databases",
        instructions=instructions_for(settings),
        version=__version__,
        website_url="https://docs.redu.cloud/API/managed",
        lifespan=lifespan,
        tools=list(tools.values()),
        # Metrics outermost (inside the SDK's own tracing), so refused arguments are counted too.
        middleware=[operation_metrics, argument_checker(tools)],
        **mcp_options,
    )
    single_use_request_state(server, runtime)  # a decided round cannot be answered again
    register_resources(server, runtime)  # resources are read-only: offered at every access level
    if settings.access != "read":
        register_prompts(server)  # they walk through creating an instance
    return server
