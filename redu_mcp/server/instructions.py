"""The server's instructions: the workflow its access level allows, and the level itself."""

from __future__ import annotations

from redu_mcp.server.settings import Settings
from redu_mcp.server.tools import tools_for

INTRO = 'Manage Redu Cloud managed PostgreSQL ("database") and Redis instances.'

CREATE_WORKFLOW = """\
To create one:
1. list_create_options: flavors (sizes), networks, keypairs, security groups, versions, defaults. Pass ids,
   not names. If the right choice is not obvious, ask the user rather than guess.
2. create_database or create_redis. It returns at once with status "provisioning". Instances are billed
   while they exist: create only what the user asked for, and never create again because a wait timed out.
3. wait_for_ready(kind, id): up to ~40 s per call, with progress. On ready=false, call it again.
4. Use the connection details it returns. The one-time password is never shown in the chat: it is saved
   in a private credentials file whose path the create and wait results give."""

READ_WORKFLOW = """\
Use list_databases / list_redis and get_database / get_redis to inspect instances, and wait_for_ready to
follow one that is still provisioning. Creating and deleting are not possible through this server: if the
user asks for it, say so rather than look for another way."""

DELETE_NOTE = (
    "Deleting (delete_database / delete_redis, with confirm_name set to the exact current name) destroys all "
    "data; only delete what the user asked to delete."
)

LEVEL_TEXT = {
    "read": "read: you can list and inspect instances, but not create or delete them",
    "create": "create: you can list, inspect and create instances, but not delete them",
    "full": "full: you can list, inspect, create and delete instances",
}


def instructions_for(settings: Settings) -> str:
    """What the model is told: the workflow its access level allows, and the level itself."""
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
    lines.append("Tools available: " + ", ".join(sorted(spec.name for spec in tools_for(settings.access))) + ".")
    return "\n".join(lines)
