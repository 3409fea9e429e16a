"""What an account's look-ups make obvious for a create: a suggested value per required field.

A value is suggested only when the data decides it: the only choice there is; the smallest flavor
(all sizes known, one strictly smallest: the cheapest); a network named ``private`` (else
``default``). Otherwise nothing is suggested and the choice is the user's. The face words the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from redu_mcp.api import Flavor
from redu_mcp.provisioning.lookups import CreateLookups

SuggestedBecause = Literal["only_one", "smallest", "named_private", "named_default"]


@dataclass(frozen=True)
class Suggested:
    value: str
    because: SuggestedBecause
    name: str  # the suggested item's name, as the account shows it


@dataclass(frozen=True)
class Suggestions:
    flavor_id: Suggested | None
    network_id: Suggested | None
    keypair_name: Suggested | None


def suggest(found: CreateLookups) -> Suggestions:
    keypairs = found.keypairs
    only_keypair = Suggested(keypairs[0].name, "only_one", keypairs[0].name) if len(keypairs) == 1 else None
    return Suggestions(flavor_id=_flavor(found.flavors), network_id=_network(found), keypair_name=only_keypair)


def _size(flavor: Flavor) -> tuple[int, int, int] | None:
    if flavor.ram is None or flavor.vcpus is None:
        return None
    return (flavor.ram, flavor.vcpus, flavor.disk or 0)


def _flavor(flavors: list[Flavor]) -> Suggested | None:
    if len(flavors) == 1:
        return Suggested(flavors[0].id, "only_one", flavors[0].name)
    sized = [(size, flavor) for flavor in flavors if (size := _size(flavor)) is not None]
    if len(sized) < 2 or len(sized) < len(flavors):
        return None  # none, or a size unknown: which one is smallest is not obvious
    (first_size, first), (second_size, _) = sorted(sized, key=lambda pair: pair[0])[:2]
    return Suggested(first.id, "smallest", first.name) if first_size != second_size else None


_NETWORK_NAMES: tuple[tuple[str, SuggestedBecause], ...] = (("private", "named_private"), ("default", "named_default"))


def _network(found: CreateLookups) -> Suggested | None:
    networks = found.networks
    if len(networks) == 1:
        return Suggested(networks[0].id, "only_one", networks[0].name)
    for wanted, because in _NETWORK_NAMES:
        named = [n for n in networks if n.name.strip().lower() == wanted]
        if len(named) == 1:
            return Suggested(named[0].id, because, named[0].name)
    return None
