"""``run_sql``: one statement, in a transaction of the data level's mode, with typed outcomes.

At ``read`` the statement runs inside ``BEGIN READ ONLY`` with local timeouts and is always rolled
back; at ``write`` it runs read-write and is committed only if it succeeded. Before anything is sent
the statement is classified (``_classify``): refused forms, more than one statement, a parameter count
that does not match and (at write) an unconfirmed destructive statement never reach the server. Text
the parser cannot read is refused at write (nothing could say whether it is destructive; PostgreSQL's
parser would reject it too) and sent at read, where the read-only transaction holds it anyway and
PostgreSQL's own error is the clearest answer.

Parameters are positional, ``$1``, ``$2``… as PostgreSQL writes them (not psycopg's ``%s``: a ``%``
in the SQL then means itself), bound by the server as text whose type PostgreSQL infers from the
statement; numbers and booleans are sent as their SQL text, lists and objects as JSON text.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from redu_mcp.data._classify import DestructiveReason, RefusalReason, Statement, Unparseable, classify
from redu_mcp.data._connect import ConnectFailed
from redu_mcp.data._errors import SqlError, error_from_exception
from redu_mcp.data._options import DEFAULT_MAX_ROWS, MAX_ROWS_LIMIT, PostgresOptions
from redu_mcp.data._pools import PoolEntry, Pools
from redu_mcp.data._results import Column, CutReason, RowCollector, builtin_type
from redu_mcp.data._target import ConnectionFailure, Target
from redu_mcp.data._transaction import begin, end
from redu_mcp.data._values import JsonValue
from redu_mcp.data._wire import Executed, execute

if TYPE_CHECKING:
    from psycopg import AsyncConnection

Mode = Literal["read", "write"]
SqlParameter = str | int | float | bool | None | list[Any] | dict[str, Any]

RunRefusal = (
    RefusalReason
    | Literal[
        "empty",  # nothing but blanks and comments
        "multiple_statements",  # one statement per call
        "unparseable",  # at write: the parser cannot read it, so nothing can say what it does
        "parameter_count",  # the statement's $n and the parameters given do not match
        "nul_character",  # PostgreSQL text cannot hold U+0000
    ]
)


@dataclass(frozen=True)
class SqlResult:
    statement: Statement | None  # None: unparseable at read, PostgreSQL ran it anyway
    command: str  # the command tag: "SELECT 3", "INSERT 0 1", "CREATE TABLE"
    rows_affected: int | None
    columns: tuple[Column, ...]
    rows: tuple[tuple[JsonValue, ...], ...]
    more_rows: bool  # rows exist beyond those returned
    rows_not_shown: int | None  # how many, when known (a write reads them all; a read stops early)
    cut: CutReason | None  # why rows were left out
    cut_cells: tuple[tuple[int, int], ...]  # (row, column) of cells cut to max_cell_chars
    committed: bool  # at write: the transaction committed; at read always False (rolled back)
    elapsed_ms: float  # the statement itself, from sending it to its last row


@dataclass(frozen=True)
class Refused:
    reason: RunRefusal
    statement: Statement | None = None
    statement_count: int = 1
    parse_error: Unparseable | None = None
    parameters_expected: int | None = None
    parameters_given: int | None = None


@dataclass(frozen=True)
class NeedsConfirmation:
    """At write, a destructive statement that was not confirmed: nothing was sent."""

    statement: Statement
    reasons: tuple[DestructiveReason, ...]


@dataclass(frozen=True)
class Failed:
    """PostgreSQL refused or failed the statement (or our transaction around it): nothing changed."""

    error: SqlError
    statement: Statement | None


@dataclass(frozen=True)
class Unavailable:
    """No connection: the failure says where it stopped."""

    failure: ConnectionFailure


RunOutcome = SqlResult | Refused | NeedsConfirmation | Failed | Unavailable


def parameter_text(value: SqlParameter) -> str | None:
    """A parameter as the text PostgreSQL parses for the type it infers."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else {"inf": "Infinity", "-inf": "-Infinity"}.get(repr(value), "NaN")
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def check(
    query: str, parameters: Sequence[SqlParameter], mode: Mode, allow_destructive: bool
) -> Statement | Refused | NeedsConfirmation | None:
    """What the classifier decides before anything is sent (None: unparseable at read, send it)."""
    if "\x00" in query:
        return Refused("nul_character")
    if any(isinstance(value, str) and "\x00" in value for value in parameters):
        return Refused("nul_character")
    found = classify(query)
    if isinstance(found, Unparseable):
        return Refused("unparseable", parse_error=found) if mode == "write" else None
    if not found:
        return Refused("empty", statement_count=0)
    if len(found) > 1:
        return Refused("multiple_statements", statement_count=len(found))
    statement = found[0]
    if statement.refused is not None:
        return Refused(statement.refused, statement=statement)
    if statement.parameters != len(parameters):
        return Refused(
            "parameter_count",
            statement=statement,
            parameters_expected=statement.parameters,
            parameters_given=len(parameters),
        )
    if mode == "write" and statement.destructive and not allow_destructive:
        return NeedsConfirmation(statement, statement.destructive)
    return statement


