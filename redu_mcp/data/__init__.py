"""Using what was provisioned: connecting to an instance and running what the agent asks, safely.

Beside ``redu_mcp.provisioning``: no ``mcp`` import, no prose; every operation returns a typed
outcome the MCP face words. The guards are the engines' own (a read-only transaction, timeouts,
the server's command flags); parsers here only classify, to explain refusals and to ask for
confirmation.
"""

from redu_mcp.data._target import ConnectionFailure, ConnectionReport, FailureKind, Target

__all__ = ["ConnectionFailure", "ConnectionReport", "FailureKind", "Target"]
