"""Starting an engine's processes: as its account, in their own session, dying with us.

Every child gets a minimal environment, umask 077, a new session (a Ctrl-C in the terminal does
not reach it before we can stop it cleanly) and ``PR_SET_PDEATHSIG=SIGKILL``, so the kernel kills
it if the *thread* that started it dies. Short helper programs (initdb, psql, ``--version``) run
to completion through asyncio's subprocess API, so they do not block the event loop; the
long-running servers are launched with the same ``_spawn_kwargs`` by the manager.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

from ._accounts import _Account
from ._errors import EngineStartError
from ._janitor import _child_env


def _load_prctl() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: no parent-death signal, atexit still works
        return None


_prctl = _load_prctl()
_PR_SET_PDEATHSIG = 1


def _die_with_us() -> Any:
    """A preexec_fn that makes the child get SIGKILL when our (spawning) thread dies.

    It runs in the child after the uid switch — the kernel clears the setting on a credential
    change — and exits at once if we already died before it was set.
    """
    parent = os.getpid()
    prctl = _prctl
    sigkill = int(signal.SIGKILL)

    def preexec() -> None:
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, sigkill, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return preexec


def _spawn_kwargs(run_as: _Account, cwd: Path | None, env: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "cwd": cwd,
        "env": env if env is not None else _child_env(),
        "start_new_session": True,
        "preexec_fn": _die_with_us(),
        "umask": 0o077,
        **run_as.popen_kwargs(),
    }


async def _run(
    argv: list[str],
    *,
    cwd: Path | None,
    run_as: _Account,
    stdin: bytes | None = None,
    env: dict[str, str] | None = None,
    timeout: float,
) -> tuple[int, str]:
    """Run a short-lived program to completion; returns (exit code, stdout+stderr)."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            **_spawn_kwargs(run_as, cwd, env),
        )
    except OSError as exc:
        raise EngineStartError(f"could not run {argv[0]}: {exc.strerror or exc}") from None
    try:
        out, _ = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except BaseException:  # timeout or cancellation: do not leave it (or what it forked) running
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: it leads its process group
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")
