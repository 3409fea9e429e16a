"""Every sentence a model reads about what happened: messages, errors, next steps, progress.

Tools, resources and waits all word things here, from the facts that provisioning and the API
library return (typed outcomes, errors with their fields). Nothing here calls the API, decides
anything or builds a result: a tool builds its own result and takes its sentences from here. A sentence is rendered afresh for each caller, so two callers who share a fact (one
failed poll) each get the wording that fits their own situation.

Rules every text follows: the next step names a tool (never an HTTP path), and only a tool this
server offers at its access level (``Wording.offered``); the HTTP status may appear as a short
fact; a value the caller typed is never quoted if it may be a secret.
"""

from __future__ import annotations

import datetime
import json
import math
from dataclasses import dataclass

from redu_mcp.api import (
    NAME_PATTERN,
    PG_IDENTIFIER_PATTERN,
    REDIS,
    AnyKind,
    APIStatusError,
    AuthenticationError,
    ConflictError,
    Instance,
    InvalidRequestError,
    MalformedKeyError,
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
from redu_mcp.data import (
    ChecksumMismatch,
    ConnectionFailure,
    Migration,
    MigrationRefused,
    RedisCommandError,
    RedisNeedsConfirmation,
    RedisNoAnswer,
    RedisRefused,
    RedisTruncation,
    Refused,
    SqlError,
    Target,
)
from redu_mcp.provisioning.create import (
    AlreadyExists,
    Comparison,
    Created,
    CreatedAnswerLost,
    NotCreated,
    OutcomeUnknown,
    UnknownReference,
)
from redu_mcp.provisioning.credentials import (
    Delivery,
    NoCredentials,
    NoPassword,
    Revealed,
    SavedToFile,
    SuppliedNotSaved,
)
from redu_mcp.provisioning.delete import StillThere, Unverified
from redu_mcp.provisioning.deletions import Deletion
from redu_mcp.provisioning.suggestions import Suggested
from redu_mcp.provisioning.waiting import Poll, WaitOutcome
from redu_mcp.server.fence import fence
from redu_mcp.server.kinds import ALL_KINDS, either
from redu_mcp.server.refusals import Refusal
from redu_mcp.server.specs import AccessLevel, DataLevel, Offer, ToolSpec, level_allows

NOTHING_CREATED = "Nothing was created."
#: Why a 2025-11-25 client on a server without sessions (--stateless) is never asked to confirm.
NO_BACK_CHANNEL = (
    "this server cannot ask the user over this connection (the client speaks protocol 2025-11-25, which needs a "
    "session to receive a question, and this server runs without sessions so that any of its replicas can answer)"
)
CALL_AGAIN_SOON = "Call the same tool again in a minute."
IN_THE_SANDBOX = (
    "This server runs against its built-in sandbox (the Redu API emulator, in this process): the user, the "
    "instances and their data are not real, nothing is billed, and no Redu API is called."
)
#: What each access level allows, in words.
LEVEL_ALLOWS = {
    "read": "list and inspect instances",
    "create": "list, inspect and create instances",
    "full": "list, inspect, create and delete instances",
}
#: --confirm human: why a client is refused, and what a confirmation page asks of a person.
NO_PAGE = "this client cannot open one (it does not declare URL-mode elicitation)"
PAGE_RULE = (
    "accepting the client's prompt is not enough: a person must open the page, type the instance's name and press "
    "the button before it expires, 5 minutes after it was opened, and it approves this one call only"
)
#: Under --confirm human, how what destroys is approved: what the descriptions and the instructions say.
PAGE_APPROVAL = (
    "a person approves it on a confirmation page the client opens for them (URL-mode elicitation), which shows "
    "what would be destroyed: they type the instance's name there and press the button within 5 minutes, while "
    "the call waits. Accepting the client's prompt without using the page approves nothing, and so does "
    "confirm_name alone; a client that cannot open such a page is refused"
)
PAGE_UNAVAILABLE = (
    "this server could not open or check a confirmation page (the shared state it keeps them in cannot be reached "
    "right now)."
)
#: What makes a statement destructive, in words.
_DESTRUCTIVE = {
    "drop": "DROP",
    "truncate": "TRUNCATE",
    "delete_without_where": "DELETE without WHERE",
    "update_without_where": "UPDATE without WHERE",
    "merge_delete": "MERGE ... DELETE",
    "alter_drop": "ALTER ... DROP",
    "do_block": "a DO block",
    "drop_owned": "DROP OWNED",
    "reassign_owned": "REASSIGN OWNED",
}

#: Per kind: what destroys data (and needs --access full and a confirmation), and what does not.
_DESTROYS_DATA = {
    "database": (
        "a DROP, TRUNCATE, DELETE or UPDATE without WHERE, ALTER ... DROP or a DO block",
        "a narrower statement (with a WHERE)",
    ),
    "redis": ("FLUSHDB or FLUSHALL", "deleting named keys (DEL, UNLINK)"),
}
#: Why a Redis command is refused before anything is sent; ``{c}`` is the command as the instance knows it.
_REDIS_REFUSALS = {
    "invalid_name": (
        "that is not a Redis command name (one word of letters, digits, '_', '.' or '-', starting with a letter, "
        "at most 64 characters; one command per call, its arguments in arguments)"
    ),
    "unknown_command": "this instance has no command of that name (e.g. GET, HGETALL, LRANGE, SCAN)",
    "unknown_subcommand": (
        "{c} needs a subcommand this instance knows as its first argument (e.g. OBJECT ENCODING key, XINFO STREAM key)"
    ),
    "use_scan": (
        "KEYS walks every key in one go and blocks the instance meanwhile: use SCAN instead (arguments "
        "['0', 'MATCH', pattern, 'COUNT', '100']), again with the cursor it returns until that is '0'"
    ),
    "administrative": "{c} administers the server (configuration, persistence, replication, clients), which data tools never do",
    "dangerous": "the instance itself files {c} under @dangerous, which data tools never run",
    "scripting": "scripts (EVAL, FCALL, SCRIPT, FUNCTION) can run any command, so none is run: send the commands one per call",
    "blocking": (
        "{c} waits for data (or for replicas) and would hold a connection: use its non-blocking form (LPOP "
        "instead of BLPOP, XRANGE instead of XREAD)"
    ),
    "pubsub": "publish/subscribe takes a connection of its own that stops answering commands, and has no channel here",
    "session_state": (
        "{c} changes the connection rather than the data, and connections are shared between calls (each call "
        "starts clean): for another database pass db; there are no transactions (MULTI/EXEC), send one command per call"
    ),
    "writes_data": (
        "this server runs Redis commands read-only (--data read) and the instance flags {c} as a write: only the "
        "operator can allow writes (--data write)"
    ),
    "not_a_data_command": "{c} neither reads nor writes data",
}
#: What an error reply of Redis means for the next step, by its code.
_REDIS_ADVICE = {
    "WRONGTYPE": "The key holds another type of value: TYPE shows which.",
    "NOPERM": "The instance's user may not run it.",
    "OOM": "The instance is out of memory (maxmemory): tell the user (delete keys, or a larger flavor).",
    "READONLY": "This instance is a replica: it takes no writes.",
    "MOVED": "This instance is a cluster, which run_redis_command does not follow.",
    "ASK": "This instance is a cluster, which run_redis_command does not follow.",
    "BUSY": "The instance is busy running a script: call again in a minute.",
    "LOADING": "The instance is loading its data after a restart: call again in a minute.",
}


# --- facts, the same for everyone ----------------------------------------------------------------------


def when_to_retry(seconds: float) -> str:
    """``"in 120 s (after 14:02:07 UTC)"``: when to try again."""
    at = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=math.ceil(seconds))
    return f"in {math.ceil(seconds)} s (after {at:%H:%M:%S} UTC)"


