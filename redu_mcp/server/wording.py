"""Every sentence a model reads about what happened: results, errors, next steps, progress.

Tools, resources and waits all word things here, from the facts that provisioning and the API
library return (typed outcomes, errors with their fields). Nothing here calls the API or decides
anything; a sentence is rendered afresh for each caller, so two callers who share a fact (a failed
poll) each get the wording that fits their own situation.
"""

from __future__ import annotations

import datetime
import math
from typing import TYPE_CHECKING

from redu_mcp.api import (
    AnyKind,
    APIStatusError,
    AuthenticationError,
    ConflictError,
    Instance,
    InvalidRequestError,
    NotConfiguredError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ReduError,
    ResponseFormatError,
    ServerError,
    TransportError,
    retry_after_of,
)
from redu_mcp.provisioning.create import (
    AlreadyExists,
    Created,
    CreatedAnswerLost,
    NotCreated,
    OutcomeUnknown,
)
from redu_mcp.provisioning.credentials import Delivery, NoPassword, Revealed, SavedToFile, SuppliedNotSaved
from redu_mcp.provisioning.delete import Deleted, StillThere, Unverified
from redu_mcp.provisioning.waiting import Poll, WaitOutcome
from redu_mcp.server.results import Connection, CreateResult, DeleteResult, InstanceView, WaitResult

if TYPE_CHECKING:
    from redu_mcp.server.confirmation import Refusal

NOTHING_CREATED = "Nothing was created."

# --- errors ------------------------------------------------------------------------------------------

#: What to do about each kind of failure, most specific class first.
_ADVICE: list[tuple[type[ReduError], str]] = [
    (NotConfiguredError, "Set REDU_API_KEY in the server's environment, or start it with --sandbox to try it out."),
    (TransportError, "The Redu API could not be reached; try again shortly."),
    (ResponseFormatError, "The Redu API (or a proxy in front of it) sent an unexpected response; try again later."),
    (AuthenticationError, "Check the REDU_API_KEY the server runs with (create a key in the Redu console)."),
    (PermissionDeniedError, "The API key lacks permission for this resource; use a key of a user who has it."),
    (NotFoundError, "It does not exist (or was deleted); list the instances to find the right id."),
    (ConflictError, "Something with that name or in that state already exists; list instances and adjust."),
    (InvalidRequestError, "Fix the named field and try again (look up valid values with the list_* tools)."),
    (RateLimitedError, "The Redu API is rate limiting; wait and try again."),
    (ServerError, "The Redu API had an internal problem; try again shortly."),
    (APIStatusError, "The Redu API rejected the request."),
]


def when_to_retry(seconds: float) -> str:
    """``"in 120 s (after 14:02:07 UTC)"``: when to try again, for a model or a person."""
    at = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=math.ceil(seconds))
    return f"in {math.ceil(seconds)} s (after {at:%H:%M:%S} UTC)"


def _too_long_to_wait(exc: ReduError, time_left: float | None) -> str:
    budget = (
        "the time this call has left" if time_left is None else f"the {max(0.0, time_left):.0f} s this call has left"
    )
    return f" (the API asks to wait {math.ceil(retry_after_of(exc) or 0)} s before retrying, more than {budget})"


def _stopped_by_retry_after(exc: ReduError) -> bool:
    return exc.retry is not None and exc.retry.stopped_by == "retry_after"


def describe(exc: ReduError) -> str:
    """What went wrong: where, the status, the API's words, and how retrying ended."""
    where = f"{exc.endpoint}: " if exc.endpoint else ""
    code = f" {exc.code}" if exc.code else ""
    head = f"HTTP {exc.status}{code}: " if exc.status is not None else ""
    tail = ""
    facts = exc.retry
    if facts is not None and facts.stopped_by == "retry_after":
        tail = _too_long_to_wait(exc, facts.time_left)
    elif facts is not None and facts.attempts > 1:
        tail = f" (gave up after {facts.attempts} attempts in {facts.elapsed:.1f} s)"
    return f"{where}{head}{exc.message}{tail}"


