"""``list_create_options``: everything a create needs, in one call, with each kind's versions and
defaults, and a suggested value (with the reason) for each required field the account's data decides.

Offered where creating is (``PREPARES``): at ``--access read`` it would only invite a create."""

# No `from __future__ import annotations`: the SDK must evaluate these signatures, closures included.

from functools import partial
from types import GenericAlias
from typing import Any, Final, get_args

from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field, create_model

from redu_mcp.api import DEFAULT_SECURITY_GROUPS, AnyKind, CreateBody, Flavor, Network, SecurityGroup
from redu_mcp.provisioning.lookups import create_lookups
from redu_mcp.provisioning.suggestions import Suggested, suggest
from redu_mcp.server.kinds import ALL_KINDS
from redu_mcp.server.runtime import runtime_of
from redu_mcp.server.specs import PREPARES, ToolSpec, declared
from redu_mcp.server.tools._common import reported_as_tool_error
from redu_mcp.server.wording import Wording


class FlavorOption(BaseModel):
    id: str = Field(description="Pass this as flavor_id")
    name: str
    vcpus: int | None = None
    ram_mib: int | None = None
    disk_gb: int | None = None

    @classmethod
    def of(cls, flavor: Flavor) -> "FlavorOption":
        return cls(id=flavor.id, name=flavor.name, vcpus=flavor.vcpus, ram_mib=flavor.ram, disk_gb=flavor.disk)


class NetworkOption(BaseModel):
    id: str = Field(description="Pass this as network_id")
    name: str

    @classmethod
    def of(cls, network: Network) -> "NetworkOption":
        return cls(id=network.id, name=network.name)


class SecurityGroupOption(BaseModel):
    name: str = Field(description="Pass names in security_group_names")
    description: str | None = None

    @classmethod
    def of(cls, group: SecurityGroup) -> "SecurityGroupOption":
        return cls(name=group.name, description=group.description)


class Suggestion(BaseModel):
    value: str
    reason: str


class Suggestions(BaseModel):
    """A value for each required field, when the account's data makes one obvious (else absent)."""

    flavor_id: Suggestion | None = None
    network_id: Suggestion | None = None
    keypair_name: Suggestion | None = None


def _suggestion(words: Wording, field: str, suggested: Suggested | None) -> Suggestion | None:
    if suggested is None:
        return None
    return Suggestion(value=suggested.value, reason=words.suggested_because(field, suggested))


def defaults_of(kind: AnyKind) -> type[BaseModel]:
    """What a create of ``kind`` uses when an argument is left out: its versions (``versions``, from
    the body's ``version`` choices) and the default of every argument of its own but the password."""
    fields: dict[str, Any] = {}
    for name, field in kind.create_body.model_fields.items():
        if name in CreateBody.model_fields or name == kind.password_field:
            continue
        if name == "version":
            choices = list(get_args(field.annotation))
            fields["versions"] = (
                GenericAlias(list, (field.annotation,)),
                Field(default_factory=partial(list, choices)),
            )
            fields["version"] = (field.annotation, field.default)
        else:
            fields[name] = (type(field.default), field.default)
    return create_model(f"{kind.name.capitalize()}Defaults", **fields)


class _CreateOptions(BaseModel):
    suggested: Suggestions
    flavors: list[FlavorOption]
    networks: list[NetworkOption]
    keypairs: list[str] = Field(description="Pass one as keypair_name")
    security_groups: list[SecurityGroupOption]
    default_security_groups: list[str] = list(DEFAULT_SECURITY_GROUPS)


def _per_kind() -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for kind in ALL_KINDS:
        defaults = defaults_of(kind)
        fields[kind.name] = (defaults, defaults())
    return fields


#: The look-ups, then one field per kind (``database``, ``redis``) with its versions and defaults.
CreateOptions: Final = create_model("CreateOptions", __base__=_CreateOptions, **_per_kind())


async def list_create_options(ctx: Context) -> BaseModel:
    runtime = runtime_of(ctx)
    client = runtime.client_or_tool_error("list the create options")
    with reported_as_tool_error(runtime, "list the create options"):
        found = await create_lookups(client)
    suggested = suggest(found)
    words = runtime.words
    return CreateOptions(
        suggested=Suggestions(
            flavor_id=_suggestion(words, "flavor_id", suggested.flavor_id),
            network_id=_suggestion(words, "network_id", suggested.network_id),
            keypair_name=_suggestion(words, "keypair_name", suggested.keypair_name),
        ),
        flavors=[FlavorOption.of(f) for f in found.flavors],
        networks=[NetworkOption.of(n) for n in found.networks],
        keypairs=[k.name for k in found.keypairs],
        security_groups=[SecurityGroupOption.of(g) for g in found.security_groups],
    )


TOOL: Final = ToolSpec(
    name="list_create_options",
    title="List what instances can be created with",
    description=(
        "Everything a create needs, in one call: a suggested value for each required argument where the account "
        "makes one obvious (with the reason), flavors (sizes), networks, SSH keypairs, security groups, the "
        "versions of each kind, and the defaults. Read-only."
    ),
    profile=PREPARES,
    fn=declared(list_create_options, returns=CreateOptions),
)
