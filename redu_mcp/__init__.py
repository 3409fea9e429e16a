"""redu-mcp: an MCP server for Redu Cloud managed PostgreSQL and Redis.

Three layers, dependencies pointing down only (checked by import-linter, see pyproject.toml):

* ``redu_mcp.server``: the MCP face (tools, wording, resources, HTTP); ``cli``, ``config``,
  ``demo`` and ``telemetry`` (OpenTelemetry export from ``OTEL_*``) sit on top of it;
* ``redu_mcp.provisioning``: create with reconciliation, delete, waiting, credential files;
* ``redu_mcp.api``: the Redu API library (``from redu_mcp.api import ReduClient``).

``redu_mcp.sandbox`` emulates the API for tests and demos. Kept import-free on purpose: start-up
time is what a desktop client feels, so each entry point imports only what it needs.
"""

__version__ = "0.1.0"
