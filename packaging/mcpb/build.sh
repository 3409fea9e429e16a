#!/usr/bin/env bash
# Build the MCP Bundle (.mcpb) for Claude Desktop: stage exactly what the bundle holds, validate
# the manifest, pack. Prints the path of the .mcpb on stdout (progress goes to stderr).
#
#     usage: packaging/mcpb/build.sh [OUT_DIR]        (default OUT_DIR: dist/)
#
# The bundle is of the manifest's `uv` type: it holds the package's source, pyproject.toml and
# uv.lock (no dependencies, no virtualenv), and the host runs `uv run --frozen --no-dev redu-mcp` in
# it, so uv installs exactly the locked dependencies on the user's machine.
# Needs the mcpb CLI: $MCPB_BIN, else `mcpb` on PATH
# (`.ci/install-npm-tool.sh @anthropic-ai/mcpb 2.1.2 mcpb` installs it).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$(mkdir -p "${1:-$root/dist}" && cd "${1:-$root/dist}" && pwd)"
mcpb="${MCPB_BIN:-$(command -v mcpb || true)}"
[[ -n "$mcpb" ]] || { echo "mcpb build: the mcpb CLI is not installed (see .ci/install-npm-tool.sh)" >&2; exit 1; }

version="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/pyproject.toml" | head -n 1)"
bundle="$out/redu-mcp-$version.mcpb"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT

cp "$here/manifest.json" "$root/pyproject.toml" "$root/uv.lock" "$root/README.md" "$root/LICENSE" "$stage/"
# The package: every file of redu_mcp/ that git tracks or would track (never __pycache__, .venv or
# other ignored leftovers); outside a git checkout, its Python files and py.typed.
cd "$root"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z --cached --others --exclude-standard -- redu_mcp
else
    find redu_mcp \( -name '*.py' -o -name py.typed \) -print0
fi | while IFS= read -r -d '' file; do
    [[ -f "$file" ]] && install -D -m 0644 "$file" "$stage/$file"
done

echo "mcpb build: validating and packing $(find "$stage" -type f | wc -l) files into $bundle" >&2
"$mcpb" validate "$stage/manifest.json" >&2
rm -f "$bundle"
"$mcpb" pack "$stage" "$bundle" >&2
echo "$bundle"
