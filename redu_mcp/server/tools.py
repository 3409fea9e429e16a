"""The MCP tools: one ``ToolSpec`` each (name, title, description, profile), in ``TOOLS``.

Database and Redis tools that differ only in their kind are made by one factory each, so their
arguments, checks and wording cannot drift apart. A tool body reads its arguments, calls the API
library or provisioning, and hands the outcome to the server's ``Wording``; it reaches the server's
``Runtime`` through its ``Context``. Descriptions name only tools offered at every access level
that has the tool, so no text points at a tool the model cannot call.
"""

# No `from __future__ import annotations`: the SDK must evaluate these signatures, closures included.

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Annotated, Any, Final, Literal

from mcp.server.mcpserver import Context, Resolve
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field, SecretStr

from redu_mcp.api import (
    DATABASE,
    DEFAULT_DB_NAME,
    DEFAULT_DB_USER,
    DEFAULT_POSTGRES_VERSION,
    DEFAULT_REDIS_VERSION,
    DEFAULT_SECURITY_GROUPS,
    KINDS,
    REDIS,
    AnyKind,
    CreateBody,
    DatabaseCreate,
    Instance,
    NotFoundError,
    PostgresVersion,
    RedisCreate,
    RedisVersion,
    ReduError,
    RetryPolicy,
)
from redu_mcp.provisioning.audit import AuditRecord, Outcome
from redu_mcp.provisioning.create import (
    AlreadyExists,
    Created,
    CreatedAnswerLost,
    NotCreated,
    OutcomeUnknown,
    create_instance,
)
from redu_mcp.provisioning.credentials import deliver_password
from redu_mcp.provisioning.delete import Deleted, Unverified, delete_instance
from redu_mcp.provisioning.lookups import create_lookups, list_page, other_kind_of
from redu_mcp.provisioning.waiting import Poll, wait_until_ready
from redu_mcp.server import wording
from redu_mcp.server.arguments import (
    ConfirmName,
    FlavorId,
    InstanceId,
    KeypairName,
    Limit,
    Name,
    NameContains,
    NetworkId,
    Offset,
    Password,
    PgIdentifier,
    SecurityGroups,
    StatusFilter,
)
from redu_mcp.server.confirmation import Decision, confirmed_by, refusal_of, resolvers
from redu_mcp.server.results import (
    CreateOptions,
    CreateResult,
    DeleteResult,
    InstanceList,
    InstanceView,
    WaitResult,
    WhoAmI,
)
from redu_mcp.server.runtime import Runtime, runtime_of
from redu_mcp.server.specs import CREATES, DESTROYS, READS, AccessLevel, ToolSpec, level_allows

DEFAULT_WAIT_SECONDS: Final = 40.0
MAX_WAIT_SECONDS: Final = 45.0  # each call ends well before the ~60 s after which desktop clients give up


@contextmanager
def reported_as_tool_error(runtime: Runtime, doing: str, note: str = "") -> Iterator[None]:
    """Turn an API failure into an error result a model can act on: what failed, why, what next."""
    try:
        yield
    except ReduError as exc:
        raise ToolError(runtime.words.failure(doing, exc, note)) from None


def audit(
    ctx: Context,
    tool: str,
    kind: AnyKind,
    outcome: Outcome,
    *,
    id: int | None = None,
    name: str | None = None,
    detail: str | None = None,
) -> None:
    """One line in the audit trail (when one is configured): who did what to which instance."""
    runtime = runtime_of(ctx)
    request_id = str(ctx.request_id) if ctx.request_id is not None else None
    record = AuditRecord(runtime.principal(), tool, kind.name, outcome, id, name, request_id, detail)
    runtime.audit.record(record)


async def not_found_error(runtime: Runtime, kind: AnyKind, id: int, tool: Literal["get", "wait"]) -> ToolError:
    """A 404, worded with the tool that fits when the id is the other kind's (one more GET)."""
    other = await other_kind_of(runtime.client(), kind, id)
    return ToolError(runtime.words.not_found(kind, id, other, tool))


