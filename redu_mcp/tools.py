"""The MCP tools: names, arguments, descriptions and annotations, registered by access level.

Database and Redis tools that differ only in their kind are made by one factory each, so their
arguments, checks and wording cannot drift apart. Every argument is typed and constrained in the
schema, so invalid input is refused before any request reaches the API.
"""

# No `from __future__ import annotations`: the SDK must evaluate these signatures, closures included.

from typing import Annotated, Literal

from mcp.server.mcpserver import (
    AcceptedElicitation,
    Context,
    Elicit,
    ElicitationResult,
    MCPServer,
    Resolve,
)
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ClientCapabilities, ToolAnnotations
from pydantic import BaseModel, Field

from redu_mcp import errors, instances
from redu_mcp.config import AccessLevel
from redu_mcp.kinds import DATABASE, KINDS, REDIS, Kind
from redu_mcp.models import (
    MAX_SECURITY_GROUPS,
    NAME_PATTERN,
    PASSWORD_MAX,
    PASSWORD_MIN,
    PG_IDENTIFIER_PATTERN,
    Instance,
    PostgresVersion,
    RedisVersion,
)
from redu_mcp.runtime import Runtime
from redu_mcp.views import (
    Connection,
    CreateResult,
    DeleteResult,
    FlavorList,
    InstanceDetail,
    InstanceList,
    InstanceView,
    KeypairList,
    NetworkList,
    SecurityGroupList,
    WaitResult,
    WhoAmI,
    compact_schema,
)
from redu_mcp.waiting import wait_until_ready

# --- argument types: the API's constraints, in the schema the model sees ---------------------------

InstanceId = Annotated[int, Field(ge=1, le=2**31 - 1, description="Instance id (from a list_* or create_* result)")]
Limit = Annotated[int, Field(ge=1, le=100, description="Most instances to return (default 20)")]
Name = Annotated[
    str,
    Field(
        pattern=NAME_PATTERN,
        max_length=63,
        description="Instance name: lowercase letters, digits and hyphens, starting with a letter (max 63)",
    ),
]
FlavorId = Annotated[str, Field(min_length=1, max_length=128, description="A flavor id from list_flavors")]
NetworkId = Annotated[str, Field(min_length=1, max_length=128, description="A network id from list_networks")]
KeypairName = Annotated[str, Field(min_length=1, max_length=255, description="A keypair name from list_keypairs")]
SecurityGroups = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=255)]] | None,
    Field(
        min_length=1,
        max_length=MAX_SECURITY_GROUPS,
        description='Security group names from list_security_groups (default ["default"])',
    ),
]
PgIdentifier = Annotated[str, Field(pattern=PG_IDENTIFIER_PATTERN, max_length=63)]
Password = Annotated[
    str | None,
    Field(
        min_length=PASSWORD_MIN,
        max_length=PASSWORD_MAX,
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

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=True)
CREATES = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True)
DESTROYS = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=True)

LEVELS: dict[AccessLevel, int] = {"read": 0, "create": 1, "full": 2}

#: The access level each tool needs. Tools above the server's level are not registered at all.
TOOL_LEVELS: dict[str, AccessLevel] = {
    "list_databases": "read",
    "get_database": "read",
    "list_redis": "read",
    "get_redis": "read",
    "wait_for_ready": "read",
    "list_flavors": "read",
    "list_networks": "read",
    "list_keypairs": "read",
    "list_security_groups": "read",
    "whoami": "read",
    "create_database": "create",
    "create_redis": "create",
    "delete_database": "full",
    "delete_redis": "full",
}


def tool_names(access: AccessLevel) -> list[str]:
    """The tools a server at ``access`` offers."""
    return [name for name, level in TOOL_LEVELS.items() if LEVELS[level] <= LEVELS[access]]


