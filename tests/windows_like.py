"""Give this process a Windows-like ``os``, so the server's Windows paths run on a Linux CI box.

What Python on Windows lacks, taken away from the real module (``install``, or ``patch`` for one
test): ``O_NOFOLLOW``, ``O_DIRECTORY``, ``O_CLOEXEC``, ``O_NONBLOCK``, ``fchmod``, ``fchown``,
``getuid`` and friends, ``killpg``/``getpgid``/``setsid``; ``os.supports_dir_fd`` is empty and any
``dir_fd=`` (or ``src_dir_fd``/``dst_dir_fd``) raises ``NotImplementedError`` as Windows does;
``chmod(..., follow_symlinks=False)`` raises too (Python 3.11 on Windows). ``pwd`` and ``grp``
cannot be imported. What it cannot fake: ACLs, drive letters, ``\\`` separators, reparse
point attributes (symbolic links stand in for junctions).

A child process gets it with ``python -c "import tests.windows_like as w; w.install(); …"``
(``stdio_command``); a test in this process with ``patch(monkeypatch)``.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any

import pytest

REMOVED = (
    "O_NOFOLLOW",
    "O_DIRECTORY",
    "O_CLOEXEC",
    "O_NONBLOCK",
    "fchmod",
    "fchown",
    "lchown",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "killpg",
    "getpgid",
    "setsid",
)
WITH_DIR_FD = ("open", "unlink", "remove", "rename", "replace", "mkdir", "rmdir", "stat", "chmod", "access")
#: Not ``fcntl``: the SDK's stdio transport chooses its POSIX code by ``sys.platform`` and needs it here.
MODULES = ("pwd", "grp")


def _no_dir_fd(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def windows(*args: Any, **kwargs: Any) -> Any:
        for name in ("dir_fd", "src_dir_fd", "dst_dir_fd"):
            if kwargs.get(name) is not None:
                raise NotImplementedError(f"{name} unavailable on this platform")
        if function.__name__ == "chmod" and kwargs.get("follow_symlinks") is False:
            raise NotImplementedError("chmod: follow_symlinks unavailable on this platform")
        return function(*args, **kwargs)

    return windows


def changes() -> list[tuple[Any, str, Any]]:
    """(object, attribute, new value or ``None`` to delete) for every change ``install`` makes."""
    made: list[tuple[Any, str, Any]] = [(os, name, None) for name in REMOVED if hasattr(os, name)]
    made += [(os, name, _no_dir_fd(getattr(os, name))) for name in WITH_DIR_FD]
    made += [(os, "supports_dir_fd", set()), (os, "supports_follow_symlinks", {os.stat})]
    return made


def install() -> None:
    """For a whole process (a child): no way back."""
    for target, name, value in changes():
        if value is None:
            delattr(target, name)
        else:
            setattr(target, name, value)
    for module in MODULES:
        sys.modules[module] = None  # type: ignore[assignment]  # "import pwd" now raises ImportError


def patch(monkeypatch: pytest.MonkeyPatch) -> None:
    """For one test, in this process: undone when the test ends."""
    for target, name, value in changes():
        if value is None:
            monkeypatch.delattr(target, name)
        else:
            monkeypatch.setattr(target, name, value)
    for module in MODULES:
        monkeypatch.setitem(sys.modules, module, None)


def stdio_command(*args: str) -> list[str]:
    """``python -c …`` running ``redu-mcp *args`` with the Windows-like ``os`` installed first."""
    code = "import sys, tests.windows_like as w; w.install(); from redu_mcp.cli import main; main(sys.argv[1:])"
    return [sys.executable, "-c", code, *args]
