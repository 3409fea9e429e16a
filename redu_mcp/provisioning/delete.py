"""Delete an instance, and be sure of what happened.

The documented answer to a DELETE is 204. Any other 2xx (a proxy's page, an asynchronous delete) is
believed only after a GET: gone means deleted, still there means not (yet). Whether the caller may
delete at all (confirmation) is decided before this is called, by the MCP face.
"""

from __future__ import annotations

from dataclasses import dataclass

from redu_mcp.api import AnyKind, Instance, NotFoundError, ReduClient, ReduError

DOCUMENTED_STATUS = 204


@dataclass(frozen=True)
class Deleted:
    status: int  # 204; 404 when a retried DELETE found the first one had done it; another 2xx checked by GET


@dataclass(frozen=True)
class StillThere:
    """The API answered the DELETE with an undocumented 2xx, and a GET still finds the instance."""

    status: int
    instance: Instance


@dataclass(frozen=True)
class Unverified:
    """The API answered the DELETE with an undocumented 2xx, and the GET to check failed."""

    status: int
    error: ReduError


DeleteOutcome = Deleted | StillThere | Unverified


async def delete_instance(client: ReduClient, kind: AnyKind, instance: Instance) -> DeleteOutcome:
    """DELETE (retried when safe). Raises ``ReduError`` when the DELETE itself fails."""
    status = await client.delete_instance(kind, instance.id)
    if status in (DOCUMENTED_STATUS, 404):
        return Deleted(status)
    try:
        still = await client.get_instance(kind, instance.id)
    except NotFoundError:
        return Deleted(status)
    except ReduError as exc:
        return Unverified(status, exc)
    return StillThere(status, still)
