"""Keep one-time passwords out of the chat transcript: save them to private env files instead.

Each create writes a new file, mode 0600, in a 0700 directory (by default
``~/.local/state/redu-mcp/credentials/``), whatever the umask, through a directory descriptor opened
without following a symlink: a link planted in the way is never written through. An existing file
is never overwritten: a clash gets a numbered name. A value holding a control character is refused
(it could add a variable for readers that ignore shell quoting). Once the instance has a host, the same process completes its own file with the host
and a full connection URI (see ``complete``); so does any other process that shares the directory
(a replica of the same deployment whose wait saw the instance ready). ``deliver_password`` is the policy that decides where
a password goes: a file (default), or the caller, once, when asked to or when the file cannot be
written (a password is never lost).
"""

from __future__ import annotations

import errno
import logging
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from redu_mcp.api import AnyKind, Instance
from redu_mcp.provisioning import private_files

log = logging.getLogger(__name__)

SecretsMode = Literal["file", "reveal"]
#: The line that marks a file still waiting for its host (any process sharing the directory completes it).
NO_HOST_YET = "# No host yet: wait_for_ready completes this file once the instance is ready."


class UnsafeValue(ValueError):
    """A value for the env file holds a control character: written, it could add a variable."""


class CredentialStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._paths: dict[tuple[str, int], Path] = {}  # every file this process wrote
        # Passwords of files still waiting for a host, so they can be completed. In memory only,
        # never logged or returned; dropped once the file is complete.
        self._incomplete: dict[tuple[str, int], str] = {}

    def save(self, kind: AnyKind, instance: Instance, password: str) -> Path:
        """Write a new env file for this instance. Raises ``OSError`` (or ``UnsafeValue``) if it cannot."""
        text = render_env(kind, instance, password)  # refuses unsafe values before anything is created
        directory = self._open_private_dir()
        try:
            for name in _file_names(kind, instance, 999):
                try:
                    private_files.write_new(directory, name, text)
                except FileExistsError:  # also a planted symlink: O_EXCL never follows one
                    continue
                path = self.directory / name
                key = (kind.name, instance.id)
                self._paths[key] = path
                if not instance.floating_ip:
                    self._incomplete[key] = password
                log.info("saved credentials for %s %d to %s", kind.name, instance.id, path)
                return path
        finally:
            os.close(directory)
        raise FileExistsError(f"too many credential files named {_stem(kind, instance)}*.env in {self.directory}")

    def complete(self, kind: AnyKind, instance: Instance) -> Path | None:
        """Rewrite our own file for this instance once it has a host, so the URI in it works.

        Only our own file is touched (one this process saved, or, in a directory replicas share, one
        another process saved: ``_adopt``), replaced atomically with the same mode.
        """
        key = (kind.name, instance.id)
        password = self._incomplete.get(key)
        path = self._paths.get(key)
        if path is None and instance.floating_ip:
            path, password = self._adopt(kind, instance)
            if path is not None:  # from now on it is ours to complete: no need to look for it again
                self._paths[key] = path
                if password is not None:
                    self._incomplete[key] = password
        if path is None or password is None or not instance.floating_ip:
            return path
        try:
            text = render_env(kind, instance, password)
            directory = self._open_private_dir()
        except (OSError, UnsafeValue) as exc:
            log.warning("could not complete %s with the host: %s", path, _reason(exc))
            return path
        try:
            private_files.replace(directory, path.name, text)
        except OSError as exc:
            log.warning("could not complete %s with the host: %s", path, _reason(exc))
            return path
        finally:
            os.close(directory)
        self._incomplete.pop(key, None)
        self._paths[key] = path
        return path

    def _adopt(self, kind: AnyKind, instance: Instance) -> tuple[Path | None, str | None]:
        """The file another process (a replica sharing this directory) saved for this instance:
        ``(path, its password)`` if it still waits for a host, ``(path, None)`` if it is complete.

        Only a regular file of ours, mode 0600, named as ``save`` names it, is read, through the
        directory descriptor and without following a symlink; anything else is left alone."""
        if not self.directory.is_dir():
            return None, None
        try:
            directory = self._open_private_dir()
        except OSError:
            return None, None
        try:
            for name in _file_names(kind, instance, 9):
                try:
                    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=directory)
                except OSError:
                    continue
                with os.fdopen(fd) as handle:
                    info = os.fstat(handle.fileno())
                    ours = not hasattr(os, "getuid") or info.st_uid == os.getuid()
                    if not stat.S_ISREG(info.st_mode) or not ours or stat.S_IMODE(info.st_mode) != 0o600:
                        continue
                    text = handle.read(64 * 1024)
                if f"(id {int(instance.id)})" not in text.partition("\n")[0]:
                    continue  # another instance's file that happens to bear the name
                path = self.directory / name
                if NO_HOST_YET not in text:
                    return path, None
                password = _env_text_values(text).get(kind.env.password)
                return (path, password) if password else (None, None)
        finally:
            os.close(directory)
        return None, None

    def _open_private_dir(self) -> int:
        """The credentials directory, private (see ``private_files``), its refusals worded for a result."""
        try:
            return private_files.open_private_dir(self.directory)
        except private_files.SymlinkedDirectory:
            raise PermissionError(errno.EPERM, "the credentials directory is a symlink") from None
        except private_files.ForeignDirectory:
            raise PermissionError(errno.EPERM, "the credentials directory belongs to another user") from None


