"""Assemble the MCP server: instructions, middleware, tools (by access level and allow-list),
resources and prompts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from mcp.server.mcpserver import MCPServer

from redu_mcp import __version__
from redu_mcp.api import ReduClient
from redu_mcp.server.arguments import argument_checker
from redu_mcp.server.confirmation import single_use_request_state
from redu_mcp.server.confirmation_page import page_rounds
from redu_mcp.server.instructions import instructions_for
from redu_mcp.server.prompts import register_prompts
from redu_mcp.server.resources import register_resources
from redu_mcp.server.runtime import Runtime
from redu_mcp.server.settings import Settings
from redu_mcp.server.specs import Offer
from redu_mcp.server.telemetry import operation_metrics
from redu_mcp.server.tools import TOOLS, tools_for
from redu_mcp.server.wording import Wording

#: The server's name: also the audience sealed request state is bound to, the same on every replica.
NAME = "redu-mcp"


def runtime_for(settings: Settings, **options: Any) -> Runtime:
    """The runtime of a server for ``settings``: its sentences name only the tools it offers.
    ``options`` (``client``, ``on_close``) as for ``build_server``."""
    offered = frozenset(spec.name for spec in tools_for(settings.access, settings.data, settings.tools))
    return Runtime(settings, words=Wording(offered=offered), **options)


def build_server(
    settings: Settings,
    *,
    client: ReduClient | None = None,
    on_close: Callable[[], Awaitable[None]] | None = None,
    runtime: Runtime | None = None,
    **mcp_options: Any,
) -> MCPServer[Runtime]:
    """The MCP server for ``settings``. ``client`` replaces the upstream (the sandbox's, a test's);
    ``on_close`` runs when the last session ends (e.g. stopping the sandbox's engines);
    ``mcp_options`` go to ``MCPServer`` (e.g. ``request_state_security``)."""
    offered = tools_for(settings.access, settings.data, settings.tools)
    runtime = runtime or runtime_for(settings, client=client, on_close=on_close)
    offer = Offer(frozenset(spec.name for spec in offered), settings.confirm)
    tools = {spec.name: spec.build(offer) for spec in offered}
    # A tool this server does not offer is answered with why (a level, or the allow-list), not "Unknown tool";
    # a tool in two variants (run_sql) with what its first, least demanding, one needs.
    unavailable: dict[str, str] = {}
    for spec in TOOLS:
        if spec.name not in tools:
            unavailable.setdefault(spec.name, runtime.words.not_offered(spec, settings.access, settings.data))

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
        instructions=instructions_for(settings, [spec.name for spec in offered]),
        version=__version__,
        website_url="https://docs.redu.cloud/API/managed",
        lifespan=lifespan,
        tools=list(tools.values()),
        # Metrics outermost (inside the SDK's own tracing), so refused arguments are counted too.
        middleware=[operation_metrics, argument_checker(tools, unavailable)],
        **mcp_options,
    )
    single_use_request_state(server, runtime)  # a decided round cannot be answered again
    page_rounds(server, runtime)  # --confirm human: a person approves on a page the client opens
    register_resources(server, runtime)  # resources are read-only: offered at every access level
    register_prompts(server, offer.tools)  # they walk through creating an instance: where creating is offered
    return server
