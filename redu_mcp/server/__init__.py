"""The MCP face: what a model sees and every word it reads.

``build_server(settings)`` assembles the server (``assembly``) from one declaration per tool
(``tools``, built from ``specs``), argument checks (``arguments``), result models (``results``),
sentences (``wording``), confirmation (``confirmation``), resources, prompts and instructions; the
``runtime`` holds what a running server shares; ``http`` serves it over streamable HTTP.
"""

from redu_mcp.server.assembly import build_server
from redu_mcp.server.settings import ConfigError, Settings
from redu_mcp.server.tools import TOOLS, tools_for

__all__ = ["TOOLS", "ConfigError", "Settings", "build_server", "tools_for"]
