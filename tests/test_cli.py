"""The `dealcoach` command, run as a user would: bootstrap, migrate, serve with workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.process import free_port, wait_until_ready

BIN = Path(sys.executable).parent
DEALCOACH = str(BIN / "dealcoach")


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DEALCOACH, *args], env=env, capture_output=True, text=True, timeout=60)


def _env(url: str) -> dict[str, str]:
    return {**os.environ, "DEALCOACH_DATABASE_URL": url, "DEALCOACH_ACCESS_LOG": "false"}


def test_bootstrap_prints_one_json_line_and_the_key_works(tmp_path: Path) -> None:
    env = _env(f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    done = _run(["bootstrap", "--org", "Acme", "--admin-email", "ada@acme.test", "--admin-name", "Ada"], env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1
    created = json.loads(lines[0])
    assert set(created) == {"organization_id", "member_id", "api_key"}
    assert _run(["migrate"], env).returncode == 0  # idempotent
    bad = _run(["bootstrap", "--org", "X", "--admin-email", "not-an-email"], env)
    assert bad.returncode == 2 and "email" in bad.stderr


@pytest.fixture
def served(pg_database: str) -> Iterator[tuple[str, str, str]]:
    """Two instances on one PostgreSQL database: one with two workers, one with one."""
    env = _env(pg_database)
    boot = _run(["bootstrap", "--org", "Acme", "--admin-email", "ada@acme.test"], env)
    assert boot.returncode == 0, boot.stderr
    key = json.loads(boot.stdout)["api_key"]
    ports = [free_port(), free_port()]
    procs = [
        subprocess.Popen(
            [DEALCOACH, "serve", "--port", str(ports[0]), "--workers", "2"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        ),
        subprocess.Popen(
            [DEALCOACH, "serve", "--port", str(ports[1])], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        ),
    ]
    try:
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        for url in urls:
            wait_until_ready(url)
        yield urls[0], urls[1], key
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_idempotent_post_replays_across_workers_and_instances(served: tuple[str, str, str]) -> None:
    workers2, single, key = served
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": "cross-worker"}
    body = {"name": "Sam", "email": "sam@acme.test", "role": "seller"}
    first = httpx.post(f"{workers2}/v1/members", json=body, headers=headers, timeout=10)
    assert first.status_code == 201, first.text
    # Fresh connections spread over both workers; the other instance shares only the database.
    for url in [workers2] * 8 + [single] * 2:
        with httpx.Client(timeout=10) as client:
            again = client.post(f"{url}/v1/members", json=body, headers=headers)
        assert again.status_code == 201
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json() == first.json()
    members = httpx.get(f"{single}/v1/members", headers={"Authorization": f"Bearer {key}"}, timeout=10).json()
    assert [m["email"] for m in members["items"]].count("sam@acme.test") == 1
    metrics = httpx.get(f"{workers2}/metrics", timeout=10).text
    assert "dealcoach_http_requests_total" in metrics


def test_logs_are_json_lines_with_the_request_id(tmp_path: Path) -> None:
    env = {**_env(f"sqlite+aiosqlite:///{tmp_path / 'log.db'}"), "DEALCOACH_ACCESS_LOG": "true"}
    assert _run(["migrate"], env).returncode == 0
    port = free_port()
    proc = subprocess.Popen(
        [DEALCOACH, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_until_ready(f"http://127.0.0.1:{port}", "/healthz")
        response = httpx.get(f"http://127.0.0.1:{port}/v1/me", headers={"X-Request-ID": "trace-42"}, timeout=5)
        assert response.status_code == 401 and response.headers["x-request-id"] == "trace-42"
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=15)
    records = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert records, stderr
    access = [r for r in records if r.get("request_id") == "trace-42"]
    assert access and access[0]["status"] == 401 and access[0]["path"] == "/v1/me"
    assert all({"timestamp", "level", "event"} <= r.keys() for r in records)


def test_a_served_worker_builds_the_app_and_freezes_what_that_made(tmp_path: Path) -> None:
    """`dealcoach serve` builds each worker's app with ``served_app``: the objects made while building
    it are moved to the collector's permanent generation (a fresh interpreter, so the suite's own
    objects are not frozen)."""
    code = (
        "import gc; from app.main import served_app; "
        "frozen = gc.get_freeze_count(); app = served_app(); "
        "print(frozen, gc.get_freeze_count(), type(app).__name__)"
    )
    env = {**os.environ, "DEALCOACH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'f.db'}"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    before, after, kind = done.stdout.split()
    assert int(before) == 0 and int(after) > 10_000 and kind == "FastAPI"
