"""Connecting to an instance: the parameters libpq gets, and what a failure to connect means.

The password goes to psycopg as a keyword (never inside a conninfo string or URL we build), and every
message that comes back is scrubbed of it before it leaves this package.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from redu_mcp.data._errors import scrub
from redu_mcp.data._options import PostgresOptions
from redu_mcp.data._target import ConnectionFailure, FailureKind, Target


class ConnectFailed(Exception):
    """Connecting (or getting a pooled connection) failed; ``failure`` says how."""

    def __init__(self, failure: ConnectionFailure) -> None:
        super().__init__(failure.kind)
        self.failure = failure


def connection_kwargs(target: Target, options: PostgresOptions) -> dict[str, Any]:
    """Keyword arguments for ``psycopg.AsyncConnection.connect`` (and the pool's ``kwargs``)."""
    kwargs: dict[str, Any] = {
        "host": target.host,
        "port": target.port,
        "user": target.user,
        "dbname": target.database,
        "password": target.password.get_secret_value(),
        "sslmode": options.sslmode,
        "connect_timeout": options.connect_timeout_seconds,
        "application_name": options.application_name,
        "client_encoding": "UTF8",
        # Our own BEGIN/COMMIT/ROLLBACK: psycopg must not open transactions of its own.
        "autocommit": True,
        # Nothing is prepared by name, so no statement outlives a call on a pooled connection.
        "prepare_threshold": None,
    }
    if options.sslrootcert is not None:
        kwargs["sslrootcert"] = str(options.sslrootcert)
    return kwargs


_MARKERS: tuple[tuple[FailureKind, tuple[str, ...]], ...] = (
    ("auth_failed", ("password authentication failed", "no password supplied", "authentication failed")),
    ("refused", ("connection refused",)),
    (
        "unreachable",
        (
            "no route to host",
            "network is unreachable",
            "could not translate host name",
            "name or service not known",
            "temporary failure in name resolution",
        ),
    ),
    ("protocol", ("invalid response", "expected authentication request", "unsupported frontend protocol")),
    (
        "tls_failed",
        ("ssl", "certificate", "tls"),
    ),
    ("timeout", ("timeout expired", "timed out")),
)

_REJECTED_STATES = {"53300", "57P03", "3D000", "08004"}


def diagnose(exc: BaseException, secret: str) -> ConnectionFailure:
    """What a connection attempt's exception says, in this package's terms."""
    detail = scrub(" ".join(str(exc).split()), secret) or type(exc).__name__
    sqlstate = getattr(exc, "sqlstate", None)
    if sqlstate is not None and sqlstate.startswith("28"):
        return ConnectionFailure("auth_failed", detail)
    if sqlstate in _REJECTED_STATES:
        return ConnectionFailure("rejected", detail)
    lowered = detail.lower()
    for kind, markers in _MARKERS:
        if any(marker in lowered for marker in markers):
            return ConnectionFailure(kind, detail)
    if "too many connections" in lowered or "does not exist" in lowered or "starting up" in lowered:
        return ConnectionFailure("rejected", detail)
    return ConnectionFailure("protocol", detail)


async def tcp_connect(host: str, port: int, timeout: float) -> ConnectionFailure | None:
    """Open and close a TCP connection: None when it worked, else why not (refused, unreachable)."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except TimeoutError:
        return ConnectionFailure("unreachable", f"no answer from {host}:{port} within {timeout:g} s")
    except ConnectionRefusedError:
        return ConnectionFailure("refused", f"{host}:{port} refused the connection: nothing listens there")
    except OSError as exc:
        return ConnectionFailure("unreachable", f"{host}:{port}: {exc.strerror or exc}")
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return None


async def explain_timeout(failure: ConnectionFailure, target: Target, timeout: float) -> ConnectionFailure:
    """psycopg says "timeout" whether TCP or the server was silent; a TCP probe tells which."""
    if failure.kind != "timeout":
        return failure
    return await tcp_connect(target.host, target.port, timeout) or failure
