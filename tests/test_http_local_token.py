"""A loopback HTTP server is not a private one: every account on the machine can reach the port.

So ``redu-mcp --transport http`` requires a bearer token by default. Without ``REDU_MCP_AUTH_TOKEN``
it generates one, keeps it in ``$XDG_STATE_HOME/redu-mcp/http-token`` (0600, in a 0700 directory of
ours) and prints it once, in the start-up banner, with a client configuration that uses it.
``--auth none`` is the explicit opt-out, on loopback only, with a warning.

Each test runs the real command as a child process and attacks it from outside: no token, a wrong
token, a planted symbolic link, a loose umask, another local user.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from redu_mcp.server.http._local_token import TOKEN_FILE_NAME, load_or_create_token
from redu_mcp.server.settings import ConfigError
from tests.helpers import INITIALIZE, REPO, CliServer, cli_command, cli_http_server, free_port, raw_post

OPERATOR_TOKEN = "operator-chosen-token-b71f0c29d4e8"


def token_path(server: CliServer) -> Path:
    return server.state / "redu-mcp" / TOKEN_FILE_NAME


def banner_lines(log: str) -> list[str]:
    """The start-up banner: the lines before the first log record."""
    lines = log.splitlines()
    end = next(i for i, line in enumerate(lines) if line.startswith(("INFO ", "WARNING ", "ERROR ")))
    return lines[:end]


def run_cli(state: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The command, expected to refuse to start (so it is run to completion)."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("REDU_")}
    child_env.update(XDG_STATE_HOME=str(state), **(env or {}))
    return subprocess.run(
        [*cli_command(), "--transport", "http", "--sandbox", "--port", str(free_port()), *args],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, env=child_env, cwd=REPO, timeout=60, check=False,
    )  # fmt: skip


# --- the default: a token, required ---------------------------------------------------------------------


async def test_default_http_answers_401_without_the_printed_token(tmp_path: Path):
    with cli_http_server(tmp_path) as server:
        token = server.token
        assert token and len(token) >= 32

        missing = await raw_post(server.url)
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == 'Bearer realm="redu-mcp"'  # RFC 6750: no error code
        wrong = await raw_post(server.url, {"authorization": "Bearer " + "x" * len(token)})
        assert wrong.status_code == 401
        assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
        almost = await raw_post(server.url, {"authorization": f"Bearer {token[:-1]}"})
        assert almost.status_code == 401
        assert (await raw_post(server.url, {"authorization": token})).status_code == 401  # not a bearer
        assert (await raw_post(server.url, {"authorization": f"Bearer {token}"})).status_code == 200

        for mode in ("auto", "legacy"):
            async with server.client(mode) as client:
                assert (await client.call_tool("whoami", {})).structured_content["sandbox"] is True

        # The banner gives a working client configuration: the claude line and a JSON entry.
        banner = banner_lines(server.log())
        assert any(
            f'claude mcp add --transport http redu {server.url} --header "Authorization: Bearer {token}"' in line
            for line in banner
        )
        entry = json.loads(next(line for line in banner if '"mcpServers"' in line))
        assert entry["mcpServers"]["redu"] == {
            "type": "http",
            "url": server.url,
            "headers": {"Authorization": f"Bearer {token}"},
        }

        # The file: ours, 0600, in a 0700 directory; it holds the printed token.
        path = token_path(server)
        assert path.read_text().strip() == token
        info, parent = path.lstat(), path.parent.lstat()
        assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600
        assert stat.S_IMODE(parent.st_mode) == 0o700 and not stat.S_ISLNK(parent.st_mode)
        assert info.st_uid == parent.st_uid == os.geteuid()

        # The token is printed once, in the banner, and in no log line (not even after failed attempts).
        log = server.log()
        assert log.count(token) == sum(line.count(token) for line in banner) == 2
        assert "Traceback" not in log


async def test_a_restart_reuses_the_token_so_client_configs_keep_working(tmp_path: Path):
    with cli_http_server(tmp_path) as first:
        token = first.token
    with cli_http_server(tmp_path) as second:
        assert second.token == token
        assert (await raw_post(second.url, {"authorization": f"Bearer {token}"})).status_code == 200


async def test_private_whatever_the_umask_and_a_loose_directory_is_tightened(tmp_path: Path):
    loose = tmp_path / "cli-state" / "redu-mcp"
    loose.mkdir(parents=True)
    loose.chmod(0o777)
    with cli_http_server(tmp_path, umask=0) as server:
        assert server.token
        assert stat.S_IMODE(loose.stat().st_mode) == 0o700
        assert stat.S_IMODE(token_path(server).stat().st_mode) == 0o600


@pytest.mark.parametrize("target_exists", [True, False])
async def test_a_planted_symlink_at_the_token_path_is_never_followed(tmp_path: Path, target_exists: bool):
    """Someone who could plant a link there would make us write our token to (or read theirs from)
    a file they choose. Neither happens: the link is replaced by a regular file of ours."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = elsewhere / "known-token"
    planted = "attacker-knows-this-token-0123456789"
    if target_exists:
        target.write_text(planted + "\n")
        target.chmod(0o600)
    state = tmp_path / "cli-state" / "redu-mcp"
    state.mkdir(parents=True, mode=0o700)
    (state / TOKEN_FILE_NAME).symlink_to(target)

    with cli_http_server(tmp_path) as server:
        token = server.token
        assert token and token != planted
        link = token_path(server)
        assert not link.is_symlink() and stat.S_IMODE(link.lstat().st_mode) == 0o600
        assert link.read_text().strip() == token
        assert (await raw_post(server.url, {"authorization": f"Bearer {planted}"})).status_code == 401
        assert (await raw_post(server.url, {"authorization": f"Bearer {token}"})).status_code == 200
    if target_exists:
        assert target.read_text() == planted + "\n"  # not overwritten through the link
    else:
        assert not target.exists()  # not created through the link
    assert sorted(p.name for p in elsewhere.iterdir()) == (["known-token"] if target_exists else [])


