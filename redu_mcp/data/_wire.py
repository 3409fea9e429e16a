"""One statement through the extended protocol, its rows streamed in chunks.

Why libpq directly (``psycopg.pq``, psycopg's documented wrapper) and not ``cursor.execute``:
without parameters psycopg sends a query with the simple protocol, which runs ``COMMIT; DROP …`` as
two statements; ``cursor.stream()`` refuses statements that return no rows and loses their command
tag. Here the statement always goes as Parse/Bind/Execute (PostgreSQL itself refuses a second
statement: "cannot insert multiple commands into a prepared statement"), parameters are bound by
the server as text of unknown type (PostgreSQL infers each one's type from the statement), and rows
arrive in chunks, so a huge result never sits in memory: once the collector is full a read is
cancelled, and a write is drained (counting) so that it still completes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from redu_mcp.data._errors import SqlError, error_from_result
from redu_mcp.data._results import RowCollector

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from psycopg.pq.abc import PGconn, PGresult

#: Rows per chunk from the server (libpq 17+; older libpq sends them one by one).
CHUNK_ROWS = 100


@dataclass(frozen=True)
class Executed:
    command: str  # the command tag: "SELECT 3", "INSERT 0 1", "CREATE TABLE"
    rows_affected: int | None  # from the tag, when it carries a count
    columns: tuple[tuple[str, int], ...]  # (name, type OID); empty for a statement without rows
    cancelled: bool  # the read was stopped once the collector was full


async def execute(
    conn: AsyncConnection[Any],
    sql: str,
    parameters: Sequence[str | None],
    collector: RowCollector,
    *,
    secret: str,
    cancel_when_full: bool,
    offset: int = 0,
) -> Executed | SqlError:
    """Run ``sql`` (exactly one statement) on ``conn``, which must be idle in our transaction."""
    from psycopg import pq

    pgconn = conn.pgconn
    pgconn.send_query_params(
        sql.encode(),
        [None if value is None else value.encode() for value in parameters] or None,
        result_format=pq.Format.TEXT,
    )
    if pq.version() >= 170000:
        pgconn.set_chunked_rows_mode(CHUNK_ROWS)
    else:
        pgconn.set_single_row_mode()
    try:
        await _flush(pgconn)
        return await _results(conn, collector, secret=secret, cancel_when_full=cancel_when_full, offset=offset)
    except BaseException:
        # The caller went away (cancelled) or the socket failed: stop the statement on the server
        # rather than leave it running until its timeout. The pool discards this connection.
        if pgconn.transaction_status == pq.TransactionStatus.ACTIVE:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.cancel_safe(timeout=2.0), 3.0)
        raise


async def _results(
    conn: AsyncConnection[Any], collector: RowCollector, *, secret: str, cancel_when_full: bool, offset: int
) -> Executed | SqlError:
    from psycopg import pq

    pgconn = conn.pgconn
    command, affected, cancelled = "", None, False
    columns: tuple[tuple[str, int], ...] = ()
    error: SqlError | None = None
    status = pq.ExecStatus
    while (result := await _next_result(pgconn)) is not None:
        if result.status in (status.SINGLE_TUPLE, status.TUPLES_CHUNK, status.TUPLES_OK):
            if not columns and result.nfields:
                columns = tuple(
                    ((result.fname(i) or b"").decode("utf-8", "replace"), result.ftype(i))
                    for i in range(result.nfields)
                )
                collector.set_columns([oid for _, oid in columns])
            for row in range(result.ntuples):
                if collector.full:
                    collector.received += 1
                    continue
                collector.add([_text(result.get_value(row, col)) for col in range(result.nfields)])
            if result.command_status:  # single-row mode: on the final TUPLES_OK; chunked: on the last chunk
                command, affected = _tag(result.command_status), result.command_tuples
            if result.status != status.TUPLES_OK and collector.full and cancel_when_full and not cancelled:
                await conn.cancel_safe(timeout=5.0)
                cancelled = True
        elif result.status == status.COMMAND_OK:
            command, affected = _tag(result.command_status), result.command_tuples
        elif result.status in (status.COPY_IN, status.COPY_OUT, status.COPY_BOTH):
            await _refuse_copy(conn, pgconn, result.status == status.COPY_IN)
        elif result.status in (status.FATAL_ERROR, status.NONFATAL_ERROR) and error is None:
            error = error_from_result(result, secret, offset)
    if error is not None and not (cancelled and error.kind == "timeout"):
        return error
    return Executed(command, affected, columns, cancelled)


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8", "replace")


def _tag(status: bytes | None) -> str:
    return (status or b"").decode("ascii", "replace")


async def _refuse_copy(conn: AsyncConnection[Any], pgconn: PGconn, copy_in: bool) -> None:
    """COPY to or from the client has no channel here: end it (the server then reports an error)."""
    if copy_in:
        pgconn.put_copy_end(b"COPY from the client is not supported through this server")
        await _flush(pgconn)
        return
    await conn.cancel_safe(timeout=5.0)
    while True:
        size, _ = pgconn.get_copy_data(1)
        if size in (-1, -2):  # done (the final result follows) / failed
            return
        if size == 0:
            await _ready(pgconn.socket, write=False)
            pgconn.consume_input()


async def _next_result(pgconn: PGconn) -> PGresult | None:
    while pgconn.is_busy():
        await _ready(pgconn.socket, write=False)
        pgconn.consume_input()
    return pgconn.get_result()


async def _flush(pgconn: PGconn) -> None:
    while pgconn.flush():
        await _ready(pgconn.socket, write=True)


async def _ready(fd: int, *, write: bool) -> None:
    """Wait until the socket can be written (or read)."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    if write:
        loop.add_writer(fd, wake)
    else:
        loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        if write:
            loop.remove_writer(fd)
        else:
            loop.remove_reader(fd)
