"""The server's instructions: the workflow the tools it offers allow, who approves a delete, and the
access level. Every tool they name is one the server offers (its access level and ``--tools``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from redu_mcp.server.kinds import ALL_KINDS, either
from redu_mcp.server.settings import Settings
from redu_mcp.server.wording import LEVEL_ALLOWS, PAGE_APPROVAL

#: The tools whose changes can destroy data (at --data write), confirmed like a delete.
CHANGES_DATA: Final = ("run_sql", "apply_migration", "run_redis_command")


def _kinds_called() -> str:
    """``PostgreSQL ("database") and Redis``: each engine, with the name a model passes when it differs."""
    names = [k.engine if k.name == k.engine.lower() else f'{k.engine} ("{k.name}")' for k in ALL_KINDS]
    return f"{', '.join(names[:-1])} and {names[-1]}" if len(names) > 1 else names[0]


INTRO: Final = f"Manage Redu Cloud managed {_kinds_called()} instances."

LEVEL_TEXT: Final = {
    "read": f"read: you can {LEVEL_ALLOWS['read']}, but not create or delete them",
    "create": f"create: you can {LEVEL_ALLOWS['create']}, but not delete them",
    "full": f"full: you can {LEVEL_ALLOWS['full']}",
}

#: Who approves a delete, at each ``--confirm`` setting.
DELETE_APPROVAL: Final = {
    "auto": (
        "If the client can ask the user, the user is asked and only their yes deletes; otherwise confirm_name set "
        "to the exact current name deletes."
    ),
    "human": (
        f"On this server (--confirm human) only {PAGE_APPROVAL} (then tell the user: they can delete it in the Redu "
        "console)."
    ),
}


def _named(tools: list[str], offered: frozenset[str]) -> list[str]:
    return [tool for tool in tools if tool in offered]


def _create_workflow(offered: frozenset[str]) -> str:
    steps = []
    if "list_create_options" in offered:
        steps.append(
            "list_create_options: flavors (sizes), networks, keypairs, security groups, versions, defaults, and a\n"
            "   suggested value for each required argument where the account makes one obvious. Pass ids, not names.\n"
            "   Use the suggestions unless the request says otherwise; ask the user only before a choice that costs\n"
            "   more (a bigger flavor) or changes who can reach the instance (another network)."
        )
    creates = either(_named([f"create_{k.name}" for k in ALL_KINDS], offered))
    steps.append(
        f'{creates}. It returns at once with status "provisioning". Instances are billed\n'
        "   while they exist: create only what the user asked for, and never create again because a wait timed out."
    )
    if "wait_for_ready" in offered:
        steps.append("wait_for_ready(kind, id): up to ~40 s per call, with progress. On ready=false, call it again.")
    steps.append(
        "Use the connection details it returns. The one-time password is never shown in the chat: it is saved\n"
        "   in a private credentials file whose path the results give."
    )
    listed = "\n".join(f"{n}. {step}" for n, step in enumerate(steps, start=1))
    return f"To create one:\n{listed}"


def _read_workflow(offered: frozenset[str]) -> str:
    looks = _named([f"list_{k.collection}" for k in ALL_KINDS] + [f"get_{k.name}" for k in ALL_KINDS], offered)
    parts = []
    if looks:
        wait = ", and wait_for_ready to follow one that is still provisioning" if "wait_for_ready" in offered else ""
        parts.append(f"Use {' / '.join(looks)} to inspect instances{wait}.")
    parts.append(
        "Creating and deleting are not possible through this server: if the user asks for it, say so rather than "
        "look for another way."
    )
    return " ".join(parts)


def instructions_for(settings: Settings, offered: Iterable[str]) -> str:
    """What the model is told: the workflow the ``offered`` tools allow, who approves a delete, the
    access level, and the tools themselves."""
    offered = frozenset(offered)
    creates = any(f"create_{k.name}" in offered for k in ALL_KINDS)
    deletes = _named([f"delete_{k.name}" for k in ALL_KINDS], offered)
    parts = [INTRO, _create_workflow(offered) if creates else _read_workflow(offered)]
    if deletes:
        parts.append(
            f"Deleting ({' / '.join(deletes)}) destroys all data; only delete what the user asked to delete. "
            + DELETE_APPROVAL[settings.confirm]
        )
    changes = _named(list(CHANGES_DATA), offered) if settings.data == "write" else []
    if settings.confirm == "human" and changes:
        named = " / ".join(changes)
        parts.append(
            f"A change that destroys data ({named}) is approved the same way, on a page of its own."
            if deletes
            else f"A change that destroys data ({named}) needs a person's approval: on this server only {PAGE_APPROVAL}."
        )
    lines = ["\n\n".join(parts), "", f"Access level of this server: {LEVEL_TEXT[settings.access]}."]
    if settings.secrets == "reveal" and creates:
        lines.append("Secrets mode: reveal. Create results carry the one-time password; it is shown once only.")
    if settings.sandbox:
        lines.append("This server runs against the Redu sandbox emulator: nothing is real or billed.")
    if not settings.configured:
        lines.append(
            "Not configured: no REDU_API_KEY is set, so every tool will fail until the server is restarted "
            "with REDU_API_KEY (or with --sandbox to try it out)."
        )
    lines.append("Tools available: " + ", ".join(sorted(offered)) + ".")
    return "\n".join(lines)
