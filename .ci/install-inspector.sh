#!/usr/bin/env bash
# Install the MCP Inspector CLI (the official external MCP client) for tests/test_inspector.py.
#
# Idempotent: installs @modelcontextprotocol/inspector at the pinned version into a cache directory
# (default $HOME/.cache/redu-mcp-inspector, or $REDU_MCP_INSPECTOR_DIR) only when it is not already
# there, then prints the path of the `mcp-inspector` bin on stdout (and nothing else on stdout), so:
#
#     export MCP_INSPECTOR_BIN="$(.ci/install-inspector.sh)"
#
# Needs node and npm (the inspector declares node >= 22.19 but works on node 20: npm only warns).
set -euo pipefail

VERSION="${MCP_INSPECTOR_VERSION:-2.12.0}"
DIR="${REDU_MCP_INSPECTOR_DIR:-${HOME}/.cache/redu-mcp-inspector}"
BIN="$DIR/node_modules/.bin/mcp-inspector"
PKG_JSON="$DIR/node_modules/@modelcontextprotocol/inspector/package.json"

installed_version() {
    [[ -f "$PKG_JSON" ]] || return 1
    node -e 'process.stdout.write(require(process.argv[1]).version)' "$PKG_JSON"
}

command -v npm >/dev/null || { echo "install-inspector: npm is not installed" >&2; exit 1; }

if [[ -x "$BIN" && "$(installed_version 2>/dev/null || true)" == "$VERSION" ]]; then
    echo "install-inspector: @modelcontextprotocol/inspector@$VERSION already in $DIR" >&2
else
    echo "install-inspector: installing @modelcontextprotocol/inspector@$VERSION into $DIR" >&2
    mkdir -p "$DIR"
    [[ -f "$DIR/package.json" ]] || echo '{"name": "redu-mcp-inspector", "private": true}' > "$DIR/package.json"
    npm install --prefix "$DIR" --no-audit --no-fund --loglevel=error \
        "@modelcontextprotocol/inspector@$VERSION" >&2
    [[ -x "$BIN" ]] || { echo "install-inspector: $BIN missing after npm install" >&2; exit 1; }
fi
echo "$BIN"
