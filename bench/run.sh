#!/usr/bin/env bash
# `make bench`: Dealcoach against a bare ASGI + asyncpg baseline, both on PostgreSQL, driven by wrk.
# This script only sees to the prerequisites (wrk, a running PostgreSQL); bench/bench.py does
# the rest and stops everything it started. Settings: see bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${BENCH_PYTHON:-.venv/bin/python}"
PG_PORT="${BENCH_PG_PORT:-5432}"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
    echo "bench: need root (or sudo) to run: $*" >&2; return 1
  fi
}

if ! command -v wrk >/dev/null 2>&1; then
  echo "bench: installing wrk (apt-get)" >&2
  export DEBIAN_FRONTEND=noninteractive
  if ! as_root apt-get install -y -qq wrk >/dev/null 2>&1; then
    as_root apt-get update -qq
    as_root apt-get install -y -qq wrk >/dev/null
  fi
  command -v wrk >/dev/null 2>&1 || { echo "bench: could not install wrk" >&2; exit 2; }
fi

# Start the local PostgreSQL cluster on the bench port if it is installed but down.
if command -v pg_lsclusters >/dev/null 2>&1; then
  while read -r version cluster port status _; do
    if [ "$port" = "$PG_PORT" ] && [ "$status" = "down" ]; then
      echo "bench: starting PostgreSQL $version/$cluster" >&2
      as_root pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" start
    fi
  done < <(pg_lsclusters --no-header 2>/dev/null || true)
fi
if command -v pg_isready >/dev/null 2>&1 && [ -z "${BENCH_PG_DSN:-}" ]; then
  for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p "$PG_PORT" && break
    sleep 0.5
  done
fi

[ -x "$PY" ] || { echo "bench: $PY not found; run 'make install' first" >&2; exit 2; }
exec "$PY" bench/bench.py "$@"
