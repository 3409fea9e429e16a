"""``whoami``: the Redu user behind the API key, and this server's mode."""

# No `from __future__ import annotations`: the SDK must evaluate these signatures, closures included.

from typing import Final

from mcp.server.mcpserver import Context
from pydantic import BaseModel

from redu_mcp.api import User
from redu_mcp.server.runtime import runtime_of
from redu_mcp.server.specs import READS, AccessLevel, ToolSpec
from redu_mcp.server.tools._common import reported_as_tool_error


class WhoAmI(BaseModel):
    user: User
    api_url: str
    sandbox: bool
    access: AccessLevel


async def whoami(ctx: Context) -> WhoAmI:
    runtime = runtime_of(ctx)
    client = runtime.client_or_tool_error("check the API key")
    with reported_as_tool_error(runtime, "check the API key"):
        user = await client.me()
    settings = runtime.settings
    return WhoAmI(user=user, api_url=settings.api_url, sandbox=settings.sandbox, access=settings.access)


TOOL: Final = ToolSpec(
    name="whoami",
    title="Who am I",
    description="Check the API key: the Redu user it belongs to, and this server's mode. Read-only.",
    profile=READS,
    fn=whoami,
)
