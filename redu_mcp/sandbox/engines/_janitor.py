"""The janitor, which cleans up after an owner that died without doing it, and the cleanup it runs.

A SIGKILLed owner cannot run its atexit hook, so each ``Engines`` starts a tiny janitor (this
file run as a script, in its own session): it holds one end of a socket pair whose other end only
the owner has, learns each engine's directory, account and lock from it, and when the socket
reports EOF (the owner is gone, however it ended) it kills the engines' processes, removes their
directories and the root, and exits. It runs as ``python -I -S``, with no site-packages and no
package around it, so this file uses the standard library only and imports nothing of ours; the
rest of the package imports the cleanup from here (killing every process of a pool account's
uid, removing an engine directory), never the reverse. The owner's side of the socket,
``_Janitor``, is here too, so the protocol is defined in one place.
"""

from __future__ import annotations

import contextlib
import errno
import grp
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger("redu_mcp.sandbox.engines")  # one logger for the package, like httpx2's

#: Pool accounts are named POOL_PREFIX + "01", "02", …; only their uids are ever reaped.
POOL_PREFIX = "redu-engine-"
#: Seconds we keep killing a uid's processes before giving up on reusing it.
REAP_TIMEOUT = 10.0
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _child_env(**extra: str) -> dict[str, str]:
    """A minimal environment: nothing of ours (PG*, REDIS*, secrets) leaks into children."""
    env = {"PATH": os.environ.get("PATH", os.defpath), "LC_ALL": "C", "LANG": "C"}
    env.update(extra)
    return env


# --------------------------------------------------------------------------- pool accounts


def _pool_user_problem(entry: pwd.struct_passwd) -> str | None:
    """Why an account is not exclusively ours (we kill everything its uid runs), or None."""
    name = entry.pw_name
    problem = None
    if entry.pw_uid == 0 or entry.pw_gid == 0:
        problem = "it is uid or gid 0"
    elif os.path.basename(entry.pw_shell) not in ("nologin", "false"):
        problem = f"its shell is {entry.pw_shell}"
    else:
        try:
            group = grp.getgrgid(entry.pw_gid)
        except KeyError:
            group = None
        if group is None or group.gr_name != name or group.gr_mem:
            problem = "its primary group is not its own, member-less group"
        elif any(
            other.pw_name != name and (other.pw_uid == entry.pw_uid or other.pw_gid == entry.pw_gid)
            for other in pwd.getpwall()
        ):
            problem = "another account shares its uid or group"
    return problem


def _is_pool_uid(uid: int) -> pwd.struct_passwd | None:
    """The pool account with this uid, or None if the uid is not one of ours."""
    try:
        entry = pwd.getpwuid(uid)
    except KeyError:
        return None
    if not entry.pw_name.startswith(POOL_PREFIX):
        return None
    if _pool_user_problem(entry) is not None:
        return None
    return entry


# --------------------------------------------------------------------------- processes of a uid


def _proc_status(pid: int | str) -> tuple[set[int], str, int] | None:
    """(real/effective/saved/fs uids, state letter, thread count) of a process, or None."""
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            text = fh.read().decode(errors="replace")
    except OSError:
        return None
    uids: set[int] = set()
    state, threads = "?", 1
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key == "Uid":
            uids = {int(v) for v in value.split()}
        elif key == "State":
            state = value.strip()[:1]
        elif key == "Threads":
            threads = int(value.strip() or 1)
    return uids, state, threads


