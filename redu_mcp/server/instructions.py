"""The server's instructions: the workflow its access level allows, and the level itself."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from redu_mcp.server.kinds import ALL_KINDS, each_kind, either
from redu_mcp.server.settings import Settings


def _kinds_called() -> str:
    """``PostgreSQL ("database") and Redis``: each engine, with the name a model passes when it differs."""
    names = [k.engine if k.name == k.engine.lower() else f'{k.engine} ("{k.name}")' for k in ALL_KINDS]
    return f"{', '.join(names[:-1])} and {names[-1]}" if len(names) > 1 else names[0]


INTRO: Final = f"Manage Redu Cloud managed {_kinds_called()} instances."

CREATE_WORKFLOW: Final = f"""\
To create one:
1. list_create_options: flavors (sizes), networks, keypairs, security groups, versions, defaults. Pass ids,
   not names. If the right choice is not obvious, ask the user rather than guess.
2. {either(each_kind("create_{name}"))}. It returns at once with status "provisioning". Instances are billed
   while they exist: create only what the user asked for, and never create again because a wait timed out.
3. wait_for_ready(kind, id): up to ~40 s per call, with progress. On ready=false, call it again.
4. Use the connection details it returns. The one-time password is never shown in the chat: it is saved
   in a private credentials file whose path the create and wait results give."""

READ_WORKFLOW: Final = f"""\
Use {" / ".join(each_kind("list_{collection}"))} and {" / ".join(each_kind("get_{name}"))} to inspect instances, and wait_for_ready to
follow one that is still provisioning. Creating and deleting are not possible through this server: if the
user asks for it, say so rather than look for another way."""

DELETE_NOTE: Final = (
    f"Deleting ({' / '.join(each_kind('delete_{name}'))}, with confirm_name set to the exact current name) destroys all "
    "data; only delete what the user asked to delete."
)

LEVEL_TEXT: Final = {
    "read": "read: you can list and inspect instances, but not create or delete them",
    "create": "create: you can list, inspect and create instances, but not delete them",
    "full": "full: you can list, inspect, create and delete instances",
}


def instructions_for(settings: Settings, offered: Iterable[str]) -> str:
    """What the model is told: the workflow its access level allows, the level itself, and the
    tools it is ``offered``."""
    parts = [INTRO, READ_WORKFLOW if settings.access == "read" else CREATE_WORKFLOW]
    if settings.access == "full":
        parts.append(DELETE_NOTE)
    lines = ["\n\n".join(parts), "", f"Access level of this server: {LEVEL_TEXT[settings.access]}."]
    if settings.secrets == "reveal" and settings.access != "read":
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
