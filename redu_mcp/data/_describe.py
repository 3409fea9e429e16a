"""``describe_database``: what the database holds, compact unless one table is asked for.

Compact (the default): every user schema; tables, views and materialized views with a row estimate
(``pg_class.reltuples``: no scan; None before the first ANALYZE), columns with types and
nullability, primary key and index names. Bounded: at most ``MAX_TABLES`` tables and
``MAX_COMPACT_COLUMNS`` columns each, with the totals so the face can say what was left out.

Full (a ``table`` given): that table (in ``schema``, or in every user schema that has one by that
name) with column defaults, identity and generated columns, every constraint and index with its
definition, its size on disk and its comment.

Runs in a read-only transaction with the usual timeouts, from PostgreSQL's catalogs (not
``information_schema``, which is slower and hides what the role cannot use).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from redu_mcp.data._connect import ConnectFailed
from redu_mcp.data._errors import SqlError, error_from_exception
from redu_mcp.data._pools import Pools
from redu_mcp.data._run import Failed, Unavailable, rollback_quietly
from redu_mcp.data._target import Target
from redu_mcp.data._transaction import begin, end

if TYPE_CHECKING:
    from psycopg import AsyncConnection

MAX_TABLES = 100
MAX_COMPACT_COLUMNS = 40
MAX_FULL_COLUMNS = 1600  # PostgreSQL's own limit per table
MAX_DEFINITION_CHARS = 500

TableKind = Literal["table", "partitioned_table", "view", "materialized_view", "foreign_table"]
_KINDS: dict[str, TableKind] = {
    "r": "table",
    "p": "partitioned_table",
    "v": "view",
    "m": "materialized_view",
    "f": "foreign_table",
}
_IDENTITY: dict[str, Literal["always", "by_default"]] = {"a": "always", "d": "by_default"}
ConstraintKind = Literal["primary_key", "unique", "foreign_key", "check", "exclusion", "not_null", "trigger"]
_CONSTRAINTS: dict[str, ConstraintKind] = {
    "p": "primary_key",
    "u": "unique",
    "f": "foreign_key",
    "c": "check",
    "x": "exclusion",
    "n": "not_null",
    "t": "trigger",
}


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    type: str  # with its modifier: "character varying(40)", "numeric(10,2)"
    nullable: bool
    default: str | None = None  # full only
    identity: Literal["always", "by_default"] | None = None  # full only
    generated: str | None = None  # full only: the expression of GENERATED ALWAYS AS (…)


@dataclass(frozen=True)
class IndexInfo:
    name: str
    unique: bool
    primary: bool
    definition: str | None = None  # full only: CREATE INDEX …


@dataclass(frozen=True)
class ConstraintInfo:
    name: str
    kind: ConstraintKind
    definition: str  # PRIMARY KEY (id), FOREIGN KEY (a) REFERENCES t(id) ON DELETE CASCADE, CHECK (…)


@dataclass(frozen=True)
class TableInfo:
    schema: str
    name: str
    kind: TableKind
    rows_estimate: int | None
    columns: tuple[ColumnInfo, ...]
    columns_total: int
    primary_key: tuple[str, ...]
    indexes: tuple[IndexInfo, ...]
    constraints: tuple[ConstraintInfo, ...] = ()  # full only
    size_bytes: int | None = None  # full only
    comment: str | None = None  # full only


@dataclass(frozen=True)
class DatabaseDescription:
    database: str
    schemas: tuple[str, ...]
    tables: tuple[TableInfo, ...]
    tables_total: int  # matching tables, of which ``tables`` holds at most MAX_TABLES
    full: bool


DescribeOutcome = DatabaseDescription | Failed | Unavailable

_USER_SCHEMA = "n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'"

_TABLES = f"""
SELECT c.oid::int8, n.nspname, c.relname, c.relkind::text,
       CASE WHEN c.reltuples < 0 THEN NULL ELSE c.reltuples::int8 END,
       count(*) OVER ()
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT c.relispartition AND {_USER_SCHEMA}
  AND (%(schema)s::text IS NULL OR n.nspname = %(schema)s)
  AND (%(table)s::text IS NULL OR c.relname = %(table)s)
ORDER BY n.nspname, c.relname
LIMIT %(limit)s
"""

_COLUMNS = """
SELECT a.attrelid::int8, a.attnum::int, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod),
       NOT a.attnotnull, pg_catalog.pg_get_expr(d.adbin, d.adrelid), a.attidentity::text, a.attgenerated::text
FROM pg_catalog.pg_attribute a
LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = ANY(%(oids)s) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""

_CONSTRAINTS_SQL = """
SELECT c.conrelid::int8, c.conname, c.contype::text, pg_catalog.pg_get_constraintdef(c.oid, true),
       coalesce(c.conkey::int[], '{}')
FROM pg_catalog.pg_constraint c
WHERE c.conrelid = ANY(%(oids)s)
ORDER BY c.conrelid, c.contype, c.conname
"""

