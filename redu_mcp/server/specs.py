"""How a tool is declared: one ``ToolSpec`` binds its name, title, description, annotation profile
(and with it the access level it needs) and deadline, and builds the SDK's ``Tool`` from them.

The access level is a property of the profile, so a tool's hints and the level it needs cannot
disagree (a destructive tool always needs ``full``; a look-up that only serves creates needs
``create``, where creating is possible). A description may depend on what the server offers
(``Offer``): a text names only tools that exist, and says who approves a delete. Schemas are
listed compactly (``compact_schema``).

The deadline is set here, once per call, around the tool's body: everything the body does (every
HTTP exchange, retry and poll) is clipped to it (``redu_mcp.api.within``), so a slow or
rate-limited API cannot keep a call past the ~60 s after which desktop clients give up. The body
runs after the SDK's resolvers, so the time a person takes to confirm a delete is not counted.

A result reaches the model as compact JSON without empty fields; ``structuredContent`` carries the
full result model, the same one that drives the tool's ``outputSchema``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar, get_args

from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel

from redu_mcp.api import within
from redu_mcp.server.fence import FencedResult

F = TypeVar("F", bound=Callable[..., Any])

AccessLevel = Literal["read", "create", "full"]
ACCESS_LEVELS: Final[tuple[AccessLevel, ...]] = get_args(AccessLevel)
#: How far tools may use what was provisioned (``--data``): not at all, read-only, or read and write.
DataLevel = Literal["off", "read", "write"]
DATA_LEVELS: Final[tuple[DataLevel, ...]] = get_args(DataLevel)

#: How long one tool call may take, every request and retry included. Desktop clients cancel a call
#: at about 60 s, and the answer must arrive before that.
TOOL_DEADLINE_SECONDS: Final = 45.0


@dataclass(frozen=True)
class Profile:
    """A named set of the four MCP hints, and the access level (and, for a tool that uses an
    instance's data, the data level) a tool with these hints needs."""

    name: str
    level: AccessLevel
    read_only: bool
    destructive: bool
    idempotent: bool
    data: DataLevel | None = None  # None: the tool does not touch an instance's data

    def allowed(self, access: AccessLevel, data: DataLevel) -> bool:
        """Is a tool with this profile offered at ``access`` and ``data``?"""
        data_ok = self.data is None or DATA_LEVELS.index(self.data) <= DATA_LEVELS.index(data)
        return level_allows(access, self.level) and data_ok

    def annotations(self, title: str) -> ToolAnnotations:
        return ToolAnnotations(
            title=title,
            read_only_hint=self.read_only,
            destructive_hint=self.destructive,
            idempotent_hint=self.idempotent,
            open_world_hint=True,  # every tool talks to Redu Cloud
        )


READS: Final = Profile("reads", "read", read_only=True, destructive=False, idempotent=True)
#: A look-up that only serves creates (``list_create_options``): read-only, offered where creating is.
PREPARES: Final = Profile("prepares", "create", read_only=True, destructive=False, idempotent=True)
CREATES: Final = Profile("creates", "create", read_only=False, destructive=False, idempotent=False)
DESTROYS: Final = Profile("destroys", "full", read_only=False, destructive=True, idempotent=True)
#: Tools that use an instance's data: reading (inside the engine's own read-only guards), writing
#: (what can be destroyed is confirmed like a delete), and migrating (applied once per version).
READS_DATA: Final = Profile("reads data", "read", read_only=True, destructive=False, idempotent=True, data="read")
WRITES_DATA: Final = Profile("writes data", "create", read_only=False, destructive=True, idempotent=False, data="write")
MIGRATES: Final = Profile("migrates", "create", read_only=False, destructive=True, idempotent=True, data="write")


def declared(fn: F, *, returns: type, parameters: list[inspect.Parameter] | None = None) -> F:
    """``fn`` as if it were declared to return ``returns`` (and to take ``parameters``): the SDK reads
    a tool's arguments and result from its signature, and a tool whose arguments or result are made
    from data (a kind's create; the per-kind defaults of the create options) has none to write."""
    parameters = list(inspect.signature(fn).parameters.values()) if parameters is None else parameters
    fn.__dict__["__signature__"] = inspect.Signature(parameters, return_annotation=returns)
    fn.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": returns}
    return fn


def level_allows(access: AccessLevel, needed: AccessLevel) -> bool:
    return ACCESS_LEVELS.index(needed) <= ACCESS_LEVELS.index(access)


@dataclass(frozen=True)
class Offer:
    """What a description may depend on: the tools this server offers, and who approves a delete
    (``--confirm``: ``auto`` or ``human``)."""

    tools: frozenset[str] = frozenset()
    confirm: str = "auto"

    def has(self, tool: str) -> bool:
        return tool in self.tools


@dataclass(frozen=True)
class ToolSpec:
    name: str
    title: str
    #: Written for a model; a function of the ``Offer`` when it names other tools or the confirm mode.
    description: str | Callable[[Offer], str]
    profile: Profile
    fn: Callable[..., Awaitable[Any]]
    #: Seconds the body may take, computed from the call's arguments (``wait_for_ready``); by default
    #: ``TOOL_DEADLINE_SECONDS``.
    deadline: Callable[[Mapping[str, Any]], float] | None = None
    #: Descriptions of arguments that say where a value comes from, for the ``Offer`` (they name tools);
    #: they replace the ones the argument types carry.
    arguments: Callable[[Offer], Mapping[str, str]] | None = None

    @property
    def level(self) -> AccessLevel:
        return self.profile.level

    def deadline_for(self, arguments: Mapping[str, Any]) -> float:
        return TOOL_DEADLINE_SECONDS if self.deadline is None else self.deadline(arguments)

    def describe(self, offer: Offer) -> str:
        return self.description if isinstance(self.description, str) else self.description(offer)

    def build(self, offer: Offer | None = None) -> Tool:
        """The SDK's tool: its body under its deadline, described for ``offer`` (by default: alone,
        confirming as ``auto`` does), listed with compact schemas that refuse unknown arguments."""
        body, deadline_for = self.fn, self.deadline_for
        offer = offer or Offer(frozenset({self.name}))

        @functools.wraps(body)  # the SDK reads the signature through it (inspect follows __wrapped__)
        async def within_deadline(*args: Any, **kwargs: Any) -> Any:
            with within(deadline_for(kwargs)):
                return as_result(await body(*args, **kwargs))

        tool = Tool.from_function(
            within_deadline,
            name=self.name,
            title=self.title,
            description=self.describe(offer),
            annotations=self.profile.annotations(self.title),
        )
        parameters = {**compact_schema(tool.parameters), "additionalProperties": False}
        properties = parameters.get("properties", {})
        for argument, text in (self.arguments(offer) if self.arguments else {}).items():
            properties[argument] = {**properties[argument], "description": text}
        output = compact_schema(tool.fn_metadata.output_schema, output=True)
        return tool.model_copy(
            update={
                "parameters": parameters,
                "fn_metadata": tool.fn_metadata.model_copy(update={"output_schema": output}),
            }
        )


def as_result(value: Any) -> Any:
    """A result model as the tool result: compact text without nulls (what the model reads, ~30%
    shorter than indented JSON; data read from an instance inside its fence), and the whole model as
    ``structuredContent``."""
    if not isinstance(value, BaseModel):
        return value
    text = value.fenced_text() if isinstance(value, FencedResult) else value.model_dump_json(exclude_none=True)
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content=value.model_dump(mode="json"),
    )


