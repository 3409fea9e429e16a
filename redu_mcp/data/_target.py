"""What a data operation connects to, and what checking a connection found.

A ``Target`` is built by the MCP face from two sources it trusts for different things: the API's
own answer for this principal (host, port, user, database, status) and the principal's credentials
file (the password). Nothing here reads a file or calls the API.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import SecretStr


@dataclass(frozen=True)
class Target:
    """One instance to connect to, with the password it was created with."""

    kind: str  # the API library's Kind.name ("database", "redis")
    instance_id: int
    principal: str  # who acts ("local", "operator", "user:<id>"): pools are never shared across principals
    host: str
    port: int
    password: SecretStr = field(repr=False)
    user: str | None = None  # PostgreSQL: the login role; Redis: None (password only, or the ACL user)
    database: str | None = None  # PostgreSQL: the database name; Redis: None (logical db 0)


FailureKind = Literal[
    "unreachable",  # no route, no answer to the TCP connect (a security group or firewall may drop it)
    "refused",  # the host answered, nothing listens on the port
    "timeout",  # connected, then no answer in time
    "tls_failed",  # TLS was required and could not be set up
    "auth_failed",  # the server refused the password (the credentials file is stale or wrong)
    "rejected",  # authenticated or not, the server turned the session away: too many connections,
    #              starting up, no such database (``detail`` carries its SQLSTATE)
    "protocol",  # something answered that is not the expected server
]


@dataclass(frozen=True)
class ConnectionFailure:
    kind: FailureKind
    detail: str  # the driver's own words, scrubbed of any secret; never the password


@dataclass(frozen=True)
class ConnectionReport:
    """What ``check_connection`` found, step by step; ``failure`` says where it stopped."""

    host: str
    port: int
    tcp_ms: float | None = None  # TCP connect
    tls: str | None = None  # what was negotiated, e.g. "TLSv1.3 TLS_AES_256_GCM_SHA384"; None: plain
    authenticated: bool = False
    session_ms: float | None = None  # TLS and authentication, until the session was ready
    server_version: str | None = None
    round_trip_ms: float | None = None  # SELECT 1 / PING
    protocol: str | None = None  # Redis: "RESP3" after HELLO 3
    failure: ConnectionFailure | None = None
