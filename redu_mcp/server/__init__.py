"""The MCP face: what a model sees and every word it reads.

``build_server(settings)`` assembles the server (``assembly``) from the tools (``tools``: one module
per tool, each with its ``ToolSpec`` from ``specs``, its body and its result model), argument checks
(``arguments``), the results tools share (``results``), sentences (``wording``), confirmation
(``confirmation``), resources, prompts and instructions, every per-kind piece made from the API
library's kinds (``kinds``); the ``runtime`` holds what a running server shares; ``http`` serves it
over streamable HTTP. The layers inside the face are drawn in pyproject.toml (import-linter).
"""

from redu_mcp.server.assembly import build_server
from redu_mcp.server.errors import ConfigError
from redu_mcp.server.settings import Settings
from redu_mcp.server.tools import TOOLS, tools_for

__all__ = ["TOOLS", "ConfigError", "Settings", "build_server", "tools_for"]
