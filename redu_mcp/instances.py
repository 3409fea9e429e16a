"""The instance operations behind the tools, written once for PostgreSQL and Redis alike.

The one subtle part is ``create``: a POST is never re-sent blindly. The name is looked up first (an
existing instance is reported, not duplicated), and after an answer that was lost on the way back
the name is looked up again: found means it was created (its password is gone with the answer),
not found means one more POST is safe.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from mcp.server.mcpserver.exceptions import ToolError

from redu_mcp import errors
from redu_mcp.client import ReduClient
from redu_mcp.kinds import Kind
from redu_mcp.models import Instance, _CreateBody
from redu_mcp.runtime import Runtime
from redu_mcp.views import Connection, CreateResult, DeleteResult, InstanceDetail, InstanceList, InstanceView

log = logging.getLogger(__name__)


@contextmanager
def reported_as_tool_error(doing: str) -> Iterator[None]:
    """Turn an API failure into an error result a model can act on: what failed, why, what next."""
    try:
        yield
    except errors.ReduError as exc:
        log.info("%s failed: %s", doing, exc)
        hint = f" Next step: {exc.hint}" if exc.hint else ""
        raise ToolError(f"Could not {doing}: {exc}.{hint}") from None


async def list_instances(runtime: Runtime, kind: Kind, limit: int) -> InstanceList:
    with reported_as_tool_error(f"list {kind.label}s"):
        found = await runtime.client().list_instances(kind, limit=limit + 1)
    shown = found[:limit]
    return InstanceList(
        kind=kind.name,
        count=len(shown),
        truncated=len(found) > limit,
        instances=[InstanceView.of(kind, i) for i in shown],
    )


async def get_instance(runtime: Runtime, kind: Kind, id: int) -> InstanceDetail:
    with reported_as_tool_error(f"get {kind.label} {id}"):
        instance = await runtime.client().get_instance(kind, id)
    runtime.credentials.complete(kind, instance)
    return InstanceDetail.of(kind, instance)


async def find_by_name(client: ReduClient, kind: Kind, name: str) -> Instance | None:
    for instance in await client.list_instances(kind):
        if instance.name == name:
            return instance
    return None


async def create_instance(runtime: Runtime, kind: Kind, body: _CreateBody) -> CreateResult:
    client = runtime.client()
    doing = f"create {kind.label} '{body.name}'"
    supplied = getattr(body, kind.password_field) is not None
    with reported_as_tool_error(doing):
        existing = await find_by_name(client, kind, body.name)
    if existing is not None:
        return _already_exists(kind, existing)

    with reported_as_tool_error(doing):
        try:
            created = await client.create_instance(kind, body)
        except (errors.TransportError, errors.ServerError, errors.RateLimitedError) as exc:
            created = await _reconcile(client, kind, body, exc)
            if not isinstance(created, kind.created_model):
                return _recovered_without_password(runtime, kind, created, body, supplied, exc)

    password = kind.password_of(created)
    if supplied:
        password = getattr(body, kind.password_field).get_secret_value()
    return _deliver(runtime, kind, created, password, supplied)


async def _reconcile(client: ReduClient, kind: Kind, body: _CreateBody, failure: errors.ReduError) -> Instance:
    """After a POST whose outcome is unknown: find the instance by name, or POST once more."""
    applied_maybe = not isinstance(failure, errors.RateLimitedError) and (
        not isinstance(failure, errors.TransportError) or failure.maybe_applied
    )
    if applied_maybe:
        log.warning("create of %s '%s' may have been applied (%s); looking it up by name", kind.name, body.name, failure)
        found = await find_by_name(client, kind, body.name)
        if found is not None:
            return found
    log.info("create of %s '%s' was not applied; sending it once more", kind.name, body.name)
    return await client.create_instance(kind, body)


def _already_exists(kind: Kind, existing: Instance) -> CreateResult:
    view = InstanceView.of(kind, existing)
    return CreateResult(
        created=False,
        instance=view,
        connection=Connection.of(kind, existing),
        password_delivery="unknown",
        message=(
            f"A {kind.label} named '{existing.name}' already exists (id {existing.id}, status {existing.status}); "
            "nothing was created. Its password was shown only when it was created."
        ),
        next_step=(
            f"Use it (get_{kind.name} / wait_for_ready with id {existing.id}), or pick another name."
        ),
    )


def _recovered_without_password(
    runtime: Runtime, kind: Kind, found: Instance, body: _CreateBody, supplied: bool, failure: errors.ReduError
) -> CreateResult:
    """The instance exists but the answer carrying its password was lost."""
    if supplied:
        password = getattr(body, kind.password_field).get_secret_value()
        result = _deliver(runtime, kind, found, password, supplied)
        result.message = f"The API's answer was lost ({failure}), but the {kind.label} was created. " + result.message
        return result
    return CreateResult(
        created=True,
        instance=InstanceView.of(kind, found),
        connection=Connection.of(kind, found),
        password_delivery="not_returned",
        message=(
            f"The API's answer was lost ({failure}), but the {kind.label} '{found.name}' was created "
            f"(id {found.id}). Its generated password travelled only in that lost answer and cannot be "
            "recovered: Redu keeps no plain-text copy."
        ),
        next_step=(
            f"To get a usable password, delete it (delete_{kind.name} id {found.id}) and create it "
            "again, or create a new one with a password you choose."
        ),
    )


def _deliver(runtime: Runtime, kind: Kind, created: Instance, password: str | None, supplied: bool) -> CreateResult:
    """Hand the password over as configured: a private file (default) or the result, never both."""
    public = kind.public(created) if isinstance(created, kind.created_model) else created
    view = InstanceView.of(kind, public)
    connection = Connection.of(kind, public)
    next_step = f"Call wait_for_ready with kind='{kind.name}' and id={public.id}; provisioning takes a few minutes."
    base = dict(created=True, instance=view, connection=connection, next_step=next_step)
    label = f"{kind.label} '{public.name}' (id {public.id})"
    if password is None:
        return CreateResult(
            **base,
            password_delivery="not_returned",
            message=f"Created {label}. The API returned no password.",
        )
    if runtime.settings.secrets == "reveal" and not supplied:
        return CreateResult(
            **base,
            password_delivery="shown_once",
            password=password,
            message=f"Created {label}. The password below is shown this once: Redu keeps no copy. Store it now.",
        )
    try:
        path = runtime.credentials.save(kind, public, password)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        if supplied:
            return CreateResult(
                **base,
                password_delivery="caller_supplied",
                message=f"Created {label} with the password you supplied (not repeated here). "
                f"Saving a credentials file failed ({reason}).",
            )
        return CreateResult(
            **base,
            password_delivery="shown_once",
            password=password,
            message=(
                f"Created {label}. Saving the password to a credentials file failed ({reason}), so it is "
                "shown here instead, this once: Redu keeps no copy. Store it now."
            ),
        )
    what = "the password you supplied" if supplied else "its one-time password"
    return CreateResult(
        **base,
        password_delivery="caller_supplied" if supplied else "file",
        credentials_file=str(path),
        message=f"Created {label}. {what.capitalize()} is saved (mode 0600) in {path}, not shown here.",
    )


async def delete_instance(client: ReduClient, kind: Kind, instance: Instance) -> DeleteResult:
    with reported_as_tool_error(f"delete {kind.label} {instance.id}"):
        await client.delete_instance(kind, instance.id)
    return DeleteResult(
        deleted=True,
        kind=kind.name,
        id=instance.id,
        name=instance.name,
        message=f"Deleted {kind.label} '{instance.name}' (id {instance.id}) and all its data.",
    )