def seconds(value: float) -> str:
    """A duration as the clock says it: ``0.5 s``, ``42.1 s``, ``3 min 20 s``."""
    if value < 60:
        return f"{value:.1f} s"
    minutes, rest = divmod(round(value), 60)
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"


def describe(exc: ReduError) -> str:
    """What went wrong, in plain words with the status as a fact: never a path, never a secret."""
    if isinstance(exc, APIStatusError):
        code = f" {exc.code}" if exc.code else ""
        what = f"the Redu API answered HTTP {exc.status}{code}: {exc.message}"
    elif isinstance(exc, ResponseFormatError):
        status = f" (HTTP {exc.status})" if exc.status is not None else ""
        what = f"the Redu API's answer{status} could not be read: {exc.message}"
    elif isinstance(exc, TransportError):
        what = f"no answer from the Redu API ({exc.message})"
    else:
        what = exc.message
    facts = exc.retry
    if facts is not None and facts.stopped_by == "retry_after":
        budget = (
            "this call's time"
            if facts.time_left is None
            else f"the {max(0.0, facts.time_left):.0f} s this call had left"
        )
        what += f" (it asks to wait {math.ceil(retry_after_of(exc) or 0)} s before retrying, longer than {budget})"
    elif facts is not None and facts.attempts > 1:
        what += f" (gave up after {facts.attempts} attempts in {facts.elapsed:.1f} s)"
    return what


def poll_progress(poll: Poll) -> str:
    if poll.error is not None:
        then = f"{poll.failures_in_a_row} in a row: giving up" if poll.giving_up else "polling again"
        return f"poll {poll.number} failed ({describe(poll.error)}); {then}"
    status = poll.instance.status if poll.instance is not None else "unknown"
    return f"status: {status} (poll {poll.number}, {seconds(poll.elapsed)})"


def _described(kind: AnyKind, instance: Instance) -> str:
    return f"{kind.label} '{instance.name}' (id {instance.id})"


def _who(principal: str) -> str:
    """A principal of the audit trail, in words."""
    if principal.startswith("user:"):
        return f"Redu user {principal.removeprefix('user:')}"
    return {"local": "a local client", "operator": "a client with the operator's token"}.get(principal, principal)


def deleted_earlier(kind: AnyKind, deletion: Deletion) -> str:
    """``PostgreSQL database 'orders' (id 2) was deleted through this server at … by … (confirmed by …).``"""
    return (
        f"{kind.label} '{deletion.name}' (id {deletion.id}) was deleted through this server at "
        f"{deletion.at:%Y-%m-%d %H:%M:%S} UTC by {_who(deletion.by)} (confirmed by {deletion.confirmed_by})."
    )


def age_of(instance: Instance, now: datetime.datetime | None = None) -> float | None:
    """Seconds since the instance was created, if the API said when."""
    if not instance.created_at:
        return None
    try:
        created = datetime.datetime.fromisoformat(instance.created_at.replace("Z", "+00:00"))
    except ValueError:
        return None
    if created.tzinfo is None:
        created = created.replace(tzinfo=datetime.UTC)
    return max(0.0, ((now or datetime.datetime.now(datetime.UTC)) - created).total_seconds())


# --- sentences that depend on what this server offers ---------------------------------------------------


