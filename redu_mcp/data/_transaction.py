"""The transaction every data operation runs in: its mode, its timeouts, and how values are written.

Sent as one simple-protocol query of our own text (numbers from the options, nothing from a caller):
``BEGIN READ ONLY`` (or ``READ WRITE``) and ``SET LOCAL`` for the three timeouts and for the output
styles ``_values`` expects (ISO dates, ISO 8601 intervals, hex bytea). ``SET LOCAL`` ends with the
transaction, so nothing here outlives the call either. A read-only transaction also takes its first
snapshot here, after which ``SET TRANSACTION READ WRITE`` is an error, not merely useless.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from redu_mcp.data._options import PostgresOptions

if TYPE_CHECKING:
    from psycopg import AsyncConnection


def prelude(options: PostgresOptions, *, read_only: bool, statement_timeout_ms: int | None = None) -> str:
    timeout = statement_timeout_ms if statement_timeout_ms is not None else options.statement_timeout_ms
    return "; ".join(
        [
            "BEGIN READ ONLY" if read_only else "BEGIN READ WRITE",
            f"SET LOCAL statement_timeout = {int(timeout)}",
            f"SET LOCAL lock_timeout = {int(options.lock_timeout_ms)}",
            f"SET LOCAL idle_in_transaction_session_timeout = {int(options.idle_in_transaction_timeout_ms)}",
            # Output styles only: the database's own date order still reads input ('01/02/2024').
            "SET LOCAL DateStyle = 'ISO'",
            "SET LOCAL IntervalStyle = 'iso_8601'",
            "SET LOCAL bytea_output = 'hex'",
            # A first snapshot: from here PostgreSQL refuses to make the transaction read-write
            # ("transaction read-write mode must be set before any query").
            *(["SELECT 1"] if read_only else []),
        ]
    )


async def begin(
    conn: AsyncConnection[Any], options: PostgresOptions, *, read_only: bool, statement_timeout_ms: int | None = None
) -> None:
    await conn.execute(prelude(options, read_only=read_only, statement_timeout_ms=statement_timeout_ms).encode())


async def end(conn: AsyncConnection[Any], *, commit: bool) -> None:
    """COMMIT or ROLLBACK; a ROLLBACK with no transaction left (a failed COMMIT) is harmless."""
    await conn.execute(b"COMMIT" if commit else b"ROLLBACK")