async def run_sql(
    pools: Pools,
    target: Target,
    query: str,
    parameters: Sequence[SqlParameter] = (),
    *,
    mode: Mode,
    max_rows: int = DEFAULT_MAX_ROWS,
    allow_destructive: bool = False,
    classify_first: bool = True,
) -> RunOutcome:
    """Run one statement. ``classify_first=False`` skips the classifier (tests prove PostgreSQL holds)."""
    if not 1 <= max_rows <= MAX_ROWS_LIMIT:
        raise ValueError(f"max_rows must be between 1 and {MAX_ROWS_LIMIT}")
    statement: Statement | None = None
    if classify_first:
        checked = check(query, parameters, mode, allow_destructive)
        if isinstance(checked, Refused | NeedsConfirmation):
            return checked
        statement = checked
    options = pools.options
    collector = RowCollector(
        max_rows=max_rows, max_cell_chars=options.max_cell_chars, max_total_chars=options.max_total_chars
    )
    secret = target.password.get_secret_value()
    try:
        async with pools.connection(target) as (conn, entry):
            outcome = await _in_transaction(conn, options, query, parameters, collector, mode=mode, secret=secret)
            if isinstance(outcome, SqlError):
                return Failed(outcome, statement)
            executed, elapsed_ms, committed = outcome
            columns = await _columns(conn, entry, executed.columns)
    except ConnectFailed as exc:
        return Unavailable(exc.failure)
    return SqlResult(
        statement=statement,
        command=executed.command,
        rows_affected=executed.rows_affected,
        columns=columns,
        rows=tuple(collector.rows),
        more_rows=collector.full,
        rows_not_shown=None if executed.cancelled else collector.received - len(collector.rows),
        cut=collector.cut,
        cut_cells=tuple(collector.cut_cells),
        committed=committed,
        elapsed_ms=elapsed_ms,
    )


async def _in_transaction(
    conn: AsyncConnection[Any],
    options: PostgresOptions,
    query: str,
    parameters: Sequence[SqlParameter],
    collector: RowCollector,
    *,
    mode: Mode,
    secret: str,
) -> tuple[Executed, float, bool] | SqlError:
    import psycopg

    texts = [parameter_text(value) for value in parameters]
    try:
        await begin(conn, options, read_only=mode == "read")
        started = time.perf_counter()
        executed = await execute(conn, query, texts, collector, secret=secret, cancel_when_full=mode == "read")
        elapsed_ms = (time.perf_counter() - started) * 1000
        commit = mode == "write" and isinstance(executed, Executed)
        await end(conn, commit=commit)
    except psycopg.Error as exc:
        error = error_from_exception(exc, secret)
        await rollback_quietly(conn)
        return error
    if isinstance(executed, SqlError):
        return executed
    return executed, elapsed_ms, commit


async def rollback_quietly(conn: AsyncConnection[Any]) -> None:
    """After a failure: leave no transaction open (the pool discards a connection that is gone)."""
    import psycopg

    if conn.closed:
        return
    with contextlib.suppress(psycopg.Error):
        await conn.execute(b"ROLLBACK")


async def _columns(
    conn: AsyncConnection[Any], entry: PoolEntry, found: tuple[tuple[str, int], ...]
) -> tuple[Column, ...]:
    """Columns with PostgreSQL's type names; types psycopg does not know are looked up once per pool."""
    import psycopg

    missing = sorted({oid for _, oid in found if builtin_type(oid) is None and oid not in entry.type_names})
    if missing:
        try:
            cursor = await conn.execute(
                "SELECT oid::int8, format_type(oid, NULL) FROM pg_catalog.pg_type WHERE oid = ANY(%s)", [missing]
            )
            entry.type_names.update({int(oid): str(name) for oid, name in await cursor.fetchall()})
        except psycopg.Error:
            pass  # a name is a courtesy: the values are already here
    columns = []
    for name, oid in found:
        known = builtin_type(oid)
        columns.append(Column(name, known[0] if known else entry.type_names.get(oid, f"oid {oid}"), oid))
    return tuple(columns)