_INDEXES = """
SELECT i.indrelid::int8, ic.relname, i.indisunique, i.indisprimary, pg_catalog.pg_get_indexdef(i.indexrelid)
FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
WHERE i.indrelid = ANY(%(oids)s)
ORDER BY i.indrelid, ic.relname
"""

_DETAILS = """
SELECT c.oid::int8, pg_catalog.pg_total_relation_size(c.oid), pg_catalog.obj_description(c.oid, 'pg_class')
FROM pg_catalog.pg_class c WHERE c.oid = ANY(%(oids)s)
"""

_SCHEMAS = f"""
SELECT n.nspname FROM pg_catalog.pg_namespace n
WHERE {_USER_SCHEMA} AND (%(schema)s::text IS NULL OR n.nspname = %(schema)s)
ORDER BY n.nspname LIMIT {MAX_TABLES}
"""


def _cut(text: str | None) -> str | None:
    if text is None or len(text) <= MAX_DEFINITION_CHARS:
        return text
    return text[: MAX_DEFINITION_CHARS - 1] + "…"


async def describe_database(
    pools: Pools, target: Target, schema: str | None = None, table: str | None = None
) -> DescribeOutcome:
    import psycopg

    secret = target.password.get_secret_value()
    try:
        async with pools.connection(target) as (conn, _):
            try:
                await begin(conn, pools.options, read_only=True)
                description = await _describe(conn, target.database or "", schema, table)
                await end(conn, commit=False)
            except psycopg.Error as exc:
                error: SqlError = error_from_exception(exc, secret)
                await rollback_quietly(conn)
                return Failed(error, None)
    except ConnectFailed as exc:
        return Unavailable(exc.failure)
    return description


async def _rows(conn: AsyncConnection[Any], query: str, **params: Any) -> list[tuple[Any, ...]]:
    cursor = await conn.execute(query.encode(), params)
    return await cursor.fetchall()


async def _describe(
    conn: AsyncConnection[Any], database: str, schema: str | None, table: str | None
) -> DatabaseDescription:
    full = table is not None
    schemas = [row[0] for row in await _rows(conn, _SCHEMAS, schema=schema)]
    found = await _rows(conn, _TABLES, schema=schema, table=table, limit=MAX_TABLES)
    oids = [row[0] for row in found]
    columns: dict[int, list[tuple[int, ColumnInfo]]] = {oid: [] for oid in oids}
    for relid, attnum, name, type_name, nullable, default, identity, generated in await _rows(
        conn, _COLUMNS, oids=oids
    ):
        info = ColumnInfo(name, type_name, nullable)
        if full:
            info = ColumnInfo(
                name,
                type_name,
                nullable,
                default=None if generated else _cut(default),
                identity=_IDENTITY.get(identity),
                generated=_cut(default) if generated else None,
            )
        columns[relid].append((attnum, info))
    constraints: dict[int, list[tuple[ConstraintInfo, list[int]]]] = {oid: [] for oid in oids}
    for relid, name, kind, definition, keys in await _rows(conn, _CONSTRAINTS_SQL, oids=oids):
        constraints[relid].append((ConstraintInfo(name, _CONSTRAINTS.get(kind, "check"), _cut(definition) or ""), keys))
    indexes: dict[int, list[IndexInfo]] = {oid: [] for oid in oids}
    for relid, name, unique, primary, definition in await _rows(conn, _INDEXES, oids=oids):
        indexes[relid].append(IndexInfo(name, unique, primary, _cut(definition) if full else None))
    details = {row[0]: row[1:] for row in await _rows(conn, _DETAILS, oids=oids)} if full else {}

    tables = []
    for oid, nspname, relname, relkind, estimate, _total in found:
        names = {attnum: info.name for attnum, info in columns[oid]}
        primary = next((keys for info, keys in constraints[oid] if info.kind == "primary_key"), [])
        limit = MAX_FULL_COLUMNS if full else MAX_COMPACT_COLUMNS
        size, comment = details.get(oid, (None, None))
        tables.append(
            TableInfo(
                schema=nspname,
                name=relname,
                kind=_KINDS[relkind],
                rows_estimate=estimate,
                columns=tuple(info for _, info in columns[oid][:limit]),
                columns_total=len(columns[oid]),
                primary_key=tuple(names.get(key, str(key)) for key in primary),
                indexes=tuple(indexes[oid]),
                constraints=tuple(info for info, _ in constraints[oid]) if full else (),
                size_bytes=size,
                comment=_cut(comment),
            )
        )
    return DatabaseDescription(
        database=database,
        schemas=tuple(schemas),
        tables=tuple(tables),
        tables_total=found[0][5] if found else 0,
        full=full,
    )
