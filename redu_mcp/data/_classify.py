"""What a piece of SQL is, as PostgreSQL's own parser (libpg_query, through pglast) reads it.

The classification words refusals and asks for confirmation; it never is the only guard. At read,
PostgreSQL's read-only transaction holds the line whatever the parser says; one statement per call is
enforced by the extended protocol. What is refused here is what cannot work through this server, or
would outlive the call on a pooled connection, or would take the instance away from its credentials
file:

* transaction control (each call is its own transaction: ``BEGIN``, ``COMMIT``, ``SAVEPOINT``…);
* session state (``SET``/``RESET``/``SET ROLE``/``SET SESSION AUTHORIZATION``, ``DISCARD``,
  ``PREPARE``/``EXECUTE``/``DEALLOCATE``, cursors);
* ``COPY`` in every form: to or from a program or a server file, and to or from the client (this
  interface has no data channel: use ``SELECT``/``INSERT``);
* ``LISTEN``/``NOTIFY``/``UNLISTEN``, ``LOAD``;
* role management (``CREATE``/``ALTER``/``DROP ROLE``): a changed password would make the credentials
  file stale, and roles belong to the Redu API.

Destructive (asks for confirmation at write): ``DROP`` of anything, ``TRUNCATE``, ``DELETE`` or
``UPDATE`` without ``WHERE`` (also inside a writable CTE or under ``EXPLAIN ANALYZE``),
``MERGE … THEN DELETE``, ``ALTER … DROP …``, ``DO`` blocks, ``DROP OWNED`` and ``REASSIGN OWNED``.

pglast is imported on first use: it costs a fifth of a second, which start-up does not pay.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from pglast import ast

StatementKind = Literal[
    "select",  # also VALUES and TABLE
    "insert",
    "update",
    "delete",
    "merge",
    "create",
    "alter",
    "drop",
    "truncate",
    "grant",  # GRANT and REVOKE
    "explain",
    "show",
    "set",
    "transaction",
    "copy",
    "do",
    "call",
    "lock",
    "maintenance",  # VACUUM, ANALYZE, CLUSTER, REINDEX, REFRESH MATERIALIZED VIEW, CHECKPOINT
    "session",  # PREPARE, EXECUTE, DEALLOCATE, DECLARE, FETCH, CLOSE, DISCARD, LISTEN, NOTIFY, LOAD
    "other",
]

RefusalReason = Literal[
    "transaction_control",
    "session_control",
    "copy_program",
    "copy_file",
    "copy_client",
    "listen_notify",
    "load",
    "role_management",
]

DestructiveReason = Literal[
    "drop",
    "truncate",
    "delete_without_where",
    "update_without_where",
    "merge_delete",
    "alter_drop",
    "do_block",
    "drop_owned",
    "reassign_owned",
]

#: Table names kept per statement (an audit line and a refusal need a few, not hundreds).
MAX_TABLES = 20


@dataclass(frozen=True)
class Statement:
    """One statement of the text given, as the parser read it."""

    text: str  # this statement alone, as written (comments between statements dropped)
    start: int  # 0-based character offset of ``text`` in what was given
    kind: StatementKind
    tables: tuple[str, ...]  # relations it names, schema-qualified when written so; CTE names left out
    writes_in_cte: bool  # a WITH holds INSERT/UPDATE/DELETE/MERGE
    parameters: int  # the highest $n it uses (0: none)
    refused: RefusalReason | None
    destructive: tuple[DestructiveReason, ...]


@dataclass(frozen=True)
class Unparseable:
    """The parser rejected the text: PostgreSQL's grammar (as of pglast's libpg_query) has no such SQL."""

    message: str
    position: int | None  # 1-based character position, as PostgreSQL reports it


def classify(sql: str) -> tuple[Statement, ...] | Unparseable:
    """Every statement of ``sql``, in order (none for a text of only comments and blanks)."""
    from pglast import parse_sql
    from pglast.parser import ParseError

    try:
        raws = parse_sql(sql)
    except ParseError as exc:
        message, index = (*exc.args, None, None)[:2]
        return Unparseable(str(message), index + 1 if isinstance(index, int) else None)
    statements = []
    for raw in raws:
        if raw.stmt is None:
            continue
        start = raw.stmt_location or 0
        text = sql[start : start + raw.stmt_len] if raw.stmt_len else sql[start:]
        statements.append(_statement(raw.stmt, text.strip(), start + len(text) - len(text.lstrip())))
    return tuple(statements)


def _statement(node: ast.Node, text: str, start: int) -> Statement:
    from pglast import ast

    kind, refused = _kind_and_refusal(node)
    destructive = list(_destructive(node))
    checked = node
    if isinstance(node, ast.ExplainStmt) and node.query is not None and _explain_runs(node):
        checked = node.query  # EXPLAIN ANALYZE runs the statement
        destructive += _destructive(checked)
    ctes = _cte_queries(checked)
    for query in ctes:
        destructive += _destructive(query)
    return Statement(
        text=text,
        start=start,
        kind=kind,
        tables=_tables(node),
        writes_in_cte=any(
            isinstance(q, ast.InsertStmt | ast.UpdateStmt | ast.DeleteStmt | ast.MergeStmt) for q in ctes
        ),
        parameters=max((n.number or 0 for n in _walk(node) if isinstance(n, ast.ParamRef)), default=0),
        refused=refused,
        destructive=tuple(dict.fromkeys(destructive)),
    )


def _kind_and_refusal(node: ast.Node) -> tuple[StatementKind, RefusalReason | None]:
    from pglast import ast

    match node:
        case ast.SelectStmt():
            return ("create" if node.intoClause is not None else "select"), None
        case ast.InsertStmt():
            return "insert", None
        case ast.UpdateStmt():
            return "update", None
        case ast.DeleteStmt():
            return "delete", None
        case ast.MergeStmt():
            return "merge", None
        case ast.TransactionStmt():
            return "transaction", "transaction_control"
        case ast.VariableSetStmt():
            return "set", "session_control"
        case ast.VariableShowStmt():
            return "show", None
        case ast.CopyStmt():
            if node.is_program:
                return "copy", "copy_program"
            return "copy", ("copy_file" if node.filename else "copy_client")
        case ast.ListenStmt() | ast.NotifyStmt() | ast.UnlistenStmt():
            return "session", "listen_notify"
        case ast.LoadStmt():
            return "session", "load"
        case (
            ast.DiscardStmt()
            | ast.PrepareStmt()
            | ast.ExecuteStmt()
            | ast.DeallocateStmt()
            | ast.DeclareCursorStmt()
            | ast.FetchStmt()
            | ast.ClosePortalStmt()
        ):
            return "session", "session_control"
        case ast.CreateRoleStmt() | ast.AlterRoleStmt() | ast.AlterRoleSetStmt() | ast.DropRoleStmt():
            return ("drop" if isinstance(node, ast.DropRoleStmt) else "alter"), "role_management"
        case ast.ExplainStmt():
            return "explain", None
        case ast.DoStmt():
            return "do", None
        case ast.CallStmt():
            return "call", None
        case ast.LockStmt():
            return "lock", None
        case ast.TruncateStmt():
            return "truncate", None
        case ast.GrantStmt() | ast.GrantRoleStmt() | ast.AlterDefaultPrivilegesStmt():
            return "grant", None
        case ast.VacuumStmt() | ast.ClusterStmt() | ast.ReindexStmt() | ast.RefreshMatViewStmt() | ast.CheckPointStmt():
            return "maintenance", None
    name = type(node).__name__
    if name.startswith("Drop"):
        return "drop", None
    if name.startswith("Alter") or isinstance(
        node, ast.RenameStmt | ast.CommentStmt | ast.SecLabelStmt | ast.ReassignOwnedStmt
    ):
        return "alter", None
    if name.startswith("Create") or isinstance(
        node, ast.IndexStmt | ast.ViewStmt | ast.DefineStmt | ast.RuleStmt | ast.CompositeTypeStmt
    ):
        return "create", None
    return "other", None


def _destructive(node: ast.Node) -> Iterator[DestructiveReason]:
    """Why this one statement (not what it wraps) destroys data or schema."""
    from pglast import ast, enums

    match node:
        case ast.DropOwnedStmt():
            yield "drop_owned"
        case ast.ReassignOwnedStmt():
            yield "reassign_owned"
        case ast.TruncateStmt():
            yield "truncate"
        case ast.DeleteStmt() if node.whereClause is None:
            yield "delete_without_where"
        case ast.UpdateStmt() if node.whereClause is None:
            yield "update_without_where"
        case ast.MergeStmt() if any(
            clause.commandType == enums.CmdType.CMD_DELETE for clause in node.mergeWhenClauses or ()
        ):
            yield "merge_delete"
        case ast.AlterTableStmt() if any(
            isinstance(cmd, ast.AlterTableCmd) and cmd.subtype is not None and cmd.subtype.name.startswith("AT_Drop")
            for cmd in node.cmds or ()
        ):
            yield "alter_drop"
        case ast.AlterDomainStmt() if node.subtype == "X":  # ALTER DOMAIN … DROP CONSTRAINT
            yield "alter_drop"
        case ast.DoStmt():
            yield "do_block"
    if type(node).__name__.startswith("Drop") and not isinstance(node, ast.DropOwnedStmt):
        yield "drop"


def _cte_queries(node: ast.Node) -> list[ast.Node]:
    """The queries of a statement's WITH, and of theirs (PostgreSQL allows writes only at the top)."""
    found: list[ast.Node] = []
    pending = [node]
    while pending:
        with_clause = getattr(pending.pop(), "withClause", None)
        for cte in getattr(with_clause, "ctes", None) or ():
            query = getattr(cte, "ctequery", None)
            if query is not None:
                found.append(query)
                pending.append(query)
    return found


