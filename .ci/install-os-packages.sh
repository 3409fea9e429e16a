#!/usr/bin/env bash
# Install the real programs the tests run besides redu-mcp, from Debian's packages, in one apt run:
#   - PostgreSQL (initdb, postgres, psql) and redis-server behind the sandbox's engines mode
#     (redu_mcp/sandbox/engines/), and useradd (package passwd: as root, each engine runs as its own
#     redu-engine-NN system user);
#   - HAProxy and redis-server for the multi-replica test (tests/test_replicas.py): the load balancer
#     in front of three replicas, and the state they share;
#   - curl and setpriv (package util-linux): another local account trying the HTTP server's token
#     (tests/test_http_local_token.py);
#   - /usr/bin/python3, at least 3.11 (package python3): the engines run by an unprivileged user with the
#     system's Python (tests/test_engines_attacks.py::test_without_root_engines_run_as_the_invoking_user);
#   - Chromium and chromedriver (packages chromium, chromium-driver): the confirmation page in a real
#     browser (tests/test_confirmation_page_browser.py).
# In CI a test that skips for want of any of these is an error (tests/conftest.py), so they must be here.
# The packages' own services stay off: the tests start their own processes on free ports.
# Idempotent: installs only the packages whose programs are missing.
set -euo pipefail

have() {
    command -v "$1" >/dev/null || [[ -x "/usr/sbin/$1" || -x "/sbin/$1" || -x "/usr/bin/$1" ]]
}

have_postgres() {
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        [[ -x "$dir/initdb" && -x "$dir/postgres" && -x "$dir/psql" ]] && return 0
    done
    have initdb && have postgres && have psql
}

system_python_ok() {
    [[ -x /usr/bin/python3 ]] && /usr/bin/python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'
}

missing=()
have_postgres || missing+=(postgresql)
have redis-server || missing+=(redis-server)
have useradd || missing+=(passwd)
have haproxy || missing+=(haproxy)
have curl || missing+=(curl)
have setpriv || missing+=(util-linux)
[[ -x /usr/bin/python3 ]] || missing+=(python3)
have chromium || missing+=(chromium)
have chromedriver || missing+=(chromium-driver)

if (( ${#missing[@]} == 0 )); then
    echo "install-os-packages: PostgreSQL, redis-server, useradd, HAProxy, curl, setpriv, /usr/bin/python3, Chromium and chromedriver already installed"
    system_python_ok || { echo "install-os-packages: /usr/bin/python3 is older than 3.11 ($(/usr/bin/python3 -V 2>&1))" >&2; exit 1; }
    exit 0
fi

sudo=""
if [[ "$(id -u)" -ne 0 ]]; then
    sudo="sudo"
fi

echo "install-os-packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

have_postgres || { echo "install-os-packages: PostgreSQL binaries still missing" >&2; exit 1; }
for program in redis-server useradd haproxy curl setpriv chromium chromedriver; do
    have "$program" || { echo "install-os-packages: $program still missing" >&2; exit 1; }
done
system_python_ok || { echo "install-os-packages: /usr/bin/python3 is missing or older than 3.11" >&2; exit 1; }
echo "install-os-packages: done"
