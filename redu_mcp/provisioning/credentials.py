"""Keep one-time passwords out of the chat transcript: save them to private env files instead.

**Per principal.** Each principal has its own directory under the store's root: ``local`` (stdio,
or HTTP on loopback without authentication) the root itself, ``operator`` (the operator's token)
``operator/``, and each pass-through user ``users/<slug>/``, the slug made from the user id (its safe
characters and a hash of the whole id, so two ids never share one). Nothing of one principal is
named, read or rewritten for another.

**Bound to one instance.** Every file names what it belongs to in a header line
(``IDENTITY_PREFIX`` followed by JSON: principal, kind, id, and the instance's name and
``created_at`` as the API reported them). A file is used (read, completed) only for the same
principal, kind and id *and* the instance's current name and ``created_at`` as the API reports them
now: ids are reused, names are not unique over time, and another user's instance may bear the same id.

Each create writes a new file (mode 0600 in a 0700 directory on POSIX; see ``private_files`` for
each platform); an existing file is never overwritten: a clash gets a numbered name. A value
holding a control character is refused (it could add a variable for readers that ignore shell
quoting). Once the instance has a host, the file is completed with it and a full connection URI
(``complete``): by this process, or by any replica sharing the root, always from the API's own
answer for that principal, never from shared state.

``deliver_password`` is the one place that decides where a password goes: a file (default), or the
caller, once, when asked to or when the file cannot be written for any reason (a password is never
lost). ``lookup`` is the read side, for tools that use an instance: the password and path, or why not.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from redu_mcp.api import AnyKind, Instance, remember_secret
from redu_mcp.provisioning import private_files

log = logging.getLogger(__name__)

SecretsMode = Literal["file", "reveal"]
#: The line that marks a file still waiting for its host (any process sharing the directory completes it).
NO_HOST_YET = "# No host yet: wait_for_ready completes this file once the instance is ready."
#: The header line that says whose file it is and for which instance (JSON after the prefix).
IDENTITY_PREFIX = "# redu-mcp-instance: "
#: How many numbered names are tried when saving, and looked at when reading.
SAVE_NAMES = 999
LOOK_NAMES = 9
#: How long the folders of earlier sandbox runs are kept (``sandbox_run_root``).
SANDBOX_KEEP_SECONDS = 24 * 3600.0


class UnsafeValue(ValueError):
    """A value for the env file holds a control character: written, it could add a variable."""


@dataclass(frozen=True)
class Identity:
    """What a credentials file belongs to."""

    principal: str
    kind: str
    id: int
    name: str
    created_at: str | None

    @classmethod
    def of(cls, principal: str, kind: AnyKind, instance: Instance) -> Identity:
        return cls(principal, kind.name, int(instance.id), instance.name, instance.created_at)

    def line(self) -> str:
        fields = {"principal": self.principal, "kind": self.kind, "id": self.id, "name": self.name}
        return IDENTITY_PREFIX + json.dumps({**fields, "created_at": self.created_at}, ensure_ascii=True)

    @classmethod
    def in_text(cls, text: str) -> Identity | None:
        """The identity a file's header names, if it names one well-formed."""
        for line in text.splitlines()[:8]:
            if not line.startswith(IDENTITY_PREFIX):
                continue
            try:
                data = json.loads(line[len(IDENTITY_PREFIX) :])
                created = data.get("created_at")
                identity = cls(str(data["principal"]), str(data["kind"]), int(data["id"]), str(data["name"]), created)
            except (ValueError, KeyError, TypeError, AttributeError):
                return None
            return identity if created is None or isinstance(created, str) else None
        return None


def principal_directory(root: Path, principal: str) -> Path:
    """Where ``principal``'s files live under ``root`` (see the module docstring)."""
    if principal == "local":
        return root
    if principal == "operator":
        return root / "operator"
    if principal.startswith("user:") and len(principal) > len("user:"):
        user = principal[len("user:") :]
        tag = hashlib.sha256(user.encode("utf-8", "surrogateescape")).hexdigest()[:16]
        return root / "users" / f"{_safe_name(user)[:40]}-{tag}"
    raise ValueError(f"not a principal: {principal!r}")


