"""What each server is told: the command lines and configuration that lock it down.

* **PostgreSQL clients are not superusers.** initdb's bootstrap superuser is a role the client
  never learns and that cannot log in (no password, and ``local`` connections are rejected; the
  server has no unix socket at all). ``db_user`` is created ``LOGIN NOSUPERUSER NOCREATEDB
  NOCREATEROLE NOREPLICATION NOBYPASSRLS`` and owns ``db_name``, so it can do anything inside its
  database but not ``COPY … TO PROGRAM``, read server files or load code. Its password is only
  ever a verifier, and the server logs neither client errors nor statements (a failed
  ``ALTER ROLE ... PASSWORD`` would otherwise land in the log).
* **Redis keeps its protected configs off**: ``enable-protected-configs``,
  ``enable-debug-command`` and ``enable-module-command`` are ``no`` (a client cannot ``CONFIG SET
  dir`` to write files elsewhere, load modules or use ``DEBUG``). Redis older than 7 has no such
  switches; there the three commands are renamed away. A client cannot stop the server or turn it
  into another's replica either (``SHUTDOWN``, ``REPLICAOF``/``SLAVEOF``, ``FAILOVER``, ``SYNC``/``PSYNC``
  are renamed away on every version): the instance's status says "ready" for as long as its engine
  runs, and only the sandbox stops it. Its configuration comes on stdin, so no file holds ``requirepass``.
"""

from __future__ import annotations

from pathlib import Path

from ._binaries import _version_key
from ._secrets import _redis_quote

#: The only address engines listen on.
HOST = "127.0.0.1"
#: Redis commands renamed away on every version: they would stop the engine or hand its data to
#: another server, while the sandbox still reports the instance ready.
CLIENT_MAY_NOT = ("SHUTDOWN", "REPLICAOF", "SLAVEOF", "FAILOVER", "SYNC", "PSYNC")
#: initdb's bootstrap superuser: nobody can log in as it (see the module docstring).
_SUPERUSER = "redu_admin"


def _sql_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _superuser_for(db_user: str) -> str:
    return _SUPERUSER if db_user != _SUPERUSER else _SUPERUSER + "_"


def _initdb_argv(initdb: Path, pgdata: Path, superuser: str) -> list[str]:
    return [
        str(initdb),
        "-D",
        str(pgdata),
        "-U",
        superuser,
        # No password for the superuser: it cannot log in over TCP, and nobody
        # may connect over a unix socket (there is none, and local is 'reject').
        "--auth-local=reject",
        "--auth-host=scram-sha-256",
        "-E",
        "UTF8",
        "--locale=C",
        "--no-sync",
        "--no-instructions",
    ]


def _single_user_argv(postgres: Path, pgdata: Path) -> list[str]:
    """Single-user mode: no server, no port, no connection needed yet."""
    return [
        str(postgres),
        "--single",
        "-D",
        str(pgdata),
        "-c",
        "exit_on_error=on",
        "-c",
        "fsync=off",
        "postgres",
    ]


def _role_statements(*, db_name: str, db_user: str, verifier: str) -> str:
    """Single-user mode's input: one statement per line; the password is only ever a verifier."""
    user = _sql_ident(db_user)
    statements = [
        f"CREATE ROLE {user} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
        f"NOBYPASSRLS PASSWORD '{verifier}';",
        f"ALTER DATABASE postgres OWNER TO {user};"
        if db_name == "postgres"
        else f"CREATE DATABASE {_sql_ident(db_name)} OWNER {user};",
    ]
    return "\n".join([*statements, ""])


def _postgres_argv(postgres: Path, pgdata: Path, port: int) -> list[str]:
    return [
        str(postgres),
        "-D",
        str(pgdata),
        "-p",
        str(port),
        "-c",
        f"listen_addresses={HOST}",
        "-c",
        "unix_socket_directories=",
        "-c",
        "fsync=off",
        "-c",
        "synchronous_commit=off",
        "-c",
        "full_page_writes=off",
        "-c",
        "shared_buffers=16MB",
        "-c",
        "huge_pages=off",
        "-c",
        "logging_collector=off",
        "-c",
        "password_encryption=scram-sha-256",
        # Client errors and statements could quote a password: log neither.
        "-c",
        "log_min_messages=log",
        "-c",
        "log_min_error_statement=panic",
        "-c",
        "log_statement=none",
    ]


def _redis_config(*, port: int, directory: Path, password: str, version: str) -> str:
    lines = [
        f"bind {HOST}",
        f"port {port}",
        "protected-mode yes",
        "daemonize no",
        "supervised no",
        f"dir {_redis_quote(str(directory))}",
        'logfile ""',
        'save ""',
        "appendonly no",
    ]
    if _version_key(version)[0] >= 7:
        lines += [
            "enable-protected-configs no",
            "enable-debug-command no",
            "enable-module-command no",
        ]
    else:  # no such switches before 7: take the commands away
        lines += [f'rename-command {command} ""' for command in ("CONFIG", "DEBUG", "MODULE")]
    lines += [f'rename-command {command} ""' for command in CLIENT_MAY_NOT]
    lines += [f"requirepass {_redis_quote(password)}", ""]
    return "\n".join(lines)
