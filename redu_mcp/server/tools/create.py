"""``create_<kind>``: create one instance (never two) and hand its password over, for every kind.

A kind's tool takes the arguments every create takes (name, flavor, network, keypair, security
groups) and the ones its create body adds, read from the body model of the API library (their
types, limits, defaults and descriptions; the password as a secret argument), so a new kind's
create tool needs no code here.

The body reads "decide, audit, present": ``create_instance`` decides what happened, the password is
delivered as the server is configured to, each outcome has one audit record (``_audited``) and one
result or error (``_present``). A name that exists is reported with every field that differs from
the request (as far as the API reports them) and its saved credentials file, if there is one.
"""

# No `from __future__ import annotations`: the SDK must evaluate these signatures, closures included.

import inspect
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field, SecretStr

from redu_mcp.api import DEFAULT_SECURITY_GROUPS, AnyKind, CreateBody, ReduError
from redu_mcp.provisioning.audit import Outcome
from redu_mcp.provisioning.create import (
    AlreadyExists,
    Created,
    CreatedAnswerLost,
    CreateOutcome,
    NotCreated,
    OutcomeUnknown,
    compare_with_request,
    create_instance,
)
from redu_mcp.provisioning.credentials import (
    Delivery,
    NoPassword,
    Revealed,
    SavedToFile,
    SuppliedNotSaved,
    deliver_password,
)
from redu_mcp.server.arguments import (
    FlavorId,
    KeypairName,
    Name,
    NetworkId,
    Password,
    SecurityGroups,
    look_up_sources,
)
from redu_mcp.server.results import Connection, InstanceView
from redu_mcp.server.runtime import Runtime, runtime_of
from redu_mcp.server.specs import CREATES, Offer, ToolSpec, declared
from redu_mcp.server.tools._common import audit
from redu_mcp.server.wording import Wording

PasswordDelivery = Literal["file", "shown_once", "caller_supplied", "not_returned", "unknown"]


class FieldDifference(BaseModel):
    field: str
    requested: str
    existing: str


class CreateResult(BaseModel):
    created: bool = Field(description="False when an instance with this name already existed and is reported instead")
    differences: list[FieldDifference] | None = Field(
        default=None, description="When created is false: the fields the existing instance has other values for"
    )
    instance: InstanceView
    connection: Connection | None = Field(default=None, description="Once the instance has a host")
    password_delivery: PasswordDelivery = Field(
        description="file: saved to credentials_file; shown_once: in `password` below; caller_supplied: the one "
        "you passed; not_returned/unknown: not available"
    )
    credentials_file: str | None = None
    password: str | None = Field(default=None, description="Only with --secrets reveal, or if saving the file failed")
    message: str
    next_step: str


# --- the arguments -------------------------------------------------------------------------------------

#: Taken by every create, before the kind's own arguments (and the security groups after them).
_SHARED = [
    inspect.Parameter("name", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Name),
    inspect.Parameter("flavor_id", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=FlavorId),
    inspect.Parameter("network_id", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=NetworkId),
    inspect.Parameter("keypair_name", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=KeypairName),
    inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Context),
]
_GROUPS = inspect.Parameter(
    "security_group_names", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=SecurityGroups, default=None
)


def _own_parameters(kind: AnyKind) -> list[inspect.Parameter]:
    """The arguments ``kind``'s create body adds, as its model declares them."""
    parameters = []
    for name, field in kind.create_body.model_fields.items():
        if name in CreateBody.model_fields:
            continue
        if name == kind.password_field:
            annotation: Any = Password
            default = None
        else:
            annotation = Annotated[(field.annotation, *field.metadata, Field(description=field.description))]
            default = field.default
        parameters.append(
            inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=annotation, default=default)
        )
    return parameters


def _body(kind: AnyKind, arguments: dict[str, Any]) -> CreateBody:
    values = dict(arguments)
    values["security_group_names"] = values.get("security_group_names") or list(DEFAULT_SECURITY_GROUPS)
    password = values.pop(kind.password_field, None)
    values[kind.password_field] = SecretStr(password) if password is not None else None
    return kind.create_body(**values)


# --- decide, audit, present ----------------------------------------------------------------------------


def _deliver(runtime: Runtime, kind: AnyKind, outcome: CreateOutcome) -> Delivery | None:
    """Hand a new instance's password over as the server is configured to (None: there is none to hand)."""
    store, secrets, principal = runtime.credentials, runtime.settings.secrets, runtime.principal()
    match outcome:
        case Created(instance=instance, password=password, supplied=supplied):
            return deliver_password(store, secrets, principal, kind, instance, password, supplied)
        case CreatedAnswerLost(instance=instance, password=password) if password is not None:
            return deliver_password(store, secrets, principal, kind, instance, password, True)
    return None


def _audited(outcome: CreateOutcome, delivery: Delivery | None) -> tuple[Outcome, str | None]:
    """The audit record of each outcome: its outcome and detail."""
    match outcome:
        case Created():
            return "created", type(delivery).__name__
        case CreatedAnswerLost():
            return "created_answer_lost", None
        case AlreadyExists():
            return "already_exists", None
        case NotCreated(reason=reason):
            return "not_created", reason
        case OutcomeUnknown():
            return "unknown", None