def sandbox_run_root(base: Path, *, keep_seconds: float = SANDBOX_KEEP_SECONDS) -> Path:
    """A credentials root of its own for one run of the in-process sandbox, under ``base``.

    Its instances die with the process and their ids start at 1 again next time, so each run gets a
    fresh folder (``run-<UTC time>-<random>``): no file of an earlier run is ever taken for one of
    this run's. Folders of runs older than ``keep_seconds`` are removed (only folders named so)."""
    now = time.time()
    with contextlib.suppress(OSError):
        for old in base.glob("run-*"):
            if old.is_dir() and not old.is_symlink() and now - old.stat().st_mtime > keep_seconds:
                shutil.rmtree(old, ignore_errors=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return base / f"run-{stamp}-{secrets.token_hex(3)}"


# --- what a reader gets ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredPassword:
    password: str
    path: Path


NoCredentialsReason = Literal[
    "missing",  # no file for this instance in this principal's directory
    "other_instance",  # a file bears the name but belongs to another instance (or principal)
    "not_private",  # a file is there but is not one to trust (a link, another user's, readable by others)
    "unreadable",  # the directory or the file could not be read
]


@dataclass(frozen=True)
class NoCredentials:
    """Why no password can be used; ``expected`` is where a file for this instance may be placed by hand."""

    reason: NoCredentialsReason
    expected: Path
    detail: str | None = None


@dataclass
class _Known:
    """A file this process wrote or found, and (until it is complete) its password."""

    path: Path
    identity: Identity
    password: str | None


class CredentialStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        # Files this process wrote or adopted, by (principal, kind, id); each still checked against
        # the instance's identity before use. Passwords are kept only until the file is complete.
        self._known: dict[tuple[str, str, int], _Known] = {}

    def directory(self, principal: str) -> Path:
        return principal_directory(self.root, principal)

    def save(self, principal: str, kind: AnyKind, instance: Instance, password: str) -> Path:
        """Write a new env file for this instance. Raises ``OSError`` (or ``UnsafeValue``) if it cannot."""
        identity = Identity.of(principal, kind, instance)
        text = render_env(kind, instance, password, identity)  # refuses unsafe values before anything is created
        folder = self.directory(principal)
        with _open(folder) as directory:
            for name in _file_names(kind, instance, SAVE_NAMES):
                try:
                    directory.write_new(name, text)
                except FileExistsError:  # also a planted link: exclusive creation never follows one
                    continue
                path = folder / name
                self._known[(principal, kind.name, identity.id)] = _Known(
                    path, identity, None if instance.floating_ip else password
                )
                log.info("saved credentials for %s %d to %s", kind.name, instance.id, path)
                return path
        raise FileExistsError(f"too many credential files named {_stem(kind, instance)}*.env in {folder}")

    def complete(self, principal: str, kind: AnyKind, instance: Instance) -> Path | None:
        """Rewrite ``principal``'s file for this instance once it has a host, so the URI in it works.

        ``instance`` must be the API's own answer for ``principal`` (a GET with their key), never a
        snapshot another replica shared. Only a file of the same principal and instance (id, name,
        ``created_at``) is touched, replaced atomically; its path is returned (None: no such file)."""
        identity = Identity.of(principal, kind, instance)
        key = (principal, kind.name, identity.id)
        known = self._known.get(key)
        if known is None or known.identity != identity:
            known = self._adopt(identity, kind, instance) if instance.floating_ip else None
            if known is None:
                return None
            self._known[key] = known
        if known.password is None or not instance.floating_ip:
            return known.path
        try:
            text = render_env(kind, instance, known.password, identity)
            with _open(known.path.parent) as directory:
                directory.replace(known.path.name, text)
        except (OSError, UnsafeValue) as exc:
            log.warning("could not complete %s with the host: %s", known.path, _reason(exc))
            return known.path
        known.password = None
        return known.path

    def lookup(self, principal: str, kind: AnyKind, instance: Instance) -> StoredPassword | NoCredentials:
        """The stored password of this instance (as the API reports it now, for ``principal``), or why not."""
        identity = Identity.of(principal, kind, instance)
        folder = self.directory(principal)
        expected = folder / next(_file_names(kind, instance, 1))
        if not folder.is_dir():
            return NoCredentials("missing", expected)
        worst: NoCredentials | None = None
        try:
            with _open(folder) as directory:
                for name in _file_names(kind, instance, LOOK_NAMES):
                    found = _read(directory, name)
                    if isinstance(found, NoCredentials):
                        worst = worst or NoCredentials(found.reason, expected, found.detail)
                        continue
                    if found is None:
                        continue
                    if Identity.in_text(found) != identity:
                        worst = worst or NoCredentials("other_instance", expected, f"{name} names another instance")
                        continue
                    password = _env_text_values(found).get(kind.env.password)
                    if not password:
                        worst = worst or NoCredentials("unreadable", expected, f"{name} holds no password")
                        continue
                    remember_secret(password)
                    return StoredPassword(password, folder / name)
        except OSError as exc:
            return NoCredentials("unreadable", expected, _reason(exc))
        return worst or NoCredentials("missing", expected)

    def path_of(self, principal: str, kind: AnyKind, instance: Instance) -> Path | None:
        """Where ``principal``'s password of this instance is saved (``lookup``'s path), or None."""
        found = self.lookup(principal, kind, instance)
        return found.path if isinstance(found, StoredPassword) else None

    def remove(self, principal: str, kind: AnyKind, instance: Instance) -> Path | None:
        """Remove ``principal``'s file for this instance once the instance is deleted; its path, or None
        when there is none to remove. ``instance`` is the API's answer from just before the delete:
        only a file ``lookup`` finds for it (same principal, kind, id, name and ``created_at``) goes.
        Raises ``OSError`` if it cannot be removed."""
        found = self.lookup(principal, kind, instance)
        if not isinstance(found, StoredPassword):
            return None
        with _open(found.path.parent) as directory:
            try:
                directory.remove(found.path.name)
            except FileNotFoundError:
                return None
        self._known.pop((principal, kind.name, int(instance.id)), None)
        log.info("removed the credentials file of %s %d: %s", kind.name, instance.id, found.path)
        return found.path

    def _adopt(self, identity: Identity, kind: AnyKind, instance: Instance) -> _Known | None:
        """The file another process (a replica sharing the root) saved for this very instance and principal."""
        folder = self.directory(identity.principal)
        if not folder.is_dir():
            return None
        try:
            with _open(folder) as directory:
                for name in _file_names(kind, instance, LOOK_NAMES):
                    text = _read(directory, name)
                    if not isinstance(text, str) or Identity.in_text(text) != identity:
                        continue  # absent, not to be trusted, or another instance's file that bears the name
                    if NO_HOST_YET not in text:
                        return _Known(folder / name, identity, None)
                    password = _env_text_values(text).get(kind.env.password)
                    return _Known(folder / name, identity, password) if password else None
        except OSError:
            return None
        return None


def _open(folder: Path) -> private_files.PrivateDir:
    """The directory, private (see ``private_files``), its refusals worded for a result."""
    try:
        return private_files.open_private_dir(folder)
    except private_files.SymlinkedDirectory:
        raise PermissionError(errno.EPERM, "the credentials directory is a symbolic link or junction") from None
    except private_files.ForeignDirectory as exc:
        raise PermissionError(errno.EPERM, f"the credentials directory cannot be trusted: {exc.strerror}") from None


def _read(directory: private_files.PrivateDir, name: str) -> str | NoCredentials | None:
    """The file's text; None when absent; ``NoCredentials`` (its path left for the caller) when not to be used."""
    try:
        return directory.read(name)
    except FileNotFoundError:
        return None
    except private_files.NotPrivate as exc:
        return NoCredentials("not_private", directory.path / name, f"{name}: {exc.strerror}")
    except OSError as exc:
        return NoCredentials("unreadable", directory.path / name, f"{name}: {_reason(exc)}")


def _stem(kind: AnyKind, instance: Instance) -> str:
    return f"{kind.name}-{_safe_name(instance.name)}-{int(instance.id)}"


def _file_names(kind: AnyKind, instance: Instance, count: int) -> Iterator[str]:
    """The names ``save`` tries in turn: ``database-orders-42.env``, then ``…-42-2.env`` and so on."""
    stem = _stem(kind, instance)
    yield f"{stem}.env"
    for n in range(2, count + 1):
        yield f"{stem}-{n}.env"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


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
    store: CredentialStore,
    mode: SecretsMode,
    principal: str,
    kind: AnyKind,
    instance: Instance,
    password: str | None,
    supplied: bool,
) -> Delivery:
    """Hand a new instance's password over as configured: a private file (default) or the caller, never both.

    Whatever goes wrong while saving (a missing OS feature, permissions, a full disk, a planted link,
    a bug) the password is handed to the caller once, with the reason: it exists nowhere else."""
    if password is None:
        return NoPassword()
    remember_secret(password)  # from now on the log scrubber knows it
    if mode == "reveal" and not supplied:
        return Revealed(password)
    try:
        path = store.save(principal, kind, instance, password)
    except Exception as exc:  # every failure ends the same way: shown once, never lost
        reason = _reason(exc)
        log.warning(
            "could not save the credentials of %s %d (%s): %s", kind.name, instance.id, type(exc).__name__, reason
        )
        return SuppliedNotSaved(reason) if supplied else Revealed(password, save_error=reason)
    return SavedToFile(path, supplied)


# --- the env file ------------------------------------------------------------------------------------


def render_env(kind: AnyKind, instance: Instance, password: str, identity: Identity | None = None) -> str:
    """An env file a shell (``set -a; . file``), docker ``--env-file`` or python-dotenv can read."""
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    # Every value comes from the API and the file is meant to be sourced by a shell: quote them all,
    # and keep the name in the comment on its one line.
    shown_name = "".join(c if c.isprintable() else "?" for c in instance.name)
    lines = [
        f"# Redu Cloud {kind.label} '{shown_name}' (id {int(instance.id)}), saved by redu-mcp at {created}.",
        "# The password is shown nowhere else: Redu keeps no plain-text copy. Keep this file private.",
    ]
    if identity is not None:
        lines.append(identity.line())
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
    """A name as a file-name part: the API's name could hold anything (``../``, ``/``)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)[:63] or "instance"


def _quote(value: str) -> str:
    """Single-quote for POSIX shells when needed (generated passwords never need it)."""
    if not value:
        return value
    if all(c.isascii() and (c.isalnum() or c in "-_.:/@%+=") for c in value):
        return value
    return "'" + value.replace("'", "'\\''") + "'"
