"""Prompts that walk a model through provisioning an instance, step by step: one per kind
(``provision_postgres``, ``provision_redis``), offered from ``create`` up."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.prompts.base import AssistantMessage, Message, UserMessage
from pydantic import Field

from redu_mcp.api import AnyKind
from redu_mcp.server.kinds import ALL_KINDS

Purpose = Annotated[str, Field(description="What the instance is for, e.g. 'a web shop's orders'")]
InstanceName = Annotated[str, Field(description="The instance name, if already chosen (lowercase, digits, hyphens)")]


def register_prompts(server: MCPServer[Any]) -> None:
    for kind in ALL_KINDS:
        _register(server, kind)


def _register(server: MCPServer[Any], kind: AnyKind) -> None:
    def provision(purpose: Purpose = kind.usual_purpose, name: InstanceName = "") -> list[Message]:
        return _provision_messages(kind, purpose, name)

    provision.__doc__ = f"Walk through creating a managed {kind.label}, step by step."
    prompt_name = f"provision_{kind.engine_short}"
    provision.__name__ = prompt_name
    server.prompt(name=prompt_name, title=f"Provision a {kind.label}")(provision)


def _provision_messages(kind: AnyKind, purpose: str, name: str) -> list[Message]:
    naming = (
        f"Call it '{name}'." if name else "Suggest a name (lowercase letters, digits, hyphens) and confirm it with me."
    )
    return [
        UserMessage(
            f"I need a managed {kind.label} on Redu Cloud for {purpose}. {naming}\n"
            "Steps: 1) call list_create_options and pick the smallest flavor that fits unless I say otherwise; "
            "ask me if a choice is ambiguous. "
            f"2) call create_{kind.name} once. 3) call wait_for_ready(kind='{kind.name}', id=...) until ready=true "
            "(call it again on ready=false; never create a second instance because of a timeout). "
            "4) give me the host, port and the path of the credentials file; do not print the password."
        ),
        AssistantMessage("I'll start by looking up the create options."),
    ]
