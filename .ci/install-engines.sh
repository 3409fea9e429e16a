#!/usr/bin/env bash
# Install the real server programs behind the sandbox's engines mode (redu_mcp/sandbox/engines/):
# PostgreSQL (initdb, postgres, psql) and redis-server, from Debian's packages, and useradd
# (package passwd: as root, each engine runs as its own redu-engine-NN system user).
# Idempotent: does nothing when they are already there.
set -euo pipefail

have_postgres() {
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        [[ -x "$dir/initdb" && -x "$dir/postgres" && -x "$dir/psql" ]] && return 0
    done
    command -v initdb >/dev/null && command -v postgres >/dev/null && command -v psql >/dev/null
}

have_redis() {
    command -v redis-server >/dev/null
}

have_useradd() {
    command -v useradd >/dev/null || [[ -x /usr/sbin/useradd || -x /sbin/useradd ]]
}

if have_postgres && have_redis && have_useradd; then
    echo "install-engines: PostgreSQL, Redis and useradd already installed"
    exit 0
fi

sudo=""
if [[ "$(id -u)" -ne 0 ]]; then
    sudo="sudo"
fi

echo "install-engines: installing postgresql, redis-server and passwd"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends postgresql redis-server passwd >/dev/null

have_postgres || { echo "install-engines: PostgreSQL binaries still missing" >&2; exit 1; }
have_redis || { echo "install-engines: redis-server still missing" >&2; exit 1; }
have_useradd || { echo "install-engines: useradd still missing" >&2; exit 1; }
echo "install-engines: done"
