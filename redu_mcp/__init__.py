"""redu-mcp: an MCP server for Redu Cloud managed PostgreSQL and Redis.

Kept import-free on purpose: the server's start-up time is what a desktop client feels, so each
entry point imports only what it needs. The library API lives in ``redu_mcp.client``
(``ReduClient``), ``redu_mcp.errors`` and ``redu_mcp.models``.
"""

__version__ = "0.1.0"
