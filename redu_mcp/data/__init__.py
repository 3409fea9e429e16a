"""Using what was provisioned: connecting to an instance and running what the agent asks, safely.

Beside ``redu_mcp.provisioning``: no ``mcp`` import, no prose; every operation returns a typed
outcome the MCP face words. The guards are the engines' own (a read-only transaction, timeouts,
the server's command flags); parsers here only classify, to explain refusals and to ask for
confirmation.
"""

from redu_mcp.data._target import ConnectionFailure, ConnectionReport, FailureKind, Target

__all__ = ["ConnectionFailure", "ConnectionReport", "FailureKind", "Target"]

# Redis (redis-py is imported on first use, not here).
from redu_mcp.data._redis_commands import (
    RedisAccess,
    RedisNeedsConfirmation,
    RedisRefusalReason,
    RedisRefused,
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

__all__ += [
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
]
