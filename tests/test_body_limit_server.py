"""A 200 MB upload against a real `dealcoach serve`: answered 413 after about the limit, the
connection closed, the worker's memory flat and nothing stored."""

from __future__ import annotations

import json
import os
import select
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.process import free_port, wait_until_ready

DEALCOACH = str(Path(sys.executable).parent / "dealcoach")
UPLOAD = 200 * 1024 * 1024
CHUNK = b"[" * 65536


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[int, int, str, Path]]:
    """(port, pid, admin key, database file) of one single-process server on SQLite."""
    db = tmp_path / "limit.db"
    env = {**os.environ, "DEALCOACH_DATABASE_URL": f"sqlite+aiosqlite:///{db}", "DEALCOACH_ACCESS_LOG": "false"}
    boot = subprocess.run(
        [DEALCOACH, "bootstrap", "--org", "Acme", "--admin-email", "ada@acme.test"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert boot.returncode == 0, boot.stderr
    port = free_port()
    proc = subprocess.Popen(
        [DEALCOACH, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_until_ready(f"http://127.0.0.1:{port}")
        yield port, proc.pid, json.loads(boot.stdout)["api_key"], db
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _upload(port: int, pid: int, head: str, chunked: bool) -> tuple[bytes, int, int]:
    """Send ``head`` then up to 200 MB until the server answers or hangs up; return the
    response, the bytes sent and the server's peak resident memory (KiB) meanwhile."""
    framed = (b"%x\r\n" % len(CHUNK) + CHUNK + b"\r\n") if chunked else CHUNK
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(head.encode())
    sock.setblocking(False)
    sent, peak, response = 0, 0, b""
    deadline = time.monotonic() + 60
    try:
        while sent < UPLOAD and time.monotonic() < deadline:
            readable, writable, _ = select.select([sock], [sock], [], 5)
            peak = max(peak, _rss_kib(pid))
            if readable:
                got = sock.recv(65536)
                if not got:
                    break
                response += got
            if writable:
                sent += sock.send(framed)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server hung up on the rest of the upload, as it should
    sock.settimeout(5)
    try:
        while got := sock.recv(65536):
            response += got
    except OSError:
        pass
    sock.close()
    return response, sent, peak


@pytest.mark.slow
@pytest.mark.parametrize("chunked", [True, False])
def test_a_200_mb_upload_is_cut_short_with_flat_memory(server: tuple[int, int, str, Path], chunked: bool) -> None:
    port, pid, key, db = server
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {UPLOAD}"
    head = (
        f"POST /v1/members HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
        f"Idempotency-Key: big-upload\r\nContent-Type: application/json\r\n{framing}\r\n\r\n"
    )
    before = _rss_kib(pid)
    response, sent, peak = _upload(port, pid, head, chunked)
    status_line, _, rest = response.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 413"), response[:300]
    assert b"content-type: application/problem+json" in rest.lower()
    assert b'"code":"payload_too_large"' in rest
    assert b"connection: close" in rest.lower()
    assert sent < 64 * 1024 * 1024, sent  # the server stopped taking the upload long before 200 MB
    assert peak - before < 32 * 1024, (before, peak)  # KiB: the body was never held whole
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM idempotency_key").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM member").fetchone() == (1,)