def register_tools(server: MCPServer, runtime: Runtime, access: AccessLevel) -> list[str]:
    """Register the tools allowed at ``access``; the others do not exist for this server."""
    allowed = LEVELS[access]
    registered: list[str] = []

    def add(fn, *, name: str, title: str, description: str, annotations: ToolAnnotations) -> None:
        if LEVELS[TOOL_LEVELS[name]] > allowed:
            return
        fn.__name__ = name
        annotations = annotations.model_copy(update={"title": title})
        server.add_tool(fn, name=name, title=title, description=description, annotations=annotations)
        # List leaner schemas (see compact_schema). The SDK reads both fields live; no public lookup.
        tool = server._tool_manager.get_tool(name)
        tool.parameters = compact_schema(tool.parameters)
        tool.fn_metadata.output_schema = compact_schema(tool.fn_metadata.output_schema, output=True)
        tool.__dict__.pop("output_schema", None)  # Tool.output_schema is a cached copy of the above
        registered.append(name)

    for kind in (DATABASE, REDIS):
        add(
            _list_tool(runtime, kind),
            name=f"list_{kind.collection}",
            title=f"List {kind.label}s",
            description=f"List your {kind.label}s (id, name, status, host, port), newest last. Read-only.",
            annotations=READ_ONLY,
        )
        add(
            _get_tool(runtime, kind),
            name=f"get_{kind.name}",
            title=f"Get a {kind.label}",
            description=(
                f"Get one {kind.label} by id: status, host, port, version. Read-only. To wait for it to become "
                "ready, use wait_for_ready instead of calling this repeatedly."
            ),
            annotations=READ_ONLY,
        )
        add(
            _delete_tool(runtime, kind),
            name=f"delete_{kind.name}",
            title=f"Delete a {kind.label}",
            description=(
                f"Permanently delete a {kind.label} and all its data. Irreversible. The user is asked to confirm "
                "when the client supports it; otherwise pass confirm_name equal to the instance's current name "
                f"(check it with get_{kind.name} first). Without a valid confirmation nothing is deleted."
            ),
            annotations=DESTROYS,
        )
    add(
        _create_database_tool(runtime),
        name="create_database",
        title="Create a PostgreSQL database",
        description=(
            "Create a managed PostgreSQL instance (billed while it exists). First look up flavor_id "
            "(list_flavors), network_id (list_networks) and keypair_name (list_keypairs), and ask the user "
            "if the choice is not obvious. Returns at once with status 'provisioning'; then call "
            "wait_for_ready. The one-time password is saved to a private credentials file whose path is "
            "returned, not shown. A name that already exists is reported, never duplicated."
        ),
        annotations=CREATES,
    )
    add(
        _create_redis_tool(runtime),
        name="create_redis",
        title="Create a Redis instance",
        description=(
            "Create a managed Redis instance (billed while it exists). First look up flavor_id (list_flavors), "
            "network_id (list_networks) and keypair_name (list_keypairs). Returns at once with status "
            "'provisioning'; then call wait_for_ready. The one-time password is saved to a private credentials "
            "file whose path is returned, not shown. A name that already exists is reported, never duplicated."
        ),
        annotations=CREATES,
    )
    add(
        _wait_tool(runtime),
        name="wait_for_ready",
        title="Wait until an instance is ready",
        description=(
            "Wait for a database or redis instance to finish provisioning, reporting progress, for at most "
            "timeout_seconds (default 40). Returns ready=true with connection details, or ready=false with "
            "the last status: then call it again (provisioning can take several minutes). Fails if "
            "provisioning failed or the instance no longer exists. Read-only."
        ),
        annotations=READ_ONLY,
    )
    for name, title, description, fn in _lookup_tools(runtime):
        add(fn, name=name, title=title, description=description, annotations=READ_ONLY)
    return registered


def _list_tool(runtime: Runtime, kind: Kind):
    async def list_instances(limit: Limit = 20) -> InstanceList:
        return await instances.list_instances(runtime, kind, limit)

    return list_instances


def _get_tool(runtime: Runtime, kind: Kind):
    async def get_instance(id: InstanceId) -> InstanceDetail:
        return await instances.get_instance(runtime, kind, id)

    return get_instance


# --- delete, confirmed ------------------------------------------------------------------------------


class ConfirmDelete(BaseModel):
    # Strict: only a JSON true confirms. Lax pydantic would also read "yes", "on", "1" or 1 as true.
    confirm: bool = Field(strict=True, description="Delete it permanently, with all its data? This cannot be undone.")


class NameCheck(BaseModel):
    """The confirmation when the client cannot ask the user: ``confirm_name`` against a fresh GET."""

    confirmed: bool
    reason: str
    next_step: str = ""


def can_ask_user(capabilities: ClientCapabilities | None) -> bool:
    """Does the client take form elicitations? (A bare ``elicitation: {}`` means form; url-only does not.)

    Mirrors the SDK's own check, so a client it would refuse to ask falls back to confirm_name
    instead of failing the call with a protocol error."""
    elicitation = capabilities.elicitation if capabilities is not None else None
    return elicitation is not None and (elicitation.form is not None or elicitation.url is None)