def advice(exc: ReduError) -> str:
    """What to do next about ``exc``, including when to try again if the API said so."""
    advised = retry_after_of(exc)
    if advised is not None and _stopped_by_retry_after(exc):
        return f"Try again {when_to_retry(advised)}."
    hint = next((text for cls, text in _ADVICE if isinstance(exc, cls)), "")
    if advised is not None and advised >= 1:
        hint = f"{hint} The API asks to wait {math.ceil(advised)} s: try again {when_to_retry(advised)}.".strip()
    return hint


def failure(doing: str, exc: ReduError, note: str = "") -> str:
    """``Could not <doing>: <what happened>. <note> Next step: <advice>``."""
    note = f" {note}" if note else ""
    hint = advice(exc)
    return f"Could not {doing}: {describe(exc)}.{note}" + (f" Next step: {hint}" if hint else "")


# --- create ------------------------------------------------------------------------------------------


def creating(kind: AnyKind, name: str) -> str:
    return f"create {kind.label} '{name}'"


def _described(kind: AnyKind, instance: Instance) -> str:
    return f"{kind.label} '{instance.name}' (id {instance.id})"


def created_result(kind: AnyKind, outcome: Created | CreatedAnswerLost, delivery: Delivery | None) -> CreateResult:
    """The result of a create that made an instance, with its password delivered as ``delivery`` said."""
    instance = outcome.instance
    if isinstance(outcome, CreatedAnswerLost) and delivery is None:
        return CreateResult(
            created=True,
            instance=InstanceView.of(kind, instance),
            connection=Connection.of(kind, instance),
            password_delivery="not_returned",
            message=(
                f"The API's answer was lost ({describe(outcome.lost)}), but a look-up by name shows the {kind.label} "
                f"'{instance.name}' was created (id {instance.id}). Its password is unknown and cannot be recovered: "
                "the generated password travelled only in that lost answer, and Redu keeps no plain-text copy."
            ),
            next_step=(
                f"To get a usable password, delete it (delete_{kind.name} with id {instance.id}) and create it "
                f"again; to choose the password yourself, pass {kind.password_field} when you create it again. "
                "Do not create it again without deleting it first: the name is taken."
            ),
        )
    result = _delivered(kind, instance, delivery or NoPassword())
    if isinstance(outcome, CreatedAnswerLost):
        before = (
            f"The API's answer was lost ({describe(outcome.lost)}), but a look-up by name shows the {kind.label} "
            "was created. "
        )
    elif outcome.first_failure is not None:
        why = "a look-up by name showed it was not applied" if outcome.checked_by_name else "it was not applied"
        before = f"The first attempt failed ({describe(outcome.first_failure)}) and {why}; a second one succeeded. "
    else:
        before = ""
    return result.model_copy(update={"message": before + result.message})


def _delivered(kind: AnyKind, instance: Instance, delivery: Delivery) -> CreateResult:
    label = _described(kind, instance)
    base = CreateResult(
        created=True,
        instance=InstanceView.of(kind, instance),
        connection=Connection.of(kind, instance),
        password_delivery="not_returned",
        message=f"Created {label}. The API returned no password.",
        next_step=f"Call wait_for_ready with kind='{kind.name}' and id={instance.id}; provisioning takes a few minutes.",
    )
    match delivery:
        case SavedToFile(path=path, supplied=supplied):
            what = "The password you supplied" if supplied else "Its one-time password"
            return base.model_copy(
                update={
                    "password_delivery": "caller_supplied" if supplied else "file",
                    "credentials_file": str(path),
                    "message": f"Created {label}. {what} is saved (mode 0600) in {path}, not shown here.",
                }
            )
        case Revealed(password=password, save_error=None):
            message = f"Created {label}. The password below is shown this once: Redu keeps no copy. Store it now."
            return base.model_copy(update={"password_delivery": "shown_once", "password": password, "message": message})
        case Revealed(password=password, save_error=reason):
            message = (
                f"Created {label}. Saving the password to a credentials file failed ({reason}), so it is shown here "
                "instead, this once: Redu keeps no copy. Store it now."
            )
            return base.model_copy(update={"password_delivery": "shown_once", "password": password, "message": message})
        case SuppliedNotSaved(save_error=reason):
            message = (
                f"Created {label} with the password you supplied (not repeated here). "
                f"Saving a credentials file failed ({reason})."
            )
            return base.model_copy(update={"password_delivery": "caller_supplied", "message": message})
        case NoPassword():
            return base


