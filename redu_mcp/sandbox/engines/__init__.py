"""Real PostgreSQL and Redis server processes behind sandbox instances.

``Engines`` starts ``postgres`` / ``redis-server`` on a free 127.0.0.1 port with its data in a
throwaway directory, and tears it down again. It has no dependency on the rest of redu_mcp: its
modules import each other relatively, and ``_janitor`` even runs on its own as a script.

Threat model: whoever holds an instance's credentials may run anything the engine lets a client
run. They must not get root, must not reach another instance (its files, its password), and
must not leave anything behind once the instance is gone. Each defense, and where it lives:

* **One account per live engine (when we run as root)**, each a dedicated system user from a
  pool, handed out only when no process of its uid runs (``_accounts``); killing every process
  of a uid goes through pidfds and a ``kill(-1)`` issued *as that uid* (``_janitor``). Without
  root, engines run as the invoking user: no isolation is possible, and no escalation either.
* **Root never opens, reads or writes anything an engine can write.** The root directory is
  root's, mode 0711 (``_directories``); each engine directory is handed to the engine's account
  and taken back only once its uid has no process left (``_homes``). Root writes nothing into
  it: output goes to a bounded in-memory tail (``_output``), Redis reads its configuration from
  stdin, PostgreSQL needs no password file.
* **Clients are not superusers, and Redis keeps its protected configs off** (``_server_config``).
* **No orphans, no leftover secrets.** Engines run in a new session and die with the thread that
  started them (``_spawn``); an atexit hook stops whatever still runs (``_manager``); a janitor
  process cleans up after an owner that was SIGKILLed (``_janitor``); and if the janitor was
  killed too, the next ``Engines()`` removes what they left (``_directories``).
* **Passwords** never reach argv, logs or exceptions (``_secrets``): PostgreSQL gets a SCRAM
  verifier on stdin, Redis its config on stdin, psql the password in ``PGPASSWORD``, and every
  log excerpt we return is redacted anyway.
* **Non-blocking.** Short helper programs run through asyncio's subprocess API (``_spawn``),
  blocking account work in a thread (``_homes``); the servers are Popen objects that async code
  and the synchronous ``close_sync()`` can both reap (``_running``).

The modules form layers, each importing only from those below it (checked by lint-imports):
``_manager``; ``_running``; ``_homes``, ``_login_checks``, ``_directories``, ``_server_config``
and ``_output``; ``_binaries`` and ``_secrets``; ``_spawn``; ``_accounts``; ``_errors`` and
``_janitor``, which uses the standard library only.
"""

from ._binaries import Engine, check_engines_available, find_binaries
from ._errors import EngineStartError, EngineUnavailable
from ._login_checks import check_postgres_login, check_redis_login
from ._manager import Engines
from ._running import RunningEngine

__all__ = [
    "Engine",
    "EngineStartError",
    "EngineUnavailable",
    "Engines",
    "RunningEngine",
    "check_engines_available",
    "check_postgres_login",
    "check_redis_login",
    "find_binaries",
]