def _delete_tool(runtime: Runtime, kind: Kind):
    async def current(id: InstanceId) -> Instance:
        """A fresh GET of the target: the confirmation is checked against what exists now."""
        with instances.reported_as_tool_error(f"look up {kind.label} {id} before deleting it"):
            return await runtime.client().get_instance(kind, id)

    async def confirmation(
        ctx: Context, target: Annotated[Instance, Resolve(current)], confirm_name: ConfirmName = None
    ) -> Elicit[ConfirmDelete] | NameCheck:
        described = f"{kind.label} '{target.name}' (id {target.id})"
        if confirm_name is not None and confirm_name != target.name:
            # Refused outright, even when the client could ask the user: the caller named another instance.
            return NameCheck(
                confirmed=False,
                reason=f"confirm_name '{confirm_name}' does not match the name of {kind.label} {target.id}, "
                f"which is '{target.name}'",
                next_step=f"Check that {described} is the one the user wants deleted (get_{kind.name}); only "
                "then call again with confirm_name set to its exact current name.",
            )
        if can_ask_user(ctx.client_capabilities):
            return Elicit(
                f"Delete {described}? All its data will be lost; this cannot be undone.",
                ConfirmDelete,
            )
        if confirm_name is None:
            return NameCheck(
                confirmed=False,
                reason="this client cannot ask the user to confirm, and no confirm_name was given",
                next_step=f"Only if the user asked to delete {described}, call again with "
                f"confirm_name='{target.name}'.",
            )
        return NameCheck(confirmed=True, reason="confirm_name matches")

    async def delete_instance(
        id: InstanceId,
        target: Annotated[Instance, Resolve(current)],
        decision: Annotated[ElicitationResult[ConfirmDelete | NameCheck], Resolve(confirmation)],
        confirm_name: ConfirmName = None,
    ) -> DeleteResult:
        refusal = _refusal(decision)
        if refusal is not None:
            return DeleteResult(deleted=False, kind=kind.name, id=id, name=target.name, message=refusal)
        return await instances.delete_instance(runtime.client(), kind, target)

    return delete_instance


def _refusal(decision: ElicitationResult[ConfirmDelete | NameCheck]) -> str | None:
    """Why the deletion must not go ahead and what to do instead, or None when it is confirmed."""
    dont_retry = "Do not retry unless the user asks for this deletion again."
    if not isinstance(decision, AcceptedElicitation):
        who = "declined" if decision.action == "decline" else "cancelled"
        return f"Nothing was deleted: the user {who} the confirmation. {dont_retry}"
    data = decision.data
    if isinstance(data, NameCheck):
        return None if data.confirmed else f"Nothing was deleted: {data.reason}. {data.next_step}".rstrip()
    return None if data.confirm is True else f"Nothing was deleted: the user did not confirm the deletion. {dont_retry}"


# --- create ---------------------------------------------------------------------------------------


def _create_database_tool(runtime: Runtime):
    async def create_database(
        name: Name,
        flavor_id: FlavorId,
        network_id: NetworkId,
        keypair_name: KeypairName,
        db_name: Annotated[PgIdentifier, Field(description="Database to create (default 'app')")] = "app",
        db_user: Annotated[PgIdentifier, Field(description="Owner role to create (default 'appuser')")] = "appuser",
        db_password: Password = None,
        version: Annotated[PostgresVersion, Field(description="PostgreSQL major version")] = "16",
        security_group_names: SecurityGroups = None,
    ) -> CreateResult:
        return await _create(runtime, DATABASE, locals())

    return create_database


def _create_redis_tool(runtime: Runtime):
    async def create_redis(
        name: Name,
        flavor_id: FlavorId,
        network_id: NetworkId,
        keypair_name: KeypairName,
        password: Password = None,
        version: Annotated[RedisVersion, Field(description="Redis major version")] = "7",
        security_group_names: SecurityGroups = None,
    ) -> CreateResult:
        return await _create(runtime, REDIS, locals())

    return create_redis


async def _create(runtime: Runtime, kind: Kind, arguments: dict) -> CreateResult:
    """The create body from a create tool's arguments (its ``locals()``, whose parameters are the body's
    fields): arguments left out take the API's documented defaults from the body model."""
    fields = kind.create_body.model_fields
    given = {name: value for name, value in arguments.items() if name in fields and value is not None}
    return await instances.create_instance(runtime, kind, kind.create_body.model_validate(given))


# --- wait -----------------------------------------------------------------------------------------