def already_exists_result(kind: AnyKind, outcome: AlreadyExists) -> CreateResult:
    existing = outcome.instance
    note = (
        f" Another request created it just before this one ({describe(outcome.conflict)})." if outcome.conflict else ""
    )
    return CreateResult(
        created=False,
        instance=InstanceView.of(kind, existing),
        connection=Connection.of(kind, existing),
        password_delivery="unknown",
        message=(
            f"A {kind.label} named '{existing.name}' already exists (id {existing.id}, status {existing.status}); "
            f"nothing was created.{note} Its password was shown only when it was created."
        ),
        next_step=f"Use it (get_{kind.name} / wait_for_ready with id {existing.id}), or pick another name.",
    )


def not_created(kind: AnyKind, name: str, outcome: NotCreated) -> str:
    doing = creating(kind, name)
    error = outcome.error
    why = "a look-up by name showed it was not applied" if outcome.checked_by_name else "it was not applied"
    first = outcome.first_failure
    tried_twice = f"It was tried twice: the first attempt failed too ({describe(first)}), and {why}." if first else ""
    match outcome.reason:
        case "lookup_failed":
            return failure(doing, error, f"{NOTHING_CREATED} (It failed checking whether the name is taken.)")
        case "rejected" | "taken_not_found":
            return failure(doing, error, NOTHING_CREATED)
        case "no_time_to_retry":
            checked = " (checked by name)" if outcome.checked_by_name else ""
            return failure(doing, error, f"Nothing was created{checked}, and no time is left to retry in this call.")
        case "second_not_found":
            return failure(
                doing,
                error,
                f"{tried_twice} A look-up by name after the second finds no '{name}' either. {NOTHING_CREATED}",
            )
        case "second_failed":
            return failure(doing, error, f"{tried_twice} {NOTHING_CREATED}")


def outcome_unknown(kind: AnyKind, name: str, outcome: OutcomeUnknown) -> str:
    tried = "; then ".join(describe(f) for f in outcome.failures)
    return (
        f"Could not tell whether {kind.label} '{name}' was created. The create request got no usable "
        f"answer ({tried}), and looking the name up afterwards failed too ({describe(outcome.lookup_error)}). It may "
        f"or may not exist now, so nothing more was sent. Next step: do not simply call create_{kind.name} "
        f"again. First call list_{kind.collection} (once the API answers again) and look for '{name}': if "
        f"it is there, it was created, and its generated password was lost with the answer (delete it with "
        f"delete_{kind.name} and create it again, or pass a password of your own when you do); if it is not "
        f"there, call create_{kind.name} again."
    )


# --- delete ------------------------------------------------------------------------------------------


def deleting(kind: AnyKind, id: int) -> str:
    return f"delete {kind.label} {id}"


def delete_result(kind: AnyKind, target: Instance, outcome: Deleted | StillThere) -> DeleteResult:
    label = _described(kind, target)
    if isinstance(outcome, StillThere):
        message = (
            f"The API answered the delete with HTTP {outcome.status} instead of the documented 204, and "
            f"{label} still exists (status {outcome.instance.status}): it may still be being deleted. Call "
            f"get_{kind.name} with id {target.id} in a moment; delete it again only if it is still there."
        )
        return DeleteResult(deleted=False, kind=kind.name, id=target.id, name=target.name, message=message)
    return DeleteResult(
        deleted=True, kind=kind.name, id=target.id, name=target.name, message=f"Deleted {label} and all its data."
    )


def confirmation_question(kind: AnyKind, target: Instance) -> str:
    return f"Delete {_described(kind, target)}? All its data will be lost; this cannot be undone."


