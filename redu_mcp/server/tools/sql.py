"""``run_sql``: one SQL statement on a PostgreSQL database, in a transaction PostgreSQL itself guards.

At ``--data read`` the statement runs in a read-only transaction that is always rolled back; at
``--data write`` it commits when it succeeds, and a statement that destroys data (``DROP``,
``TRUNCATE``, ``DELETE``/``UPDATE`` without ``WHERE``…) is first confirmed like a delete. The rows
reach the model inside the untrusted-data fence. The body reads "decide, audit, present".
"""

# No `from __future__ import annotations`: the SDK must evaluate these signatures, closures included.

from typing import Annotated, Any, ClassVar, Final

from mcp.server.mcpserver import Context, Elicit, Resolve
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

from redu_mcp.api import DATABASE, Instance
from redu_mcp.data import (
    DEFAULT_MAX_ROWS,
    MAX_ROWS_LIMIT,
    Failed,
    NeedsConfirmation,
    Refused,
    RunOutcome,
    SqlResult,
    Target,
    Unavailable,
    Unparseable,
    checksum,
    classify,
    run_sql,
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
from redu_mcp.server.specs import READS_DATA, WRITES_DATA, Offer, ToolSpec
from redu_mcp.server.targets import current_instance, target_for
from redu_mcp.server.telemetry import data_span
from redu_mcp.server.tools._common import audit
from redu_mcp.server.wording import Wording, approval

Query = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100_000,
        description="One SQL statement; parameters as $1, $2, ... (e.g. 'SELECT * FROM orders WHERE id = $1')",
    ),
]
Parameters = Annotated[
    list[str | int | float | bool | None] | None,
    Field(
        max_length=100, description="Values for $1, $2, ... in order (bound by PostgreSQL, never pasted into the SQL)"
    ),
]
MaxRows = Annotated[
    int, Field(ge=1, le=MAX_ROWS_LIMIT, description=f"Most rows to return (default {DEFAULT_MAX_ROWS}, at most 500)")
]


class ColumnView(BaseModel):
    name: str
    type: str


class SqlRows(FencedResult):
    """What a statement returned: its command tag, the rows (capped), and whether it committed."""

    untrusted: ClassVar[tuple[str, ...]] = ("columns", "rows")

    command: str = Field(description="PostgreSQL's command tag, e.g. 'SELECT 3' or 'INSERT 0 1'")
    rows_affected: int | None = None
    committed: bool = Field(description="Whether the change was committed (always false at --data read)")
    columns: list[ColumnView]
    # Any, not JsonValue: the values are JSON already, and a recursive schema for every cell costs a
    # client that checks results against the schema ~0.1 s per 500 rows.
    rows: list[list[Any]] = Field(
        description="Values as JSON: numerics as strings, timestamps ISO 8601, bytea as {'$bytes_base64': ...}"
    )
    truncated: str | None = Field(default=None, description="What was left out, and how to get the rest")


# --- decide, audit, present ----------------------------------------------------------------------------


def _audited(outcome: RunOutcome) -> tuple[Outcome, str | None]:
    match outcome:
        case SqlResult():
            return "ran", outcome.command
        case Refused(reason=reason):
            return "refused", reason
        case NeedsConfirmation():
            return "refused", "not confirmed"
        case Failed(error=error):
            return "sql_failed", error.sqlstate
        case Unavailable(failure=failure):
            return "sql_failed", failure.kind


def _truncated(result: SqlResult) -> str | None:
    if not result.more_rows and not result.cut_cells:
        return None
    parts = []
    if result.more_rows:
        more = f"{result.rows_not_shown} more rows" if result.rows_not_shown else "more rows"
        why = "the character limit" if result.cut == "max_chars" else "max_rows"
        parts.append(f"{more} not shown ({why}): add LIMIT/OFFSET or narrow the WHERE to see the rest")
    if result.cut_cells:
        parts.append(
            f"{len(result.cut_cells)} long values cut short: select fewer or shorter columns to see them whole"
        )
    return "; ".join(parts) + "."


def _present(words: Wording, outcome: RunOutcome, connection: Target) -> SqlRows:
    match outcome:
        case SqlResult():
            return SqlRows(
                command=outcome.command,
                rows_affected=outcome.rows_affected,
                committed=outcome.committed,
                columns=[ColumnView(name=c.name, type=c.type) for c in outcome.columns],
                rows=[list(row) for row in outcome.rows],
                truncated=_truncated(outcome),
            )
        case Refused():
            raise ToolError(words.sql_refused(outcome))
        case Failed(error=error):
            raise ToolError(words.sql_failed(error))
        case Unavailable(failure=failure):
            raise ToolError(words.unavailable(DATABASE, connection, failure))
        case NeedsConfirmation():
            raise AssertionError("a destructive statement runs only once confirmed, and then it is allowed")