def _explain_runs(node: ast.ExplainStmt) -> bool:
    from pglast import ast

    for option in node.options or ():
        if isinstance(option, ast.DefElem) and option.defname == "analyze":
            arg = option.arg
            if arg is None:
                return True
            value = getattr(arg, "sval", None) or getattr(arg, "boolval", None) or getattr(arg, "ival", None)
            return str(value).lower() not in ("false", "off", "0", "no")
    return False


def _tables(node: ast.Node) -> tuple[str, ...]:
    from pglast import ast, enums

    cte_names = {n.ctename for n in _walk(node) if isinstance(n, ast.CommonTableExpr)}
    found: list[tuple[int, str]] = []  # (where it is written, name): the statement's own order
    for item in _walk(node):
        if isinstance(item, ast.RangeVar) and item.relname:
            if item.schemaname is None and item.relname in cte_names:
                continue
            found.append((item.location or 0, f"{item.schemaname}.{item.relname}" if item.schemaname else item.relname))
    names = [name for _, name in sorted(found)]
    if isinstance(node, ast.DropStmt) and node.removeType in (
        enums.ObjectType.OBJECT_TABLE,
        enums.ObjectType.OBJECT_VIEW,
        enums.ObjectType.OBJECT_MATVIEW,
        enums.ObjectType.OBJECT_FOREIGN_TABLE,
        enums.ObjectType.OBJECT_SEQUENCE,
        enums.ObjectType.OBJECT_INDEX,
    ):
        for obj in node.objects or ():
            parts = obj if isinstance(obj, tuple) else (obj,)
            names.append(".".join(str(getattr(part, "sval", part)) for part in parts))
    return tuple(dict.fromkeys(names))[:MAX_TABLES]


def _walk(root: ast.Node) -> Iterator[ast.Node]:
    """Every node under ``root`` (itself included), depth first."""
    from pglast import ast

    stack: list[object] = [root]
    while stack:
        item = stack.pop()
        if isinstance(item, ast.Node):
            yield item
            stack.extend(getattr(item, name) for name in reversed(list(item)))
        elif isinstance(item, tuple | list):
            stack.extend(reversed(item))
