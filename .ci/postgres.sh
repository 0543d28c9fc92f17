#!/usr/bin/env bash
# Install (Debian's package) and start a PostgreSQL server on loopback for the tests, with a
# role and an empty database; prints the storage URL. Idempotent. Needs root.
set -euo pipefail
exec 3>&1 1>&2  # everything but the URL goes to stderr
if ! command -v pg_lsclusters > /dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql > /dev/null
fi
read -r version cluster _ < <(pg_lsclusters --no-header | head -n 1)
# The server must not inherit this script's outputs: it outlives the script, and a daemon holding
# the pipe of `$(bash .ci/postgres.sh)` (fd 3) or CI's log pipe keeps its reader waiting for EOF
# forever (CI hung 90 min on this). "Already running" is fine.
pg_ctlcluster "$version" "$cluster" start < /dev/null > /dev/null 2>&1 3>&- || true
for _ in $(seq 30); do
    runuser -u postgres -- psql -qtAc "select 1" > /dev/null 2>&1 && break
    sleep 1
done
runuser -u postgres -- psql -qtAc "select 1 from pg_roles where rolname = 'hpsearch'" | grep -q 1 \
    || runuser -u postgres -- psql -qc "create role hpsearch login password 'hpsearch' createdb"
runuser -u postgres -- psql -qc "drop database if exists hpsearch_test" > /dev/null 2>&1
runuser -u postgres -- psql -qc "create database hpsearch_test owner hpsearch" > /dev/null
echo "postgresql://hpsearch:hpsearch@127.0.0.1:5432/hpsearch_test" >&3
