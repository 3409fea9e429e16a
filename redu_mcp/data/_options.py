"""How this server talks to PostgreSQL instances: TLS, timeouts, pool sizes and result caps.

One value for the whole server (the MCP face builds it from its settings). The defaults suit an
agent: short timeouts, small pools, results a model can read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

#: libpq's ``sslmode`` values (https://www.postgresql.org/docs/current/libpq-ssl.html).
SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
SSL_MODES: tuple[SslMode, ...] = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")

#: Rows a result holds when the caller does not say, and the most it may ask for.
DEFAULT_MAX_ROWS = 50
MAX_ROWS_LIMIT = 500


@dataclass(frozen=True)
class PostgresOptions:
    sslmode: SslMode = "prefer"
    #: CA bundle to check the server's certificate against (``verify-ca`` / ``verify-full``).
    sslrootcert: Path | None = None
    #: Whole seconds, as libpq counts them (it waits at least 2).
    connect_timeout_seconds: int = 10
    statement_timeout_ms: int = 30_000
    lock_timeout_ms: int = 5_000
    idle_in_transaction_timeout_ms: int = 10_000
    #: A migration's statements (and its wait for another migration to finish) get longer.
    migration_timeout_ms: int = 120_000
    #: Connections per (principal, instance); idle pools are closed after ``pool_idle_seconds``.
    pool_max_size: int = 4
    pool_idle_seconds: float = 300.0
    #: How long a call waits for a free connection when all of its pool's are busy.
    pool_wait_seconds: float = 30.0
    max_cell_chars: int = 2_000
    max_total_chars: int = 60_000
    application_name: str = "redu-mcp"

    def __post_init__(self) -> None:
        if self.sslmode not in SSL_MODES:
            raise ValueError(f"sslmode must be one of {', '.join(SSL_MODES)}")
        if self.sslmode in ("verify-ca", "verify-full") and self.sslrootcert is None:
            raise ValueError(f"sslmode {self.sslmode} needs a root certificate (sslrootcert)")
        positive = (
            "connect_timeout_seconds",
            "statement_timeout_ms",
            "lock_timeout_ms",
            "idle_in_transaction_timeout_ms",
            "migration_timeout_ms",
            "pool_max_size",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.max_cell_chars < 16 or self.max_total_chars < self.max_cell_chars:
            raise ValueError("max_cell_chars must be at least 16 and at most max_total_chars")
