"""Migrations: the caller's version and SQL, applied once, in one transaction, recorded.

The record is ``redu_mcp.schema_migrations`` in the instance's own database (created on first use):
version (the caller's, so a local migration history and the database's keep the same names), name,
SHA-256 of the exact SQL text, how many statements, when and by whom. Applying:

1. the SQL is classified statement by statement: unparseable text, transaction control and every
   refused form are refused; a migration takes no ``$n`` parameters;
2. ``pg_advisory_xact_lock`` on a fixed key serialises appliers across callers and server replicas
   (the lock is PostgreSQL's, so two servers cannot both pass it);
3. under the lock: the same version with the same checksum is a no-op outcome; with another
   checksum it is refused with both; otherwise each statement runs through the extended protocol
   (PostgreSQL refuses anything the parser split wrongly), then the record is inserted and the
   transaction commits. Any error rolls everything back.

Destructive statements are reported before anything runs (``NeedsConfirmation``) unless the caller
says they were confirmed; a migration already applied is recognised first, so repeating one never
asks for a confirmation.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from redu_mcp.data._classify import DestructiveReason, RefusalReason, Statement, Unparseable, classify
from redu_mcp.data._connect import ConnectFailed
from redu_mcp.data._errors import SqlError, error_from_exception
from redu_mcp.data._options import PostgresOptions
from redu_mcp.data._pools import Pools
from redu_mcp.data._results import RowCollector
from redu_mcp.data._run import Failed, Unavailable, rollback_quietly
from redu_mcp.data._target import Target
from redu_mcp.data._transaction import begin, end
from redu_mcp.data._values import iso_datetime
from redu_mcp.data._wire import execute

if TYPE_CHECKING:
    from psycopg import AsyncConnection

#: The advisory lock every applier takes: b"redu-mig" as a big-endian int8.
LOCK_KEY = int.from_bytes(b"redu-mig", "big")
VERSION_PATTERN = re.compile(r"[0-9A-Za-z][0-9A-Za-z_.\-]{0,63}")
MAX_NAME_CHARS = 200

_CREATE = (
    b"CREATE SCHEMA IF NOT EXISTS redu_mcp; "
    b"CREATE TABLE IF NOT EXISTS redu_mcp.schema_migrations ("
    b" version text PRIMARY KEY,"
    b" name text NOT NULL,"
    b" checksum text NOT NULL,"
    b" statements integer NOT NULL,"
    b" applied_at timestamptz NOT NULL DEFAULT now(),"
    b" applied_by text NOT NULL)"
)
_COLUMNS = "version, name, checksum, statements, applied_at::text, applied_by"
_FIND = f"SELECT {_COLUMNS} FROM redu_mcp.schema_migrations WHERE version = %s"
_LIST = f"SELECT {_COLUMNS} FROM redu_mcp.schema_migrations ORDER BY applied_at, version"
_RECORD = (
    "INSERT INTO redu_mcp.schema_migrations (version, name, checksum, statements, applied_by)"
    f" VALUES (%s, %s, %s, %s, %s) RETURNING {_COLUMNS}"
)
_EXISTS = "SELECT pg_catalog.to_regclass('redu_mcp.schema_migrations') IS NOT NULL"


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    checksum: str  # SHA-256 of the SQL text, hex
    statements: int
    applied_at: str  # ISO 8601, the database's clock
    applied_by: str


@dataclass(frozen=True)
class Applied:
    migration: Migration


@dataclass(frozen=True)
class AlreadyApplied:
    """The same version with the same text: nothing was run again."""

    migration: Migration


@dataclass(frozen=True)
class ChecksumMismatch:
    """The version was applied with other SQL: nothing was run."""

    applied: Migration
    given_checksum: str


MigrationRefusal = (
    RefusalReason | Literal["empty", "unparseable", "parameters", "invalid_version", "invalid_name", "nul_character"]
)


@dataclass(frozen=True)
class MigrationRefused:
    reason: MigrationRefusal
    statement_index: int | None = None  # 0-based, of the statement refused
    statement: Statement | None = None
    parse_error: Unparseable | None = None


@dataclass(frozen=True)
class DestructiveStatement:
    index: int  # 0-based position in the migration
    statement: Statement
    reasons: tuple[DestructiveReason, ...]


@dataclass(frozen=True)
class MigrationNeedsConfirmation:
    checksum: str
    destructive: tuple[DestructiveStatement, ...]


@dataclass(frozen=True)
class MigrationFailed:
    """A statement (or the bookkeeping) failed: everything was rolled back."""

    error: SqlError
    statement_index: int | None  # which statement, when one of the migration's own


@dataclass(frozen=True)
class Migrations:
    applied: tuple[Migration, ...]


ApplyOutcome = (
    Applied
    | AlreadyApplied
    | ChecksumMismatch
    | MigrationRefused
    | MigrationNeedsConfirmation
    | MigrationFailed
    | Unavailable
)
ListOutcome = Migrations | Failed | Unavailable


def checksum(sql: str) -> str:
    return hashlib.sha256(sql.encode()).hexdigest()


def _statements(version: str, name: str, sql: str) -> tuple[Statement, ...] | MigrationRefused:
    if not VERSION_PATTERN.fullmatch(version):
        return MigrationRefused("invalid_version")
    if not name.strip() or len(name) > MAX_NAME_CHARS or any(ord(char) < 32 for char in name):
        return MigrationRefused("invalid_name")
    if "\x00" in sql:
        return MigrationRefused("nul_character")
    found = classify(sql)
    if isinstance(found, Unparseable):
        return MigrationRefused("unparseable", parse_error=found)
    if not found:
        return MigrationRefused("empty")
    for index, statement in enumerate(found):
        if statement.refused is not None:
            return MigrationRefused(statement.refused, index, statement)
        if statement.parameters:
            return MigrationRefused("parameters", index, statement)
    return found


def _migration(row: tuple[Any, ...]) -> Migration:
    version, name, digest, count, applied_at, applied_by = row
    return Migration(version, name, digest, count, iso_datetime(applied_at), applied_by)


async def apply_migration(
    pools: Pools,
    target: Target,
    version: str,
    name: str,
    sql: str,
    *,
    applied_by: str,
    allow_destructive: bool = False,
) -> ApplyOutcome:
    import psycopg

    statements = _statements(version, name, sql)
    if isinstance(statements, MigrationRefused):
        return statements
    digest = checksum(sql)
    destructive = tuple(
        DestructiveStatement(index, statement, statement.destructive)
        for index, statement in enumerate(statements)
        if statement.destructive
    )
    options = pools.options
    secret = target.password.get_secret_value()
    try:
        async with pools.connection(target) as (conn, _):
            try:
                if destructive and not allow_destructive:
                    earlier = await _recorded(conn, options, version)
                    if earlier is None:
                        return MigrationNeedsConfirmation(digest, destructive)
                    return _repeat(earlier, digest)
                await begin(conn, options, read_only=False, statement_timeout_ms=options.migration_timeout_ms)
                await conn.execute(f"SET LOCAL lock_timeout = {int(options.migration_timeout_ms)}".encode())
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
                await conn.execute(f"SET LOCAL lock_timeout = {int(options.lock_timeout_ms)}".encode())
                await conn.execute(_CREATE)
                earlier = await _find(conn, version)
                if earlier is not None:
                    await end(conn, commit=False)
                    return _repeat(earlier, digest)
                outcome = await _run_all(conn, statements, secret)
                if isinstance(outcome, MigrationFailed):
                    await rollback_quietly(conn)
                    return outcome
                cursor = await conn.execute(_RECORD, [version, name, digest, len(statements), applied_by])
                row = await cursor.fetchone()
                await end(conn, commit=True)
            except psycopg.Error as exc:
                error = error_from_exception(exc, secret)
                await rollback_quietly(conn)
                return MigrationFailed(error, None)
    except ConnectFailed as exc:
        return Unavailable(exc.failure)
    assert row is not None
    return Applied(_migration(row))


def _repeat(earlier: Migration, digest: str) -> AlreadyApplied | ChecksumMismatch:
    return AlreadyApplied(earlier) if earlier.checksum == digest else ChecksumMismatch(earlier, digest)


async def _run_all(
    conn: AsyncConnection[Any], statements: tuple[Statement, ...], secret: str
) -> MigrationFailed | None:
    for index, statement in enumerate(statements):
        # Rows a migration's SELECT returns are read (a write must complete) and dropped.
        collector = RowCollector(max_rows=1, max_cell_chars=16, max_total_chars=64)
        done = await execute(
            conn, statement.text, [], collector, secret=secret, cancel_when_full=False, offset=statement.start
        )
        if isinstance(done, SqlError):
            return MigrationFailed(done, index)
    return None


async def _find(conn: AsyncConnection[Any], version: str) -> Migration | None:
    cursor = await conn.execute(_FIND, [version])
    row = await cursor.fetchone()
    return _migration(row) if row else None


async def _recorded(conn: AsyncConnection[Any], options: PostgresOptions, version: str) -> Migration | None:
    """The record of ``version`` if there is one, read in a read-only transaction of its own."""
    await begin(conn, options, read_only=True)
    try:
        exists = await (await conn.execute(_EXISTS)).fetchone()
        return await _find(conn, version) if exists and exists[0] else None
    finally:
        await end(conn, commit=False)


async def list_migrations(pools: Pools, target: Target) -> ListOutcome:
    """Every recorded migration, oldest first (none when the table does not exist yet)."""
    import psycopg

    secret = target.password.get_secret_value()
    try:
        async with pools.connection(target) as (conn, _):
            try:
                await begin(conn, pools.options, read_only=True)
                exists = await (await conn.execute(_EXISTS)).fetchone()
                rows = await (await conn.execute(_LIST)).fetchall() if exists and exists[0] else []
                await end(conn, commit=False)
            except psycopg.Error as exc:
                error = error_from_exception(exc, secret)
                await rollback_quietly(conn)
                return Failed(error, None)
    except ConnectFailed as exc:
        return Unavailable(exc.failure)
    return Migrations(tuple(_migration(row) for row in rows))
