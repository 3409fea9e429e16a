"""``check_connection`` for PostgreSQL: each step timed, and where it stopped.

A fresh connection, not a pooled one: the point is to see the whole path (TCP, TLS, login) as a new
client would. TCP is tried on its own first, so "nothing answers" (unreachable: a security group or
firewall dropping packets) is told apart from "connected, then silence" (timeout).
"""

from __future__ import annotations

import time
from dataclasses import replace

from redu_mcp.data._connect import connection_kwargs, diagnose, tcp_connect
from redu_mcp.data._options import PostgresOptions
from redu_mcp.data._target import ConnectionReport, Target


def _ms_since(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)


async def check_connection(target: Target, options: PostgresOptions) -> ConnectionReport:
    import psycopg

    report = ConnectionReport(host=target.host, port=target.port)
    started = time.perf_counter()
    failure = await tcp_connect(target.host, target.port, options.connect_timeout_seconds)
    if failure is not None:
        return replace(report, failure=failure)
    report = replace(report, tcp_ms=_ms_since(started))

    secret = target.password.get_secret_value()
    started = time.perf_counter()
    try:
        conn = await psycopg.AsyncConnection.connect(**connection_kwargs(target, options))
    except Exception as exc:  # psycopg's errors, and an OSError from a socket gone wrong
        return replace(report, failure=diagnose(exc, secret))
    try:
        report = replace(
            report,
            session_ms=_ms_since(started),
            authenticated=True,
            server_version=(conn.pgconn.parameter_status(b"server_version") or b"").decode() or None,
        )
        if conn.pgconn.ssl_in_use:
            cursor = await conn.execute(
                "SELECT version || ' ' || cipher FROM pg_catalog.pg_stat_ssl WHERE pid = pg_backend_pid()"
            )
            row = await cursor.fetchone()
            report = replace(report, tls=str(row[0]) if row else "TLS (version not reported)")
        started = time.perf_counter()
        await conn.execute("SELECT 1")
        return replace(report, round_trip_ms=_ms_since(started))
    except psycopg.Error as exc:
        return replace(report, failure=diagnose(exc, secret))
    finally:
        await conn.close()