@dataclass(frozen=True)
class Wording:
    """The sentences of one server: its next steps name only the tools it offers."""

    offered: frozenset[str]

    def _offers(self, tool: str) -> bool:
        return tool in self.offered

    def _lists(self) -> str | None:
        """The list tools offered: ``list_databases or list_redis`` (None: none is)."""
        offered = [name for kind in ALL_KINDS if self._offers(name := f"list_{kind.collection}")]
        return either(offered) if offered else None

    def _follow(self, kind: AnyKind, id: int) -> str:
        """How to follow an instance until it is ready, with the tools offered."""
        if self._offers("wait_for_ready"):
            return f"Call wait_for_ready with kind='{kind.name}' and id={id}."
        if self._offers(f"get_{kind.name}"):
            return f"Call get_{kind.name} with id={id} every minute or so until its status is ready."
        return "It takes a few minutes to be ready."

    def _check_later(self, kind: AnyKind, id: int) -> str:
        """How to see, in a minute, whether an instance is still there."""
        if self._offers(f"get_{kind.name}"):
            return f"call get_{kind.name} with id={id} in a minute"
        if self._lists():
            return f"call list_{kind.collection} in a minute and look for id {id}"
        return "check the Redu console in a minute"

    # --- what this server does not offer ----------------------------------------------------------------

    def not_offered(self, spec: ToolSpec, access: AccessLevel, data: DataLevel) -> str:
        """A call of a tool this server does not offer: why, and what only the operator can change."""
        tool, nothing = spec.name, "Nothing was done."
        if not level_allows(access, spec.level):
            needs = spec.level
            return (
                f"{tool} is not available: this server runs at access level '{access}' (it may "
                f"{LEVEL_ALLOWS[access]}), and {tool} needs '{needs}'. {nothing} Only the operator can change this, "
                f"by restarting the server with --access {needs} (REDU_MCP_ACCESS={needs}): tell the user if they need it."
            )
        if not spec.profile.allowed(access, data):
            data_needed = spec.profile.data
            return (
                f"{tool} is not available: this server runs with --data {data}, and {tool} needs --data "
                f"{data_needed}. {nothing} Only the operator can change this, by restarting the server with --data "
                f"{data_needed} (REDU_MCP_DATA={data_needed}): tell the user if they need it."
            )
        return (
            f"{tool} is not available: the operator limited this server's tools (--tools / REDU_MCP_TOOLS), and it is "
            f"not among them. {nothing} Only the operator can add it: tell the user if they need it."
        )

    # --- errors --------------------------------------------------------------------------------------

    def advice(self, exc: ReduError) -> str:
        """What to do next about ``exc``, including when to try again if the API said so."""
        advised = retry_after_of(exc)
        if advised is not None and (isinstance(exc, RateLimitedError) or advised >= 1):
            return f"Call the same tool again {when_to_retry(advised)}."
        if isinstance(exc, MalformedKeyError):
            return "The server's Redu API key is not a usable key: ask the operator to set REDU_API_KEY to the key from the Redu console."
        if isinstance(exc, NotConfiguredError):
            return "The server has no Redu API key: ask the operator to set REDU_API_KEY (or to start it with --sandbox to try it out)."
        if isinstance(exc, (TransportError, ResponseFormatError, ServerError, RateLimitedError)):
            return CALL_AGAIN_SOON
        if isinstance(exc, AuthenticationError):
            return "The Redu API key was refused: ask the operator to check REDU_API_KEY (keys are made in the Redu console)."
        if isinstance(exc, PermissionDeniedError):
            return "This API key may not do that: tell the user; it needs the key of a user who may."
        lists = self._lists()
        if isinstance(exc, NotFoundError):
            return f"Call {lists} to find the right id." if lists else "Ask the user for the right id."
        if isinstance(exc, ConflictError):
            return f"Call {lists} to see what exists, and choose another name." if lists else "Choose another name."
        if isinstance(exc, InvalidRequestError):
            if self._offers("list_create_options"):
                return "Check the arguments against list_create_options, then call again."
            return "Check the arguments against the tool's description, then call again."
        return "Call the same tool again; if it keeps failing, tell the user."

    def failure(self, doing: str, exc: ReduError, note: str = "") -> str:
        """``Could not <doing>: <what happened>. <note> Next step: <advice>``."""
        note = f" {note}" if note else ""
        return f"Could not {doing}: {describe(exc)}.{note} Next step: {self.advice(exc)}"

    def not_found(
        self,
        kind: AnyKind,
        id: int,
        other: tuple[AnyKind, Instance] | None,
        tool: str,
        deleted: Deletion | None = None,
    ) -> str:
        """No ``kind`` with this id. ``deleted``: this server deleted it (then nothing else is said);
        ``other``: another kind's instance with this id; ``tool``: get or wait (a delete of a missing
        id is "nothing to delete": it never points at another instance)."""
        if deleted is not None:
            return f"{deleted_earlier(kind, deleted)} It no longer exists (HTTP 404): do not wait for it or use it."
        text = f"There is no {kind.label} with id {id} (HTTP 404)."
        find = (
            f" Next step: call list_{kind.collection} to find the right id."
            if self._offers(f"list_{kind.collection}")
            else ""
        )
        if other is None:
            return text + find
        other_kind, instance = other
        # Ids are numbered per kind (database 1 and Redis 1 are two instances): a hint, never a verdict.
        hint = (
            f"{text} The {_described(other_kind, instance)} is another instance (ids are numbered per kind). "
            f"Before using it, confirm with the user that '{instance.name}' is the one they mean"
        )
        fits = {
            "get": f"get_{other_kind.name} with id={id}",
            "wait": f"wait_for_ready with kind='{other_kind.name}' and id={id}",
        }[tool]
        if self._offers(fits.split(" ", 1)[0]):
            return f"{hint}; if it is, call {fits}."
        return f"{hint}.{find}"

    # --- lists ---------------------------------------------------------------------------------------

    def list_next_step(self, kind: AnyKind, total: int, offset: int, shown: int, filtered: bool) -> str | None:
        if total == 0:
            return f"No {kind.label}s match these filters." if filtered else None
        if offset + shown >= total:
            return None
        same = " and the same filters" if filtered else ""
        return (
            f"Showing {offset + 1}-{offset + shown} of {total}, newest first. For older ones call "
            f"list_{kind.collection} with offset={offset + shown}{same}."
        )

    # --- create --------------------------------------------------------------------------------------

    def created(self, kind: AnyKind, instance: Instance, delivery: Delivery) -> str:
        """What a create that made an instance says, its password delivered as ``delivery`` says."""
        label = _described(kind, instance)
        match delivery:
            case SavedToFile(supplied=supplied):
                what = "the password you supplied" if supplied else "its one-time password"
                return f"Created {label}; {what} is in credentials_file (mode 0600), not shown here."
            case Revealed(save_error=None):
                return f"Created {label}. The password below is shown this once (Redu keeps no copy): give it to the user now."
            case Revealed(save_error=reason):
                return (
                    f"Created {label}. Saving the password to a file failed ({reason}), so it is shown here "
                    "instead, this once (Redu keeps no copy): give it to the user now."
                )
            case SuppliedNotSaved(save_error=reason):
                return f"Created {label} with the password you supplied (not repeated here); saving a credentials file failed ({reason})."
            case NoPassword():
                return f"Created {label}. The API returned no password."

    def create_preface(self, outcome: Created | CreatedAnswerLost) -> str:
        """What happened on the way to a create that succeeded (empty when nothing did)."""
        if isinstance(outcome, CreatedAnswerLost):
            return f"The answer was lost ({describe(outcome.lost)}), but a look-up by name found it. "
        if outcome.first_failure is not None:
            why = "a look-up by name showed it was not applied" if outcome.checked_by_name else "it was not applied"
            return f"The first attempt failed ({describe(outcome.first_failure)}) and {why}; a second one succeeded. "
        return ""

    def wait_for_it(self, kind: AnyKind, instance: Instance) -> str:
        return self._follow(kind, instance.id)

    def password_lost(self, kind: AnyKind, outcome: CreatedAnswerLost) -> tuple[str, str]:
        """``(message, next step)`` for a create whose answer, and with it the generated password, was lost."""
        instance = outcome.instance
        if self._offers(f"delete_{kind.name}"):
            fix = (
                f"For a usable password, delete it (delete_{kind.name} with id={instance.id} and "
                f"confirm_name='{instance.name}') and create it again, passing {kind.password_field} if you "
                "want to choose it. Do not create it again without deleting it first: the name is taken."
            )
        else:
            fix = "Tell the user: its password is lost, so it must be deleted (in the Redu console) and created again."
        message = (
            f"Created {_described(kind, instance)}, but the answer was lost ({describe(outcome.lost)}) and "
            "with it the generated password: Redu keeps no copy, so the password is unknown."
        )
        return message, fix

    def already_exists(
        self, kind: AnyKind, outcome: AlreadyExists, compared: Comparison, credentials_file: str | None, supplied: bool
    ) -> str:
        """A create whose name was taken: how the existing instance differs from the request, and
        where its password is (``supplied``: the request carried a password, which was not used)."""
        existing = outcome.instance
        meanwhile = " Another request created it just before this one." if outcome.conflict else ""
        if compared.differences:
            listed = "; ".join(
                f"{d.field} is '{d.existing}' (this request: '{d.requested}')" for d in compared.differences
            )
            how = f" It differs from this request: {listed}. It was not changed."
        else:
            how = " It matches this request in every field the API reports."
        if compared.unreported:
            how += f" Not compared (the API does not report them): {', '.join(compared.unreported)}."
        if credentials_file:
            password = " Its password is in credentials_file (saved when this server created it)."
        else:
            password = " Its password was given only when it was created; no credentials file for it is saved here."
        if supplied:
            password += " The password in this request was not used."
        return f"Nothing was created: {_described(kind, existing)} already exists (status {existing.status}).{meanwhile}{how}{password}"

    def use_existing(self, kind: AnyKind, existing: Instance, differs: bool) -> str:
        use = self._follow(kind, existing.id).rstrip(".")
        use = use[0].lower() + use[1:]
        if differs:
            return (
                "Tell the user it exists and how it differs, and ask whether to use it as it is: if so, "
                f"{use}; if not, call create_{kind.name} again with another name."
            )
        return f"If it is the one the user wants, use it ({use}); otherwise call create_{kind.name} again with another name."

    def not_created(self, kind: AnyKind, name: str, outcome: NotCreated) -> str:
        doing = f"create {kind.label} '{name}'"
        error = outcome.error
        if outcome.reference is not None:
            return self.unknown_reference(kind, name, outcome.reference)
        why = "a look-up by name showed it was not applied" if outcome.checked_by_name else "it was not applied"
        first = outcome.first_failure
        tried_twice = (
            f"It was tried twice: the first attempt failed too ({describe(first)}), and {why}." if first else ""
        )
        match outcome.reason:
            case "lookup_failed":
                return self.failure(doing, error, f"{NOTHING_CREATED} (Checking whether the name is taken failed.)")
            case "rejected" | "taken_not_found":
                return self.failure(doing, error, NOTHING_CREATED)
            case "no_time_to_retry":
                checked = " (checked by name)" if outcome.checked_by_name else ""
                return self.failure(
                    doing, error, f"Nothing was created{checked}, and no time is left to retry in this call."
                )
            case "second_not_found":
                return self.failure(
                    doing, error, f"{tried_twice} A look-up by name finds no '{name}' either. {NOTHING_CREATED}"
                )
            case "second_failed":
                return self.failure(doing, error, f"{tried_twice} {NOTHING_CREATED}")

    def unknown_reference(self, kind: AnyKind, name: str, reference: UnknownReference) -> str:
        """A create the API refused because a look-up value is unknown: say which, and the valid ones."""
        field, given = reference.field, reference.value
        if reference.name_of is not None:
            problem = f"{field} '{given}' is the name, not the id: pass {field}='{reference.name_of}'."
        else:
            listed = ", ".join(
                f"'{value}' ({label})" if label != value else f"'{value}'" for value, label in reference.valid
            )
            problem = f"{field} '{given}' is not one of: {listed or 'none (the account has none)'}."
        return (
            f"Could not create {kind.label} '{name}': {problem} {NOTHING_CREATED} "
            f"Next step: call create_{kind.name} again with a valid {field}."
        )

    def outcome_unknown(self, kind: AnyKind, name: str, outcome: OutcomeUnknown) -> str:
        tried = "; then ".join(describe(f) for f in outcome.failures)
        deleting = (
            f"delete it (delete_{kind.name}) and create it again"
            if self._offers(f"delete_{kind.name}")
            else "it must be deleted (in the Redu console) and created again"
        )
        look = (
            f"Call list_{kind.collection} in a minute and look for '{name}': if it is there"
            if self._offers(f"list_{kind.collection}")
            else f"Call create_{kind.name} again in a minute (a name that exists is reported, never created twice): if it exists"
        )
        return (
            f"Could not tell whether {kind.label} '{name}' was created: the create got no usable answer ({tried}), "
            f"and looking the name up failed too ({describe(outcome.lookup_error)}). Nothing more was sent. "
            f"Next step: do not simply create it again. {look}, it was created but its password was lost "
            f"({deleting}); if not, call create_{kind.name} again."
        )

    # --- delete --------------------------------------------------------------------------------------

    def page_prompt(self, question: str, lifetime: float) -> str:
        """What the client shows with a confirmation page's address (--confirm human)."""
        return (
            f"{question}\nOnly a person can approve this: open the page, type the instance's name and press the "
            f"button, within {seconds(lifetime)}. Accepting without using the page approves nothing."
        )

    def page_waiting(self, left: float) -> str:
        return f"Waiting for a person to approve on the confirmation page ({seconds(max(0.0, left))} left)."

    def confirmation_question(self, kind: AnyKind, target: Instance) -> str:
        return f"Delete {_described(kind, target)}? All its data will be lost; this cannot be undone."

    def refused(self, kind: AnyKind, target: Instance, refusal: Refusal) -> str:
        dont_retry = "Do not retry unless the user asks for this deletion again."
        described = _described(kind, target)
        match refusal.why:
            case "declined" | "cancelled":
                return f"Nothing was deleted: the user {refusal.why} the confirmation. {dont_retry}"
            case "unticked":
                return f"Nothing was deleted: the user did not confirm the deletion. {dont_retry}"
            case "name_mismatch":
                return (
                    # The value given is not repeated: it is the caller's text, and a result is no echo chamber.
                    f"Nothing was deleted: the confirm_name given is not the name of {kind.label} {target.id}, "
                    f"which is '{target.name}'. Make sure {described} is the one the user wants deleted; only then "
                    f"call delete_{kind.name} again with confirm_name='{target.name}'."
                )
            case "name_missing":
                who = NO_BACK_CHANNEL if refusal.cannot_ask == "connection" else "this client cannot ask the user"
                return (
                    f"Nothing was deleted: {who}, so confirm_name is required. Only if the user asked to delete "
                    f"{described}, call delete_{kind.name} again with confirm_name='{target.name}'."
                )
            case "gone":
                return self.already_gone(kind, target.id)
            case "person_required" if refusal.cannot_ask == "connection":
                return (
                    "Nothing was deleted: on this server only a person may approve a delete (--confirm human), and "
                    f"{NO_BACK_CHANNEL}. Calling delete_{kind.name} again will not change that. Tell the user: "
                    "use a client that speaks protocol 2026-07-28 (it can be asked through any replica), or "
                    f"delete {described} in the Redu console."
                )
            case "person_required":
                return (
                    "Nothing was deleted: on this server only a person may approve a delete (--confirm human), on a "
                    f"confirmation page the client opens for them, and {NO_PAGE}. Calling delete_{kind.name} again "
                    f"will not change that. Tell the user: delete {described} in the Redu console, or ask the operator "
                    "to use a client that can open such a page, or to run the server with --confirm auto."
                )
            case "page_unused":
                return (
                    f"Nothing was deleted: no person approved it on its confirmation page ({PAGE_RULE}). Ask the user "
                    f"whether they want {described} deleted; only if they do, call delete_{kind.name} again and tell "
                    "them to use the page their client opens."
                )
            case "page_unavailable":
                return f"Nothing was deleted: {PAGE_UNAVAILABLE} Call delete_{kind.name} again in a minute."
            case "needs_full_access":  # deleting is offered only at --access full, so this is not reached
                return f"Nothing was deleted: deleting needs --access full. {dont_retry}"

    def already_gone(self, kind: AnyKind, id: int, deleted: Deletion | None = None) -> str:
        if deleted is not None:
            return f"Nothing to delete: it was already deleted. {deleted_earlier(kind, deleted)}"
        return f"Nothing to delete: there is no {kind.label} with id {id} (already deleted, or never created)."

    def deleted(self, kind: AnyKind, target: Instance, removed: str | None, not_removed: str | None = None) -> str:
        """A delete that happened; ``removed``: its credentials file, removed too; ``not_removed``: why
        the file could not be."""
        text = f"Deleted {_described(kind, target)} and all its data."
        if removed:
            text += f" Its credentials file {removed} was removed too."
        elif not_removed:
            text += f" Its credentials file could not be removed ({not_removed}): delete it by hand."
        return text

    def still_there(self, kind: AnyKind, target: Instance, outcome: StillThere) -> str:
        return (
            f"The API answered the delete with HTTP {outcome.status} instead of 204, and {_described(kind, target)} "
            f"still exists (status {outcome.instance.status}): it may still be going. Next step: "
            f"{self._check_later(kind, target.id)}; delete it again only if it is still there."
        )

    def delete_unverified(self, kind: AnyKind, target: Instance, outcome: Unverified) -> str:
        return (
            f"Could not tell whether {_described(kind, target)} was deleted: the API answered HTTP {outcome.status} "
            f"instead of 204, and checking afterwards failed ({describe(outcome.error)}). Next step: "
            f"{self._check_later(kind, target.id)}; if it still exists, delete it again."
        )

    # --- create options --------------------------------------------------------------------------------

    def suggested_because(self, field: str, suggested: Suggested) -> str:
        """Why a value is suggested for ``field``, and when to ask the user instead."""
        thing = {"flavor_id": "flavor", "network_id": "network", "keypair_name": "keypair"}.get(field, field)
        match suggested.because:
            case "only_one":
                return f"the only {thing} of this account"
            case "smallest":
                return (
                    f"'{suggested.name}', the smallest flavor, costs least; ask the user before choosing a bigger one"
                )
            case "named_private" | "named_default":
                return (
                    f"the network named '{suggested.name}'; the network decides who can reach the instance: ask the "
                    "user before choosing another one"
                )

    # --- wait ----------------------------------------------------------------------------------------

    def wait_failure(self, kind: AnyKind, id: int, outcome: WaitOutcome, timeout: float) -> str | None:
        """Why the wait is an error (None when it is a result: ready, or not ready yet)."""
        error = outcome.error
        if error is not None:
            in_a_row = outcome.failures_in_a_row
            note = f"{in_a_row} polls in a row failed; it stopped polling." if in_a_row > 1 else ""
            return self.failure(f"wait for {kind.label} {id}", error, note)
        instance = outcome.instance
        if outcome.end == "failed" and instance is not None:
            if self._offers(f"delete_{kind.name}"):
                fix = (
                    f"delete it (delete_{kind.name} with id={id} and confirm_name='{instance.name}') and create it "
                    "again, perhaps with another flavor"
                )
            else:
                fix = "tell the user: it is billed until deleted, and this server cannot delete (its access level is create)"
            return f"Provisioning failed: {_described(kind, instance)} is in status 'error'. Next step: {fix}."
        if instance is None:
            last = f" (last poll: {describe(outcome.last_error)})" if outcome.last_error else ""
            return (
                f"No answer about {kind.label} {id} within {seconds(min(outcome.elapsed, timeout))}{last}. Next step: "
                "call wait_for_ready again in a minute; do not create another instance."
            )
        return None

    def wait_next_step(self, kind: AnyKind, outcome: WaitOutcome, credentials_file: str | None) -> str:
        """What to do after a wait that ended ready, or not ready yet."""
        if outcome.ready:
            where = "; the password is in credentials_file" if credentials_file else ""
            return f"Ready. Connect with `connection`{where}."
        instance = outcome.instance
        assert instance is not None  # wait_failure covers a wait that saw no instance
        age = age_of(instance)
        since = f", {seconds(age)} since it was created" if age is not None else ""
        return (
            f"Still {outcome.status} after {seconds(outcome.elapsed)} of waiting{since}. Call wait_for_ready "
            f"again with kind='{kind.name}' and id={instance.id} (provisioning can take several minutes); do "
            "not create another instance."
        )

    # --- using an instance ---------------------------------------------------------------------------

    def _shows_tables(self) -> str:
        return "; describe_database shows the tables and columns." if self._offers("describe_database") else "."

    def sandbox_without_engines(self, kind: AnyKind, instance: Instance) -> str:
        return (
            f"{_described(kind, instance)} is emulated: this server runs against the Redu sandbox without real "
            "servers, so nothing listens at its address. Tell the user: to try the data tools, restart the server "
            "with --sandbox --engines (it needs PostgreSQL and redis-server installed)."
        )

    def not_ready_to_use(self, kind: AnyKind, instance: Instance) -> str:
        if not self._offers("wait_for_ready"):
            return (
                f"{_described(kind, instance)} is not ready yet (status {instance.status}): call this tool again later."
            )
        return (
            f"{_described(kind, instance)} is not ready yet (status {instance.status}). Next step: call "
            f"wait_for_ready with kind='{kind.name}' and id={instance.id}, then call this tool again."
        )

    def no_address(self, kind: AnyKind, instance: Instance) -> str:
        return (
            f"{_described(kind, instance)} is ready but has no address (floating IP) yet. Next step: call this "
            "tool again in a minute."
        )

    def no_credentials(self, kind: AnyKind, instance: Instance, missing: NoCredentials) -> str:
        why = {
            "missing": "it saved no credentials file for it (the instance was created elsewhere, or its password was shown instead of saved)",
            "other_instance": "the credentials file there belongs to another instance (one that had this id before, or another user's)",
            "not_private": "the credentials file there is not private (a link, another user's, or readable by others), so it is not used",
            "unreadable": f"the credentials file could not be read ({missing.detail or 'no reason given'})",
        }[missing.reason]
        return (
            f"This server has no password for {_described(kind, instance)}: {why}. It connects only with the "
            "password saved when the instance was created, never one typed in the chat. Tell the user: if they "
            f"have the password, they can save it in {missing.expected} (an env file with {kind.env.password}=..., "
            "mode 0600; see the server's documentation), then call this tool again."
        )

    def unavailable(self, kind: AnyKind, target: Target, failure: ConnectionFailure) -> str:
        at = f"{target.host}:{target.port}"
        described = f"{kind.label} {target.instance_id}"
        match failure.kind:
            case "unreachable":
                what = (
                    f"nothing answered at {at}. Its security groups may not allow connections to port "
                    f"{target.port} from this server's address. Next step: tell the user to check the "
                    "instance's security groups in the Redu console"
                )
            case "refused":
                what = (
                    f"{at} refused the connection: nothing listens on port {target.port} (the server may be "
                    "restarting). Next step: call this tool again in a minute"
                )
            case "timeout":
                what = f"{at} did not answer in time. Next step: call this tool again in a minute"
            case "tls_failed":
                settings = " (REDU_MCP_PG_SSLMODE, REDU_MCP_PG_SSLROOTCERT)" if kind.name == "database" else ""
                what = (
                    f"TLS could not be set up with {at}. Next step: tell the user; the operator sets how this "
                    f"server uses TLS{settings}"
                )
            case "auth_failed":
                what = (
                    f"{at} refused the saved password: the credentials file is out of date. Next step: tell the "
                    "user to put the current password in the instance's credentials file"
                )
            case "rejected":
                what = (
                    f"{at} turned the session away (too many connections, starting up, or no such database). "
                    "Next step: call this tool again in a minute"
                )
            case "protocol":
                what = f"what answered at {at} is not a {kind.engine} server"
        return f"Could not connect to {described}: {what}.\n{fence(failure.detail)}"

    def sql_refused(self, refused: Refused | MigrationRefused) -> str:
        reason = refused.reason
        why = {
            "transaction_control": "transaction control (BEGIN, COMMIT, ROLLBACK, SAVEPOINT) is the server's: each call is one transaction of its own",
            "session_control": "session settings (SET, RESET, SET ROLE, DISCARD, PREPARE, cursors) would not outlive the call",
            "copy_program": "COPY to or from a program is never allowed",
            "copy_file": "COPY to or from a file on the server is never allowed",
            "copy_client": "COPY to or from the client has no channel here: use INSERT ... VALUES or SELECT",
            "listen_notify": "LISTEN, NOTIFY and UNLISTEN have no channel here",
            "load": "LOAD is never allowed",
            "role_management": "roles are not managed here (changing the password would break the credentials file)",
            "empty": "there is no statement in it",
            "multiple_statements": f"it holds {getattr(refused, 'statement_count', 'several')} statements, and run_sql takes one per call"
            + (" (apply_migration takes several)" if self._offers("apply_migration") else ""),
            "unparseable": "the parser cannot read it, so nothing can say whether it is destructive",
            "parameter_count": f"it uses {getattr(refused, 'parameters_expected', '?')} parameters ($1, $2, ...) and {getattr(refused, 'parameters_given', '?')} were given",
            "nul_character": "PostgreSQL text cannot hold a NUL character",
            "parameters": "a migration takes no parameters ($1)",
            "invalid_version": "the version must be letters, digits, '.', '_' or '-', starting with a letter or digit (e.g. '20261207_01')",
            "invalid_name": "the name must be one line of at most 200 characters",
        }[reason]
        where = ""
        if isinstance(refused, MigrationRefused) and refused.statement_index is not None:
            where = f" (statement {refused.statement_index + 1} of the migration)"
        position = ""
        if refused.parse_error is not None:
            position = f" PostgreSQL's parser says: {refused.parse_error.message}"
            if refused.parse_error.position is not None:
                position += f" (at character {refused.parse_error.position})"
            position += "."
        return f"Nothing was sent: {why}{where}.{position} Change the statement and call again."

    def sql_failed(self, error: SqlError, statement_index: int | None = None) -> str:
        advice = {
            "read_only": "This server runs SQL read-only (--data read): only the operator can allow writes (--data write).",
            "timeout": "The statement ran longer than its time limit and was cancelled: narrow it (WHERE, LIMIT) or add an index.",
            "lock_timeout": "It waited too long for a lock another session holds: call again in a minute.",
            "syntax": "Fix the statement and call again" + self._shows_tables(),
            "undefined": "Check the names, then call again" + self._shows_tables(),
            "permission": "The instance's user may not do that.",
            "parameters": "Pass one parameter per $n the statement uses.",
            "connection_lost": "The connection broke: call again.",
        }.get(error.kind, "Change the statement and call again.")
        where = f" in statement {statement_index + 1} of the migration" if statement_index is not None else ""
        at = f" at character {error.position}" if error.position is not None else ""
        state = f"SQLSTATE {error.sqlstate}" if error.sqlstate else "no SQLSTATE"
        said = "\n".join(
            part
            for part in (
                error.message,
                error.detail and f"DETAIL: {error.detail}",
                error.hint and f"HINT: {error.hint}",
            )
            if part
        )
        return (
            f"PostgreSQL refused it{where} ({state}{at}); nothing was changed. {advice} "
            f"Its message follows.\n{fence(said)}"
        )

    def migration_applied(self, migration: Migration, fresh: bool) -> str:
        if fresh:
            return f"Applied migration {migration.version} ({migration.statements} statements) in one transaction."
        return (
            f"Migration {migration.version} was already applied on {migration.applied_at} with the same SQL: "
            "nothing ran again."
        )

    def checksum_mismatch(self, mismatch: ChecksumMismatch) -> str:
        applied = mismatch.applied
        return (
            f"Nothing was run: migration {applied.version} was already applied on {applied.applied_at} with other "
            f"SQL (SHA-256 {applied.checksum[:12]}…, this one {mismatch.given_checksum[:12]}…). A version is applied "
            "once: give this change a new version"
            + (", or call list_migrations to see what is applied." if self._offers("list_migrations") else ".")
        )

    def change_question(self, kind: AnyKind, target: Instance, what: str, reasons: list[str]) -> str:
        listed = ", ".join(_DESTRUCTIVE.get(reason, reason) for reason in dict.fromkeys(reasons))
        shown = what if len(what) <= 400 else what[:400] + "…"
        return (
            f"Change {_described(kind, target)} in a way that cannot be undone ({listed})?\n{shown}\n"
            "What it removes is lost for good."
        )

    def refused_change(self, kind: AnyKind, target: Instance, refusal: Refusal) -> str:
        dont_retry = "Do not retry unless the user asks for this change again."
        described = _described(kind, target)
        match refusal.why:
            case "declined" | "cancelled":
                return f"Nothing was changed: the user {refusal.why} the confirmation. {dont_retry}"
            case "unticked":
                return f"Nothing was changed: the user did not confirm it. {dont_retry}"
            case "needs_full_access":
                what, narrower = _DESTROYS_DATA.get(kind.name, _DESTROYS_DATA["database"])
                return (
                    f"Nothing was changed: it destroys data ({what}), which this server allows only at "
                    f"--access full. Tell the user; {narrower} needs no confirmation."
                )
            case "name_mismatch":
                return (
                    f"Nothing was changed: confirm_name is not the name of {described}. Make sure the user wants "
                    f"this change on {described}; only then call again with confirm_name='{target.name}'."
                )
            case "name_missing":
                who = NO_BACK_CHANNEL if refusal.cannot_ask == "connection" else "this client cannot ask the user"
                return (
                    f"Nothing was changed: it destroys data, and {who}, so confirm_name is required. Only if the "
                    f"user asked for this change, call again with confirm_name='{target.name}'."
                )
            case "person_required":
                return (
                    "Nothing was changed: it destroys data, and on this server only a person may approve that "
                    f"(--confirm human), on a confirmation page the client opens for them, but {NO_PAGE}. Calling "
                    "again will not change that: tell the user."
                )
            case "page_unused":
                return (
                    f"Nothing was changed: no person approved it on its confirmation page ({PAGE_RULE}). Ask the user "
                    "whether they want this change; only if they do, call again and tell them to use the page their "
                    "client opens."
                )
            case "page_unavailable":
                return f"Nothing was changed: {PAGE_UNAVAILABLE} Call again in a minute."
            case "gone":
                return self.already_gone(kind, target.id)

    # --- Redis commands ------------------------------------------------------------------------------

    def redis_refused(self, refused: RedisRefused) -> str:
        """Why a command was not sent; the name is repeated only when the instance knows it."""
        container = (refused.command or "").split(" ")[0]  # an unknown subcommand is the caller's text
        shown = container if refused.reason == "unknown_subcommand" else (refused.command or "")
        why = _REDIS_REFUSALS[refused.reason].replace("{c}", shown)
        if refused.reason == "writes_data" and container in ("FLUSHDB", "FLUSHALL"):
            why += "; emptying a database also needs --access full and the user's confirmation"
        if refused.reason == "not_a_data_command":
            why += self._instead_of_admin()
        return f"Nothing was sent: {why}. Change the call, or tell the user if it is needed."

    def _instead_of_admin(self) -> str:
        """Which offered tools tell what PING, INFO and MEMORY STATS would."""
        told = [
            what
            for tool, what in (
                ("check_connection", "check_connection pings the instance"),
                ("describe_redis", "describe_redis shows its version, memory and keys"),
            )
            if self._offers(tool)
        ]
        return f": {' and '.join(told)}" if told else ""

    def redis_failed(self, error: RedisCommandError, db: int) -> str:
        """Redis answered with an error: nothing happened; its words are the instance's (fenced)."""
        if error.command == "SELECT":
            head = f"Redis refused database {db} (it has fewer databases; db 0 always exists); nothing was run."
            advice = "describe_redis lists the databases holding keys." if self._offers("describe_redis") else ""
        else:
            # A code of the instance's own making is shown only inside the fence.
            known = f" ({error.code})" if error.code in _REDIS_ADVICE or error.code == "ERR" else ""
            head = f"Redis answered {error.command} with an error{known}; nothing was changed."
            advice = _REDIS_ADVICE.get(error.code, "Check the arguments against the command's Redis documentation.")
        said = " ".join(part for part in (head, advice, "Its message follows.") if part)
        return f"{said}\n{fence(f'{error.code} {error.message}')}"

    def redis_no_answer(self, outcome: RedisNoAnswer) -> str:
        """The command went out and no answer came back: say whether it may have run."""
        how = (
            "no answer came within the time limit"
            if outcome.failure.kind == "timeout"
            else "the connection broke before the answer came"
        )
        after = (
            "It is a write and may still have run: read the keys it names before trying it again."
            if outcome.writes
            else "It only reads: narrow it (a smaller range or COUNT) or call again."
        )
        detail = fence(outcome.failure.detail)
        return f"{outcome.command} was sent, but {how}; the connection was closed. {after}\n{detail}"

    def redis_truncated(self, cut: RedisTruncation) -> str:
        """What the caps left out, and the call that continues (its arguments are in ``next_call``)."""
        unit = "bytes" if cut.unit == "bytes" else "items"
        parts = [f"Showing {cut.shown} of {cut.total} {unit}."] if cut.shown < cut.total else []
        if cut.cut_inside:
            parts.append(f"{cut.cut_inside} values inside were shortened (marked $cut, and $more for items left out).")
        command = cut.next_call[0] if cut.next_call else None
        if isinstance(command, str):
            parts.append(
                f"For what follows, call run_redis_command with command='{command}', the arguments in "
                "next_call.arguments, and the same db."
            )
        elif cut.use_instead:
            parts.append(f"To page through all of it, use {cut.use_instead} with a cursor instead.")
        elif cut.shown < cut.total:
            parts.append("Narrow the call (a smaller range or COUNT) to see the rest.")
        return " ".join(parts)

    def flush_question(self, target: Instance, flush: RedisNeedsConfirmation, db: int) -> str:
        what = "every key of every database" if flush.scope == "instance" else f"every key of database {db}"
        return (
            f"Empty {_described(REDIS, target)} with {flush.command}? It deletes {what}; what it removes is lost "
            "for good."
        )


