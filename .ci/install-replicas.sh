#!/usr/bin/env bash
# Install what the multi-replica test (tests/test_replicas.py) runs besides redu-mcp itself: HAProxy
# (the load balancer in front of three replicas) and redis-server (the state they share), from
# Debian's packages. Idempotent: does nothing when both are already there.
set -euo pipefail

have() {
    command -v "$1" >/dev/null || [[ -x "/usr/sbin/$1" || -x "/usr/bin/$1" ]]
}

if have haproxy && have redis-server; then
    echo "install-replicas: haproxy and redis-server already installed"
    exit 0
fi

sudo=""
if [[ "$(id -u)" -ne 0 ]]; then
    sudo="sudo"
fi

echo "install-replicas: installing haproxy and redis-server"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# The packages' own services stay off: the tests start their own processes on free ports.
$sudo apt-get install -y -qq --no-install-recommends haproxy redis-server >/dev/null

have haproxy || { echo "install-replicas: haproxy still missing" >&2; exit 1; }
have redis-server || { echo "install-replicas: redis-server still missing" >&2; exit 1; }
echo "install-replicas: done ($(haproxy -v | head -n 1))"
