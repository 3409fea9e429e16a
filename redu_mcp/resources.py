"""Resources (look-ups and instances as JSON) and prompts (guided provisioning)."""

from __future__ import annotations

import json
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp.server.mcpserver.prompts.base import AssistantMessage, UserMessage
from pydantic import Field

from redu_mcp import errors
from redu_mcp.kinds import DATABASE, REDIS, Kind
from redu_mcp.runtime import Runtime
from redu_mcp.views import InstanceDetail


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
                raise ResourceNotFoundError(f"no {kind.label} with id {id[:40]!r}: ids are integers from 1 to 2147483647")
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


Purpose = Annotated[str, Field(description="What the instance is for, e.g. 'a web shop's orders'")]
InstanceName = Annotated[str, Field(description="The instance name, if already chosen (lowercase, digits, hyphens)")]


def register_prompts(server: MCPServer) -> None:
    @server.prompt(name="provision_postgres", title="Provision a PostgreSQL database")
    def provision_postgres(purpose: Purpose = "an application", name: InstanceName = "") -> list:
        """Walk through creating a managed PostgreSQL database, step by step."""
        return _provision_messages("database", "PostgreSQL database", purpose, name)

    @server.prompt(name="provision_redis", title="Provision a Redis instance")
    def provision_redis(purpose: Purpose = "a cache", name: InstanceName = "") -> list:
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
