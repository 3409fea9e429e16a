"""The README's install lines, one per client, run against the package as built.

Each JSON config in the README (and ``claude_desktop_config.example.json``) is parsed, checked for
its client's shape (and for keeping the key out of the file where the client allows it), then
launched by an external client, the MCP Inspector CLI's ``--config``, after doing what that client
does to it: substituting ``${env:…}`` (Cursor) or ``${input:…}`` (VS Code), or pasting the key
(Claude Desktop). VS Code's ``servers`` becomes ``mcpServers``, the only shape the Inspector reads.
The ``claude mcp add`` lines are run by the real Claude Code CLI, whose ``claude mcp get`` then
connects to the server.

The lines that work today run from a clone (``uv --directory <clone> run redu-mcp``: this checkout)
or from a built wheel (``uvx --from <wheel>``). The lines marked "after the first release"
(``uvx redu-mcp``) must find the package as built, not on PyPI: their launches get ``UV_FIND_LINKS``
pointing at a directory holding the built wheel (a new directory per session, so uv never reuses a
copy it cached from another build). The upstream is the sandbox API on a loopback port
(``REDU_API_URL``), which knows only the key the config carries: ``whoami`` answering proves the
key made it through. Every install path runs at one default access level, ``full``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import shutil
import subprocess
import urllib.parse
from pathlib import Path
from typing import Any

import anyio
import pytest

from redu_mcp.config import settings_from_env
from tests import artifacts
from tests.helpers import REPO, cli_http_server
from tests.test_inspector import INSPECTOR, INSTALL_INSPECTOR, Run, inspector

README = (REPO / "README.md").read_text()
#: The README and docs/, where the install lines and commands live.
DOCS = README + "".join(path.read_text() for path in sorted((REPO / "docs").glob("*.md")))
EXAMPLE = REPO / "claude_desktop_config.example.json"
KEY_PLACEHOLDER = "paste-your-redu-api-key-here"
CLONE_PLACEHOLDER = "/ABSOLUTE/PATH/TO/redu-mcp"
WHEEL_PLACEHOLDER = f"/ABSOLUTE/PATH/TO/{artifacts.WHEEL_NAME}"
DEFAULT_ACCESS = "full"
CLAUDE = artifacts.npm_tool("claude", "CLAUDE_BIN")

needs_inspector = pytest.mark.skipif(
    INSPECTOR is None, reason=f"MCP Inspector CLI not installed: run {INSTALL_INSPECTOR}"
)
needs_claude = pytest.mark.skipif(
    CLAUDE is None,
    reason="Claude Code CLI not installed: .ci/install-npm-tool.sh @anthropic-ai/claude-code 2.1.197 claude",
)


def readme_block(kind: str, name: str) -> str:
    """The fenced block right after ``<!-- client-<kind>: <name> -->`` in the README or docs/."""
    matches = re.findall(rf"<!-- client-{kind}: {re.escape(name)} -->\n```\w*\n(.*?)\n```", DOCS, re.S)
    assert len(matches) == 1, f"README and docs/ need exactly one client-{kind} block named {name}"
    return matches[0]


def client_blocks(kind: str) -> list[str]:
    """The names of every ``<!-- client-<kind>: … -->`` block in the README and docs/."""
    return re.findall(rf"<!-- client-{kind}: ([\w-]+) -->", DOCS)


def from_here(value: str, wheel: Path | None = None) -> str:
    """What a user writes in place of the placeholders: their clone (here, this checkout), their wheel."""
    value = value.replace(WHEEL_PLACEHOLDER, str(wheel or WHEEL_PLACEHOLDER))
    return value.replace(CLONE_PLACEHOLDER, str(REPO))


@pytest.fixture(scope="session")
def find_links(python_dists: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("find-links")
    shutil.copy(python_dists[0], directory)
    return directory


@pytest.fixture(scope="module")
def inspector_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("inspector-home")


def host_env(find_links: Path, api_url: str, state: Path) -> dict[str, str]:
    """What the launched server needs from this machine on top of its config: the built wheel as a
    package source, this machine's network settings, the sandbox's URL and a state directory."""
    return {
        **artifacts.network_env(),
        "UV_FIND_LINKS": str(find_links),
        "REDU_API_URL": api_url,
        "XDG_STATE_HOME": str(state),
    }


async def whoami_through_inspector(config: dict[str, Any], server: str, home: Path, tmp_path: Path) -> Run:
    path = tmp_path / "mcp-config.json"
    path.write_text(json.dumps(config))
    args = ("--config", str(path), "--server", server, "--method", "tools/call", "--tool-name", "whoami")
    return await anyio.to_thread.run_sync(lambda: inspector(home, *args))  # the sandbox serves meanwhile


def check_whoami(run: Run, access: str) -> None:
    assert run.code == 0, run.stderr
    me = run.result["structuredContent"]
    assert me["user"]["id"] == "usr_artifacts", me  # the configured key reached the API
    assert me["access"] == access


# --- JSON configs, launched by the MCP Inspector ------------------------------------------------------------


@needs_inspector
@pytest.mark.parametrize(
    ("block", "command"),
    [("claude-desktop", ["uv", "--directory", CLONE_PLACEHOLDER, "run", "redu-mcp"]),  # today, from a clone
     ("claude-desktop-uvx", ["uvx", "redu-mcp"])],  # after the first release
)  # fmt: skip
async def test_claude_desktop_config(block, command, find_links: Path, inspector_home: Path, tmp_path: Path):
    config = json.loads(readme_block("config", block))
    entry = config["mcpServers"]["redu"]
    assert [entry["command"], *entry["args"]] == command
    assert entry["env"] == {"REDU_API_KEY": KEY_PLACEHOLDER}  # one default access level: the server's
    entry["args"] = [from_here(a) for a in entry["args"]]
    entry["env"]["REDU_API_KEY"] = artifacts.API_KEY  # what the user pastes
    async with artifacts.serving_sandbox() as (api_url, _):
        entry["env"].update(host_env(find_links, api_url, tmp_path / "state"))
        check_whoami(await whoami_through_inspector(config, "redu", inspector_home, tmp_path), DEFAULT_ACCESS)


def cursor_links() -> list[str]:
    return re.findall(r"(?:cursor://anysphere\.cursor-deeplink/mcp/install|https://cursor\.com/en/install-mcp)\?[^)`\s]+", README)  # fmt: skip


@needs_inspector
async def test_cursor_config_and_install_links(find_links: Path, inspector_home: Path, tmp_path: Path):
    config = json.loads(readme_block("config", "cursor"))
    entry = config["mcpServers"]["redu"]
    assert entry["env"] == {"REDU_API_KEY": "${env:REDU_API_KEY}"}  # the key stays out of the file
    # Both install links (after the first release) carry this entry with `uvx redu-mcp` as its command.
    links = cursor_links()
    assert len(links) == 2
    for link in links:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)
        assert query["name"] == ["redu"]
        assert json.loads(base64.b64decode(query["config"][0])) == {**entry, "command": "uvx", "args": ["redu-mcp"]}
    # What Cursor does at launch: ${env:NAME} from its own environment.
    entry["args"] = [from_here(a) for a in entry["args"]]
    entry["env"]["REDU_API_KEY"] = artifacts.API_KEY
    async with artifacts.serving_sandbox() as (api_url, _):
        entry["env"].update(host_env(find_links, api_url, tmp_path / "state"))
        check_whoami(await whoami_through_inspector(config, "redu", inspector_home, tmp_path), DEFAULT_ACCESS)


@needs_inspector
async def test_vscode_config(find_links: Path, inspector_home: Path, tmp_path: Path):
    config = json.loads(readme_block("config", "vscode"))
    (prompt,) = config["inputs"]
    assert prompt["type"] == "promptString" and prompt["password"] is True  # masked, stored by VS Code
    entry = config["servers"]["redu"]
    assert entry["type"] == "stdio"
    assert entry["env"]["REDU_API_KEY"] == "${input:" + prompt["id"] + "}"
    # What VS Code does at launch: the answer to the prompt in place of ${input:id}.
    entry["args"] = [from_here(a) for a in entry["args"]]
    entry["env"]["REDU_API_KEY"] = artifacts.API_KEY
    async with artifacts.serving_sandbox() as (api_url, _):
        entry["env"].update(host_env(find_links, api_url, tmp_path / "state"))
        launched = {"mcpServers": config["servers"]}  # the Inspector reads only this shape
        check_whoami(await whoami_through_inspector(launched, "redu", inspector_home, tmp_path), DEFAULT_ACCESS)


def example_entries() -> list[str]:
    return list(json.loads(EXAMPLE.read_text())["mcpServers"])


@needs_inspector
@pytest.mark.parametrize("name", example_entries())
async def test_claude_desktop_example_config(name: str, find_links: Path, inspector_home: Path, tmp_path: Path):
    """Every entry launches today: from a clone, or from a wheel built from it (no release needed)."""
    config = json.loads(EXAMPLE.read_text())
    entry = config["mcpServers"][name]
    if entry["command"] == "uvx":
        assert entry["args"][:1] == ["--from"]  # a file, not a registry's package: there is no release yet
    entry["args"] = [from_here(a, find_links / artifacts.WHEEL_NAME) for a in entry["args"]]
    env = entry.setdefault("env", {})
    for key, value in env.items():
        env[key] = value.replace(KEY_PLACEHOLDER, artifacts.API_KEY)
    async with artifacts.serving_sandbox() as (api_url, _):
        # No UV_FIND_LINKS: the clone and the wheel need no package index for redu-mcp itself.
        env.update(host_env(find_links, api_url, tmp_path / "state"))
        del env["UV_FIND_LINKS"]
        run = await whoami_through_inspector(config, name, inspector_home, tmp_path)
    assert run.code == 0, run.stderr
    me = run.result["structuredContent"]
    if "--sandbox" in entry["args"]:
        assert me["sandbox"] is True
    else:
        check_whoami(run, "read" if "read" in entry["args"] else DEFAULT_ACCESS)


# --- Claude Code: the README's `claude mcp add` lines, run by the real CLI --------------------------------


@pytest.fixture
def claude_home(tmp_path: Path) -> Path:
    home = tmp_path / "claude-home"
    (home / "project").mkdir(parents=True)
    return home


def claude(home: Path, args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(
        [str(CLAUDE), *args],  # the tests that call this skip without CLAUDE
        cwd=home / "project", capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, **env, "HOME": str(home), "DISABLE_AUTOUPDATER": "1",
             "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def readme_claude_command(name: str, **replace: str) -> list[str]:
    line = readme_block("command", name)
    for old, new in replace.items():
        line = line.replace(old, new)
    words = shlex.split(line)
    assert words[:3] == ["claude", "mcp", "add"]
    return words[1:]


def status(output: str) -> str:
    match = re.search(r"Status: (.*)", output)
    assert match, output
    return match.group(1)


@needs_claude
@pytest.mark.parametrize("block", ["claude-code-stdio", "claude-code-stdio-uvx"])  # today; after the release
async def test_claude_code_stdio_line(block: str, find_links: Path, claude_home: Path, tmp_path: Path):
    async with artifacts.serving_sandbox() as (api_url, _):
        env = {**host_env(find_links, api_url, tmp_path / "state"), "REDU_API_KEY": artifacts.API_KEY}
        add = readme_claude_command(block, **{CLONE_PLACEHOLDER: str(REPO)})
        await anyio.to_thread.run_sync(lambda: claude(claude_home, add, env))
        stored = json.loads((claude_home / ".claude.json").read_text())["mcpServers"]["redu"]
        command = add[add.index("--") + 1 :]
        assert stored == {
            "type": "stdio",
            "command": command[0],
            "args": command[1:],
            "env": {"REDU_API_KEY": "${REDU_API_KEY}"},
        }  # the key itself is not in the file: Claude Code expands ${REDU_API_KEY} when it starts the server
        shown = await anyio.to_thread.run_sync(lambda: claude(claude_home, ["mcp", "get", "redu"], env))
    assert status(shown) == "✔ Connected", shown
    assert artifacts.API_KEY not in (claude_home / ".claude.json").read_text()


@needs_claude
def test_claude_code_http_line_with_a_header(claude_home: Path, tmp_path: Path):
    token = "operator-token-0123456789abcdef"
    with cli_http_server(tmp_path, env={"REDU_MCP_AUTH_TOKEN": token}) as server:  # requires the token
        url = server.url
        add = readme_claude_command("claude-code-http", **{"https://redu-mcp.example.com/mcp": url})
        claude(claude_home, add, {})
        stored = json.loads((claude_home / ".claude.json").read_text())["mcpServers"]["redu"]
        assert stored == {"type": "http", "url": url, "headers": {"Authorization": "Bearer ${REDU_MCP_AUTH_TOKEN}"}}
        connected = claude(claude_home, ["mcp", "get", "redu"], {"REDU_MCP_AUTH_TOKEN": token})
        refused = claude(claude_home, ["mcp", "get", "redu"], {"REDU_MCP_AUTH_TOKEN": "not-the-token-0123456789"})
    assert status(connected) == "✔ Connected", connected
    assert status(refused) != "✔ Connected", refused  # so the header was sent, with the token expanded


def test_readme_blocks_are_valid_json():
    assert client_blocks("config")
    for name in client_blocks("config"):
        json.loads(readme_block("config", name))
    assert isinstance(json.loads(EXAMPLE.read_text())["mcpServers"], dict)


def test_one_default_access_level_on_every_install_path():
    """No install line sets an access level of its own (only the example named read-only narrows
    it), and the server's default, the bundle's and the README's word agree."""
    configs = [json.loads(readme_block("config", name)) for name in client_blocks("config")]
    entries = [e for config in configs for e in (config.get("mcpServers") or config["servers"]).values()]
    entries += [json.loads(base64.b64decode(urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)["config"][0]))
                for link in cursor_links()]  # fmt: skip
    commands = [readme_block("command", name) for name in client_blocks("command")]
    assert entries and commands
    for entry in entries:
        assert "REDU_MCP_ACCESS" not in entry.get("env", {}) and "--access" not in entry["args"], entry
    for command in commands:
        assert "REDU_MCP_ACCESS" not in command and "--access" not in command, command
    for name, entry in json.loads(EXAMPLE.read_text())["mcpServers"].items():
        assert "REDU_MCP_ACCESS" not in entry.get("env", {})
        assert ("--access" in entry["args"]) is name.endswith("read-only"), name
    manifest = json.loads((REPO / "packaging" / "mcpb" / "manifest.json").read_text())
    assert manifest["user_config"]["access"]["default"] == DEFAULT_ACCESS
    assert settings_from_env({}).access == DEFAULT_ACCESS
    assert f"default access level, `{DEFAULT_ACCESS}`" in README