def _stem(kind: AnyKind, instance: Instance) -> str:
    return f"{kind.name}-{_safe_name(instance.name)}-{int(instance.id)}"


def _file_names(kind: AnyKind, instance: Instance, count: int) -> Iterator[str]:
    """The names ``save`` tries in turn: ``database-orders-42.env``, then ``…-42-2.env`` and so on."""
    stem = _stem(kind, instance)
    yield f"{stem}.env"
    for n in range(2, count + 1):
        yield f"{stem}-{n}.env"


def _reason(exc: BaseException) -> str:
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc) or type(exc).__name__


# --- where a password goes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SavedToFile:
    path: Path
    supplied: bool  # the caller's own password (saved so the file has a working URI)


@dataclass(frozen=True)
class Revealed:
    """The password goes back to the caller, once: asked for (``reveal``), or the file failed."""

    password: str
    save_error: str | None = None  # why the file could not be written, if that is the reason


@dataclass(frozen=True)
class SuppliedNotSaved:
    """The caller's own password could not be saved; it is not repeated (the caller has it)."""

    save_error: str


@dataclass(frozen=True)
class NoPassword:
    """The API returned no password and the caller supplied none."""


Delivery = SavedToFile | Revealed | SuppliedNotSaved | NoPassword


def deliver_password(
    store: CredentialStore, mode: SecretsMode, kind: AnyKind, instance: Instance, password: str | None, supplied: bool
) -> Delivery:
    """Hand a new instance's password over as configured: a private file (default) or the caller, never both."""
    if password is None:
        return NoPassword()
    if mode == "reveal" and not supplied:
        return Revealed(password)
    try:
        path = store.save(kind, instance, password)
    except (OSError, UnsafeValue) as exc:
        reason = _reason(exc)
        return SuppliedNotSaved(reason) if supplied else Revealed(password, save_error=reason)
    return SavedToFile(path, supplied)


# --- the env file ------------------------------------------------------------------------------------


def render_env(kind: AnyKind, instance: Instance, password: str) -> str:
    """An env file a shell (``set -a; . file``), docker ``--env-file`` or python-dotenv can read."""
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    # Every value comes from the API and the file is meant to be sourced by a shell: quote them all,
    # and keep the name in the comment on its one line.
    shown_name = "".join(c if c.isprintable() else "?" for c in instance.name)
    lines = [
        f"# Redu Cloud {kind.label} '{shown_name}' (id {int(instance.id)}), saved by redu-mcp at {created}.",
        "# The password is shown nowhere else: Redu keeps no plain-text copy. Keep this file private.",
    ]
    if not instance.floating_ip:
        lines.append(NO_HOST_YET)
    values = kind.env_values(instance, password)
    for name, value in values:
        if any(not character.isprintable() for character in value):
            # A line break would end the value and start a variable of the API's choosing for
            # dotenv and `docker --env-file` readers, which do not honour shell quoting.
            raise UnsafeValue(f"the value of {name} holds a control character")
    lines += [f"{name}={_quote(value)}" for name, value in values]
    return "\n".join(lines) + "\n"


def read_env(path: Path) -> dict[str, str]:
    """Parse a file written by ``render_env`` (for the demo and tests)."""
    return _env_text_values(path.read_text())


def _env_text_values(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        if len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1].replace("'\\''", "'")
        values[key] = value
    return values


def _safe_name(name: str) -> str:
    """The instance name as a file-name part: the API's name could hold anything (``../``, ``/``)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)[:63] or "instance"


def _quote(value: str) -> str:
    """Single-quote for POSIX shells when needed (generated passwords never need it)."""
    if not value:
        return value
    if all(c.isascii() and (c.isalnum() or c in "-_.:/@%+=") for c in value):
        return value
    return "'" + value.replace("'", "'\\''") + "'"
