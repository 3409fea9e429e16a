"""Prompts that walk a model through provisioning an instance, step by step: one per kind
(``provision_postgres``, ``provision_redis``), offered where that kind's create is, and naming only
the tools the server offers."""

from __future__ import annotations

from collections.abc import Set
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.prompts.base import AssistantMessage, Message, UserMessage
from pydantic import Field

from redu_mcp.api import AnyKind
from redu_mcp.server.kinds import ALL_KINDS

Purpose = Annotated[str, Field(description="What the instance is for, e.g. 'a web shop's orders'")]
InstanceName = Annotated[str, Field(description="The instance name, if already chosen (lowercase, digits, hyphens)")]


def register_prompts(server: MCPServer[Any], offered: Set[str]) -> None:
    for kind in ALL_KINDS:
        if f"create_{kind.name}" in offered:
            _register(server, kind, offered)


def _register(server: MCPServer[Any], kind: AnyKind, offered: Set[str]) -> None:
    def provision(purpose: Purpose = kind.usual_purpose, name: InstanceName = "") -> list[Message]:
        return _provision_messages(kind, purpose, name, offered)

    provision.__doc__ = f"Walk through creating a managed {kind.label}, step by step."
    prompt_name = f"provision_{kind.engine_short}"
    provision.__name__ = prompt_name
    server.prompt(name=prompt_name, title=f"Provision a {kind.label}")(provision)


def _provision_messages(kind: AnyKind, purpose: str, name: str, offered: Set[str]) -> list[Message]:
    naming = (
        f"Call it '{name}'." if name else "Suggest a name (lowercase letters, digits, hyphens) and confirm it with me."
    )
    steps = []
    if "list_create_options" in offered:
        steps.append(
            "call list_create_options and take its suggested values unless I say otherwise; ask me before a "
            "choice that costs more or changes who can reach the instance"
        )
    steps.append(f"call create_{kind.name} once")
    if "wait_for_ready" in offered:
        steps.append(
            f"call wait_for_ready(kind='{kind.name}', id=...) until ready=true (call it again on ready=false; "
            "never create a second instance because of a timeout)"
        )
    steps.append("give me the host, port and the path of the credentials file; do not print the password")
    listed = " ".join(f"{n}) {step}." for n, step in enumerate(steps, start=1))
    first = "looking up the create options" if "list_create_options" in offered else f"creating the {kind.label}"
    return [
        UserMessage(f"I need a managed {kind.label} on Redu Cloud for {purpose}. {naming}\nSteps: {listed}"),
        AssistantMessage(f"I'll start by {first}."),
    ]
