"""The floor: the smallest useful ``MCPServer``, one trivial async tool, nothing else.

Every benchmark compares redu-mcp against this server run the same way, so the numbers say what
redu-mcp adds on top of the SDK, not how fast the SDK or this machine is.

    python bench/floor_server.py                    # stdio
    python bench/floor_server.py --http --port 8123  # streamable HTTP at http://127.0.0.1:8123/mcp
"""

from __future__ import annotations

import argparse

from mcp.server.mcpserver import MCPServer

mcp = MCPServer("floor", version="0.0.0")


@mcp.tool()
async def echo(text: str = "pong") -> str:
    """Return the text unchanged."""
    return text


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", action="store_true", help="serve streamable HTTP instead of stdio")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--path", default="/mcp")
    args = parser.parse_args()
    if not args.http:
        mcp.run()
        return
    import uvicorn

    # Served exactly like redu_mcp.server.http.run_http serves ours.
    app = mcp.streamable_http_app(streamable_http_path=args.path, host=args.host)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", lifespan="on")


if __name__ == "__main__":
    main()
