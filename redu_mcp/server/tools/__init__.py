"""The tools: one module per tool (or per small family), this registry listing them by group, in the
order tools/list shows them.

Adding a tool: write its module (its ``ToolSpec``, body and result model), add one line to its group
below, and update the tools/list snapshot. Tools made per kind (``list_databases``, ``list_redis``, …)
are made once for every kind of the API library's ``KINDS``: adding a kind adds them, with no edit here.

The groups are what an operator names in ``--tools`` / ``REDU_MCP_TOOLS`` besides single tool names:
an allow-list that bounds the tools under the access and data levels (it never adds one they hide).
"""

from collections.abc import Iterable
from typing import Final

from redu_mcp.server.errors import ConfigError
from redu_mcp.server.kinds import ALL_KINDS
from redu_mcp.server.specs import AccessLevel, DataLevel, ToolSpec
from redu_mcp.server.tools import (
    connection,
    create,
    delete,
    instances,
    migrations,
    options,
    redis_command,
    redis_describe,
    schema,
    sql,
    wait,
    whoami,
)

#: Every tool, by the group ``--tools`` may name it by, in the order they are listed.
GROUPS: Final[dict[str, tuple[ToolSpec, ...]]] = {
    "instances": (
        *(
            spec
            for kind in ALL_KINDS
            for spec in (instances.list_tool(kind), instances.get_tool(kind), delete.delete_tool(kind))
        ),
        *(create.create_tool(kind) for kind in ALL_KINDS),
        wait.TOOL,
    ),
    "lookups": (options.TOOL, whoami.TOOL),
    "data": (
        connection.TOOL,
        schema.TOOL,
        sql.READ_TOOL,
        sql.WRITE_TOOL,
        migrations.LIST,
        migrations.APPLY,
        redis_describe.TOOL,
        redis_command.READ_TOOL,
        redis_command.WRITE_TOOL,
    ),
}

#: Every tool, in the order they are listed (a tool may be listed in two variants: ``run_sql``).
TOOLS: Final[tuple[ToolSpec, ...]] = tuple(spec for group in GROUPS.values() for spec in group)


def allowed_tools(names: Iterable[str]) -> frozenset[str] | None:
    """The tool names an allow-list of tools and groups stands for (None: no list, every tool).

    An unknown name stops the server (a typo must never silently drop, or keep, a tool)."""
    names = tuple(names)
    allowed: set[str] = set()
    known = {spec.name for spec in TOOLS}
    for name in names:
        if name in GROUPS:
            allowed.update(spec.name for spec in GROUPS[name])
        elif name in known:
            allowed.add(name)
        else:
            raise ConfigError(
                f"unknown tool or group {name[:60]!r} in --tools / REDU_MCP_TOOLS: use the groups "
                f"{', '.join(GROUPS)} or tool names ({', '.join(sorted(known))})"
            )
    return frozenset(allowed) if names else None


def tools_for(access: AccessLevel, data: DataLevel = "read", only: Iterable[str] = ()) -> list[ToolSpec]:
    """The tools a server at ``access`` and ``data`` offers, within the allow-list ``only`` (tool and
    group names; empty: no list); the others do not exist for it. A tool listed in two variants
    (``run_sql`` at read and at write) is offered in the last one allowed. A list that leaves no tool
    stops the server."""
    only = tuple(only)
    allowed = allowed_tools(only)
    offered = {
        spec.name: spec
        for spec in TOOLS
        if spec.profile.allowed(access, data) and (allowed is None or spec.name in allowed)
    }
    if not offered:
        raise ConfigError(
            f"--tools / REDU_MCP_TOOLS ({', '.join(only)}) leaves no tool at access level {access} and data level {data}"
        )
    return list(offered.values())


__all__ = ["GROUPS", "TOOLS", "allowed_tools", "tools_for"]
