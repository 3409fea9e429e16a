"""Prompts that walk a model through provisioning an instance, step by step (offered from ``create`` up)."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.prompts.base import AssistantMessage, Message, UserMessage
from pydantic import Field

Purpose = Annotated[str, Field(description="What the instance is for, e.g. 'a web shop's orders'")]
InstanceName = Annotated[str, Field(description="The instance name, if already chosen (lowercase, digits, hyphens)")]


def register_prompts(server: MCPServer[Any]) -> None:
    @server.prompt(name="provision_postgres", title="Provision a PostgreSQL database")
    def provision_postgres(purpose: Purpose = "an application", name: InstanceName = "") -> list[Message]:
        """Walk through creating a managed PostgreSQL database, step by step."""
        return _provision_messages("database", "PostgreSQL database", purpose, name)

    @server.prompt(name="provision_redis", title="Provision a Redis instance")
    def provision_redis(purpose: Purpose = "a cache", name: InstanceName = "") -> list[Message]:
        """Walk through creating a managed Redis instance, step by step."""
        return _provision_messages("redis", "Redis instance", purpose, name)


def _provision_messages(kind: str, label: str, purpose: str, name: str) -> list[Message]:
    naming = (
        f"Call it '{name}'." if name else "Suggest a name (lowercase letters, digits, hyphens) and confirm it with me."
    )
    return [
        UserMessage(
            f"I need a managed {label} on Redu Cloud for {purpose}. {naming}\n"
            "Steps: 1) call list_create_options and pick the smallest flavor that fits unless I say otherwise; "
            "ask me if a choice is ambiguous. "
            f"2) call create_{kind} once. 3) call wait_for_ready(kind='{kind}', id=...) until ready=true "
            "(call it again on ready=false; never create a second instance because of a timeout). "
            "4) give me the host, port and the path of the credentials file; do not print the password."
        ),
        AssistantMessage("I'll start by looking up the create options."),
    ]
