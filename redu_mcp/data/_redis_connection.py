"""Opening one redis-py connection to a ``Target``, and what a failure to do so means.

redis-py is imported here, inside functions: importing it costs ≈ 0.15–0.3 s, which a server that
never touches Redis data should not pay at start-up. redis-py sends ``HELLO 3 AUTH`` (or ``AUTH``)
and ``SELECT db`` on every connect, reconnects included, so a connection can never come back on
another database; a refused ``HELLO 3`` (Redis before 6: fall back to RESP2) is told apart from a
refused database index by its words. ``CLIENT SETINFO`` is not sent (one round trip less).

Redis before 6 answers ``HELLO 3 AUTH default <password>`` with "unknown command … with args
beginning with: …", the password among them: that error is never shown, and ``scrub`` takes the
password out of every driver message that is.

The password goes to redis-py and nowhere else: not into a log line, an exception text (redis-py
names only host and port) or a repr; ``failure_of`` scrubs it from the driver's words anyway.
"""

from __future__ import annotations

import errno
import ssl
from dataclasses import dataclass
from typing import Any

from redu_mcp.data._target import ConnectionFailure, Target

#: Socket errors that mean "no route to that host" rather than "nothing listens there".
_UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN, errno.EADDRNOTAVAIL}


@dataclass(frozen=True)
class RedisTls:
    """TLS for connections to instances (off unless configured: the sandbox's engines speak plain)."""

    ca_file: str | None = None  # the CA that signed the instances' certificates; None: the system's
    verify: bool = True  # check the certificate and that it names the host

    def context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_file)
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


class DatabaseRefused(Exception):
    """``SELECT db`` was answered with an error (an index the instance does not have)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code} {message}")
        self.code, self.message = code, message


async def connect(target: Target, *, db: int, protocol: int, tls: RedisTls | None, connect_timeout: float) -> Any:
    """A connected, authenticated ``redis.asyncio.Connection`` on ``db`` (RESP ``protocol``).

    Raises redis-py's errors (``failure_of`` reads them), ``redis.ResponseError`` when the server
    refuses ``HELLO 3``, and ``DatabaseRefused``.
    """
    from redis.asyncio.connection import Connection, SSLConnection
    from redis.exceptions import ResponseError

    options: dict[str, Any] = dict(
        host=target.host,
        port=target.port,
        username=target.user,
        password=target.password.get_secret_value(),
        db=db,
        protocol=protocol,
        socket_connect_timeout=connect_timeout,
        socket_timeout=None,  # every exchange runs under the caller's own deadline
        driver_info=None,
    )
    connection: Any  # redis-py's connections are untyped where it matters here
    if tls is None:
        connection = Connection(**options)
    else:
        connection = SSLConnection(
            ssl_ca_certs=tls.ca_file,
            ssl_cert_reqs="required" if tls.verify else "none",
            ssl_check_hostname=tls.verify,
            **options,
        )
    try:
        await connection.connect()
    except ResponseError as exc:
        if db and not hello_refused(exc):
            from redu_mcp.data._redis_values import error_parts

            raise DatabaseRefused(*error_parts(exc)) from None
        raise
    return connection


def hello_refused(error: BaseException) -> bool:
    """Did the server refuse ``HELLO 3`` (so RESP2 is worth a try), not the password or the database?"""
    from redis.exceptions import AuthenticationError, ResponseError

    if not isinstance(error, ResponseError) or isinstance(error, AuthenticationError):
        return False
    text = str(error)
    return "HELLO" in text.upper() or text.startswith("NOPROTO") or getattr(error, "status_code", None) == "NOPROTO"


def scrub(text: str, target: Target) -> str:
    secret = target.password.get_secret_value()
    return text.replace(secret, "***") if secret else text


def failure_of(error: BaseException, target: Target) -> ConnectionFailure:
    """What went wrong connecting, in ``FailureKind`` terms, with the driver's words (scrubbed)."""
    from redis.exceptions import AuthenticationError, ResponseError
    from redis.exceptions import TimeoutError as RedisTimeout

    cause = error.__cause__ or error.__context__
    detail = scrub(str(error) or type(error).__name__, target)
    if isinstance(error, AuthenticationError) or (
        isinstance(error, ResponseError) and str(error).startswith(("NOAUTH", "WRONGPASS", "invalid password"))
    ):
        return ConnectionFailure("auth_failed", detail)
    if isinstance(error, ssl.SSLError) or isinstance(cause, ssl.SSLError):
        return ConnectionFailure("tls_failed", detail)
    if isinstance(error, RedisTimeout) and "connecting" in str(error):
        return ConnectionFailure("unreachable", detail)  # the TCP connect got no answer in time
    if isinstance(error, RedisTimeout | TimeoutError):
        return ConnectionFailure("timeout", detail)
    number = cause.errno if isinstance(cause, OSError) else error.errno if isinstance(error, OSError) else None
    if number == errno.ECONNREFUSED:
        return ConnectionFailure("refused", detail)
    if number in _UNREACHABLE:
        return ConnectionFailure("unreachable", detail)
    # A garbled answer (InvalidResponse), an unexpected error reply, or a connection closed on us:
    # whatever answered is not the Redis we expected.
    return ConnectionFailure("protocol", detail)
