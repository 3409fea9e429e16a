"""``apply_migration`` and ``list_migrations``: schema changes applied once per version, and recorded.

A migration runs in one transaction, serialised across callers (and replicas) by an advisory lock,
and is recorded in ``redu_mcp.schema_migrations`` with the SHA-256 of its text: the same version and
text again changes nothing; the same version with other text is refused. Statements that destroy
data are confirmed first, like a delete. Success says what was applied, never rows.
"""

# No `from __future__ import annotations`: the SDK must evaluate these signatures, closures included.

from typing import Annotated, ClassVar, Final

from mcp.server.mcpserver import Context, Elicit, Resolve
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

from redu_mcp.api import DATABASE, Instance
from redu_mcp.data import (
    AlreadyApplied,
    Applied,
    ApplyOutcome,
    ChecksumMismatch,
    Failed,
    Migration,
    MigrationFailed,
    MigrationNeedsConfirmation,
    MigrationRefused,
    Migrations,
    Unavailable,
    Unparseable,
    apply_migration,
    checksum,
    classify,
    list_migrations,
)
from redu_mcp.provisioning.audit import Outcome
from redu_mcp.server.arguments import ConfirmName, InstanceId, id_sources
from redu_mcp.server.confirmation import (
    ChangeDecision,
    ConfirmChange,
    NameCheck,
    ask_or_check,
    confirmed_by,
    refusal_of,
)
from redu_mcp.server.fence import FencedResult
from redu_mcp.server.runtime import runtime_of
from redu_mcp.server.specs import MIGRATES, READS_DATA, Offer, ToolSpec
from redu_mcp.server.targets import current_instance, target_for
from redu_mcp.server.telemetry import data_span
from redu_mcp.server.tools._common import audit
from redu_mcp.server.wording import approval

Version = Annotated[
    str,
    Field(
        pattern=r"^[0-9A-Za-z][0-9A-Za-z_.\-]{0,63}$",
        description="The migration's version, as your project names it (e.g. '20261207120000' or '0001')",
    ),
]
MigrationName = Annotated[str, Field(min_length=1, max_length=200, description="What it does, e.g. 'create orders'")]
Sql = Annotated[
    str, Field(min_length=1, max_length=1_000_000, description="The migration's SQL: one or more statements")
]


class AppliedMigration(BaseModel):
    applied: bool = Field(description="False when this version with this text was already applied: nothing ran")
    version: str
    name: str
    checksum: str = Field(description="SHA-256 of the SQL text")
    statements: int
    applied_at: str
    message: str


class MigrationList(FencedResult):
    """The migrations applied (their names were written by whoever applied them: fenced as data)."""

    untrusted: ClassVar[tuple[str, ...]] = ("migrations",)

    total: int
    migrations: list[Migration] = Field(description="Oldest first")


def _destructive_in(sql: str) -> list[str]:
    found = classify(sql)
    if isinstance(found, Unparseable):
        return []
    return [reason for statement in found for reason in statement.destructive]


def _audited(outcome: ApplyOutcome) -> tuple[Outcome, str | None]:
    match outcome:
        case Applied():
            return "migrated", None
        case AlreadyApplied():
            return "already_applied", None
        case ChecksumMismatch():
            return "refused", "checksum_mismatch"
        case MigrationRefused(reason=reason):
            return "refused", reason
        case MigrationNeedsConfirmation():
            return "refused", "not confirmed"
        case MigrationFailed(error=error):
            return "migration_failed", error.sqlstate
        case Unavailable(failure=failure):
            return "migration_failed", failure.kind


instance = current_instance(DATABASE, "migrate")


async def confirmation(
    ctx: Context,
    target: Annotated[Instance, Resolve(instance)],
    version: Version,
    sql: Sql,
    confirm_name: ConfirmName = None,
) -> Elicit[ConfirmChange] | NameCheck:
    """Asks before a migration that destroys data, unless this version with this text is already applied."""
    runtime = runtime_of(ctx)
    reasons = _destructive_in(sql)
    if not reasons:
        return NameCheck(result="not_needed")
    connection = target_for(runtime, DATABASE, target)
    applied = await list_migrations(runtime.pools, connection)
    if isinstance(applied, Migrations) and any(
        m.version == version and m.checksum == checksum(sql) for m in applied.applied
    ):
        return NameCheck(result="not_needed")  # a repeat changes nothing: nothing to ask
    if runtime.settings.access != "full":
        return NameCheck(result="needs_full_access")
    question = runtime.words.change_question(DATABASE, target, f"migration {version}: {sql}", reasons)
    return ask_or_check(ctx, target, confirm_name, question, ConfirmChange, statement=f"-- migration {version}\n{sql}")


