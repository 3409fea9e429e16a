"""``check_connection`` for Redis: each step timed on its own, and where it stopped.

1. TCP connect, and the TLS handshake when TLS is configured, on a socket of its own (asyncio
   streams: its time is the network's alone, and the TLS version and cipher are read from it);
2. a redis-py connection: ``HELLO 3`` with ``AUTH`` (RESP3), or ``AUTH`` alone and RESP2 when the
   server refuses ``HELLO 3``;
3. ``INFO server`` for the version, and one timed ``PING``.

It uses no pool: a check must not reuse a connection made earlier with other credentials.
"""

from __future__ import annotations

import asyncio
import errno
import ssl
import time
from typing import Any

from redu_mcp.data._redis_connection import RedisTls, connect, failure_of, hello_refused, scrub
from redu_mcp.data._target import ConnectionFailure, ConnectionReport, FailureKind, Target

_REFUSED = {errno.ECONNREFUSED}


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 3)


async def _tcp_and_tls(
    target: Target, tls: RedisTls | None, timeout: float
) -> tuple[float, str | None, ConnectionFailure | None]:
    """(TCP connect ms, TLS negotiated, failure) from a socket opened for this step alone."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(target.host, target.port)
    except TimeoutError:
        return _ms(started), None, ConnectionFailure("unreachable", f"no answer to a TCP connect in {timeout:g} s")
    except OSError as exc:
        kind: FailureKind = "refused" if exc.errno in _REFUSED else "unreachable"
        return _ms(started), None, ConnectionFailure(kind, scrub(str(exc), target))
    tcp_ms = _ms(started)
    try:
        if tls is None:
            return tcp_ms, None, None
        try:
            async with asyncio.timeout(timeout):
                await writer.start_tls(tls.context(), server_hostname=target.host)
        except (ssl.SSLError, OSError, TimeoutError) as exc:
            detail = scrub(str(exc), target) or f"no TLS handshake in {timeout:g} s"
            return tcp_ms, None, ConnectionFailure("tls_failed", detail)
        secured: Any = writer.get_extra_info("ssl_object")
        return tcp_ms, f"{secured.version()} {secured.cipher()[0]}", None
    finally:
        # A probe needs no graceful close, and waiting for one can hang after a half-done handshake.
        writer.transport.abort()
        del reader


async def check_redis(
    target: Target, *, tls: RedisTls | None, timeout: float, connect_timeout: float
) -> ConnectionReport:
    from redis.exceptions import RedisError

    tcp_ms, negotiated, failure = await _tcp_and_tls(target, tls, connect_timeout)
    connection: Any = None
    protocol: int | None = None
    version: str | None = None
    round_trip: float | None = None
    if failure is None:
        try:
            async with asyncio.timeout(timeout):
                try:
                    connection = await connect(target, db=0, protocol=3, tls=tls, connect_timeout=connect_timeout)
                except RedisError as exc:
                    if not hello_refused(exc):
                        raise
                    connection = await connect(target, db=0, protocol=2, tls=tls, connect_timeout=connect_timeout)
                protocol = connection.get_protocol()
                await connection.send_command("INFO", "server")
                version = _field(await connection.read_response(disable_decoding=True), b"redis_version")
                started = time.perf_counter()
                await connection.send_command("PING")
                if await connection.read_response(disable_decoding=True) != b"PONG":
                    failure = ConnectionFailure("protocol", "PING was not answered PONG")
                round_trip = _ms(started)
        except TimeoutError:
            failure = ConnectionFailure("timeout", f"no complete answer within {timeout:g} s")
        except (RedisError, OSError) as exc:
            failure = failure_of(exc, target)
        finally:
            if connection is not None:
                await connection.disconnect(nowait=True)
    return ConnectionReport(
        host=target.host,
        port=target.port,
        tcp_ms=tcp_ms,
        tls=negotiated,
        authenticated=protocol is not None,
        server_version=version,
        round_trip_ms=round_trip,
        protocol=None if protocol is None else f"RESP{protocol}",
        failure=failure,
    )


def _field(info: object, name: bytes) -> str | None:
    """One ``name:value`` line of an ``INFO`` reply."""
    if not isinstance(info, bytes):
        return None
    for line in info.splitlines():
        key, _, value = line.partition(b":")
        if key == name:
            return value.decode("utf-8", "replace").strip()
    return None
