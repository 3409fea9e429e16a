"""Resources: the create look-ups as JSON, and instances of every kind by id. Readable at every access level."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from pydantic import BaseModel

from redu_mcp.api import AnyKind, NotFoundError, ReduClient, ReduError
from redu_mcp.server.kinds import ALL_KINDS
from redu_mcp.server.results import InstanceDetails
from redu_mcp.server.runtime import Runtime

MAX_INSTANCE_ID = 2**31 - 1


def register_resources(server: MCPServer[Runtime], runtime: Runtime) -> None:
    """Look-ups as static JSON resources; instances as templates.

    A static resource cannot take a ``Context`` (an SDK rule), so these reach the runtime by closure."""

    def lookup(uri: str, name: str, title: str, fetch: Callable[[ReduClient], Awaitable[Sequence[BaseModel]]]) -> None:
        async def read() -> str:
            try:
                items = await fetch(runtime.client())
            except ReduError as exc:
                raise ResourceError(runtime.words.failure(f"read {title.lower()}", exc)) from None
            return json.dumps(
                [item.model_dump(mode="json", exclude_none=True) for item in items], separators=(",", ":")
            )

        read.__name__ = name
        server.resource(uri, name=name, title=title, mime_type="application/json",
                        description=f"{title} available to create instances with (JSON)")(read)  # fmt: skip

    lookup("redu://flavors", "flavors", "Flavors", ReduClient.list_flavors)
    lookup("redu://networks", "networks", "Networks", ReduClient.list_networks)
    lookup("redu://keypairs", "keypairs", "Keypairs", ReduClient.list_keypairs)
    lookup("redu://security-groups", "security_groups", "Security groups", ReduClient.list_security_groups)

    def instance(kind: AnyKind) -> None:
        async def read(id: str) -> str:
            # Checked like the tools' id argument before any request: ASCII digits, 1 .. 2**31-1.
            if not (id.isascii() and id.isdigit() and len(id) <= 10 and 1 <= int(id) <= MAX_INSTANCE_ID):
                raise ResourceNotFoundError(
                    f"no {kind.label} with id {id[:40]!r}: ids are integers from 1 to {MAX_INSTANCE_ID}"
                )
            try:
                found = await runtime.client().get_instance(kind, int(id))
            except NotFoundError:
                raise ResourceNotFoundError(f"no {kind.label} with id {id}") from None
            except ReduError as exc:
                raise ResourceError(runtime.words.failure(f"read {kind.label} {id}", exc)) from None
            return InstanceDetails.with_file(
                kind, found, runtime.credentials.path_of(runtime.principal(), kind, found)
            ).model_dump_json(exclude_none=True)

        read.__name__ = f"{kind.name}_instance"
        server.resource(f"redu://{kind.collection}/{{id}}", name=read.__name__, title=f"A {kind.label}",
                        mime_type="application/json",
                        description=f"One {kind.label} by id (JSON): status and how to connect, never the password")(read)  # fmt: skip

    for kind in ALL_KINDS:
        instance(kind)