async def apply(
    id: InstanceId,
    version: Version,
    name: MigrationName,
    sql: Sql,
    ctx: Context,
    target: Annotated[Instance, Resolve(instance)],
    decision: Annotated[ChangeDecision, Resolve(confirmation)],
    confirm_name: ConfirmName = None,
) -> AppliedMigration:
    runtime = runtime_of(ctx)
    words = runtime.words
    what = {"statement": "migration", "sha256": checksum(sql)}
    refusal = refusal_of(decision)
    if refusal is not None:
        audit(ctx, "apply_migration", DATABASE, "refused", id=id, name=target.name, detail=refusal.why, **what)
        raise ToolError(words.refused_change(DATABASE, target, refusal))
    connection = target_for(runtime, DATABASE, target)
    with data_span("postgresql", "migration"):
        outcome = await apply_migration(
            runtime.pools,
            connection,
            version,
            name,
            sql,
            applied_by=runtime.principal(),
            allow_destructive=confirmed_by(decision) is not None,
        )
    audited, detail = _audited(outcome)
    audit(ctx, "apply_migration", DATABASE, audited, id=id, name=target.name, detail=detail, **what)
    match outcome:
        case Applied(migration=migration) | AlreadyApplied(migration=migration):
            fresh = isinstance(outcome, Applied)
            return AppliedMigration(
                applied=fresh,
                version=migration.version,
                name=migration.name,
                checksum=migration.checksum,
                statements=migration.statements,
                applied_at=migration.applied_at,
                message=words.migration_applied(migration, fresh),
            )
        case ChecksumMismatch():
            raise ToolError(words.checksum_mismatch(outcome))
        case MigrationRefused():
            raise ToolError(words.sql_refused(outcome))
        case MigrationFailed(error=error, statement_index=index):
            raise ToolError(words.sql_failed(error, index))
        case Unavailable(failure=failure):
            raise ToolError(words.unavailable(DATABASE, connection, failure))
        case MigrationNeedsConfirmation():
            raise AssertionError("a destructive migration runs only once confirmed, and then it is allowed")


async def listed(id: InstanceId, ctx: Context, target: Annotated[Instance, Resolve(instance)]) -> MigrationList:
    runtime = runtime_of(ctx)
    connection = target_for(runtime, DATABASE, target)
    outcome = await list_migrations(runtime.pools, connection)
    match outcome:
        case Failed(error=error):
            raise ToolError(runtime.words.sql_failed(error))
        case Unavailable(failure=failure):
            raise ToolError(runtime.words.unavailable(DATABASE, connection, failure))
    return MigrationList(total=len(outcome.applied), migrations=list(outcome.applied))


def _apply_description(offer: Offer) -> str:
    return (
        "Apply a schema migration (one or more SQL statements) to a PostgreSQL database in one transaction, once "
        "per version: the same version with the same SQL again changes nothing, with other SQL it is refused. Keep "
        "your project's version. Statements that destroy data (DROP, TRUNCATE, DELETE without WHERE...) need "
        f"{approval(offer, 'database')}. Returns what was applied."
    )


APPLY: Final = ToolSpec(
    name="apply_migration",
    title="Apply a migration to a PostgreSQL database",
    description=_apply_description,
    profile=MIGRATES,
    fn=apply,
    arguments=id_sources,
)
LIST: Final = ToolSpec(
    name="list_migrations",
    title="List a PostgreSQL database's migrations",
    description=lambda offer: (
        f"The migrations recorded in a PostgreSQL database{' by apply_migration' if offer.has('apply_migration') else ''}, "
        "oldest first: version, name, checksum, when and by whom. Read-only."
    ),
    profile=READS_DATA,
    fn=listed,
    arguments=id_sources,
)
