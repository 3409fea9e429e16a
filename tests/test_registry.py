"""``server.json`` (the MCP Registry entry) held to the registry's rules and to the project itself.

The rules are those of the 2025-12-11 ``server.json`` schema and the official registry's extra
requirements (``../shared/notes/distribution.md`` §2): a reverse-DNS name with one slash, a
description of at most 100 characters, exact versions, PyPI packages only from https://pypi.org,
owned through an ``mcp-name:`` marker in the README (PyPI's project description). The name and
versions must agree with ``pyproject.toml`` and the package, and every environment variable listed
must be one the server reads, with the defaults and choices it really has, secrets marked secret.
"""

from __future__ import annotations

import json
import re
import tomllib
from typing import Any

import pytest

import redu_mcp
from redu_mcp.config import settings_from_env
from tests.helpers import REPO

SCHEMA_URL = "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9.-]+/[a-zA-Z0-9._-]+$")
VERSION_RANGE = re.compile(r"[\^~<>=*\s]|(^|\.)[xX](\.|$)|^latest$")
SERVER_KEYS = {"$schema", "name", "title", "description", "version", "websiteUrl", "repository", "icons",
               "packages", "remotes", "_meta"}  # fmt: skip
PACKAGE_KEYS = {"registryType", "registryBaseUrl", "identifier", "version", "fileSha256", "runtimeHint",
                "transport", "runtimeArguments", "packageArguments", "environmentVariables"}  # fmt: skip
INPUT_KEYS = {"name", "description", "isRequired", "format", "value", "isSecret", "default", "placeholder",
              "choices", "variables"}  # fmt: skip
FORMATS = {"string", "number", "boolean", "filepath"}
SECRET_WORDS = {"KEY", "TOKEN", "SECRET", "PASSWORD"}  # a variable with one of these words holds a secret


@pytest.fixture(scope="module")
def server() -> dict[str, Any]:
    return json.loads((REPO / "server.json").read_text())


@pytest.fixture(scope="module")
def project() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def readme_marker(text: str) -> str | None:
    match = re.search(r"mcp-name:\s*([^\s>]+)", text)
    return match.group(1) if match else None


def test_the_entry_follows_the_schema_rules(server: dict[str, Any]):
    assert server["$schema"] == SCHEMA_URL
    assert set(server) <= SERVER_KEYS
    assert NAME_PATTERN.match(server["name"]) and 3 <= len(server["name"]) <= 200
    assert 1 <= len(server["description"]) <= 100
    assert not VERSION_RANGE.search(server["version"])
    assert server["repository"]["source"] == "github"
    for package in server["packages"]:
        assert set(package) <= PACKAGE_KEYS
        assert {"registryType", "identifier", "version", "transport"} <= set(package)
        assert not VERSION_RANGE.search(package["version"])
        for variable in package.get("environmentVariables", []):
            assert set(variable) <= INPUT_KEYS, variable["name"]
            assert variable["description"] and variable.get("format", "string") in FORMATS
            if "choices" in variable and "default" in variable:
                assert variable["default"] in variable["choices"]


def test_it_names_the_project_and_its_version(server: dict[str, Any], project: dict[str, Any]):
    """One version everywhere: pyproject, the package, the entry and its PyPI package."""
    assert project["version"] == redu_mcp.__version__ == server["version"]
    (package,) = server["packages"]
    assert (package["registryType"], package["registryBaseUrl"]) == ("pypi", "https://pypi.org")
    assert (package["identifier"], package["version"]) == (project["name"], project["version"])
    assert server["repository"]["url"] == project["urls"]["Repository"]
    assert server["websiteUrl"] == project["urls"]["Homepage"]


def test_pypi_ownership_marker_is_in_the_readme(server: dict[str, Any], project: dict[str, Any]):
    """The registry looks for ``mcp-name: <name>`` in the PyPI description, which is the README."""
    assert project["readme"] == "README.md"
    assert readme_marker((REPO / "README.md").read_text()) == server["name"]


def test_it_launches_with_uvx_over_stdio(server: dict[str, Any], project: dict[str, Any]):
    (package,) = server["packages"]
    assert package["runtimeHint"] == "uvx"
    assert package["transport"] == {"type": "stdio"}
    # uvx <identifier> runs the console script of the same name: it must exist.
    assert project["scripts"][package["identifier"]] == "redu_mcp.cli:main"


def test_environment_variables_are_the_servers_own(server: dict[str, Any]):
    """Each variable changes the settings when set to another value than its default, the default
    is the server's own, the choices are exactly what it accepts, and secrets are marked secret."""
    (package,) = server["packages"]
    variables = {v["name"]: v for v in package["environmentVariables"]}
    assert variables["REDU_API_KEY"]["isRequired"] is True
    baseline = settings_from_env({})
    for name, variable in variables.items():
        assert variable.get("isSecret", False) is bool(SECRET_WORDS & set(name.split("_"))), name
        if "default" in variable:
            assert settings_from_env({name: variable["default"]}) == baseline, name
        other = {"filepath": "/somewhere/else", "string": "https://elsewhere.invalid/v1"}[variable["format"]]
        for value in variable.get("choices") or [other]:
            changed = settings_from_env({name: value}) != baseline
            assert changed is (value != variable.get("default")), (name, value)
        if "choices" in variable:
            with pytest.raises(Exception, match="use one of " + ", ".join(variable["choices"])):
                settings_from_env({name: "not-a-choice"})


def test_every_version_written_in_the_docs_is_the_current_one(project: dict[str, Any]):
    docs = "".join(path.read_text() for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))])
    example = (REPO / "claude_desktop_config.example.json").read_text()
    written = (
        re.findall(r"redu-mcp@(\d[\w.]*)", docs + example)
        + re.findall(r"redu-mcp-(\d[\w.]*?)\.mcpb", docs)
        + re.findall(r"redu_mcp-(\d[\w.]*?)-py3-none-any\.whl", docs + example)
    )
    assert written and set(written) == {project["version"]}
    manifest = json.loads((REPO / "packaging" / "mcpb" / "manifest.json").read_text())
    assert manifest["version"] == project["version"]