def _proc_start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (tells a reused pid apart)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def _pids_of_uid(uid: int) -> list[int]:
    """Processes that run with ``uid`` as any of their uids (a lone zombie counts as gone)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        status = _proc_status(entry)
        if status is None:
            continue
        uids, state, threads = status
        # A zombie leader with live threads is still running code.
        if uid in uids and (state != "Z" or threads > 1):
            found.append(int(entry))
    return found


def _kill_if_uid(pid: int, uid: int) -> None:
    """SIGKILL ``pid`` if it (still) runs as ``uid``: a pidfd makes pid reuse harmless."""
    try:
        pidfd = os.pidfd_open(pid)
    except (OSError, AttributeError):
        return
    try:
        status = _proc_status(pid)  # read after the pidfd pins the process we will signal
        if status is not None and uid in status[0]:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    finally:
        os.close(pidfd)


def _kill_all_as(uid: int, gid: int) -> None:
    """kill(-1, SIGKILL) issued by a child that *is* ``uid``: every process of the uid, at once.

    The kernel walks the process list under a lock, so forking cannot outrun it. The child checks
    its own uids before it signals: as root, kill(-1) would kill the whole machine.
    """

    def sweep() -> None:
        if uid > 0 and os.getresuid() == (uid, uid, uid):
            with contextlib.suppress(OSError):
                os.kill(-1, signal.SIGKILL)

    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(
            ["/bin/true"],
            user=uid,
            group=gid,
            extra_groups=[],
            preexec_fn=sweep,
            cwd="/",
            env=_child_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=10,
            check=False,
        )


def _reap_uid(uid: int, gid: int, timeout: float = REAP_TIMEOUT) -> bool:
    """Kill every process of ``uid``; True once /proc shows none left. Blocking.

    Only ever for a dedicated pool account: never root, never ourselves, never an account that
    anything else (``nobody``, a person, a service) might be running as.
    """
    if uid <= 0 or uid in (os.getuid(), os.geteuid()) or _is_pool_uid(uid) is None:
        raise ValueError(f"refusing to kill every process of uid {uid}: not a sandbox engine account")
    deadline = time.monotonic() + timeout
    rounds = 0
    while True:
        pids = _pids_of_uid(uid)
        if not pids:
            return True
        if time.monotonic() > deadline:
            return False
        for pid in pids:
            _kill_if_uid(pid, uid)
        if rounds:  # still there after a round: forking, or escaped before we looked
            _kill_all_as(uid, gid)
        rounds += 1
        time.sleep(min(0.01 * rounds, 0.1))


# --------------------------------------------------------------------------- engine directories


def _remove_engine_dir(root_fd: int, name: str, *, reclaim: bool) -> bool:
    """Delete ``name`` below the root (True once it is gone); the caller made its uid dead.

    ``reclaim``: first take the directory back from the engine's account, so nothing but root
    can even traverse it. rmtree works through directory fds and never follows a symlink.
    """
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=root_fd)
    except FileNotFoundError:
        return True
    except OSError as exc:
        if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
        os.unlink(name, dir_fd=root_fd)  # not a directory (we only ever make directories)
        return True
    try:
        if reclaim:
            os.fchown(fd, os.geteuid(), os.getegid())
            os.fchmod(fd, 0o700)
    finally:
        os.close(fd)
    shutil.rmtree(name, dir_fd=root_fd, ignore_errors=True)
    try:
        os.lstat(name, dir_fd=root_fd)
    except FileNotFoundError:
        return True
    return False


# --------------------------------------------------------------------------- the janitor


_old_janitors: list[subprocess.Popen[bytes]] = []


class _Janitor:
    """The owner's side of the janitor: a socket only we hold, and the janitor process.

    Messages (one per SEQPACKET datagram): ``engine NAME UID GID`` (with the slot's lock fd
    attached), ``pid NAME PID START`` and ``gone NAME``. At EOF the janitor cleans up whatever
    was not reported gone.
    """

    def __init__(self, root: Path, root_fd: int, owns_root: bool) -> None:
        for old in list(_old_janitors):
            if old.poll() is not None:
                _old_janitors.remove(old)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-I",
                    "-S",
                    os.path.abspath(__file__),
                    "--janitor",
                    str(root_fd),
                    "1" if owns_root else "0",
                    str(root),
                ],
                stdin=theirs.fileno(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=(root_fd,),
                cwd="/",
                env=_child_env(),
                start_new_session=True,  # a Ctrl-C for the terminal must not stop the cleanup
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.settimeout(5.0)
        self._sock: socket.socket | None = ours

    @property
    def pid(self) -> int:
        return self._process.pid

    def send(self, message: str, fds: Iterable[int] = ()) -> None:
        sock = self._sock
        if sock is None:
            return
        try:
            socket.send_fds(sock, [message.encode()], list(fds), socket.MSG_NOSIGNAL)
        except OSError as exc:
            log.warning("the sandbox janitor is gone (%s); cleanup relies on us alone", exc)
            self._forget_socket()

    def _forget_socket(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def close(self) -> None:
        """EOF for the janitor: it cleans what is left (normally nothing) and exits."""
        self._forget_socket()
        try:
            self._process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            _old_janitors.append(self._process)  # still cleaning; reaped later


def _janitor_main(argv: list[str]) -> None:
    """The janitor process: wait for the owner's socket to close, then clean up after it."""
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_IGN)
    root_fd, owns_root, root_path = int(argv[0]), argv[1] == "1", argv[2]
    sock = socket.socket(fileno=0)
    engines: dict[str, dict[str, Any]] = {}
    while True:
        try:
            data, fds, _flags, _addr = socket.recv_fds(sock, 4096, 4)
        except OSError:
            break
        if not data:
            for fd in fds:
                os.close(fd)
            break
        words = data.decode(errors="replace").split(" ")
        if words[0] == "engine" and len(words) == 4:
            uid = None if words[2] == "-" else int(words[2])
            gid = None if words[3] == "-" else int(words[3])
            engines[words[1]] = {"uid": uid, "gid": gid, "fds": list(fds), "pid": None}
            continue
        for fd in fds:
            os.close(fd)
        if words[0] == "pid" and len(words) == 4 and words[1] in engines:
            engines[words[1]]["pid"] = (int(words[2]), int(words[3]))
        elif words[0] == "gone" and len(words) == 2:
            for fd in engines.pop(words[1], {}).get("fds", []):
                os.close(fd)
    for name, engine in engines.items():
        try:
            if engine["uid"] is not None:
                _reap_uid(engine["uid"], engine["gid"])
            elif engine["pid"] is not None:
                pid, start = engine["pid"]
                if _proc_start_time(pid) == start:  # still the engine we were told about
                    with contextlib.suppress(OSError):
                        os.killpg(pid, signal.SIGKILL)
            _remove_engine_dir(root_fd, name, reclaim=engine["uid"] is not None)
        except Exception:  # keep going: the other engines still need cleaning
            pass
    if owns_root:
        with contextlib.suppress(OSError):
            if os.path.samestat(os.fstat(root_fd), os.lstat(root_path)):
                shutil.rmtree(root_path, ignore_errors=True)


if __name__ == "__main__" and sys.argv[1:2] == ["--janitor"]:
    _janitor_main(sys.argv[2:])
