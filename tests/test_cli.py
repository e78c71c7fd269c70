"""The `dealcoach` command, run as a user would: bootstrap, migrate, serve with workers."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
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


def _served_connections(server_pid: int, port: int) -> dict[int, int]:
    """Of the connections to ``port`` a worker of the server has accepted: how many, by worker pid
    (from /proc: the established sockets of that local port, and the workers' open files)."""
    established: set[str] = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
            established.add(f"socket:[{fields[9]}]")
    children = Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split()
    held: dict[int, int] = {}
    for child in map(int, children):
        links = [os.readlink(fd) for fd in Path(f"/proc/{child}/fd").iterdir()]
        count = sum(1 for link in links if link in established)
        if count:
            held[child] = count
    return held


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads who holds which connection from /proc")
def test_workers_share_connections_opened_at_once(tmp_path: Path) -> None:
    """Each worker listens on a socket of its own (app/serving.py): 64 connections opened at once
    are spread over both workers instead of landing on whichever was awake, and a port already
    taken is refused, not shared."""
    env = _env(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}")
    assert _run(["migrate"], env).returncode == 0
    port = free_port()
    proc = subprocess.Popen(
        [DEALCOACH, "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    clients: list[socket.socket] = []
    try:
        wait_until_ready(f"http://127.0.0.1:{port}", "/healthz")
        deadline = time.monotonic() + 60
        while len(_served_connections(proc.pid, port)) < 2:  # until both workers listen
            assert time.monotonic() < deadline, "the second worker never served"
            _close(clients)
            clients = _asked(port, 8)
        _close(clients)
        clients = _asked(port, 64)
        held = _served_connections(proc.pid, port)
        assert sum(held.values()) == 64 and min(held.values()) >= 16, held  # Bin(64, 1/2) < 16: 3 in 100,000

        taken = _run(["serve", "--port", str(port), "--workers", "2"], env)
        assert taken.returncode == 3 and f"cannot listen on 127.0.0.1:{port}" in taken.stderr, taken.stderr
    finally:
        _close(clients)
        proc.terminate()
        _, stderr = proc.communicate(timeout=15)
    started = [json.loads(line) for line in stderr.splitlines() if line.startswith('{"serving"')]
    assert started == [{"serving": f"http://127.0.0.1:{port}", "workers": 2, "sockets": 2}], stderr


def _asked(port: int, count: int) -> list[socket.socket]:
    """``count`` connections opened at once, each answered once (so a worker has accepted it)."""
    clients = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(count)]
    for client in clients:
        client.sendall(f"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n\r\n".encode())
    for client in clients:
        assert client.recv(65536).startswith(b"HTTP/1.1 200")
    return clients


def _close(clients: list[socket.socket]) -> None:
    for client in clients:
        client.close()
