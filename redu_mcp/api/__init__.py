"""The Redu API library: a typed async client for Redu Cloud managed PostgreSQL and Redis.

Usable without the MCP server (it imports nothing from ``mcp``)::

    from redu_mcp.api import DatabaseCreate, ReduClient

    async with ReduClient(api_key="...") as redu:
        created = await redu.create_database(
            DatabaseCreate(name="orders", flavor_id="1", network_id="net-private", keypair_name="default-key")
        )
        print(created.id, created.status)

Every failure is a ``ReduError`` (the tree is drawn in ``redu_mcp.api._errors``); idempotent requests
are retried under a ``RetryPolicy``; ``within(seconds)`` bounds everything inside it. PostgreSQL and
Redis differ only by their ``Kind`` (``DATABASE``, ``REDIS``). Requests are traced and measured
with OpenTelemetry when an SDK is installed (``WhenMetricsLoaded`` lets the application's own
instruments follow the same import-free rule).
"""

from redu_mcp.api._client import DEFAULT_BASE_URL, ReduClient
from redu_mcp.api._deadlines import share_of_time_left, time_left, within
from redu_mcp.api._errors import (
    ERROR_CLASSES,
    APIStatusError,
    AuthenticationError,
    ConflictError,
    GiveUpReason,
    InvalidRequestError,
    MalformedKeyError,
    NotConfiguredError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ReduError,
    ResponseFormatError,
    RetryFacts,
    ServerError,
    TransportError,
)
from redu_mcp.api._keys import api_key_problem
from redu_mcp.api._kinds import DATABASE, KINDS, REDIS, AnyKind, EnvNames, Kind, KindName
from redu_mcp.api._models import (
    DEFAULT_DB_NAME,
    DEFAULT_DB_USER,
    DEFAULT_POSTGRES_VERSION,
    DEFAULT_REDIS_VERSION,
    DEFAULT_SECURITY_GROUPS,
    ERROR,
    MAX_SECURITY_GROUPS,
    NAME_PATTERN,
    PASSWORD_MAX,
    PASSWORD_MIN,
    PG_IDENTIFIER_PATTERN,
    READY,
    CreateBody,
    CreatedDatabase,
    CreatedRedis,
    Database,
    DatabaseCreate,
    Flavor,
    Instance,
    InstanceName,
    Keypair,
    KeypairName,
    Network,
    OpaqueId,
    Password,
    PgIdentifier,
    PostgresVersion,
    Redis,
    RedisCreate,
    RedisVersion,
    SecurityGroup,
    SecurityGroupNames,
    SecurityGroupRule,
    User,
)
from redu_mcp.api._retry import RetryPolicy, is_retryable, no_time_to_retry, parse_retry_after, retry_after_of
from redu_mcp.api._scrub import REDACTED, ScrubbingFilter, remember_secret, scrub
from redu_mcp.api._telemetry import WhenMetricsLoaded

__all__ = [
    "DATABASE",
    "DEFAULT_BASE_URL",
    "DEFAULT_DB_NAME",
    "DEFAULT_DB_USER",
    "DEFAULT_POSTGRES_VERSION",
    "DEFAULT_REDIS_VERSION",
    "DEFAULT_SECURITY_GROUPS",
    "ERROR",
    "ERROR_CLASSES",
    "KINDS",
    "MAX_SECURITY_GROUPS",
    "NAME_PATTERN",
    "PASSWORD_MAX",
    "PASSWORD_MIN",
    "PG_IDENTIFIER_PATTERN",
    "READY",
    "REDACTED",
    "REDIS",
    "APIStatusError",
    "AnyKind",
    "AuthenticationError",
    "ConflictError",
    "CreateBody",
    "CreatedDatabase",
    "CreatedRedis",
    "Database",
    "DatabaseCreate",
    "EnvNames",
    "Flavor",
    "GiveUpReason",
    "Instance",
    "InstanceName",
    "InvalidRequestError",
    "Keypair",
    "KeypairName",
    "Kind",
    "KindName",
    "MalformedKeyError",
    "Network",
    "NotConfiguredError",
    "NotFoundError",
    "OpaqueId",
    "Password",
    "PermissionDeniedError",
    "PgIdentifier",
    "PostgresVersion",
    "RateLimitedError",
    "Redis",
    "RedisCreate",
    "RedisVersion",
    "ReduClient",
    "ReduError",
    "ResponseFormatError",
    "RetryFacts",
    "RetryPolicy",
    "ScrubbingFilter",
    "SecurityGroup",
    "SecurityGroupNames",
    "SecurityGroupRule",
    "ServerError",
    "TransportError",
    "User",
    "WhenMetricsLoaded",
    "api_key_problem",
    "is_retryable",
    "no_time_to_retry",
    "parse_retry_after",
    "remember_secret",
    "retry_after_of",
    "scrub",
    "share_of_time_left",
    "time_left",
    "within",
]
