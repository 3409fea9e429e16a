"""Finding things: instances by name, by page, by id across kinds; what a create may reference.

Every function here only reads. The costly ones run only when they save a model a call: the other
kind is looked up only after a 404, the valid references only after a create was refused.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import anyio

from redu_mcp.api import KINDS, AnyKind, Flavor, Instance, Keypair, Network, ReduClient, ReduError, SecurityGroup

ReferenceField = Literal["flavor_id", "network_id", "keypair_name", "security_group_names"]
REFERENCE_FIELDS: tuple[ReferenceField, ...] = ("flavor_id", "network_id", "keypair_name", "security_group_names")


async def find_by_name(client: ReduClient, kind: AnyKind, name: str) -> Instance | None:
    for instance in await client.list_instances(kind):
        if instance.name == name:
            return instance
    return None


@dataclass(frozen=True)
class Page:
    total: int  # instances matching the filters
    instances: list[Instance]  # newest first, from the offset


def newest_first(instances: list[Instance]) -> list[Instance]:
    """By creation time, newest first; ids break ties (and stand in when the API gives no time)."""
    return sorted(instances, key=lambda i: (i.created_at or "", i.id), reverse=True)


async def list_page(
    client: ReduClient,
    kind: AnyKind,
    *,
    offset: int,
    limit: int,
    name_contains: str | None = None,
    status: str | None = None,
) -> Page:
    """One page of instances, newest first, filtered here (the API has no filters or order)."""
    found = await client.list_instances(kind)
    if name_contains:
        found = [i for i in found if name_contains.lower() in i.name.lower()]
    if status:
        found = [i for i in found if i.status == status]
    return Page(total=len(found), instances=newest_first(found)[offset : offset + limit])


async def other_instance_with(client: ReduClient, kind: AnyKind, id: int) -> tuple[AnyKind, Instance] | None:
    """After a 404: another kind's instance with this id, if any (one GET per other kind, until one
    answers; None when none does, or none could say)."""
    for other in KINDS.values():
        if other is kind:
            continue
        try:
            found = await client.get_instance(other, id)
        except ReduError:
            continue  # not this one (or it could not say): the next kind may know
        return other, found
    return None


@dataclass(frozen=True)
class CreateLookups:
    flavors: list[Flavor]
    networks: list[Network]
    keypairs: list[Keypair]
    security_groups: list[SecurityGroup]


async def create_lookups(client: ReduClient) -> CreateLookups:
    """Everything a create references, fetched concurrently (four GETs in the time of one)."""
    lists: dict[str, Any] = {}

    async def fetch(name: str, call: Callable[[], Awaitable[list[Any]]]) -> None:
        lists[name] = await call()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(fetch, "flavors", client.list_flavors)
            tg.start_soon(fetch, "networks", client.list_networks)
            tg.start_soon(fetch, "keypairs", client.list_keypairs)
            tg.start_soon(fetch, "security_groups", client.list_security_groups)
    except* ReduError as failed:  # the first failure stands for all: the others were cancelled
        raise failed.exceptions[0] from None
    return CreateLookups(**lists)


async def valid_references(client: ReduClient, field: ReferenceField) -> list[tuple[str, str]]:
    """The values ``field`` accepts, each with its name: ``[("1", "db.small"), ...]``."""
    match field:
        case "flavor_id":
            return [(f.id, f.name) for f in await client.list_flavors()]
        case "network_id":
            return [(n.id, n.name) for n in await client.list_networks()]
        case "keypair_name":
            return [(k.name, k.name) for k in await client.list_keypairs()]
        case "security_group_names":
            return [(g.name, g.name) for g in await client.list_security_groups()]
