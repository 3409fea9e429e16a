"""Which instance a data tool connects to, and with what password.

Two sources, trusted for different things: the API's own answer for the caller (a fresh GET with
their key: the host, port, user, database and status), and the caller's credentials file (the
password saved when the instance was created, bound to that principal and that very instance). A
password never comes from a tool argument, an elicitation form or anything shared between replicas.
Whatever is missing (the sandbox has no real servers, not ready yet, no address, no credentials
file) is refused in words that say the next step.
"""

# No `from __future__ import annotations`: the SDK evaluates these resolvers' signatures.

from collections.abc import Awaitable, Callable

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import SecretStr

from redu_mcp.api import READY, AnyKind, Instance, NotFoundError, ReduError
from redu_mcp.data import Target
from redu_mcp.provisioning.credentials import NoCredentials
from redu_mcp.server.arguments import InstanceId
from redu_mcp.server.runtime import Runtime, runtime_of


async def instance_for(runtime: Runtime, kind: AnyKind, id: int, doing: str) -> Instance:
    """The instance ``id`` names, as the API reports it now for the caller, or a tool error."""
    client = runtime.client_or_tool_error(f"{doing} {kind.label} {id}")
    try:
        return await client.get_instance(kind, id)
    except NotFoundError:
        raise ToolError(runtime.words.not_found(kind, id, None, "get")) from None
    except ReduError as exc:
        raise ToolError(runtime.words.failure(f"look up {kind.label} {id}", exc)) from None


def current_instance(kind: AnyKind, doing: str) -> Callable[..., Awaitable[Instance]]:
    """A resolver: ``instance_for`` the tool's ``id``."""

    async def instance(id: InstanceId, ctx: Context) -> Instance:
        return await instance_for(runtime_of(ctx), kind, id, doing)

    return instance


def target_for(runtime: Runtime, kind: AnyKind, instance: Instance) -> Target:
    """Where and how to connect to ``instance``, or a tool error saying why this server cannot."""
    words = runtime.words
    if runtime.settings.sandbox and not runtime.settings.engines:
        raise ToolError(words.sandbox_without_engines(kind, instance))
    if instance.status != READY:
        raise ToolError(words.not_ready_to_use(kind, instance))
    host = instance.floating_ip
    if not host:
        raise ToolError(words.no_address(kind, instance))
    principal = runtime.principal()
    stored = runtime.credentials.lookup(principal, kind, instance)
    if isinstance(stored, NoCredentials):
        raise ToolError(words.no_credentials(kind, instance, stored))
    return Target(
        kind=kind.name,
        instance_id=instance.id,
        principal=principal,
        host=host,
        port=kind.port_of(instance),
        password=SecretStr(stored.password),
        user=kind.user_of(instance),
        database=kind.database_of(instance),
    )
