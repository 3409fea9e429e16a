"""redu-mcp with its API calls answered from memory: the MCP layer and our own code, minus the upstream.

A diagnostic server for ``throughput.py``: ``ReduClient.list_instances`` makes its first request for
real (through whatever upstream the flags choose) and then returns that same answer without any
request. What is left per call is the SDK, our middleware, the tool body and the result.

    python bench/stubbed_upstream.py --sandbox --transport http --port 8124
"""

from __future__ import annotations

from redu_mcp.api import ReduClient
from redu_mcp.cli import main

_real_list_instances = ReduClient.list_instances
_cached: dict = {}


async def _list_instances(self: ReduClient, kind, *, limit=None):
    if kind.name not in _cached:
        _cached[kind.name] = await _real_list_instances(self, kind, limit=limit)
    return list(_cached[kind.name])


ReduClient.list_instances = _list_instances  # type: ignore[method-assign]  # the stub is the point of this benchmark

if __name__ == "__main__":
    main()
