"""``describe_database``: what a PostgreSQL database holds, compact unless one table is asked for."""

# No `from __future__ import annotations`: the SDK must evaluate these signatures, closures included.

from typing import Annotated, ClassVar, Final

from mcp.server.mcpserver import Context, Resolve
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from redu_mcp.api import DATABASE, Instance
from redu_mcp.data import DatabaseDescription, Failed, TableInfo, Unavailable, describe_database
from redu_mcp.server.arguments import InstanceId, id_sources
from redu_mcp.server.fence import FencedResult
from redu_mcp.server.runtime import runtime_of
from redu_mcp.server.specs import READS_DATA, ToolSpec
from redu_mcp.server.targets import current_instance, target_for

Identifier = Annotated[str | None, Field(min_length=1, max_length=63)]


class DatabaseSchema(FencedResult):
    """The database's schemas and tables (names and comments are the database's: fenced as data)."""

    untrusted: ClassVar[tuple[str, ...]] = ("schemas", "tables")

    database: str
    full: bool = Field(description="True when one table is described in full (defaults, constraints, size)")
    tables_total: int = Field(description="Tables matching; at most 50 are shown")
    schemas: list[str]
    tables: list[TableInfo]
    next_step: str | None = None


def _next_step(description: DatabaseDescription) -> str | None:
    shown = len(description.tables)
    if description.tables_total > shown:
        return (
            f"Showing {shown} of {description.tables_total} tables: pass schema to narrow, or table for one "
            "table in full."
        )
    if not description.full and shown:
        return "For one table's defaults, constraints, index definitions and size, pass table (and schema)."
    return None


instance = current_instance(DATABASE, "describe")


async def describe(
    id: InstanceId,
    ctx: Context,
    target: Annotated[Instance, Resolve(instance)],
    schema: Annotated[Identifier, Field(description="Only this schema (e.g. 'public')")] = None,
    table: Annotated[Identifier, Field(description="Describe this table in full (e.g. 'orders')")] = None,
) -> DatabaseSchema:
    runtime = runtime_of(ctx)
    connection = target_for(runtime, DATABASE, target)
    outcome = await describe_database(runtime.pools, connection, schema=schema, table=table)
    match outcome:
        case Failed(error=error):
            raise ToolError(runtime.words.sql_failed(error))
        case Unavailable(failure=failure):
            raise ToolError(runtime.words.unavailable(DATABASE, connection, failure))
    return DatabaseSchema(
        database=outcome.database,
        full=outcome.full,
        tables_total=outcome.tables_total,
        schemas=list(outcome.schemas),
        tables=list(outcome.tables),
        next_step=_next_step(outcome),
    )


TOOL: Final = ToolSpec(
    name="describe_database",
    title="Describe a PostgreSQL database",
    description=(
        "What a PostgreSQL database holds: schemas, tables with row estimates, columns "
        "with types, primary keys and indexes. Pass table (and schema) for one table in full. Call it before "
        "writing SQL. Read-only."
    ),
    profile=READS_DATA,
    arguments=id_sources,  # where ids come from, among the tools offered
    fn=describe,
)