def _delivered(delivery: Delivery) -> dict[str, Any]:
    """The result fields that say where the password went."""
    match delivery:
        case SavedToFile(path=path, supplied=supplied):
            return {"password_delivery": "caller_supplied" if supplied else "file", "credentials_file": str(path)}
        case Revealed(password=password):
            return {"password_delivery": "shown_once", "password": password}
        case SuppliedNotSaved():
            return {"password_delivery": "caller_supplied"}
        case NoPassword():
            return {"password_delivery": "not_returned"}


def _existing(runtime: Runtime, kind: AnyKind, body: CreateBody, outcome: AlreadyExists) -> CreateResult:
    """An instance that had the name already: how it differs from ``body``, and its saved password file."""
    words, existing = runtime.words, outcome.instance
    compared = compare_with_request(kind, body, existing)
    saved = runtime.credentials.path_of(runtime.principal(), kind, existing)
    credentials_file = str(saved) if saved else None
    supplied = kind.supplied_password(body) is not None
    differences = [
        FieldDifference(field=d.field, requested=d.requested, existing=d.existing) for d in compared.differences
    ]
    return CreateResult(
        created=False,
        differences=differences or None,
        instance=InstanceView.of(kind, existing),
        connection=Connection.once_reachable(kind, existing),
        password_delivery="file" if credentials_file else "unknown",
        credentials_file=credentials_file,
        message=words.already_exists(kind, outcome, compared, credentials_file, supplied),
        next_step=words.use_existing(kind, existing, differs=bool(differences)),
    )


def _present(
    words: Wording, kind: AnyKind, name: str, outcome: CreateOutcome, delivery: Delivery | None
) -> CreateResult:
    """The result of each outcome but an existing name (or the error a model reads)."""
    match outcome:
        case NotCreated():
            raise ToolError(words.not_created(kind, name, outcome))
        case OutcomeUnknown():
            raise ToolError(words.outcome_unknown(kind, name, outcome))
        case AlreadyExists():
            raise AssertionError("an existing name is presented by _existing")
    instance = outcome.instance
    shown = {"instance": InstanceView.of(kind, instance), "connection": Connection.once_reachable(kind, instance)}
    if isinstance(outcome, CreatedAnswerLost) and delivery is None:
        message, fix = words.password_lost(kind, outcome)
        return CreateResult(created=True, **shown, password_delivery="not_returned", message=message, next_step=fix)
    delivery = delivery or NoPassword()
    return CreateResult(
        created=True,
        **shown,
        **_delivered(delivery),
        message=words.create_preface(outcome) + words.created(kind, instance, delivery),
        next_step=words.wait_for_it(kind, instance),
    )


async def _create(ctx: Context, kind: AnyKind, body: CreateBody) -> CreateResult:
    runtime = runtime_of(ctx)
    try:
        client = runtime.client()
    except ReduError as exc:
        raise ToolError(runtime.words.not_created(kind, body.name, NotCreated("lookup_failed", exc))) from None
    outcome = await create_instance(client, kind, body)
    delivery = _deliver(runtime, kind, outcome)
    audited, detail = _audited(outcome, delivery)
    created = getattr(outcome, "instance", None)
    audit(ctx, f"create_{kind.name}", kind, audited, id=created.id if created else None, name=body.name, detail=detail)
    if isinstance(outcome, AlreadyExists):
        return _existing(runtime, kind, body, outcome)
    return _present(runtime.words, kind, body.name, outcome, delivery)


def create_tool(kind: AnyKind) -> ToolSpec:
    async def create(ctx: Context, **arguments: Any) -> CreateResult:
        return await _create(ctx, kind, _body(kind, arguments))

    return ToolSpec(
        name=f"create_{kind.name}",
        title=f"Create a {kind.label}",
        description=lambda offer: _description(kind, offer),
        profile=CREATES,
        fn=declared(create, parameters=[*_SHARED, *_own_parameters(kind), _GROUPS], returns=CreateResult),
        arguments=look_up_sources,
    )


def _description(kind: AnyKind, offer: Offer) -> str:
    """What a create does, naming only the tools this server offers."""
    if offer.has("list_create_options"):
        source = (
            "from list_create_options: use its suggested values unless the request says otherwise, and ask the "
            "user before a choice that costs more or changes who can reach the instance"
        )
    else:
        source = "from the resources redu://flavors, redu://networks and redu://keypairs; ask the user when unsure"
    if offer.has("wait_for_ready"):
        then = ": then call wait_for_ready"
    elif offer.has(f"get_{kind.name}"):
        then = f": then call get_{kind.name} until it is ready"
    else:
        then = ""
    return (
        f"Create a managed {kind.label} (billed while it exists). Take flavor_id, network_id and keypair_name "
        f"{source}. Returns at once with status 'provisioning'{then}. The one-time password goes to a private "
        "credentials file (its path is returned). An existing name is reported with how it differs, never duplicated."
    )