# --- instances: list, get --------------------------------------------------------------------------


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
            instances=[InstanceView.of(kind, i) for i in page.instances],
            next_step=runtime.words.list_next_step(kind, page.total, offset, len(page.instances), filtered),
        )

    return ToolSpec(
        name=f"list_{kind.collection}",
        title=f"List {kind.label}s",
        description=(
            f"List your {kind.label}s, newest first (id, name, status, host, port). Optional: name_contains, "
            "status, and offset to page past the first limit. Read-only."
        ),
        profile=READS,
        fn=list_instances,
    )


def get_tool(kind: AnyKind) -> ToolSpec:
    async def get_instance(id: InstanceId, ctx: Context) -> InstanceView:
        runtime = runtime_of(ctx)
        client = runtime.client_or_tool_error(f"get {kind.label} {id}")
        try:
            instance = await client.get_instance(kind, id)
        except NotFoundError:
            raise await not_found_error(runtime, kind, id, "get") from None
        except ReduError as exc:
            raise ToolError(runtime.words.failure(f"get {kind.label} {id}", exc)) from None
        runtime.credentials.complete(runtime.principal(), kind, instance)  # the API's answer to this caller
        return InstanceView.of(kind, instance)

    return ToolSpec(
        name=f"get_{kind.name}",
        title=f"Get a {kind.label}",
        description=(
            f"Get one {kind.label} by id: status, host, port, version. To wait until it is ready, call "
            "wait_for_ready instead of repeating this. Read-only."
        ),
        profile=READS,
        fn=get_instance,
    )


# --- delete, confirmed -----------------------------------------------------------------------------


def delete_tool(kind: AnyKind) -> ToolSpec:
    current, confirmation = resolvers(kind)

    async def delete(
        id: InstanceId,
        ctx: Context,
        target: Annotated[Instance | None, Resolve(current)],
        decision: Annotated[Decision, Resolve(confirmation)],
        confirm_name: ConfirmName = None,
    ) -> DeleteResult:
        runtime = runtime_of(ctx)
        words, tool = runtime.words, f"delete_{kind.name}"
        if target is None:
            audit(ctx, tool, kind, "already_gone", id=id)
            return DeleteResult(deleted=False, kind=kind.name, id=id, message=words.already_gone(kind, id))
        refusal = refusal_of(decision)
        if refusal is not None:
            audit(ctx, tool, kind, "refused", id=id, name=target.name, detail=refusal.why)
            message = words.refused(kind, target, refusal)
            return DeleteResult(deleted=False, kind=kind.name, id=id, name=target.name, message=message)
        audit(ctx, tool, kind, "confirmed", id=id, name=target.name, detail=f"by {confirmed_by(decision)}")
        try:
            outcome = await delete_instance(runtime.client(), kind, target)
        except ReduError as exc:
            audit(ctx, tool, kind, "delete_failed", id=id, name=target.name, detail=type(exc).__name__)
            raise ToolError(words.failure(f"delete {kind.label} {target.id}", exc)) from None
        if isinstance(outcome, Unverified):
            audit(ctx, tool, kind, "delete_failed", id=id, name=target.name, detail="unverified")
            raise ToolError(words.delete_unverified(kind, target, outcome))
        audit(ctx, tool, kind, "deleted" if isinstance(outcome, Deleted) else "not_deleted", id=id, name=target.name)
        return words.delete_result(kind, target, outcome)

    return ToolSpec(
        name=f"delete_{kind.name}",
        title=f"Delete a {kind.label}",
        description=(
            f"Permanently delete a {kind.label} and all its data (irreversible). Pass id and confirm_name, the "
            f"instance's exact current name (from list_{kind.collection} or get_{kind.name}); if the client can "
            "ask the user, the user must also confirm. Without both, nothing is deleted."
        ),
        profile=DESTROYS,
        fn=delete,
    )


# --- create ----------------------------------------------------------------------------------------


