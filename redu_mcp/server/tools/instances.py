"""``list_<kind>s`` and ``get_<kind>``: instances as the API reports them, for every kind, with how to
connect to them (never the password: the credentials file this server saved, if any, holds it)."""

# No `from __future__ import annotations`: the SDK must evaluate these signatures, closures included.

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

from redu_mcp.api import AnyKind, NotFoundError, ReduError
from redu_mcp.provisioning.lookups import list_page
from redu_mcp.server.arguments import InstanceId, Limit, NameContains, Offset, StatusFilter, id_sources
from redu_mcp.server.kinds import KindChoice
from redu_mcp.server.results import InstanceDetails
from redu_mcp.server.runtime import runtime_of
from redu_mcp.server.specs import READS, Offer, ToolSpec
from redu_mcp.server.tools._common import not_found_error, reported_as_tool_error


class InstanceList(BaseModel):
    kind: KindChoice
    total: int = Field(description="Instances matching the filters")
    offset: int
    instances: list[InstanceDetails] = Field(description="Newest first")
    next_step: str | None = Field(default=None, description="How to see the rest, when more match than are shown")


def list_tool(kind: AnyKind) -> ToolSpec:
    async def list_instances(
        ctx: Context,
        limit: Limit = 20,
        offset: Offset = 0,
        name_contains: NameContains = None,
        status: StatusFilter = None,
    ) -> InstanceList:
        runtime = runtime_of(ctx)
        client = runtime.client_or_tool_error(f"list {kind.label}s")
        with reported_as_tool_error(runtime, f"list {kind.label}s"):
            page = await list_page(client, kind, offset=offset, limit=limit, name_contains=name_contains, status=status)
        filtered = bool(name_contains or status)
        return InstanceList(
            kind=kind.name,
            total=page.total,
            offset=offset,
            instances=[
                InstanceDetails.with_file(kind, i, runtime.credentials.path_of(runtime.principal(), kind, i))
                for i in page.instances
            ],
            next_step=runtime.words.list_next_step(kind, page.total, offset, len(page.instances), filtered),
        )

    return ToolSpec(
        name=f"list_{kind.collection}",
        title=f"List {kind.label}s",
        description=(
            f"List your {kind.label}s, newest first: status and how to connect (host, port, URI and credentials "
            "file; never the password). Optional: name_contains, status, and offset to page past the first limit. "
            "Read-only."
        ),
        profile=READS,
        fn=list_instances,
    )


def get_tool(kind: AnyKind) -> ToolSpec:
    async def get_instance(id: InstanceId, ctx: Context) -> InstanceDetails:
        runtime = runtime_of(ctx)
        client = runtime.client_or_tool_error(f"get {kind.label} {id}")
        try:
            instance = await client.get_instance(kind, id)
        except NotFoundError:
            raise await not_found_error(runtime, kind, id, "get") from None
        except ReduError as exc:
            raise ToolError(runtime.words.failure(f"get {kind.label} {id}", exc)) from None
        path = runtime.credentials.complete(runtime.principal(), kind, instance)  # the API's answer to this caller
        return InstanceDetails.with_file(kind, instance, path)

    def describe(offer: Offer) -> str:
        wait = (
            " To wait until it is ready, call wait_for_ready instead of repeating this."
            if offer.has("wait_for_ready")
            else ""
        )
        return (
            f"Get one {kind.label} by id: status, version and how to connect (host, port, URI and credentials file; "
            f"never the password).{wait} Read-only."
        )

    return ToolSpec(
        name=f"get_{kind.name}",
        title=f"Get a {kind.label}",
        description=describe,
        arguments=id_sources,
        profile=READS,
        fn=get_instance,
    )
