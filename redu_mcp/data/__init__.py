"""Using what was provisioned: connecting to an instance and running what the agent asks, safely.

Beside ``redu_mcp.provisioning``: no ``mcp`` import, no prose; every operation returns a typed
outcome the MCP face words. The guards are the engines' own (a read-only transaction, timeouts,
the server's command flags); parsers here only classify, to explain refusals and to ask for
confirmation.

PostgreSQL: ``check_connection``, ``run_sql``, ``describe_database``, ``apply_migration`` and
``list_migrations``, all but the first on a ``Pools`` the server keeps for its lifetime (one pool per
principal and instance). Redis: ``RedisData`` (``run``, ``describe``, ``check``), its commands allowed
by the instance's own command table. psycopg, psycopg_pool, pglast and redis-py are imported when an
operation first runs, never by importing this package.
"""

from redu_mcp.data._check import check_connection
from redu_mcp.data._classify import DestructiveReason, RefusalReason, Statement, StatementKind, Unparseable, classify
from redu_mcp.data._describe import (
    ColumnInfo,
    ConstraintInfo,
    DatabaseDescription,
    DescribeOutcome,
    IndexInfo,
    TableInfo,
    describe_database,
)
from redu_mcp.data._errors import SqlError, SqlErrorKind
from redu_mcp.data._migrations import (
    AlreadyApplied,
    Applied,
    ApplyOutcome,
    ChecksumMismatch,
    DestructiveStatement,
    ListOutcome,
    Migration,
    MigrationFailed,
    MigrationNeedsConfirmation,
    MigrationRefusal,
    MigrationRefused,
    Migrations,
    apply_migration,
    checksum,
    list_migrations,
)
from redu_mcp.data._options import DEFAULT_MAX_ROWS, MAX_ROWS_LIMIT, SSL_MODES, PostgresOptions, SslMode
from redu_mcp.data._pools import Pools
from redu_mcp.data._redis_commands import (
    RedisAccess,
    RedisNeedsConfirmation,
    RedisRefusalReason,
    RedisRefused,
    flush_needing_confirmation,
)
from redu_mcp.data._redis_connection import RedisTls
from redu_mcp.data._redis_data import RedisData
from redu_mcp.data._redis_describe import (
    RedisDescribeOutcome,
    RedisDescription,
    RedisKeySample,
    RedisKeyspaceCount,
    RedisSampledKey,
)
from redu_mcp.data._redis_outcomes import (
    RedisCommandError,
    RedisNoAnswer,
    RedisResult,
    RedisRunOutcome,
    RedisTruncation,
    RedisUnavailable,
)
from redu_mcp.data._redis_values import RedisCaps
from redu_mcp.data._results import Column, CutReason
from redu_mcp.data._run import (
    Failed,
    Mode,
    NeedsConfirmation,
    Refused,
    RunOutcome,
    RunRefusal,
    SqlParameter,
    SqlResult,
    Unavailable,
    run_sql,
)
from redu_mcp.data._target import ConnectionFailure, ConnectionReport, FailureKind, Target
from redu_mcp.data._values import JsonValue

__all__ = [
    "DEFAULT_MAX_ROWS",
    "MAX_ROWS_LIMIT",
    "SSL_MODES",
    "AlreadyApplied",
    "Applied",
    "ApplyOutcome",
    "ChecksumMismatch",
    "Column",
    "ColumnInfo",
    "ConnectionFailure",
    "ConnectionReport",
    "ConstraintInfo",
    "CutReason",
    "DatabaseDescription",
    "DescribeOutcome",
    "DestructiveReason",
    "DestructiveStatement",
    "Failed",
    "FailureKind",
    "IndexInfo",
    "JsonValue",
    "ListOutcome",
    "Migration",
    "MigrationFailed",
    "MigrationNeedsConfirmation",
    "MigrationRefusal",
    "MigrationRefused",
    "Migrations",
    "Mode",
    "NeedsConfirmation",
    "Pools",
    "PostgresOptions",
    "RedisAccess",
    "RedisCaps",
    "RedisCommandError",
    "RedisData",
    "RedisDescribeOutcome",
    "RedisDescription",
    "RedisKeySample",
    "RedisKeyspaceCount",
    "RedisNeedsConfirmation",
    "RedisNoAnswer",
    "RedisRefusalReason",
    "RedisRefused",
    "RedisResult",
    "RedisRunOutcome",
    "RedisSampledKey",
    "RedisTls",
    "RedisTruncation",
    "RedisUnavailable",
    "RefusalReason",
    "Refused",
    "RunOutcome",
    "RunRefusal",
    "SqlError",
    "SqlErrorKind",
    "SqlParameter",
    "SqlResult",
    "SslMode",
    "Statement",
    "StatementKind",
    "TableInfo",
    "Target",
    "Unavailable",
    "Unparseable",
    "apply_migration",
    "check_connection",
    "checksum",
    "classify",
    "describe_database",
    "flush_needing_confirmation",
    "list_migrations",
    "run_sql",
]