async def create(ctx: Context, kind: AnyKind, body: CreateBody) -> CreateResult:
    """Create one instance (never two) and hand its password over as the server is configured to."""
    runtime = runtime_of(ctx)
    words, tool, name = runtime.words, f"create_{kind.name}", body.name
    try:
        client = runtime.client()
    except ReduError as exc:
        raise ToolError(words.not_created(kind, name, NotCreated("lookup_failed", exc))) from None
    outcome = await create_instance(client, kind, body)
    secrets, store, principal = runtime.settings.secrets, runtime.credentials, runtime.principal()
    match outcome:
        case Created(instance=instance, password=password, supplied=supplied):
            delivered = deliver_password(store, secrets, principal, kind, instance, password, supplied)
            audit(ctx, tool, kind, "created", id=instance.id, name=name, detail=type(delivered).__name__)
            return words.created_result(kind, outcome, delivered)
        case CreatedAnswerLost(instance=instance, password=password):
            recovered = (
                deliver_password(store, secrets, principal, kind, instance, password, True) if password else None
            )
            audit(ctx, tool, kind, "created_answer_lost", id=instance.id, name=name)
            return words.created_result(kind, outcome, recovered)
        case AlreadyExists(instance=existing):
            audit(ctx, tool, kind, "already_exists", id=existing.id, name=name)
            return words.already_exists_result(kind, outcome)
        case NotCreated(reason=reason):
            audit(ctx, tool, kind, "not_created", name=name, detail=reason)
            raise ToolError(words.not_created(kind, name, outcome))
        case OutcomeUnknown():
            audit(ctx, tool, kind, "unknown", name=name)
            raise ToolError(words.outcome_unknown(kind, name, outcome))


def secret(password: str | None) -> SecretStr | None:
    return SecretStr(password) if password is not None else None


async def create_database(
    name: Name,
    flavor_id: FlavorId,
    network_id: NetworkId,
    keypair_name: KeypairName,
    ctx: Context,
    db_name: Annotated[PgIdentifier, Field(description="Database to create (default 'app')")] = DEFAULT_DB_NAME,
    db_user: Annotated[PgIdentifier, Field(description="Owner role to create (default 'appuser')")] = DEFAULT_DB_USER,
    db_password: Password = None,
    version: Annotated[PostgresVersion, Field(description="PostgreSQL major version")] = DEFAULT_POSTGRES_VERSION,
    security_group_names: SecurityGroups = None,
) -> CreateResult:
    body = DatabaseCreate(
        name=name,
        flavor_id=flavor_id,
        network_id=network_id,
        keypair_name=keypair_name,
        security_group_names=security_group_names or list(DEFAULT_SECURITY_GROUPS),
        db_name=db_name,
        db_user=db_user,
        db_password=secret(db_password),
        version=version,
    )
    return await create(ctx, DATABASE, body)


async def create_redis(
    name: Name,
    flavor_id: FlavorId,
    network_id: NetworkId,
    keypair_name: KeypairName,
    ctx: Context,
    password: Password = None,
    version: Annotated[RedisVersion, Field(description="Redis major version")] = DEFAULT_REDIS_VERSION,
    security_group_names: SecurityGroups = None,
) -> CreateResult:
    body = RedisCreate(
        name=name,
        flavor_id=flavor_id,
        network_id=network_id,
        keypair_name=keypair_name,
        security_group_names=security_group_names or list(DEFAULT_SECURITY_GROUPS),
        password=secret(password),
        version=version,
    )
    return await create(ctx, REDIS, body)


def create_description(what: str) -> str:
    return (
        f"Create a managed {what} (billed while it exists). Take flavor_id, network_id and keypair_name from "
        "list_create_options; ask the user when the choice is not obvious. Returns at once with status "
        "'provisioning': then call wait_for_ready. The one-time password goes to a private credentials file "
        "(its path is returned). An existing name is reported, never duplicated."
    )


# --- wait ------------------------------------------------------------------------------------------