async def test_a_token_file_others_could_read_is_replaced(tmp_path: Path):
    state = tmp_path / "cli-state" / "redu-mcp"
    state.mkdir(parents=True, mode=0o700)
    leaked = "leaked-token-from-a-0644-file-5e6f7a8b9c"
    (state / TOKEN_FILE_NAME).write_text(leaked)
    (state / TOKEN_FILE_NAME).chmod(0o644)
    with cli_http_server(tmp_path) as server:
        assert server.token and server.token != leaked
        assert (await raw_post(server.url, {"authorization": f"Bearer {leaked}"})).status_code == 401
        assert "was readable by others" in server.log()


def test_a_symlinked_state_directory_is_refused(tmp_path: Path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    base = tmp_path / "state"
    base.mkdir()
    (base / "redu-mcp").symlink_to(elsewhere, target_is_directory=True)
    done = run_cli(base)
    assert done.returncode == 2, done.stderr
    assert "symbolic link" in done.stderr and "Traceback" not in done.stderr
    assert list(elsewhere.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a directory to another user")
def test_a_state_directory_of_another_user_is_refused(tmp_path: Path):
    base = tmp_path / "state"
    theirs = base / "redu-mcp"
    theirs.mkdir(parents=True, mode=0o700)
    os.chown(theirs, 65534, 65534)
    done = run_cli(base)
    assert done.returncode == 2, done.stderr
    assert "belongs to another user" in done.stderr
    assert list(theirs.iterdir()) == []


def test_token_file_oddities_are_replaced_or_refused_without_hanging(tmp_path: Path):
    state = tmp_path / "redu-mcp"
    state.mkdir(mode=0o700)
    os.mkfifo(state / TOKEN_FILE_NAME, 0o600)  # opening a FIFO to read would block
    made = load_or_create_token(state)
    assert made.created and (state / TOKEN_FILE_NAME).read_text().strip() == made.token
    (state / TOKEN_FILE_NAME).write_text("short\n")  # not a usable token
    assert load_or_create_token(state).token != "short"
    again = load_or_create_token(state)
    assert not again.created and again.token == load_or_create_token(state).token
    (state / TOKEN_FILE_NAME).unlink()
    (state / TOKEN_FILE_NAME).mkdir()  # a directory in its place cannot be replaced: a clear error
    with pytest.raises(ConfigError, match="cannot keep the HTTP token"):
        load_or_create_token(state)
    assert not [p for p in state.iterdir() if p.name.endswith(".tmp")]  # no temporary file left behind


# --- another account on the same machine ------------------------------------------------------------------


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A directory other users may traverse (pytest's own tmp_path is 0700): only our modes protect."""
    path = Path(tempfile.mkdtemp(prefix="redu-mcp-shared-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def as_nobody(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command],
        capture_output=True, text=True, timeout=30, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setpriv") or not shutil.which("curl"),
    reason="needs root, setpriv and curl to act as another local user",
)
async def test_another_local_user_can_neither_read_the_token_nor_use_the_server(shared_tmp: Path, tmp_path: Path):
    state = shared_tmp / "state"
    with cli_http_server(tmp_path, env={"XDG_STATE_HOME": str(state)}) as server:
        path = token_path(server)
        assert server.state == state and server.token and path.exists()
        read = as_nobody("cat", str(path))
        assert read.returncode != 0 and "Permission denied" in read.stderr
        assert server.token not in read.stdout
        curl = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", server.url,
                "-H", "content-type: application/json", "-H", "accept: application/json, text/event-stream",
                "-d", json.dumps(INITIALIZE)]  # fmt: skip
        assert as_nobody(*curl).stdout == "401"
        # The same request with the token is served: it is the token, not the account, that was missing.
        with_token = [*curl, "-H", f"authorization: Bearer {server.token}"]
        assert subprocess.run(with_token, capture_output=True, text=True, timeout=30).stdout == "200"


# --- an operator token, and the explicit opt-out ----------------------------------------------------------


async def test_an_operator_token_is_used_and_never_printed(tmp_path: Path):
    with cli_http_server(tmp_path, env={"REDU_MCP_AUTH_TOKEN": OPERATOR_TOKEN}) as server:
        assert (await raw_post(server.url)).status_code == 401
        assert (await raw_post(server.url, {"authorization": f"Bearer {OPERATOR_TOKEN}"})).status_code == 200
        assert OPERATOR_TOKEN not in server.log()
        assert "Bearer ${REDU_MCP_AUTH_TOKEN}" in server.log()  # the banner names it instead
        assert not (server.state / "redu-mcp" / TOKEN_FILE_NAME).exists()  # nothing generated


async def test_auth_none_on_loopback_serves_with_a_warning(tmp_path: Path):
    with cli_http_server(tmp_path, "--auth", "none", env={"REDU_MCP_AUTH_TOKEN": OPERATOR_TOKEN}) as server:
        assert (await raw_post(server.url)).status_code == 200
        log = server.log()
        assert "WARNING" in log and "WITHOUT authentication" in log
        assert server.token is None and OPERATOR_TOKEN not in log
        assert not (server.state / "redu-mcp" / TOKEN_FILE_NAME).exists()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10"])
def test_auth_none_off_loopback_refuses_to_start(tmp_path: Path, host: str):
    done = run_cli(tmp_path / "state", "--auth", "none", "--host", host)
    assert done.returncode == 2, done.stderr
    assert f"refusing to serve HTTP on {host} without authentication (--auth none is for loopback only)" in done.stderr
    assert "Traceback" not in done.stderr


def test_no_token_off_loopback_refuses_to_start_and_generates_nothing(tmp_path: Path):
    done = run_cli(tmp_path / "state", "--host", "0.0.0.0")
    assert done.returncode == 2
    assert "refusing to serve HTTP on 0.0.0.0 without authentication" in done.stderr
    assert not (tmp_path / "state" / "redu-mcp" / TOKEN_FILE_NAME).exists()
