"""Where the sandbox's real engines (``--engines``) can run: Linux only.

They rely on what only Linux has together: pidfds, dedicated system accounts made with ``useradd``,
``kill(-1)`` as another uid, new sessions (see ``redu_mcp.sandbox.engines``); the package imports
``pwd``, ``grp`` and ``fcntl``, which Windows lacks. Checked here, before the package is imported.
"""

from __future__ import annotations

import sys


def engines_unsupported() -> str | None:
    """Why ``--engines`` cannot run on this platform (None on Linux)."""
    if sys.platform.startswith("linux"):
        return None
    return (
        f"--engines runs real PostgreSQL and Redis servers and works on Linux only (this is {sys.platform}); "
        "use --sandbox without --engines here: every tool works, but instances cannot be connected to"
    )
