#!/usr/bin/env bash
# Install one pinned npm CLI into a cache directory of its own, and print the path of its bin.
#
#     usage: .ci/install-npm-tool.sh PACKAGE VERSION BIN
#     MCPB_BIN="$(.ci/install-npm-tool.sh @anthropic-ai/mcpb 2.1.2 mcpb)"
#
# Idempotent: installs into $REDU_MCP_NPM_TOOLS_DIR/BIN (default $HOME/.cache/redu-mcp-npm-tools/BIN)
# only when that exact version is not already there. Progress goes to stderr; stdout carries only
# the path. The tests find the bins in the same place (tests/artifacts.py), or through the env
# variable .ci/run exports.
set -euo pipefail

PACKAGE="$1"
VERSION="$2"
BIN_NAME="$3"
DIR="${REDU_MCP_NPM_TOOLS_DIR:-${HOME}/.cache/redu-mcp-npm-tools}/$BIN_NAME"
BIN="$DIR/node_modules/.bin/$BIN_NAME"
PKG_JSON="$DIR/node_modules/$PACKAGE/package.json"

command -v npm >/dev/null || { echo "install-npm-tool: npm is not installed" >&2; exit 1; }

installed_version() {
    [[ -f "$PKG_JSON" ]] || return 1
    node -e 'process.stdout.write(require(process.argv[1]).version)' "$PKG_JSON"
}

if [[ -x "$BIN" && "$(installed_version 2>/dev/null || true)" == "$VERSION" ]]; then
    echo "install-npm-tool: $PACKAGE@$VERSION already in $DIR" >&2
else
    echo "install-npm-tool: installing $PACKAGE@$VERSION into $DIR" >&2
    mkdir -p "$DIR"
    [[ -f "$DIR/package.json" ]] || echo "{\"name\": \"redu-mcp-$BIN_NAME\", \"private\": true}" > "$DIR/package.json"
    npm install --prefix "$DIR" --no-audit --no-fund --loglevel=error "$PACKAGE@$VERSION" >&2
    [[ -x "$BIN" ]] || { echo "install-npm-tool: $BIN missing after npm install" >&2; exit 1; }
fi
echo "$BIN"