def refused(kind: AnyKind, target: Instance, refusal: Refusal) -> str:
    dont_retry = "Do not retry unless the user asks for this deletion again."
    described = _described(kind, target)
    match refusal.why:
        case "declined" | "cancelled":
            return f"Nothing was deleted: the user {refusal.why} the confirmation. {dont_retry}"
        case "unticked":
            return f"Nothing was deleted: the user did not confirm the deletion. {dont_retry}"
        case "name_mismatch":
            return (
                f"Nothing was deleted: confirm_name '{refusal.given}' does not match the name of {kind.label} "
                f"{target.id}, which is '{target.name}'. Check that {described} is the one the user wants deleted "
                f"(get_{kind.name}); only then call again with confirm_name set to its exact current name."
            )
        case "name_missing":
            return (
                "Nothing was deleted: this client cannot ask the user to confirm, and no confirm_name was given. "
                f"Only if the user asked to delete {described}, call again with confirm_name='{target.name}'."
            )


def delete_unverified(kind: AnyKind, target: Instance, outcome: Unverified) -> str:
    return (
        f"Could not tell whether {_described(kind, target)} was deleted: the API answered the delete with HTTP "
        f"{outcome.status} instead of the documented 204, and checking afterwards failed ({describe(outcome.error)}). "
        f"Next step: call get_{kind.name} with id {target.id}; if it still exists, delete it again."
    )


# --- wait --------------------------------------------------------------------------------------------


def poll_progress(poll: Poll) -> str:
    if poll.error is not None:
        then = f"{poll.failures_in_a_row} in a row: giving up" if poll.giving_up else "polling again"
        return f"poll {poll.number} failed ({describe(poll.error)}); {then}"
    status = poll.instance.status if poll.instance is not None else "unknown"
    return f"status: {status} (poll {poll.number}, {poll.elapsed:.0f}s)"


def wait_failure(kind: AnyKind, id: int, outcome: WaitOutcome, timeout: float) -> str | None:
    """Why the wait is an error (None when it is a result: ready, or not ready yet)."""
    label = f"{kind.label} {id}"
    error = outcome.error
    if isinstance(error, NotFoundError):
        return (
            f"{label} does not exist (it may have been deleted; {describe(error)}). Next step: "
            f"list_{kind.collection} to see what exists."
        )
    if error is not None:
        in_a_row = outcome.failures_in_a_row
        note = f"{in_a_row} polls in a row failed; it stopped polling." if in_a_row > 1 else ""
        return failure(f"wait for {label}", error, note)
    instance = outcome.instance
    if outcome.end == "failed" and instance is not None:
        return (
            f"Provisioning failed: {kind.label} '{instance.name}' (id {id}) is in status 'error'. "
            f"Next step: delete it (delete_{kind.name}) and create it again, perhaps with another flavor."
        )
    if instance is None:
        last = f" (last poll: {describe(outcome.last_error)})" if outcome.last_error else ""
        return (
            f"No answer about {label} within {timeout:g}s{last}. Next step: call wait_for_ready again "
            "shortly; do not create another instance."
        )
    return None


def wait_result(kind: AnyKind, outcome: WaitOutcome, credentials_file: str | None) -> WaitResult:
    instance = outcome.instance
    assert instance is not None  # wait_failure covers a wait that saw no instance
    if outcome.ready:
        return WaitResult(
            ready=True,
            status=outcome.status,
            instance=InstanceView.of(kind, instance),
            elapsed_seconds=round(outcome.elapsed, 2),
            polls=outcome.polls,
            connection=Connection.of(kind, instance),
            credentials_file=credentials_file,
            next_step="Ready. Connect with the connection details"
            + (f"; the password is in {credentials_file}." if credentials_file else "."),
        )
    return WaitResult(
        ready=False,
        status=outcome.status,
        instance=InstanceView.of(kind, instance),
        elapsed_seconds=round(outcome.elapsed, 2),
        polls=outcome.polls,
        next_step=(
            f"Still {outcome.status} after {outcome.elapsed:.0f}s. Call wait_for_ready again with the same "
            "arguments; do not create another instance."
        ),
    )


# --- argument refusals --------------------------------------------------------------------------------


def invalid_arguments(tool: str, problems: list[str]) -> str:
    return f"Invalid arguments for {tool}: {'; '.join(problems)}. Nothing was sent to the Redu API."
