"""The MCP tools: one ``ToolSpec`` each (name, title, description, profile), in ``TOOLS``.

Database and Redis tools that differ only in their kind are made by one factory each, so their
arguments, checks and wording cannot drift apart. A tool body reads its arguments, calls the API
library or provisioning, and hands the outcome to ``wording``; it reaches the server's ``Runtime``
through its ``Context``.
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
    PostgresVersion,
    RedisCreate,
    RedisVersion,
    ReduError,
)
from redu_mcp.provisioning.create import (
    AlreadyExists,
    Created,
    CreatedAnswerLost,
    NotCreated,
    OutcomeUnknown,
    create_instance,
)
from redu_mcp.provisioning.credentials import deliver_password
from redu_mcp.provisioning.delete import Unverified, delete_instance
from redu_mcp.provisioning.waiting import Poll, wait_until_ready
from redu_mcp.server import wording
from redu_mcp.server.arguments import (
    ConfirmName,
    FlavorId,
    InstanceId,
    KeypairName,
    Limit,
    Name,
    NetworkId,
    Password,
    PgIdentifier,
    SecurityGroups,
)
from redu_mcp.server.confirmation import Decision, refusal_of, resolvers
from redu_mcp.server.results import (
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
)
from redu_mcp.server.runtime import Runtime, runtime_of
from redu_mcp.server.specs import CREATES, DESTROYS, READS, AccessLevel, ToolSpec, level_allows

DEFAULT_WAIT_SECONDS: Final = 40.0


@contextmanager
def reported_as_tool_error(doing: str, note: str = "") -> Iterator[None]:
    """Turn an API failure into an error result a model can act on: what failed, why, what next."""
    try:
        yield
    except ReduError as exc:
        raise ToolError(wording.failure(doing, exc, note)) from None


# --- instances: list, get --------------------------------------------------------------------------


def list_tool(kind: AnyKind) -> ToolSpec:
    async def list_instances(ctx: Context, limit: Limit = 20) -> InstanceList:
        with reported_as_tool_error(f"list {kind.label}s"):
            found = await runtime_of(ctx).client().list_instances(kind, limit=limit + 1)
        shown = found[:limit]
        return InstanceList(
            kind=kind.name,
            count=len(shown),
            truncated=len(found) > limit,
            instances=[InstanceView.of(kind, i) for i in shown],
        )

    return ToolSpec(
        name=f"list_{kind.collection}",
        title=f"List {kind.label}s",
        description=f"List your {kind.label}s (id, name, status, host, port), newest last. Read-only.",
        profile=READS,
        fn=list_instances,
    )


def get_tool(kind: AnyKind) -> ToolSpec:
    async def get_instance(id: InstanceId, ctx: Context) -> InstanceDetail:
        runtime = runtime_of(ctx)
        with reported_as_tool_error(f"get {kind.label} {id}"):
            instance = await runtime.client().get_instance(kind, id)
        runtime.credentials.complete(kind, instance)
        return InstanceDetail.of(kind, instance)

    return ToolSpec(
        name=f"get_{kind.name}",
        title=f"Get a {kind.label}",
        description=(
            f"Get one {kind.label} by id: status, host, port, version. Read-only. To wait for it to become "
            "ready, use wait_for_ready instead of calling this repeatedly."
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
        target: Annotated[Instance, Resolve(current)],
        decision: Annotated[Decision, Resolve(confirmation)],
        confirm_name: ConfirmName = None,
    ) -> DeleteResult:
        refusal = refusal_of(decision)
        if refusal is not None:
            return DeleteResult(
                deleted=False, kind=kind.name, id=id, name=target.name, message=wording.refused(kind, target, refusal)
            )
        with reported_as_tool_error(wording.deleting(kind, target.id)):
            outcome = await delete_instance(runtime_of(ctx).client(), kind, target)
        if isinstance(outcome, Unverified):
            raise ToolError(wording.delete_unverified(kind, target, outcome))
        return wording.delete_result(kind, target, outcome)

    return ToolSpec(
        name=f"delete_{kind.name}",
        title=f"Delete a {kind.label}",
        description=(
            f"Permanently delete a {kind.label} and all its data. Irreversible. The user is asked to confirm "
            "when the client supports it; otherwise pass confirm_name equal to the instance's current name "
            f"(check it with get_{kind.name} first). Without a valid confirmation nothing is deleted."
        ),
        profile=DESTROYS,
        fn=delete,
    )


# --- create ----------------------------------------------------------------------------------------


async def create(runtime: Runtime, kind: AnyKind, body: CreateBody) -> CreateResult:
    """Create one instance (never two) and hand its password over as the server is configured to."""
    try:
        client = runtime.client()
    except ReduError as exc:
        outcome: object = NotCreated("lookup_failed", exc)
    else:
        outcome = await create_instance(client, kind, body)
    match outcome:
        case Created(instance=instance, password=password, supplied=supplied):
            settings = runtime.settings
            delivery = deliver_password(runtime.credentials, settings.secrets, kind, instance, password, supplied)
            return wording.created_result(kind, outcome, delivery)
        case CreatedAnswerLost(instance=instance, password=password) if password is not None:
            delivery = deliver_password(runtime.credentials, runtime.settings.secrets, kind, instance, password, True)
            return wording.created_result(kind, outcome, delivery)
        case CreatedAnswerLost():
            return wording.created_result(kind, outcome, None)
        case AlreadyExists():
            return wording.already_exists_result(kind, outcome)
        case NotCreated():
            raise ToolError(wording.not_created(kind, body.name, outcome))
        case OutcomeUnknown():
            raise ToolError(wording.outcome_unknown(kind, body.name, outcome))
    raise AssertionError(f"unexpected create outcome {outcome!r}")


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
    return await create(runtime_of(ctx), DATABASE, body)


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
    return await create(runtime_of(ctx), REDIS, body)


# --- wait ------------------------------------------------------------------------------------------


async def wait_for_ready(
    kind: Annotated[Literal["database", "redis"], Field(description="'database' (PostgreSQL) or 'redis'")],
    id: InstanceId,
    ctx: Context,
    timeout_seconds: Annotated[
        float, Field(gt=0, le=300, description="Give up after this many seconds (default 40)")
    ] = DEFAULT_WAIT_SECONDS,
    poll_interval_seconds: Annotated[
        float | None, Field(ge=0.05, le=120, description="Seconds between polls (default: the server's)")
    ] = None,
) -> WaitResult:
    runtime = runtime_of(ctx)
    target = KINDS[kind]
    with reported_as_tool_error(f"wait for {target.label} {id}"):
        client = runtime.poll_client()

    async def progress(poll: Poll) -> None:
        await ctx.report_progress(min(poll.elapsed, timeout_seconds), timeout_seconds, wording.poll_progress(poll))

    outcome = await wait_until_ready(
        runtime.board,
        (runtime.caller_identity(), kind, id),
        lambda: client.get_instance(target, id),
        interval=poll_interval_seconds or runtime.settings.poll_interval,
        on_poll=progress,
    )
    problem = wording.wait_failure(target, id, outcome, timeout_seconds)
    if problem is not None:
        raise ToolError(problem)
    path = runtime.credentials.complete(target, outcome.instance) if outcome.ready and outcome.instance else None
    return wording.wait_result(target, outcome, str(path) if path else None)


def wait_deadline(arguments: Mapping[str, Any]) -> float:
    """A wait's deadline is its own ``timeout_seconds``."""
    timeout = arguments.get("timeout_seconds", DEFAULT_WAIT_SECONDS)
    return float(timeout) if isinstance(timeout, (int, float)) else DEFAULT_WAIT_SECONDS