def destructive_in(query: str) -> list[str]:
    """Why ``query`` destroys data, if it is one statement the parser can read (else the body refuses it)."""
    found = classify(query)
    if isinstance(found, Unparseable) or len(found) != 1:
        return []
    return list(found[0].destructive)


instance = current_instance(DATABASE, "use")


async def confirmation(
    ctx: Context,
    target: Annotated[Instance, Resolve(instance)],
    query: Query,
    confirm_name: ConfirmName = None,
) -> Elicit[ConfirmChange] | NameCheck:
    """Asks before a statement that destroys data, at --data write; nothing to ask otherwise."""
    runtime = runtime_of(ctx)
    reasons = destructive_in(query) if runtime.settings.data == "write" else []
    if not reasons:
        return NameCheck(result="not_needed")
    if runtime.settings.access != "full":
        return NameCheck(result="needs_full_access")
    question = runtime.words.change_question(DATABASE, target, query, reasons)
    return ask_or_check(ctx, target, confirm_name, question, ConfirmChange, statement=query)


async def run_sql_tool(
    id: InstanceId,
    query: Query,
    ctx: Context,
    target: Annotated[Instance, Resolve(instance)],
    decision: Annotated[ChangeDecision, Resolve(confirmation)],
    parameters: Parameters = None,
    max_rows: MaxRows = DEFAULT_MAX_ROWS,
    confirm_name: ConfirmName = None,
) -> SqlRows:
    runtime = runtime_of(ctx)
    refusal = refusal_of(decision)
    found = classify(query)
    statement = found[0] if not isinstance(found, Unparseable) and len(found) == 1 else None
    what = {
        "statement": statement.kind if statement else None,
        "tables": statement.tables if statement else None,
        "sha256": checksum(query),
    }
    if refusal is not None:
        audit(ctx, "run_sql", DATABASE, "refused", id=id, name=target.name, detail=refusal.why, **what)
        raise ToolError(runtime.words.refused_change(DATABASE, target, refusal))
    connection = target_for(runtime, DATABASE, target)
    writing = runtime.settings.data == "write"
    with data_span("postgresql", statement.kind if statement else None, statement.tables if statement else ()):
        outcome = await run_sql(
            runtime.pools,
            connection,
            query,
            list(parameters or ()),
            mode="write" if writing else "read",
            max_rows=max_rows,
            allow_destructive=confirmed_by(decision) is not None,  # the user (or confirm_name) approved it
        )
    if writing or not isinstance(outcome, SqlResult):  # every write, and every refusal or failure
        audited, detail = _audited(outcome)
        rows = outcome.rows_affected if isinstance(outcome, SqlResult) else None
        audit(ctx, "run_sql", DATABASE, audited, id=id, name=target.name, detail=detail, rows=rows, **what)
    return _present(runtime.words, outcome, connection)


_TITLE: Final = "Run SQL on a PostgreSQL database"


def _about(offer: Offer) -> str:
    first = " Call describe_database first to see the tables." if offer.has("describe_database") else ""
    return (
        "One statement per call, parameters as $1, $2 in `parameters`; rows come back as data (at most max_rows, "
        f"default 50).{first}"
    )


def _read_description(offer: Offer) -> str:
    return (
        "Run one SQL statement on a PostgreSQL database in a read-only transaction that is always rolled back: "
        f"SELECT and EXPLAIN work, writes fail. {_about(offer)} Read-only."
    )


def _write_description(offer: Offer) -> str:
    migrate = " For schema changes prefer apply_migration." if offer.has("apply_migration") else ""
    return (
        f"Run one SQL statement on a PostgreSQL database; it is committed when it succeeds. {_about(offer)} A "
        "statement that destroys data (DROP, TRUNCATE, DELETE or UPDATE without WHERE, ALTER ... DROP, DO) needs "
        f"{approval(offer, 'database')}.{migrate}"
    )


#: At --data read: a read-only transaction, always rolled back.
READ_TOOL: Final = ToolSpec(
    name="run_sql",
    title=_TITLE,
    description=_read_description,
    profile=READS_DATA,
    fn=run_sql_tool,
    arguments=id_sources,  # where ids come from, among the tools offered
)
#: At --data write: committed when it succeeds; what destroys data is confirmed like a delete.
WRITE_TOOL: Final = ToolSpec(
    name="run_sql",
    title=_TITLE,
    description=_write_description,
    profile=WRITES_DATA,
    fn=run_sql_tool,
    arguments=id_sources,
)
