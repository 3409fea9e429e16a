"""Create an instance, never two: the one subtle operation, written once for PostgreSQL and Redis.

A POST is never re-sent blindly, and one call yields at most one instance. The name is looked up
first (an existing instance is reported, not duplicated). A POST that fails in a way that means it
was not applied (429, no connection) is sent once more. A POST whose outcome is uncertain (a
timeout, a dropped connection, a 5xx, or a 2xx whose body cannot be read) is reconciled by looking
the name up: found means it was created (its generated password is gone with the lost answer,
unless the caller supplied it), not found means one more POST is safe. If that look-up fails too,
nothing more is sent and the outcome says what is unknown. Every step is clipped to the caller's
deadline, and a POST always leaves time for the look-up that may have to follow it.

The result is a typed outcome; what to tell a model about it is decided by the MCP face.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import anyio

from redu_mcp.api import (
    AnyKind,
    ConflictError,
    CreateBody,
    Instance,
    InvalidRequestError,
    RateLimitedError,
    ReduClient,
    ReduError,
    ResponseFormatError,
    RetryFacts,
    ServerError,
    TransportError,
    no_time_to_retry,
    remember_secret,
    share_of_time_left,
    time_left,
)
from redu_mcp.provisioning.lookups import REFERENCE_FIELDS, ReferenceField, find_by_name, valid_references

log = logging.getLogger(__name__)

#: The share of the time left that each step may use, so that an uncertain POST always leaves time
#: to find out what happened (and, if nothing did, to send it once more).
LOOKUP_SHARE = 0.4  # the first look-up by name
POST_SHARE = 0.5  # the first POST; the other half is for the reconcile and one more POST
RECONCILE_SHARE = 0.5  # the look-up after an uncertain POST
RETRY_POST_SHARE = 0.6  # the one more POST; the rest is for a final look-up if it is uncertain too


# --- outcomes ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Created:
    """It was created by this call. ``password`` is the one-time (or caller's) password, if any."""

    instance: Instance  # without its password
    password: str | None
    supplied: bool  # the caller chose the password
    first_failure: ReduError | None = None  # a first POST failed and a second one succeeded
    checked_by_name: bool = False  # ...after a look-up by name showed the first was not applied


@dataclass(frozen=True)
class CreatedAnswerLost:
    """This call created it, but the answer was lost: a look-up by name found it afterwards."""

    instance: Instance
    lost: ReduError  # what happened to the answer
    password: str | None  # the caller's own password; a generated one is gone with the answer


@dataclass(frozen=True)
class AlreadyExists:
    """An instance with this name existed (or another request created it first): nothing was created."""

    instance: Instance
    conflict: ReduError | None = None  # set when this call's POST met a 409 (another request won)


NotCreatedReason = Literal[
    "lookup_failed",  # checking whether the name is taken failed: nothing was sent
    "rejected",  # the API refused the POST (400/401/403/404/422...)
    "taken_not_found",  # 409, yet no instance by that name can be found
    "no_time_to_retry",  # a retry would be safe, but the deadline (or Retry-After) does not allow one
    "second_failed",  # tried twice (safely), failed both times
    "second_not_found",  # tried twice; the second was uncertain, and a look-up finds no instance
]


@dataclass(frozen=True)
class UnknownReference:
    """The API refused a create because a look-up value is not one it knows."""

    field: ReferenceField
    value: str  # what the caller passed
    valid: tuple[tuple[str, str], ...]  # (value to pass, its name) for every valid one
    name_of: str | None = None  # the value is the *name* of this valid value (a model passed a name for an id)


@dataclass(frozen=True)
class NotCreated:
    """Nothing was created: ``error`` is the failure that decided it."""

    reason: NotCreatedReason
    error: ReduError
    first_failure: ReduError | None = None  # when tried twice: the first attempt's failure
    checked_by_name: bool = False  # a look-up by name showed the first POST was not applied
    reference: UnknownReference | None = None  # for "rejected": the unknown look-up value, when that was why


@dataclass(frozen=True)
class OutcomeUnknown:
    """The POST got no usable answer and the look-up by name failed too: it may or may not exist."""

    failures: tuple[ReduError, ...]  # the POSTs' failures
    lookup_error: ReduError


CreateOutcome = Created | CreatedAnswerLost | AlreadyExists | NotCreated | OutcomeUnknown


@dataclass(frozen=True)
class Difference:
    """A field of the request that the existing instance has another value for."""

    field: str
    requested: str
    existing: str


@dataclass(frozen=True)
class Comparison:
    """How an existing instance compares with a create's request, field by field."""

    differences: tuple[Difference, ...]
    unreported: tuple[str, ...]  # requested fields the API does not report, so they could not be compared


def compare_with_request(kind: AnyKind, body: CreateBody, existing: Instance) -> Comparison:
    """Every field of ``body`` (but the name and the password, never reported) whose value differs on
    ``existing``, as far as the API reports it (the request's ``version`` is the kind's version field)."""
    differences: list[Difference] = []
    unreported: list[str] = []
    for field in type(body).model_fields:
        if field in ("name", kind.password_field):
            continue
        requested = _shown(getattr(body, field))
        reported = _shown(getattr(existing, kind.version_field if field == "version" else field, None))
        if reported is None:
            unreported.append(field)
        elif requested is not None and requested != reported:
            differences.append(Difference(field, requested, reported))
    return Comparison(tuple(differences), tuple(unreported))


def _shown(value: object) -> str | None:
    """A field's value as text to compare and show; a list regardless of its order."""
    if value is None:
        return None
    if isinstance(value, list):
        return ", ".join(sorted(str(item) for item in value))
    return str(value)


#: What a failed POST tells us about whether it took effect upstream.
PostFailure = Literal["not_applied", "uncertain", "conflict", "rejected"]


def classify(exc: ReduError) -> PostFailure:
    if isinstance(exc, ConflictError):
        return "conflict"  # the name is taken (by whom, a look-up tells)
    if isinstance(exc, RateLimitedError):
        return "not_applied"  # refused before any work was done
    if isinstance(exc, TransportError):
        return "uncertain" if exc.maybe_applied else "not_applied"  # sent or not
    if isinstance(exc, ServerError):
        return "uncertain"  # a 5xx may come after the work was done (e.g. a gateway timing out)
    if isinstance(exc, ResponseFormatError):
        return "uncertain"  # a 2xx we cannot read: most likely applied, but a proxy may have answered
    return "rejected"  # 400/401/403/404/422, not configured: refused, nothing done


# --- the operation ----------------------------------------------------------------------------------


async def create_instance(client: ReduClient, kind: AnyKind, body: CreateBody) -> CreateOutcome:
    """Create one instance, never two, within the caller's deadline."""
    try:
        with share_of_time_left(LOOKUP_SHARE):
            existing = await find_by_name(client, kind, body.name)
    except ReduError as exc:
        return NotCreated("lookup_failed", exc)
    if existing is not None:
        return AlreadyExists(existing)
    return await _Create(client, kind, body).run()


class _Create:
    """One create after the name was found free: at most two POSTs, the second only when safe."""

    def __init__(self, client: ReduClient, kind: AnyKind, body: CreateBody) -> None:
        self.client = client
        self.kind = kind
        self.body = body
        self.name = body.name
        self.supplied = kind.supplied_password(body)
        # Once sent, the API may echo it in the answer to any later request (the look-up after an
        # uncertain create), not only in the create's own: the scrubber must know it from now on.
        remember_secret(self.supplied)
        self.failures: list[ReduError] = []

    async def run(self) -> CreateOutcome:
        try:
            with share_of_time_left(POST_SHARE):
                return self._created(await self.client.create_instance(self.kind, self.body))
        except ReduError as exc:
            first = exc
        self.failures.append(first)
        failure = classify(first)
        log.warning("POST of %s '%s' failed (%s): %s", self.kind.name, self.name, failure, first)
        if failure == "rejected":
            return NotCreated("rejected", first, reference=await self._unknown_reference(first))
        if failure == "conflict":
            return await self._taken_meanwhile(first)
        checked = False
        if failure == "uncertain":
            found = await self._look_up(RECONCILE_SHARE)
            if isinstance(found, OutcomeUnknown):
                return found
            if found is not None:
                return self._answer_lost(found, first)
            checked = True
        no_time = await self._pause_before_retry(first, checked)
        if no_time is not None:
            return no_time
        return await self._second_post(first, checked)

    async def _second_post(self, first: ReduError, checked: bool) -> CreateOutcome:
        log.info("sending the create of %s '%s' once more", self.kind.name, self.name)
        try:
            with share_of_time_left(RETRY_POST_SHARE):
                created = await self.client.create_instance(self.kind, self.body)
        except ReduError as exc:
            second = exc
        else:
            return self._created(created, first_failure=first, checked_by_name=checked)
        self.failures.append(second)
        failure = classify(second)
        log.warning("the second POST of %s '%s' failed too (%s): %s", self.kind.name, self.name, failure, second)
        if failure == "conflict" and not checked:  # the first was surely not applied: someone else took the name
            return await self._taken_meanwhile(second)
        if failure in ("uncertain", "conflict"):
            found = await self._look_up(1.0)
            if isinstance(found, OutcomeUnknown):
                return found
            if found is not None:
                return self._answer_lost(found, second)
            return NotCreated("second_not_found", second, first_failure=first, checked_by_name=checked)
        return NotCreated("second_failed", second, first_failure=first, checked_by_name=checked)

    async def _unknown_reference(self, rejection: ReduError) -> UnknownReference | None:
        """After a 400/422 naming a look-up field: which value was unknown, and the valid ones (one GET)."""
        text = f"{rejection.code or ''} {rejection.message}"
        field = next((f for f in REFERENCE_FIELDS if f in text), None)
        if not isinstance(rejection, InvalidRequestError) or field is None:
            return None
        try:
            valid = await valid_references(self.client, field)
        except ReduError as exc:
            log.info("could not look up the valid values of %s: %s", field, exc)
            return None
        given = self.body.security_group_names if field == "security_group_names" else [getattr(self.body, field)]
        known = {value for value, _ in valid}
        for value in given:
            if value not in known:
                name_of = next((v for v, name in valid if name == value), None)
                return UnknownReference(field, value, tuple(valid), name_of)
        return None

    async def _taken_meanwhile(self, conflict: ReduError) -> CreateOutcome:
        """A 409 to a POST that was the only one applied, if any: another request took the name."""
        try:
            with share_of_time_left(RECONCILE_SHARE):
                found = await find_by_name(self.client, self.kind, self.name)
        except ReduError as exc:
            log.info("could not look up %s '%s' after a 409: %s", self.kind.name, self.name, exc)
            found = None
        if found is None:
            return NotCreated("taken_not_found", conflict)
        return AlreadyExists(found, conflict=conflict)

    async def _look_up(self, share: float) -> Instance | OutcomeUnknown | None:
        """Find the instance by name after an uncertain POST; if that fails too, the outcome is unknown."""
        try:
            with share_of_time_left(share):
                return await find_by_name(self.client, self.kind, self.name)
        except ReduError as exc:
            log.warning("could not look up %s '%s' after an uncertain create: %s", self.kind.name, self.name, exc)
            return OutcomeUnknown(tuple(self.failures), exc)

    async def _pause_before_retry(self, failure: ReduError, checked: bool) -> NotCreated | None:
        """Wait as the API asked (capped) or a short backoff; or say there is no time to retry."""
        policy = self.client.retry
        delay = policy.delay_after(failure, 1)
        reason = no_time_to_retry(failure, delay, policy.min_attempt_seconds)
        if reason is not None:
            if reason == "retry_after":
                failure = failure.after_retrying(RetryFacts(1, 0.0, "retry_after", time_left()))
            return NotCreated("no_time_to_retry", failure, checked_by_name=checked)
        if delay > 0:
            await anyio.sleep(delay)
        return None

    def _created(
        self, created: Instance, *, first_failure: ReduError | None = None, checked_by_name: bool = False
    ) -> Created:
        password = self.supplied if self.supplied is not None else self.kind.password_of(created)
        return Created(
            self.kind.public(created),
            password,
            supplied=self.supplied is not None,
            first_failure=first_failure,
            checked_by_name=checked_by_name,
        )

    def _answer_lost(self, found: Instance, failure: ReduError) -> CreatedAnswerLost:
        log.warning("%s '%s' exists (id %s) though its create failed: %s", self.kind.name, self.name, found.id, failure)
        return CreatedAnswerLost(found, failure, self.supplied)
