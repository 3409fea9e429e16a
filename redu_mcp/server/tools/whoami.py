"""``whoami``: the Redu user behind the API key, and this server's mode."""

# No `from __future__ import annotations`: the SDK must evaluate these signatures, closures included.

from typing import Final

from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from redu_mcp.api import User
from redu_mcp.server import wording
from redu_mcp.server.runtime import runtime_of
from redu_mcp.server.specs import READS, AccessLevel, ToolSpec
from redu_mcp.server.tools._common import reported_as_tool_error


class WhoAmI(BaseModel):
    user: User
    api_url: str | None = Field(description="The Redu API this server calls; null in the built-in sandbox")
    sandbox: bool
    access: AccessLevel
    message: str | None = None


async def whoami(ctx: Context) -> WhoAmI:
    runtime = runtime_of(ctx)
    client = runtime.client_or_tool_error("check the API key")
    with reported_as_tool_error(runtime, "check the API key"):
        user = await client.me()
    settings = runtime.settings
    if settings.sandbox:  # the emulator runs in this process: no API URL is called, nothing is real
        return WhoAmI(user=user, api_url=None, sandbox=True, access=settings.access, message=wording.IN_THE_SANDBOX)
    return WhoAmI(user=user, api_url=settings.api_url, sandbox=False, access=settings.access)


TOOL: Final = ToolSpec(
    name="whoami",
    title="Who am I",
    description="Check the API key: the Redu user it belongs to, and this server's mode. Read-only.",
    profile=READS,
    fn=whoami,
)
