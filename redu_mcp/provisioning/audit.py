"""The audit trail: who created or deleted what, and every decision about a delete.

One JSON object per line: ``time`` (UTC), ``principal`` (the pass-through user's id, ``operator``
for the operator's token, ``local`` for stdio or an unauthenticated loopback), ``tool``, ``kind``,
``id``, ``name``, ``outcome``, ``request_id``, and a short ``detail`` where it helps; for a change
of an instance's data also ``statement`` (its kind), ``tables``, ``sha256`` of its text and ``rows``
(SQL), or the command's name, ``keys`` (how many it names) and ``db`` (Redis). Records are
built from declared fields only, so no password or key can be in one.

Targets (``REDU_MCP_AUDIT_LOG``, comma-separated): a file path (appended, created 0600 without
following a symlink, rotated at ``ROTATE_BYTES`` keeping ``KEEP_FILES`` old files), or ``stderr``.
A file that cannot be opened, or that someone else could have written (another account's, writable
by others, in a directory others may write without the sticky bit), stops the start (``OSError``
with the reason): running unaudited, or appending to a trail others can rewrite, when a trail was
asked for would be worse than not running.
"""

from __future__ import annotations

import datetime
import errno
import io
import json
import logging
import logging.handlers
import os
import stat
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final, Literal

ROTATE_BYTES: Final = 10 * 1024 * 1024
KEEP_FILES: Final = 5

Outcome = Literal[
    "created",  # a new instance (its password delivered as configured)
    "created_answer_lost",  # created, but the answer (and a generated password) was lost
    "already_exists",  # nothing created: the name was taken
    "not_created",  # refused or failed: nothing created
    "unknown",  # could not tell whether it was created
    "confirmed",  # a delete was confirmed (by a person, or by confirm_name)
    "refused",  # a delete was refused before anything was sent
    "deleted",
    "already_gone",
    "not_deleted",  # the API's answer was odd and the instance is still there
    "delete_failed",  # the DELETE failed or its outcome could not be checked
    # --- using an instance's data
    "ran",  # a statement or command ran (and, at --data write, committed)
    "sql_failed",  # the engine refused it: nothing was changed
    "migrated",  # a migration was applied
    "already_applied",  # the same migration again: nothing was run
    "migration_failed",  # refused or failed: everything rolled back
    "command_failed",  # Redis answered the command with an error, or could not be reached: nothing changed
    "no_answer",  # a Redis command was sent and no answer came (timeout, broken link): it may have run
]


@dataclass(frozen=True)
class AuditRecord:
    principal: str
    tool: str
    kind: str
    outcome: Outcome
    id: int | None = None
    name: str | None = None
    request_id: str | None = None
    detail: str | None = None  # e.g. how a delete was confirmed, or why it was refused
    # Data changes: what ran, never its text (it holds the caller's literals).
    statement: str | None = None  # its kind: "insert", "drop", "migration", a Redis command's name
    tables: tuple[str, ...] | None = None  # the tables it names
    sha256: str | None = None  # of the text, to match a line with what was sent
    rows: int | None = None  # rows affected
    keys: int | None = None  # keys a Redis command names (never their names nor values)
    db: int | None = None  # the Redis database index it ran on


class _PrivateRotatingFile(logging.handlers.RotatingFileHandler):
    """A rotating file that is created 0600, never opened through a symbolic link, and refused
    (``PermissionError``, with the reason) when someone else could have written into it."""

    def _open(self) -> io.TextIOWrapper:
        path = self.baseFilename
        nofollow = getattr(os, "O_NOFOLLOW", 0)
        if not nofollow and _is_link(path):  # no O_NOFOLLOW (Windows): look before opening
            raise PermissionError(errno.EPERM, "it is a symbolic link or junction", path)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | nofollow | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(path, flags, 0o600)
        try:
            _check_ours(fd, path)
        except BaseException:
            os.close(fd)
            raise
        stream = os.fdopen(fd, "a", encoding="utf-8")
        assert isinstance(stream, io.TextIOWrapper)  # what open() in text mode returns
        return stream


def _is_link(path: str) -> bool:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    return stat.S_ISLNK(info.st_mode) or bool(
        getattr(info, "st_file_attributes", 0) & stat.FILE_ATTRIBUTE_REPARSE_POINT
    )


def _check_ours(fd: int, path: str) -> None:
    """Refuse a trail someone else could have written: another account's file, a file others may
    write, or one in a directory others may write without the sticky bit (they could swap it).
    Where there are no owners to compare (Windows), only the link check above applies."""
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise PermissionError(errno.EPERM, "it is not a regular file", path)
    if not hasattr(os, "getuid"):
        return
    if info.st_uid != os.getuid():
        raise PermissionError(errno.EPERM, f"it belongs to another user (uid {info.st_uid})", path)
    if stat.S_IMODE(info.st_mode) & 0o022:
        raise PermissionError(errno.EPERM, "others may write to it (make it 0600)", path)
    folder = os.stat(os.path.dirname(path) or ".")
    if stat.S_IMODE(folder.st_mode) & 0o022 and not folder.st_mode & stat.S_ISVTX:
        raise PermissionError(errno.EPERM, "others may replace it: its directory is writable by others", path)


class AuditLog:
    """Writes audit records to the configured targets; does nothing when there are none.

    The handlers are this log's own, not a named logger's: loggers live as long as the process, so
    a log built after another one closed could otherwise write into the earlier trail."""

    def __init__(self, targets: str | None) -> None:
        self.targets = [t.strip() for t in (targets or "").split(",") if t.strip()]
        self._handlers: list[logging.Handler] = []
        for target in self.targets:
            handler: logging.Handler
            if target == "stderr":
                handler = logging.StreamHandler(sys.stderr)
            else:
                path = Path(target).expanduser()
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                handler = _PrivateRotatingFile(path, maxBytes=ROTATE_BYTES, backupCount=KEEP_FILES, encoding="utf-8")
            handler.setFormatter(logging.Formatter("%(message)s"))
            self._handlers.append(handler)

    @property
    def enabled(self) -> bool:
        return bool(self.targets)

    def record(self, record: AuditRecord) -> None:
        if not self.enabled:
            return
        line: dict[str, object] = {"time": datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")}
        line.update({key: value for key, value in asdict(record).items() if value is not None})
        entry = logging.makeLogRecord(
            {
                "name": "redu_mcp.audit",
                "levelno": logging.INFO,
                "levelname": "INFO",
                "msg": json.dumps(line, ensure_ascii=False, separators=(",", ":")),
            }
        )
        for handler in self._handlers:
            handler.handle(entry)

    def close(self) -> None:
        """Close the open files (a later record opens them again)."""
        for handler in self._handlers:
            handler.close()