async def wait_for_ready(
    kind: Annotated[Literal["database", "redis"], Field(description="'database' (PostgreSQL) or 'redis'")],
    id: InstanceId,
    ctx: Context,
    timeout_seconds: Annotated[
        float,
        Field(gt=0, le=MAX_WAIT_SECONDS, description="Seconds this call may wait (default 40, at most 45)"),
    ] = DEFAULT_WAIT_SECONDS,
) -> WaitResult:
    runtime = runtime_of(ctx)
    target = KINDS[kind]
    # No retries for polls: the wait polls again at its interval anyway.
    client = runtime.client_or_tool_error(f"wait for {target.label} {id}").with_retry(RetryPolicy.none())

    async def progress(poll: Poll) -> None:
        await ctx.report_progress(min(poll.elapsed, timeout_seconds), timeout_seconds, wording.poll_progress(poll))

    outcome = await wait_until_ready(
        runtime.board,
        (runtime.caller_identity(), kind, id),
        lambda: client.get_instance(target, id),
        interval=runtime.settings.poll_interval,
        on_poll=progress,
    )
    if isinstance(outcome.error, NotFoundError):
        raise await not_found_error(runtime, target, id, "wait")
    problem = runtime.words.wait_failure(target, id, outcome, timeout_seconds)
    if problem is not None:
        raise ToolError(problem)
    ready = outcome.instance if outcome.ready else None  # the API's own answer to this caller (see waiting)
    path = runtime.credentials.complete(runtime.principal(), target, ready) if ready is not None else None
    return runtime.words.wait_result(target, outcome, str(path) if path else None)


def wait_deadline(arguments: Mapping[str, Any]) -> float:
    """A wait's deadline is its own ``timeout_seconds``."""
    timeout = arguments.get("timeout_seconds", DEFAULT_WAIT_SECONDS)
    return float(timeout) if isinstance(timeout, (int, float)) else DEFAULT_WAIT_SECONDS


# --- look-ups and identity ----------------------------------------------------------------------------


async def list_create_options(ctx: Context) -> CreateOptions:
    runtime = runtime_of(ctx)
    client = runtime.client_or_tool_error("list the create options")
    with reported_as_tool_error(runtime, "list the create options"):
        found = await create_lookups(client)
    return CreateOptions.of(found.flavors, found.networks, found.keypairs, found.security_groups)


async def whoami(ctx: Context) -> WhoAmI:
    runtime = runtime_of(ctx)
    client = runtime.client_or_tool_error("check the API key")
    with reported_as_tool_error(runtime, "check the API key"):
        user = await client.me()
    settings = runtime.settings
    return WhoAmI(user=user, api_url=settings.api_url, sandbox=settings.sandbox, access=settings.access)


def _per_kind(*factories: Callable[[AnyKind], ToolSpec]) -> list[ToolSpec]:
    return [factory(kind) for kind in (DATABASE, REDIS) for factory in factories]


#: Every tool, in the order they are listed.
TOOLS: Final[tuple[ToolSpec, ...]] = (
    *_per_kind(list_tool, get_tool, delete_tool),
    ToolSpec(
        name="create_database",
        title="Create a PostgreSQL database",
        description=create_description("PostgreSQL database"),
        profile=CREATES,
        fn=create_database,
    ),
    ToolSpec(
        name="create_redis",
        title="Create a Redis instance",
        description=create_description("Redis instance"),
        profile=CREATES,
        fn=create_redis,
    ),
    ToolSpec(
        name="wait_for_ready",
        title="Wait until an instance is ready",
        description=(
            "Wait while a database or redis instance provisions, with progress, for up to timeout_seconds. "
            "ready=true: connection details. ready=false: call it again (provisioning can take minutes); never "
            "create another instance because of it. Read-only."
        ),
        profile=READS,
        fn=wait_for_ready,
        deadline=wait_deadline,
    ),
    ToolSpec(
        name="list_create_options",
        title="List what instances can be created with",
        description=(
            "Everything a create needs, in one call: flavors (sizes), networks, SSH keypairs, security groups, "
            "the versions of each kind, and the defaults. Read-only."
        ),
        profile=READS,
        fn=list_create_options,
    ),
    ToolSpec(
        name="whoami",
        title="Who am I",
        description="Check the API key: the Redu user it belongs to, and this server's mode. Read-only.",
        profile=READS,
        fn=whoami,
    ),
)


def tools_for(access: AccessLevel) -> list[ToolSpec]:
    """The tools a server at ``access`` offers; the others do not exist for it."""
    return [spec for spec in TOOLS if level_allows(access, spec.level)]
