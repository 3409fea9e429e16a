"""Readiness as a client sees it: an engine is ready only once an authenticated login works.

The sandbox reports an instance ``ready`` only when a client could really use it, so each check
logs in with the instance's credentials and runs one command. Neither ever raises, and neither
puts the password in argv: psql gets it in ``PGPASSWORD``, Redis in a binary-safe ``AUTH``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

from ._accounts import _Account
from ._binaries import find_binaries
from ._janitor import _child_env
from ._spawn import _run


async def check_postgres_login(
    *,
    host: str,
    port: int,
    user: str,
    dbname: str,
    password: str,
    psql: Path | None = None,
    timeout: float = 5.0,
) -> bool:
    """True if ``psql`` can log in with these credentials and run SELECT 1. Never raises.

    Everything goes through the environment: the password stays out of argv, and names are
    taken literally (``-d`` would parse a name containing '=' as a connection string).
    """
    try:
        program = psql or find_binaries("postgres")["psql"]
        env = _child_env(
            PGHOST=host,
            PGPORT=str(port),
            PGUSER=user,
            PGDATABASE=dbname,
            PGPASSWORD=password,
            PGPASSFILE=os.devnull,
            PGCONNECT_TIMEOUT=str(max(2, int(timeout))),
            PGSSLMODE="disable",
        )
        code, out = await _run(
            [str(program), "-X", "-w", "-q", "-A", "-t", "-c", "SELECT 1"],
            cwd=None,
            run_as=_Account(),
            env=env,
            timeout=timeout,
        )
        return code == 0 and out.strip() == "1"
    except Exception:
        return False


def _resp(*parts: str) -> bytes:
    """A Redis command in RESP array form (binary-safe, so any password works)."""
    out = [f"*{len(parts)}\r\n".encode()]
    for part in parts:
        data = part.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


async def check_redis_login(*, host: str, port: int, password: str, timeout: float = 3.0) -> bool:
    """True if AUTH with this password succeeds and PING answers +PONG. Never raises."""
    writer = None
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        writer.write(_resp("AUTH", password) + _resp("PING"))
        await writer.drain()
        auth = await asyncio.wait_for(reader.readline(), timeout)
        pong = await asyncio.wait_for(reader.readline(), timeout)
        return auth == b"+OK\r\n" and pong == b"+PONG\r\n"
    except Exception:
        return False
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
