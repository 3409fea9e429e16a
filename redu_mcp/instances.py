"""The instance operations behind the tools, written once for PostgreSQL and Redis alike.

The one subtle part is ``create``: a POST is never re-sent blindly, and one ``create_*`` call
yields at most one instance. The name is looked up first (an existing instance is reported, not
duplicated). A POST that fails in a way that means it was not applied (429, no connection) is
sent once more. A POST whose outcome is uncertain (a timeout, a dropped connection, a 5xx, or a
2xx whose body cannot be read) is reconciled by looking the name up: found means it was created
(its generated password is gone with the lost answer, unless the caller supplied it), not found
means one more POST is safe. If that lookup fails too, nothing more is sent and the result says
exactly what is unknown and how to find out. Every step is clipped to the call's deadline, and a
POST always leaves time for the lookup that may have to follow it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import anyio
from mcp.server.mcpserver.exceptions import ToolError

from redu_mcp import errors
from redu_mcp.client import ReduClient
from redu_mcp.kinds import Kind
from redu_mcp.models import Instance, _CreateBody
from redu_mcp.retry import (
    TOOL_DEADLINE_SECONDS,
    explain_retry_after,
    retry_after_of,
    share_of_time_left,
    time_left,
    when_to_retry,
    within,
)
from redu_mcp.runtime import Runtime
from redu_mcp.views import Connection, CreateResult, DeleteResult, InstanceDetail, InstanceList, InstanceView

log = logging.getLogger(__name__)

#: The share of the time left that each step of a create may use, so that an uncertain POST always
#: leaves time to find out what happened (and, if nothing did, to send it once more).
LOOKUP_SHARE = 0.4  # the first look-up by name
POST_SHARE = 0.5  # the first POST; the other half is for the reconcile and one more POST
RECONCILE_SHARE = 0.5  # the look-up after an uncertain POST
RETRY_POST_SHARE = 0.6  # the one more POST; the rest is for a final look-up if it is uncertain too

NOTHING_CREATED = "Nothing was created."


def next_step(exc: errors.ReduError) -> str:
    """What to do about ``exc``: its hint, plus when to try again if the API said so."""
    hint = exc.hint
    advised = retry_after_of(exc)
    if advised is not None and advised >= 1 and "Try again in" not in hint:
        hint = f"{hint} The API asks to wait {math.ceil(advised)} s: try again {when_to_retry(advised)}.".strip()
    return hint


def failure_text(doing: str, exc: errors.ReduError, note: str = "") -> str:
    hint = next_step(exc)
    note = f" {note}" if note else ""
    return f"Could not {doing}: {exc}.{note}" + (f" Next step: {hint}" if hint else "")


@contextmanager
def reported_as_tool_error(doing: str, note: str = "") -> Iterator[None]:
    """Turn an API failure into an error result a model can act on: what failed, why, what next."""
    try:
        yield
    except errors.ReduError as exc:
        log.info("%s failed: %s", doing, exc)
        raise ToolError(failure_text(doing, exc, note)) from None


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


# --- create: at most one instance per call ------------------------------------------------------------

#: What a failed POST tells us about whether it took effect upstream.
Outcome = Literal["not_applied", "uncertain", "conflict", "rejected"]


def outcome_of(exc: errors.ReduError) -> Outcome:
    if isinstance(exc, errors.ConflictError):
        return "conflict"  # the name is taken (by whom, a look-up tells)
    if isinstance(exc, errors.RateLimitedError):
        return "not_applied"  # refused before any work was done
    if isinstance(exc, errors.TransportError):
        return "uncertain" if exc.maybe_applied else "not_applied"  # sent or not
    if isinstance(exc, errors.ServerError):
        return "uncertain"  # a 5xx may come after the work was done (e.g. a gateway timing out)
    if isinstance(exc, errors.ResponseFormatError):
        return "uncertain"  # a 2xx we cannot read: most likely applied, but a proxy may have answered
    return "rejected"  # 400/401/403/404/422, not configured: refused, nothing done


async def create_instance(runtime: Runtime, kind: Kind, body: _CreateBody) -> CreateResult:
    """Create one instance, never two, within the call's deadline (``TOOL_DEADLINE_SECONDS`` at most)."""
    with within(TOOL_DEADLINE_SECONDS):
        doing = f"create {kind.label} '{body.name}'"
        with reported_as_tool_error(doing, f"{NOTHING_CREATED} (It failed checking whether the name is taken.)"):
            client = runtime.client()  # inside: not configured is an error result too
            with share_of_time_left(LOOKUP_SHARE):
                existing = await find_by_name(client, kind, body.name)
        if existing is not None:
            return _already_exists(kind, existing)
        return await _Create(runtime, client, kind, body).run()