# --- tool descriptions ---------------------------------------------------------------------------------


def approval(offer: Offer, what: str) -> str:
    """How a change that destroys data is approved at this server's confirm mode (``what``: "database")."""
    if offer.confirm == "human":
        return f"a person's approval: on this server only {PAGE_APPROVAL}"
    return (
        "the user's approval: a client that can ask the user asks; otherwise pass confirm_name, the "
        f"{what}'s exact name, only when the user asked for the change"
    )


# --- argument refusals ----------------------------------------------------------------------------------


def invalid_arguments(tool: str, problems: list[str]) -> str:
    return f"Invalid arguments for {tool}: {'; '.join(problems)}. Nothing was sent to the Redu API."


#: Patterns, in words a model can follow, with an example.
_PATTERNS = {
    NAME_PATTERN: (
        "use lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen, "
        "e.g. 'orders-db'"
    ),
    PG_IDENTIFIER_PATTERN: (
        "use lowercase letters, digits and underscores, starting with a letter or underscore, e.g. 'app'"
    ),
}
_TYPES = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "true or false",
    "array": "a list",
    "object": "an object",
    "null": "null",
}


def _type_name(json_type: object) -> str:
    return _TYPES.get(str(json_type), str(json_type))


def rule(argument: str, rule: str, value: object) -> str:
    """``argument: <the rule in words>`` for one JSON Schema rule it broke."""
    listed = value if isinstance(value, list) else [value]
    texts = {
        "type": lambda: "must be " + " or ".join(dict.fromkeys(_type_name(t) for t in listed)),
        "minLength": lambda: f"must have at least {value} characters",
        "maxLength": lambda: f"must have at most {value} characters",
        "minItems": lambda: f"must have at least {value} items",
        "maxItems": lambda: f"must have at most {value} items",
        "minimum": lambda: f"must be at least {value}",
        "maximum": lambda: f"must be at most {value}",
        "exclusiveMinimum": lambda: f"must be more than {value}",
        "exclusiveMaximum": lambda: f"must be less than {value}",
        "pattern": lambda: _PATTERNS.get(str(value), "has a form this tool does not accept"),
        "enum": lambda: "must be one of " + ", ".join(json.dumps(v) for v in listed),
        "const": lambda: f"must be {json.dumps(value)}",
    }
    text = texts.get(rule)
    return f"{argument}: {text() if text else 'is not allowed here'}"


def missing(argument: str, description: str | None) -> str:
    """A required argument is missing: say what it is and where it comes from (its description)."""
    what = f" ({description[0].lower()}{description[1:]})" if description else ""
    return f"missing {argument}{what}"


def unknown_argument(argument: str, takes: list[str]) -> str:
    shown = argument if len(argument) <= 40 else argument[:40] + "..."
    return f"unknown argument {shown!r} (this tool takes: {', '.join(takes) or 'no arguments'})"