_SUBSCHEMA_MAPS = ("properties", "$defs", "patternProperties")
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMAS = ("items", "additionalProperties", "not", "contains")


def compact_schema(schema: Any, *, output: bool = False) -> Any:
    """``schema`` without what only costs tokens: the ``title`` pydantic derives from every field and
    model name ("Flavor Id" for ``flavor_id``; ~15% of a tools/list). With ``output``, also the
    ``default: null`` of optional result fields, and ``anyOf: [{type: T}, {type: null}]`` written as
    ``type: [T, null]`` (the same JSON Schema). Input schemas keep their ``anyOf`` form, which every
    model provider accepts. Validation is unchanged: only annotations and spelling go."""
    if not isinstance(schema, dict):
        return schema
    compact: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue
        if output and key == "default" and value is None:
            continue
        if key in _SUBSCHEMA_MAPS and isinstance(value, dict):
            compact[key] = {name: compact_schema(sub, output=output) for name, sub in value.items()}
        elif key in _SUBSCHEMA_LISTS and isinstance(value, list):
            compact[key] = [compact_schema(sub, output=output) for sub in value]
        elif key in _SUBSCHEMAS and isinstance(value, dict):
            compact[key] = compact_schema(value, output=output)
        else:
            compact[key] = value
    branches = compact.get("anyOf")
    nullable = isinstance(branches, list) and len(branches) == 2 and {"type": "null"} in branches
    if output and "type" not in compact and nullable:
        assert isinstance(branches, list)
        other = branches[1] if branches[0] == {"type": "null"} else branches[0]
        if set(other) == {"type"} and isinstance(other["type"], str):
            del compact["anyOf"]
            compact["type"] = [other["type"], "null"]
    return compact
