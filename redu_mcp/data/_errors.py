"""PostgreSQL's errors as typed values, scrubbed of the instance's password.

The server never quotes a password it checked, but a statement's text (or a function's RAISE) may
hold anything; every string that leaves here has the password replaced, whatever its source.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import psycopg
    from psycopg.pq.abc import PGresult

SqlErrorKind = Literal[
    "syntax",  # 42601
    "read_only",  # 25006: a write in the read-only transaction
    "timeout",  # 57014: statement_timeout (or a cancel)
    "lock_timeout",  # 55P03
    "idle_timeout",  # 25P03: idle_in_transaction_session_timeout
    "permission",  # 42501
    "undefined",  # no such table, column, function, schema or type
    "constraint",  # class 23: unique, foreign key, not null, check
    "data",  # class 22: bad input for a type, division by zero, out of range
    "transaction_state",  # class 25 otherwise: e.g. cannot run inside a transaction block
    "parameters",  # the statement's $n and the parameters given do not match
    "connection_lost",  # class 08, the server shutting down, the socket gone
    "other",
]

REDACTED = "[redacted]"

_UNDEFINED = {"42P01", "42703", "42883", "3F000", "42704", "42P02", "3D000"}
_KINDS: dict[str, SqlErrorKind] = {
    "42601": "syntax",
    "25006": "read_only",
    "57014": "timeout",
    "55P03": "lock_timeout",
    "25P03": "idle_timeout",
    "42501": "permission",
    "42P18": "parameters",  # could not determine data type of parameter $n
    "57P01": "connection_lost",
    "57P02": "connection_lost",
    "57P03": "connection_lost",
}
_CLASSES: dict[str, SqlErrorKind] = {
    "23": "constraint",
    "22": "data",
    "25": "transaction_state",
    "08": "connection_lost",
}


@dataclass(frozen=True)
class SqlError:
    kind: SqlErrorKind
    sqlstate: str | None
    message: str
    detail: str | None = None
    hint: str | None = None
    position: int | None = None  # 1-based character position in the text given, as PostgreSQL counts


def scrub(text: str, secret: str) -> str:
    return text.replace(secret, REDACTED) if secret else text


def _kind(sqlstate: str | None, message: str) -> SqlErrorKind:
    if sqlstate is None:
        return "connection_lost"
    if sqlstate in _KINDS:
        return _KINDS[sqlstate]
    if sqlstate == "08P01" and "bind message supplies" in message:
        return "parameters"
    if sqlstate in _UNDEFINED:
        return "undefined"
    return _CLASSES.get(sqlstate[:2], "other")


def _build(field: Callable[[str], str | None], secret: str, offset: int) -> SqlError:
    sqlstate = field("sqlstate")
    message = scrub(field("message") or "the server gave no message", secret)
    detail, hint = field("detail"), field("hint")
    position = field("position")
    return SqlError(
        kind=_kind(sqlstate, message),
        sqlstate=sqlstate,
        message=message,
        detail=scrub(detail, secret) if detail else None,
        hint=scrub(hint, secret) if hint else None,
        position=int(position) + offset if position and position.isdigit() else None,
    )


def error_from_result(result: PGresult, secret: str, offset: int = 0) -> SqlError:
    """The error a failed statement's result carries; ``offset`` shifts its position (a script's)."""
    from psycopg.pq import DiagnosticField

    codes = {
        "sqlstate": DiagnosticField.SQLSTATE,
        "message": DiagnosticField.MESSAGE_PRIMARY,
        "detail": DiagnosticField.MESSAGE_DETAIL,
        "hint": DiagnosticField.MESSAGE_HINT,
        "position": DiagnosticField.STATEMENT_POSITION,
    }

    def field(name: str) -> str | None:
        raw = result.error_field(codes[name])
        return raw.decode("utf-8", "replace") if raw is not None else None

    return _build(field, secret, offset)


def error_from_exception(exc: psycopg.Error, secret: str) -> SqlError:
    """A psycopg exception (from our own statements: BEGIN, COMMIT, a catalog query) as a value."""
    diag = exc.diag
    values = {
        "sqlstate": diag.sqlstate or exc.sqlstate,
        "message": diag.message_primary or str(exc).strip(),
        "detail": diag.message_detail,
        "hint": diag.message_hint,
        "position": diag.statement_position,
    }
    return _build(values.get, secret, 0)
