"""Finding the server programs, and which version they are.

Nothing is bundled: the engines are the distribution's ``postgres`` / ``redis-server``. A missing
program is an ``EngineUnavailable`` naming it and the Debian package that provides it, so the
server can refuse to start with a message that says what to install.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path
from typing import Literal

from ._accounts import _Account
from ._errors import EngineStartError, EngineUnavailable
from ._spawn import _run

#: Which server program an engine is.
Engine = Literal["postgres", "redis"]

#: Where Debian installs versioned PostgreSQL server binaries (``<version>/bin``).
POSTGRES_LIB_DIR = Path("/usr/lib/postgresql")

_PROGRAMS: dict[str, tuple[str, ...]] = {
    "postgres": ("initdb", "postgres", "psql"),
    "redis": ("redis-server",),
}
_APT_PACKAGE = {"postgres": "postgresql", "redis": "redis-server"}


def _is_executable(path: Path) -> bool:
    # os.path.isfile, unlike Path.is_file, treats an unreadable PATH entry as "not here".
    return os.path.isfile(path) and os.access(path, os.X_OK)


def _version_key(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)) or (-1,)


def _path_dirs() -> list[Path]:
    return [Path(p) for p in os.environ.get("PATH", "").split(os.pathsep) if p]


def _postgres_dirs(version: str | None = None) -> list[Path]:
    """The requested major version's Debian dir when it is installed, then PATH (an explicit
    choice wins over a guess), then Debian's versioned dirs, newest first."""
    versioned = [d for d in POSTGRES_LIB_DIR.glob("*/bin") if os.path.isdir(d)]
    versioned.sort(key=lambda d: _version_key(d.parent.name), reverse=True)
    requested = [d for d in versioned if version is not None and d.parent.name == version]
    return requested + _path_dirs() + versioned


def _missing(kind: str, names: list[str]) -> str:
    package = _APT_PACKAGE[kind]
    return (
        f"missing program(s) {', '.join(names)}: install the Debian package {package!r} (apt-get install -y {package})"
    )


def _find_postgres(version: str | None) -> dict[str, Path]:
    dirs = _postgres_dirs(version)
    for directory in dirs:
        if not _is_executable(directory / "initdb"):
            continue
        # initdb runs the postgres next to its real location, so take both from there.
        real = (directory / "initdb").resolve().parent
        if not _is_executable(real / "postgres"):
            continue
        psql = real / "psql"
        if not _is_executable(psql):
            which = shutil.which("psql")
            if which is None:
                raise EngineUnavailable(_missing("postgres", ["psql"]))
            psql = Path(which)
        return {"initdb": real / "initdb", "postgres": real / "postgres", "psql": psql}
    absent = [name for name in _PROGRAMS["postgres"] if not any(_is_executable(d / name) for d in dirs)]
    raise EngineUnavailable(_missing("postgres", absent or ["initdb", "postgres"]))


def find_binaries(kind: Engine, version: str | None = None) -> dict[str, Path]:
    """Locate the programs for ``kind``: initdb/postgres/psql, or redis-server.

    PostgreSQL is looked up in /usr/lib/postgresql/<version>/bin when that major ``version`` is
    installed, else in PATH and then in /usr/lib/postgresql/*/bin (newest first), taking initdb and
    postgres from the same directory. Redis is whichever redis-server PATH has (``version`` cannot
    choose it). Raises EngineUnavailable when something is missing.
    """
    if kind == "postgres":
        return _find_postgres(version)
    if kind == "redis":
        found = shutil.which("redis-server")
        if found is None:
            raise EngineUnavailable(_missing("redis", ["redis-server"]))
        return {"redis-server": Path(found)}
    raise ValueError(f"unknown engine kind {kind!r}")


def check_engines_available() -> None:
    """Raise one EngineUnavailable naming every missing program (both kinds) and its package, or
    saying that engines need Linux (pidfds, dedicated accounts, process groups: see the package doc)."""
    if not sys.platform.startswith("linux"):
        raise EngineUnavailable(
            f"--engines runs real PostgreSQL and Redis servers and works on Linux only (this is {sys.platform}); "
            "use --sandbox without --engines here: every tool works, but instances cannot be connected to"
        )
    problems = []
    engines: tuple[Engine, ...] = ("postgres", "redis")
    for kind in engines:
        try:
            find_binaries(kind)
        except EngineUnavailable as exc:
            problems.append(str(exc))
    if problems:
        raise EngineUnavailable("; ".join(problems))


_versions: dict[Path, str] = {}


async def _binary_version(binary: Path) -> str:
    """The version the binary reports, e.g. '15.18' or '7.0.15' (cached per path)."""
    if binary not in _versions:
        code, out = await _run([str(binary), "--version"], cwd=None, run_as=_Account(), timeout=30)
        match = re.search(r"\d+(?:\.\d+)*", out)
        if code != 0 or match is None:
            raise EngineStartError(f"{binary} --version failed (exit {code}): {out.strip()[-200:]}")
        _versions[binary] = match.group(0)
    return _versions[binary]