class _Create:
    """One create call after the name was found free: at most two POSTs, the second only when safe."""

    def __init__(self, runtime: Runtime, client: ReduClient, kind: Kind, body: _CreateBody) -> None:
        self.runtime = runtime
        self.client = client
        self.kind = kind
        self.body = body
        self.name = body.name
        self.doing = f"create {kind.label} '{body.name}'"
        self.failures: list[errors.ReduError] = []

    async def run(self) -> CreateResult:
        try:
            with share_of_time_left(POST_SHARE):
                return self._created(await self.client.create_instance(self.kind, self.body))
        except errors.ReduError as exc:
            first = exc
        self.failures.append(first)
        outcome = outcome_of(first)
        log.warning("POST of %s '%s' failed (%s): %s", self.kind.name, self.name, outcome, first)
        if outcome == "rejected":
            raise ToolError(failure_text(self.doing, first, NOTHING_CREATED))
        if outcome == "conflict":
            return await self._taken_meanwhile(first)
        checked = False
        if outcome == "uncertain":
            found = await self._look_up(RECONCILE_SHARE)
            if found is not None:
                return self._recovered(found, first)
            checked = True
        await self._pause_before_retry(first, checked)
        return await self._second_post(first, checked)

    async def _second_post(self, first: errors.ReduError, checked: bool) -> CreateResult:
        why = "a look-up by name showed it was not applied" if checked else "it was not applied"
        log.info("sending the create of %s '%s' once more (%s)", self.kind.name, self.name, why)
        try:
            with share_of_time_left(RETRY_POST_SHARE):
                created = await self.client.create_instance(self.kind, self.body)
        except errors.ReduError as exc:
            second = exc
        else:
            result = self._created(created)
            result.message = f"The first attempt failed ({first}) and {why}; a second one succeeded. " + result.message
            return result
        self.failures.append(second)
        outcome = outcome_of(second)
        log.warning("the second POST of %s '%s' failed too (%s): %s", self.kind.name, self.name, outcome, second)
        before = f"It was tried twice: the first attempt failed too ({first}), and {why}."
        if outcome == "conflict" and not checked:  # the first was surely not applied: someone else took the name
            return await self._taken_meanwhile(second)
        if outcome in ("uncertain", "conflict"):
            found = await self._look_up(1.0)
            if found is not None:
                return self._recovered(found, second)
            raise ToolError(
                failure_text(
                    self.doing, second, f"{before} A look-up by name after the second finds no '{self.name}' either. "
                    f"{NOTHING_CREATED}"
                )
            )
        raise ToolError(failure_text(self.doing, second, f"{before} {NOTHING_CREATED}"))

    async def _taken_meanwhile(self, conflict: errors.ReduError) -> CreateResult:
        """A 409 to a POST that was the only one applied, if any: another request took the name."""
        try:
            with share_of_time_left(RECONCILE_SHARE):
                found = await find_by_name(self.client, self.kind, self.name)
        except errors.ReduError as exc:
            log.info("could not look up %s '%s' after a 409: %s", self.kind.name, self.name, exc)
            found = None
        if found is None:
            raise ToolError(failure_text(self.doing, conflict, NOTHING_CREATED))
        return _already_exists(
            self.kind, found, note=f"Another request created it just before this one ({conflict})."
        )

    async def _look_up(self, share: float) -> Instance | None:
        """Find the instance by name after an uncertain POST. If that fails too, say what is unknown."""
        try:
            with share_of_time_left(share):
                return await find_by_name(self.client, self.kind, self.name)
        except errors.ReduError as exc:
            log.warning("could not look up %s '%s' after an uncertain create: %s", self.kind.name, self.name, exc)
            raise ToolError(self._unknown_outcome(exc)) from None

    async def _pause_before_retry(self, failure: errors.ReduError, checked: bool) -> None:
        """Wait as the API asked (capped) or a short backoff, unless the deadline comes first."""
        policy = self.client.retry
        delay = policy.delay_after(failure, 1)
        advised = retry_after_of(failure)
        left = time_left()
        too_late = advised is not None and left is not None and advised > left
        if left is not None and (too_late or delay + policy.min_attempt_seconds > left):
            if too_late:
                explain_retry_after(failure, left)
            checked_note = " (checked by name)" if checked else ""
            note = f"Nothing was created{checked_note}, and no time is left to retry in this call."
            raise ToolError(failure_text(self.doing, failure, note))
        if delay > 0:
            await anyio.sleep(delay)

    def _created(self, created: Instance) -> CreateResult:
        password = self.kind.password_of(created)
        supplied = self._supplied()
        if supplied is not None:
            password = supplied
        return _deliver(self.runtime, self.kind, created, password, supplied is not None)

    def _supplied(self) -> str | None:
        secret = getattr(self.body, self.kind.password_field)
        return secret.get_secret_value() if secret is not None else None

    def _recovered(self, found: Instance, failure: errors.ReduError) -> CreateResult:
        log.warning("%s '%s' exists (id %s) though its create failed: %s", self.kind.name, self.name, found.id, failure)
        return _recovered_without_password(self.runtime, self.kind, found, self._supplied(), failure)

    def _unknown_outcome(self, lookup_failure: errors.ReduError) -> str:
        kind, name = self.kind, self.name
        tried = "; then ".join(str(f) for f in self.failures)
        return (
            f"Could not tell whether {kind.label} '{name}' was created. The create request got no usable "
            f"answer ({tried}), and looking the name up afterwards failed too ({lookup_failure}). It may or "
            f"may not exist now, so nothing more was sent. Next step: do not simply call create_{kind.name} "
            f"again. First call list_{kind.collection} (once the API answers again) and look for '{name}': if "
            f"it is there, it was created, and its generated password was lost with the answer (delete it with "
            f"delete_{kind.name} and create it again, or pass a password of your own when you do); if it is not "
            f"there, call create_{kind.name} again."
        )


