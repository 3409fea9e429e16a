"""The README and ``docs/`` as a newcomer meets them: short, every link lands, and every command in
them is run by a test or names the tests that cover it.

A fenced block of commands or configuration (bash, json, python, yaml) follows a marker:
``<!-- client-config: NAME -->`` or ``<!-- client-command: NAME -->`` (``tests/test_clients.py`` runs
it with a real client), or ``<!-- checked-by: tests/FILE.py::TEST[, …] -->`` (those tests exist, and
cover it; some of them read the block itself). A block without one fails here.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

import redu_mcp.api
from redu_mcp.sandbox import Sandbox
from tests.helpers import REPO
from tests.test_inspector import INSPECTOR, INSTALL_INSPECTOR

README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
MAX_README_LINES = 250
CHECKED_LANGUAGES = {"bash", "sh", "shell", "console", "json", "python", "yaml", "toml"}
BLOCK = re.compile(r"(?:<!-- (?P<marker>[^\n]*?) -->\n)?```(?P<language>[\w-]*)\n(?P<body>.*?)\n```", re.S)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def blocks(path: Path) -> list[dict[str, Any]]:
    return [m.groupdict() for m in BLOCK.finditer(path.read_text())]


def block_checked_by(test: str) -> str:
    """The one block of the README or docs/ whose marker names ``test`` (a test of this file)."""
    found = [b["body"] for path in [README, *DOCS] for b in blocks(path) if test in (b["marker"] or "")]
    assert len(found) == 1, f"{len(found)} blocks are checked by {test}"
    return found[0]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, blanks to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)  # a `# comment` in a block is no heading
    return {slug(h) for h in re.findall(r"^#+ (.+)$", text, re.M)}


def test_the_readme_is_a_front_door_not_a_manual():
    assert len(README.read_text().splitlines()) <= MAX_README_LINES


def test_every_doc_is_linked_once_from_the_readme():
    links = [link for link in LINK.findall(README.read_text()) if link.startswith("docs/")]
    assert sorted(link.split("#")[0] for link in links) == sorted(f"docs/{p.name}" for p in DOCS)


@pytest.mark.parametrize("path", [README, *DOCS], ids=lambda p: p.name)
def test_every_relative_link_lands(path: Path):
    for link in LINK.findall(path.read_text()):
        if re.match(r"[a-z]+:", link):
            continue  # another site, or a client's own URL scheme
        target, _, anchor = link.partition("#")
        file = (path.parent / target).resolve() if target else path
        assert file.exists(), f"{path.name}: {link} points nowhere"
        if anchor and file.suffix == ".md":
            assert anchor in anchors(file), f"{path.name}: no heading for #{anchor} in {file.name}"


def named_tests(marker: str) -> list[str]:
    return [name.strip() for name in marker.removeprefix("checked-by:").split(",")]


@pytest.mark.parametrize("path", [README, *DOCS], ids=lambda p: p.name)
def test_every_command_is_run_or_names_the_tests_that_cover_it(path: Path):
    for block in blocks(path):
        marker = block["marker"] or ""
        if block["language"] not in CHECKED_LANGUAGES and not marker:
            continue  # a figure: a tree, a banner shown as text
        assert marker.startswith(("client-config:", "client-command:", "checked-by:")), (
            f"{path.name}: this block names no test that checks it:\n{block['body'][:200]}"
        )
        if marker.startswith("checked-by:"):
            for test in named_tests(marker):
                file, _, function = test.partition("::")
                source = (REPO / file).read_text()
                assert re.search(rf"^(?:async )?def {function}\(", source, re.M), f"{path.name}: no test {test}"


# --- blocks these tests run ----------------------------------------------------------------------------


@pytest.mark.skipif(INSPECTOR is None, reason=f"MCP Inspector CLI not installed: run {INSTALL_INSPECTOR}")
def test_the_readme_inspector_line_runs(tmp_path: Path):
    lines = block_checked_by("test_the_readme_inspector_line_runs").splitlines()
    npx = "npx @modelcontextprotocol/inspector@" + INSTALL_INSPECTOR.split()[2]  # the version CI tests
    assert all(line.startswith(npx + " ") for line in lines)
    (cli,) = [line for line in lines if " --cli " in line]
    server = lines[0].removeprefix(npx).split("#")[0].split()
    assert cli.removeprefix(npx).split()[1 : 1 + len(server)] == server  # the web UI starts the same server
    done = subprocess.run(
        [str(INSPECTOR), *cli.removeprefix(npx).split(), "--format", "json", "-q"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False, stdin=subprocess.DEVNULL,
        env={**os.environ, "HOME": str(tmp_path), "MCP_INSPECTOR_SECRET_STORE": "memory"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert '"flavors"' in done.stdout


async def test_the_api_library_example_runs(monkeypatch: pytest.MonkeyPatch):
    """The library example, run as written against the sandbox (its client stands in for the API)."""
    sandbox = Sandbox(provisioning_seconds=60)
    example = block_checked_by("test_the_api_library_example_runs")
    monkeypatch.setenv("REDU_API_KEY", "rk-docs-example-0123456789")
    client = sandbox.client()
    monkeypatch.setattr(redu_mcp.api, "ReduClient", lambda api_key: client)
    printed: list[tuple[Any, ...]] = []
    body = "\n".join("    " + line for line in example.splitlines())
    namespace: dict[str, Any] = {"print": lambda *args: printed.append(args)}
    exec(f"async def example():\n{body}\n", namespace)
    await namespace["example"]()
    assert printed == [(1, "provisioning")]
    await sandbox.aclose()


def test_the_ci_script_runs_the_checks_development_md_lists():
    ci = (REPO / ".ci" / "run").read_text()
    for line in block_checked_by("test_the_ci_script_runs_the_checks_development_md_lists").splitlines():
        command = line.split("#")[0].strip()
        for part in command.split(" && "):
            assert part in ci or f"bash {part}" in ci, f".ci/run does not run {part!r}"
