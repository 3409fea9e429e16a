"""The kinds as the face shows them, made from the API library's ``KINDS`` and nothing else.

Every per-kind list, choice and phrase the face needs comes from here, so a kind added to the API
library (its models and its ``Kind`` entry) gets its tools, resources, prompts and sentences with no
edit in the face. Read when modules are imported: a kind registered later is not seen.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Final

from pydantic import AfterValidator, WithJsonSchema

from redu_mcp.api import KINDS, AnyKind

#: Every kind, in the order the API library lists them (the order tools and resources are listed in).
ALL_KINDS: Final[tuple[AnyKind, ...]] = tuple(KINDS.values())


def either(items: Iterable[str]) -> str:
    """``a``, ``a or b``, ``a, b or c``."""
    listed = list(items)
    return listed[0] if len(listed) == 1 else f"{', '.join(listed[:-1])} or {listed[-1]}"


def each_kind(template: str) -> list[str]:
    """``template`` filled in for every kind: ``each_kind("list_{collection}")`` → list_databases, …"""
    return [template.format(name=kind.name, collection=kind.collection, engine=kind.engine) for kind in ALL_KINDS]


def called(kind: AnyKind) -> str:
    """How a model passes the kind, with the engine when the name does not say it: ``'database' (PostgreSQL)``."""
    return f"'{kind.name}'" if kind.name == kind.engine.lower() else f"'{kind.name}' ({kind.engine})"


def engines_with(field: str) -> str:
    """The engines whose instances have ``field`` (``database_field``...): ``PostgreSQL``."""
    return " and ".join(kind.engine for kind in ALL_KINDS if getattr(kind, field))


def kind_named(name: str) -> AnyKind:
    """The kind a ``KindChoice`` names."""
    for kind in ALL_KINDS:
        if kind.name == name:
            return kind
    raise ValueError(f"no kind named {name!r}")


def _known_kind(value: str) -> str:
    if value not in KINDS:
        raise ValueError(f"must be one of {', '.join(KINDS)}")
    return value


def _kind_schema() -> dict[str, Any]:
    return {"enum": list(KINDS), "type": "string"}


#: A kind's name as an argument or a result field: one of ``KINDS`` (an ``enum`` in the schema).
KindChoice = Annotated[str, AfterValidator(_known_kind), WithJsonSchema(_kind_schema())]