# --- lookups and identity ----------------------------------------------------------------------------


async def list_flavors(ctx: Context) -> FlavorList:
    with reported_as_tool_error("list flavors"):
        return FlavorList(flavors=await runtime_of(ctx).client().list_flavors())


async def list_networks(ctx: Context) -> NetworkList:
    with reported_as_tool_error("list networks"):
        return NetworkList(networks=await runtime_of(ctx).client().list_networks())


async def list_keypairs(ctx: Context) -> KeypairList:
    with reported_as_tool_error("list keypairs"):
        return KeypairList(keypairs=await runtime_of(ctx).client().list_keypairs())


async def list_security_groups(ctx: Context) -> SecurityGroupList:
    with reported_as_tool_error("list security groups"):
        return SecurityGroupList(security_groups=await runtime_of(ctx).client().list_security_groups())


async def whoami(ctx: Context) -> WhoAmI:
    runtime = runtime_of(ctx)
    with reported_as_tool_error("check the API key"):
        user = await runtime.client().me()
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
        description=(
            "Create a managed PostgreSQL instance (billed while it exists). First look up flavor_id "
            "(list_flavors), network_id (list_networks) and keypair_name (list_keypairs), and ask the user "
            "if the choice is not obvious. Returns at once with status 'provisioning'; then call "
            "wait_for_ready. The one-time password is saved to a private credentials file whose path is "
            "returned, not shown. A name that already exists is reported, never duplicated."
        ),
        profile=CREATES,
        fn=create_database,
    ),
    ToolSpec(
        name="create_redis",
        title="Create a Redis instance",
        description=(
            "Create a managed Redis instance (billed while it exists). First look up flavor_id (list_flavors), "
            "network_id (list_networks) and keypair_name (list_keypairs). Returns at once with status "
            "'provisioning'; then call wait_for_ready. The one-time password is saved to a private credentials "
            "file whose path is returned, not shown. A name that already exists is reported, never duplicated."
        ),
        profile=CREATES,
        fn=create_redis,
    ),
    ToolSpec(
        name="wait_for_ready",
        title="Wait until an instance is ready",
        description=(
            "Wait for a database or redis instance to finish provisioning, reporting progress, for at most "
            "timeout_seconds (default 40). Returns ready=true with connection details, or ready=false with "
            "the last status: then call it again (provisioning can take several minutes). Fails if "
            "provisioning failed or the instance no longer exists. Read-only."
        ),
        profile=READS,
        fn=wait_for_ready,
        deadline=wait_deadline,
    ),
    ToolSpec(
        name="list_flavors",
        title="List flavors",
        description="List instance sizes (flavor id, vCPUs, RAM, disk) for create_*. Read-only.",
        profile=READS,
        fn=list_flavors,
    ),
    ToolSpec(
        name="list_networks",
        title="List networks",
        description="List networks (id, name) an instance can join, for create_*. Read-only.",
        profile=READS,
        fn=list_networks,
    ),
    ToolSpec(
        name="list_keypairs",
        title="List keypairs",
        description="List SSH keypairs (name) for the keypair_name of create_*. Read-only.",
        profile=READS,
        fn=list_keypairs,
    ),
    ToolSpec(
        name="list_security_groups",
        title="List security groups",
        description="List security groups (name, rules) for the security_group_names of create_*. Read-only.",
        profile=READS,
        fn=list_security_groups,
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