def _already_exists(kind: Kind, existing: Instance, note: str = "") -> CreateResult:
    view = InstanceView.of(kind, existing)
    note = f" {note}" if note else ""
    return CreateResult(
        created=False,
        instance=view,
        connection=Connection.of(kind, existing),
        password_delivery="unknown",
        message=(
            f"A {kind.label} named '{existing.name}' already exists (id {existing.id}, status {existing.status}); "
            f"nothing was created.{note} Its password was shown only when it was created."
        ),
        next_step=(
            f"Use it (get_{kind.name} / wait_for_ready with id {existing.id}), or pick another name."
        ),
    )


def _recovered_without_password(
    runtime: Runtime, kind: Kind, found: Instance, supplied: str | None, failure: errors.ReduError
) -> CreateResult:
    """The instance exists but the answer carrying its password was lost."""
    if supplied is not None:
        result = _deliver(runtime, kind, found, supplied, True)
        result.message = (
            f"The API's answer was lost ({failure}), but a look-up by name shows the {kind.label} was created. "
            + result.message
        )
        return result
    return CreateResult(
        created=True,
        instance=InstanceView.of(kind, found),
        connection=Connection.of(kind, found),
        password_delivery="not_returned",
        message=(
            f"The API's answer was lost ({failure}), but a look-up by name shows the {kind.label} '{found.name}' "
            f"was created (id {found.id}). Its password is unknown and cannot be recovered: the generated "
            "password travelled only in that lost answer, and Redu keeps no plain-text copy."
        ),
        next_step=(
            f"To get a usable password, delete it (delete_{kind.name} with id {found.id}) and create it again; "
            f"to choose the password yourself, pass {kind.password_field} when you create it again. "
            "Do not create it again without deleting it first: the name is taken."
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


# --- delete ---------------------------------------------------------------------------------------------


async def delete_instance(client: ReduClient, kind: Kind, instance: Instance) -> DeleteResult:
    """DELETE (retried when safe). The documented answer is 204; any other 2xx is checked with a GET.

    Its time budget starts now, not when the tool was called: the user may have taken a while to confirm."""
    label = f"{kind.label} '{instance.name}' (id {instance.id})"
    with within(TOOL_DEADLINE_SECONDS, restart=True):
        with reported_as_tool_error(f"delete {kind.label} {instance.id}"):
            status = await client.delete_instance_status(kind, instance.id)
        if status not in (204, 404):
            # Not the documented answer (a proxy's page, or an asynchronous delete): believe only a GET.
            try:
                still = await client.get_instance(kind, instance.id)
            except errors.NotFoundError:
                pass
            except errors.ReduError as exc:
                raise ToolError(
                    f"Could not tell whether {label} was deleted: the API answered the delete with HTTP {status} "
                    f"instead of the documented 204, and checking afterwards failed ({exc}). Next step: call "
                    f"get_{kind.name} with id {instance.id}; if it still exists, delete it again."
                ) from None
            else:
                return DeleteResult(
                    deleted=False,
                    kind=kind.name,
                    id=instance.id,
                    name=instance.name,
                    message=(
                        f"The API answered the delete with HTTP {status} instead of the documented 204, and "
                        f"{label} still exists (status {still.status}): it may still be being deleted. Call "
                        f"get_{kind.name} with id {instance.id} in a moment; delete it again only if it is still there."
                    ),
                )
    return DeleteResult(
        deleted=True,
        kind=kind.name,
        id=instance.id,
        name=instance.name,
        message=f"Deleted {label} and all its data.",
    )
