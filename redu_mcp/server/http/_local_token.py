"""The bearer token a loopback HTTP server generates when none is configured (as notebook servers do).

Any account on the machine can reach a loopback port, so "local" is not "mine": without
``REDU_MCP_AUTH_TOKEN`` the ``redu-mcp`` command makes a token, keeps it in
``$XDG_STATE_HOME/redu-mcp/http-token`` and prints it once at start-up with a client configuration
that uses it. The file is the owner's alone (``provisioning.private_files`` does the file work, as it
does for the credentials files):

* the directory (and any missing parent) is created 0700 whatever the umask, and an existing one is made 0700; one that is a
  symbolic link, or belongs to another user, is refused (a ``ConfigError``: the server does not start);
* the file is read only if it is a regular file of ours, mode 0600, holding a well-formed token: then
  it is reused, so a restart keeps every client configuration working;
* anything else at that name (a symbolic link, a file another user could read, junk) is replaced,
  atomically and without following links: the new token is written to a fresh ``O_EXCL`` file in the
  same directory, which is then renamed over the old name (a rename replaces a link, never its target).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from pathlib import Path

from redu_mcp.provisioning import private_files
from redu_mcp.server.errors import ConfigError
from redu_mcp.server.http._settings import MIN_AUTH_TOKEN_LENGTH, well_formed_bearer

log = logging.getLogger(__name__)

TOKEN_FILE_NAME = "http-token"


@dataclass(frozen=True)
class LocalToken:
    token: str
    path: Path
    created: bool  # False: an existing token file was reused


def load_or_create_token(state_dir: Path) -> LocalToken:
    """The token kept in ``state_dir/http-token``: reused when valid, otherwise made anew (see module doc).

    Raises ``ConfigError`` when the directory cannot be trusted or written."""
    try:
        directory = private_files.open_private_dir(state_dir)
    except (private_files.SymlinkedDirectory, NotADirectoryError):
        raise ConfigError(
            f"refusing to keep the HTTP token in {state_dir}: it is a symbolic link or not a directory "
            "(remove it, or set REDU_MCP_AUTH_TOKEN)"
        ) from None
    except private_files.ForeignDirectory as exc:
        raise ConfigError(
            f"refusing to keep the HTTP token in {state_dir}: {exc.strerror} (remove it, or set REDU_MCP_AUTH_TOKEN)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot use {state_dir} for the HTTP token: {exc.strerror or exc}") from None
    path = state_dir / TOKEN_FILE_NAME
    try:
        existing = _read_ours(directory, path)
        if existing is not None:
            return LocalToken(existing, path, created=False)
        token = secrets.token_urlsafe(32)
        directory.replace(TOKEN_FILE_NAME, token + "\n")
        return LocalToken(token, path, created=True)
    except OSError as exc:
        raise ConfigError(f"cannot keep the HTTP token in {path}: {exc.strerror or exc}") from None
    finally:
        directory.close()


def _read_ours(directory: private_files.PrivateDir, path: Path) -> str | None:
    """The token in the file if it is ours and private and well-formed; None if it must be (re)made."""
    try:
        content = directory.read(TOKEN_FILE_NAME).strip()
    except FileNotFoundError:
        return None
    except private_files.NotPrivate as exc:
        log.warning("%s cannot be trusted (%s): replacing it with a new token file", path, exc.strerror)
        return None
    if len(content) < MIN_AUTH_TOKEN_LENGTH or not well_formed_bearer(content):
        log.warning("%s does not hold a usable token: replacing it with a new one", path)
        return None
    return content
