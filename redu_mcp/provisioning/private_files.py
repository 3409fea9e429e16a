"""Secrets on disk that only their owner can read: the credentials files and the HTTP server's token.

A private directory is opened once, without following a symbolic link, and every file in it is
reached through that descriptor, so a link planted in the way is never written through. Missing
directories are made 0700 and an existing one is made 0700, whatever the umask (``mkdir``'s mode
is filtered by it; ``fchmod`` is not). A directory of another account is refused: they could read
what we put in it. Files are created ``O_EXCL`` (a planted link or file at the name is never
followed nor overwritten), 0600, and synced before they count as written.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from pathlib import Path


class SymlinkedDirectory(PermissionError):
    """The private directory's path is a symbolic link: refused, it could lead anywhere."""


class ForeignDirectory(PermissionError):
    """The private directory belongs to another account (e.g. pre-created in a shared /tmp)."""


def open_private_dir(directory: Path) -> int:
    """A descriptor on ``directory``, created if missing: ours, not a symbolic link, mode 0700."""
    missing = []
    for parent in [directory, *directory.parents]:
        if parent.exists() or parent.is_symlink():
            break
        missing.append(parent)
    for made in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(made, 0o700)
            os.chmod(made, 0o700, follow_symlinks=False)
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        if directory.is_symlink():  # Linux says ENOTDIR (or ELOOP): say what it is
            raise SymlinkedDirectory(errno.EPERM, "the directory is a symbolic link") from None
        raise
    info = os.fstat(fd)
    if info.st_uid != os.getuid():
        os.close(fd)
        raise ForeignDirectory(errno.EPERM, "the directory belongs to another user")
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.fchmod(fd, 0o700)
    return fd


def write_new(directory: int, name: str, text: str) -> None:
    """Create ``name`` in ``directory`` holding ``text``, mode 0600; ``FileExistsError`` if anything
    (a symbolic link included) is already there. A file that could not be written whole is removed."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(name, flags, 0o600, dir_fd=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(fd, 0o600)  # O_CREAT's mode is filtered by the umask; this is not
            handle.write(text)
            handle.flush()
            os.fsync(fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name, dir_fd=directory)
        raise


def replace(directory: int, name: str, text: str) -> None:
    """Put ``text`` at ``name`` in ``directory`` atomically: a new private file renamed over the name
    (a rename replaces a link, never its target). Nothing is left behind if it fails."""
    temporary = f".{name}.{secrets.token_hex(8)}.tmp"
    write_new(directory, temporary, text)
    try:
        os.replace(temporary, name, src_dir_fd=directory, dst_dir_fd=directory)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=directory)
        raise
