"""Secrets on disk that only their owner can read: the credentials files and the HTTP server's token.

``open_private_dir`` returns a ``PrivateDir``; every file is written, read and replaced through it.
Two implementations, chosen by what ``os`` offers (not by the platform's name, so a test can give
the server a Windows-like ``os`` on Linux):

* **POSIX** (Linux, macOS, the BSDs): the directory is opened once without following a symbolic
  link, and every file is reached through that descriptor (``dir_fd``), so a link planted in the
  way is never written through. Missing directories are made 0700 and an existing one is made 0700,
  whatever the umask (``mkdir``'s mode is filtered by it; ``fchmod`` is not). A directory of another
  account is refused: they could read what we put in it. Files are created ``O_EXCL | O_NOFOLLOW``,
  0600, and a file is read only when it is a regular file of ours that nobody else can read.
* **Without descriptor-relative calls** (Windows): the directory must lie inside the user's own
  profile (``Path.home()``), where Windows gives new folders the profile's access list (the user,
  SYSTEM and Administrators); no part of the path below the profile may be a symbolic link or any
  other reparse point (a junction), checked again before every file operation. Files are created
  exclusively (``O_EXCL``: an existing file or link at the name is never opened), and a file is read
  only when it is a regular file, not a reparse point, and still the file that was checked when it
  is opened (same volume and file index). What this cannot promise: the access list itself is not
  inspected (a folder inside the profile that its owner shared on purpose stays shared), and a
  process of the same user, or an administrator, can read every file, as on POSIX.

Files are synced before they count as written, and a file that could not be written whole is removed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from pathlib import Path
from types import TracebackType
from typing import Final

#: The most a private file this module reads may hold (a token, an env file).
READ_LIMIT: Final = 64 * 1024


class SymlinkedDirectory(PermissionError):
    """The private directory's path is (or passes through) a symbolic link or junction: it could lead anywhere."""


class ForeignDirectory(PermissionError):
    """The private directory belongs to another account (e.g. pre-created in a shared /tmp), or,
    without ownership to check, lies outside the user's profile."""


class NotPrivate(PermissionError):
    """A file is there but is not one to trust: a link, not a regular file, another account's, or readable by others."""


def descriptor_relative() -> bool:
    """Does ``os`` offer what the POSIX implementation needs? (Checked on each call: tests replace ``os``.)"""
    needed = ("O_NOFOLLOW", "O_DIRECTORY", "fchmod", "getuid")
    return all(hasattr(os, name) for name in needed) and {os.open, os.unlink, os.rename} <= os.supports_dir_fd


def open_private_dir(directory: Path) -> PrivateDir:
    """The private ``directory``, created if missing (see the module docstring for what is checked)."""
    if descriptor_relative():
        _make_missing(directory)
        return _DescriptorDir(directory)
    return _PathDir(directory)