def _wait_tool(runtime: Runtime):
    async def wait_for_ready(
        kind: Annotated[Literal["database", "redis"], Field(description="'database' (PostgreSQL) or 'redis'")],
        id: InstanceId,
        ctx: Context,
        timeout_seconds: Annotated[
            float, Field(gt=0, le=300, description="Give up after this many seconds (default 40)")
        ] = 40.0,
        poll_interval_seconds: Annotated[
            float | None, Field(ge=0.05, le=120, description="Seconds between polls (default: the server's)")
        ] = None,
    ) -> WaitResult:
        target = KINDS[kind]
        with instances.reported_as_tool_error(f"wait for {target.label} {id}"):
            client = runtime.poll_client()
        interval = poll_interval_seconds or runtime.settings.poll_interval

        async def progress(elapsed: float, message: str) -> None:
            await ctx.report_progress(min(elapsed, timeout_seconds), timeout_seconds, message)

        outcome = await wait_until_ready(
            runtime.board,
            (runtime.caller_identity(), kind, id),
            lambda: client.get_instance(target, id),
            timeout=timeout_seconds,
            interval=interval,
            on_poll=progress,
        )
        label = f"{target.label} {id}"
        if outcome.error is not None:
            if isinstance(outcome.error, errors.NotFoundError):
                raise ToolError(
                    f"{label} does not exist (it may have been deleted; {outcome.error}). Next step: "
                    f"list_{target.collection} to see what exists."
                )
            in_a_row = outcome.failures_in_a_row
            with instances.reported_as_tool_error(
                f"wait for {label}", f"{in_a_row} polls in a row failed; it stopped polling." if in_a_row > 1 else ""
            ):
                raise outcome.error
        instance = outcome.instance
        if outcome.failed:
            raise ToolError(
                f"Provisioning failed: {target.label} '{instance.name}' (id {id}) is in status 'error'. "
                f"Next step: delete it (delete_{target.name}) and create it again, perhaps with another flavor."
            )
        if instance is None:
            last = f" (last poll: {outcome.last_error})" if outcome.last_error else ""
            raise ToolError(
                f"No answer about {label} within {timeout_seconds:g}s{last}. Next step: call wait_for_ready again "
                "shortly; do not create another instance."
            )
        if outcome.ready:
            path = runtime.credentials.complete(target, instance)
            return WaitResult(
                ready=True,
                status=outcome.status,
                instance=InstanceView.of(target, instance),
                elapsed_seconds=round(outcome.elapsed, 2),
                polls=outcome.polls,
                connection=Connection.of(target, instance),
                credentials_file=str(path) if path else None,
                next_step=(
                    "Ready. Connect with the connection details"
                    + (f"; the password is in {path}." if path else ".")
                ),
            )
        return WaitResult(
            ready=False,
            status=outcome.status,
            instance=InstanceView.of(target, instance),
            elapsed_seconds=round(outcome.elapsed, 2),
            polls=outcome.polls,
            next_step=(
                f"Still {outcome.status} after {outcome.elapsed:.0f}s. Call wait_for_ready again with the same "
                "arguments; do not create another instance."
            ),
        )

    return wait_for_ready


# --- lookups and identity -------------------------------------------------------------------------


def _lookup_tools(runtime: Runtime):
    async def list_flavors() -> FlavorList:
        with instances.reported_as_tool_error("list flavors"):
            return FlavorList(flavors=await runtime.client().list_flavors())

    async def list_networks() -> NetworkList:
        with instances.reported_as_tool_error("list networks"):
            return NetworkList(networks=await runtime.client().list_networks())

    async def list_keypairs() -> KeypairList:
        with instances.reported_as_tool_error("list keypairs"):
            return KeypairList(keypairs=await runtime.client().list_keypairs())

    async def list_security_groups() -> SecurityGroupList:
        with instances.reported_as_tool_error("list security groups"):
            return SecurityGroupList(security_groups=await runtime.client().list_security_groups())

    async def whoami() -> WhoAmI:
        with instances.reported_as_tool_error("check the API key"):
            user = await runtime.client().me()
        settings = runtime.settings
        return WhoAmI(user=user, api_url=settings.api_url, sandbox=settings.sandbox, access=settings.access)

    return [
        ("list_flavors", "List flavors", "List instance sizes (flavor id, vCPUs, RAM, disk) for create_*. Read-only.", list_flavors),
        ("list_networks", "List networks", "List networks (id, name) an instance can join, for create_*. Read-only.", list_networks),
        ("list_keypairs", "List keypairs", "List SSH keypairs (name) for the keypair_name of create_*. Read-only.", list_keypairs),
        (
            "list_security_groups",
            "List security groups",
            "List security groups (name, rules) for the security_group_names of create_*. Read-only.",
            list_security_groups,
        ),
        ("whoami", "Who am I", "Check the API key: the Redu user it belongs to, and this server's mode. Read-only.", whoami),
    ]
