"""The tools: one module per tool (or per small family), this registry listing them in the order
tools/list shows them.

Adding a tool: write its module (its ``ToolSpec``, body and result model), add one line below, and
update the tools/list snapshot. Tools made per kind (``list_databases``, ``list_redis``, …) are made
once for every kind of the API library's ``KINDS``: adding a kind adds them, with no edit here.
"""

from typing import Final

from redu_mcp.server.kinds import ALL_KINDS
from redu_mcp.server.specs import AccessLevel, DataLevel, ToolSpec
from redu_mcp.server.tools import connection, create, delete, instances, migrations, options, schema, sql, wait, whoami

#: Every tool, in the order they are listed.
TOOLS: Final[tuple[ToolSpec, ...]] = (
    *(
        spec
        for kind in ALL_KINDS
        for spec in (instances.list_tool(kind), instances.get_tool(kind), delete.delete_tool(kind))
    ),
    *(create.create_tool(kind) for kind in ALL_KINDS),
    wait.TOOL,
    options.TOOL,
    whoami.TOOL,
    connection.TOOL,
    schema.TOOL,
    sql.READ_TOOL,
    sql.WRITE_TOOL,
    migrations.LIST,
    migrations.APPLY,
)


def tools_for(access: AccessLevel, data: DataLevel = "read") -> list[ToolSpec]:
    """The tools a server at ``access`` and ``data`` offers; the others do not exist for it. A tool
    listed in two variants (``run_sql`` at read and at write) is offered in the last one allowed."""
    offered = {spec.name: spec for spec in TOOLS if spec.profile.allowed(access, data)}
    return list(offered.values())


__all__ = ["TOOLS", "tools_for"]