class PrivateDir:
    """An open private directory: close it (or use ``with``) when done."""

    path: Path

    def write_new(self, name: str, text: str) -> None:
        """Create ``name`` holding ``text``, private; ``FileExistsError`` if anything (a link included) is there."""
        raise NotImplementedError

    def read(self, name: str) -> str:
        """The text of ``name`` if it is a private regular file of ours; ``FileNotFoundError`` or ``NotPrivate``."""
        raise NotImplementedError

    def replace(self, name: str, text: str) -> None:
        """Put ``text`` at ``name`` atomically: a new private file renamed over the name (a rename replaces
        a link, never its target). Nothing is left behind if it fails."""
        temporary = f".{name}.{secrets.token_hex(8)}.tmp"
        self.write_new(temporary, text)
        try:
            self._rename(temporary, name)
        except BaseException:
            self._unlink(temporary)
            raise

    def remove(self, name: str) -> None:
        """Remove ``name`` (a link itself, never its target); ``FileNotFoundError`` if nothing is there."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def _rename(self, source: str, target: str) -> None:
        raise NotImplementedError

    def _unlink(self, name: str) -> None:
        raise NotImplementedError

    def __enter__(self) -> PrivateDir:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()


def _make_missing(directory: Path) -> None:
    """Make the missing directories of ``directory``, 0700 where the mode means anything."""
    missing = []
    for parent in [directory, *directory.parents]:
        if parent.exists() or parent.is_symlink():
            break
        missing.append(parent)
    for made in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(made, 0o700)
            with contextlib.suppress(NotImplementedError, OSError):  # Windows: no such mode to set
                os.chmod(made, 0o700, follow_symlinks=False)  # mkdir's mode went through the umask


def _write_all(fd: int, text: str) -> None:
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


# --- POSIX: everything through the directory's descriptor -------------------------------------------------


class _DescriptorDir(PrivateDir):
    def __init__(self, directory: Path) -> None:
        self.path = directory
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
        self.fd = fd

    def write_new(self, name: str, text: str) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(name, flags, 0o600, dir_fd=self.fd)
        try:
            os.fchmod(fd, 0o600)  # O_CREAT's mode is filtered by the umask; this is not
            _write_all(fd, text)
        except BaseException:
            self._unlink(name)
            raise

    def read(self, name: str) -> str:
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=self.fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise NotPrivate(errno.EPERM, "it is a symbolic link") from None
            raise
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise NotPrivate(errno.EPERM, "it is not a regular file")
            if info.st_uid != os.getuid():
                raise NotPrivate(errno.EPERM, "it belongs to another user")
            if stat.S_IMODE(info.st_mode) & 0o077:
                raise NotPrivate(errno.EPERM, "it was readable by others (it must be mode 0600)")
            return handle.read(READ_LIMIT).decode("utf-8", errors="replace")

    def _rename(self, source: str, target: str) -> None:
        os.replace(source, target, src_dir_fd=self.fd, dst_dir_fd=self.fd)

    def _unlink(self, name: str) -> None:
        with contextlib.suppress(OSError):
            os.unlink(name, dir_fd=self.fd)

    def remove(self, name: str) -> None:
        os.unlink(name, dir_fd=self.fd)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


# --- without descriptor-relative calls (Windows): paths, checked before each use --------------------------


def _is_link(info: os.stat_result) -> bool:
    attributes = getattr(info, "st_file_attributes", 0)
    return stat.S_ISLNK(info.st_mode) or bool(attributes & stat.FILE_ATTRIBUTE_REPARSE_POINT)


class _PathDir(PrivateDir):
    def __init__(self, directory: Path) -> None:
        self.path = Path(os.path.abspath(directory))
        home = Path(os.path.abspath(Path.home()))
        if self.path != home and home not in self.path.parents:
            raise ForeignDirectory(
                errno.EPERM, f"the directory is outside your user profile ({home}), where it could be shared"
            )
        self._check(existing_only=True)  # before making anything: never create folders through a link
        _make_missing(self.path)
        self._check()

    def _check(self, *, existing_only: bool = False) -> None:
        """No symbolic link or junction between the profile and the directory; a directory at the end."""
        home = Path(os.path.abspath(Path.home()))
        for part in [self.path, *self.path.parents]:
            if part == home:
                break
            try:
                info = os.lstat(part)
            except FileNotFoundError:
                if existing_only:
                    continue
                raise
            if _is_link(info):
                raise SymlinkedDirectory(errno.EPERM, f"{part} is a symbolic link or junction")
        if not existing_only and not stat.S_ISDIR(os.lstat(self.path).st_mode):
            raise NotADirectoryError(errno.ENOTDIR, "not a directory")

    def write_new(self, name: str, text: str) -> None:
        self._check()
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOINHERIT", 0)
        fd = os.open(self.path / name, flags, 0o600)
        try:
            _write_all(fd, text)
        except BaseException:
            self._unlink(name)
            raise

    def read(self, name: str) -> str:
        self._check()
        path = self.path / name
        seen = os.lstat(path)
        if _is_link(seen):
            raise NotPrivate(errno.EPERM, "it is a symbolic link or junction")
        if not stat.S_ISREG(seen.st_mode):
            raise NotPrivate(errno.EPERM, "it is not a regular file")
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOINHERIT", 0))
        with os.fdopen(fd, "rb") as handle:
            opened = os.fstat(fd)
            if (opened.st_dev, opened.st_ino) != (seen.st_dev, seen.st_ino):
                raise NotPrivate(errno.EPERM, "it was replaced while being read")
            return handle.read(READ_LIMIT).decode("utf-8", errors="replace")

    def _rename(self, source: str, target: str) -> None:
        self._check()
        os.replace(self.path / source, self.path / target)

    def _unlink(self, name: str) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.path / name)

    def remove(self, name: str) -> None:
        self._check()
        os.unlink(self.path / name)
