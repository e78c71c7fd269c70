"""A real Dealcoach server in a subprocess, for the schemathesis run (tests/api/test_schemathesis.py).

The server is started the way an operator would: ``dealcoach bootstrap`` (migrates, creates the
first organisation and admin key) then ``dealcoach serve`` on a free loopback port. Everything is
found relative to the running interpreter, so this works from any fresh clone's virtualenv.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.pg import PG_URL, REQUIRE_POSTGRES, fresh_pg_database, pg_unreachable
from tests.process import free_port

REPO = Path(__file__).resolve().parents[1]
_SCRIPT = Path(sys.executable).parent / "dealcoach"
# The console script of this virtualenv; `python -m app.cli` when the project is not installed.
DEALCOACH = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "app.cli"]
STARTUP_TIMEOUT = 30.0


@dataclass
class LiveServer:
    base_url: str
    api_key: str
    organization_id: str
    member_id: str
    log_path: Path
    # Existing resources, by path parameter name (see seed_targets).
    targets: dict[str, list[str]] = field(default_factory=dict)

    def log_size(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def log_since(self, offset: int, limit: int = 8000) -> str:
        """What the server logged after ``offset`` (its tracebacks explain a 500), at most ``limit`` chars."""
        with self.log_path.open("rb") as fh:
            fh.seek(offset)
            text = "".join(_readable(line) for line in fh.read().decode("utf-8", "replace").splitlines(keepends=True))
        return text if len(text) <= limit else "...\n" + text[-limit:]


def _readable(line: str) -> str:
    """A JSON log line with its traceback unfolded; any other line as is."""
    try:
        record = json.loads(line)
    except ValueError:
        return line
    if not isinstance(record, dict) or "exception" not in record:
        return line
    exception = record.pop("exception")
    return f"{json.dumps(record, ensure_ascii=True)}\n{exception}\n"


def _server_env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEALCOACH_")}
    env.update(
        DEALCOACH_DATABASE_URL=database_url,
        DEALCOACH_ACCESS_LOG="false",
        DEALCOACH_LOG_LEVEL="WARNING",
        DEALCOACH_RATE_LIMIT_PER_SECOND="0",  # the fuzzer sends far more than a client may
        PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    )
    return env


@contextlib.contextmanager
def live_server(database_url: str, workdir: Path) -> Iterator[LiveServer]:
    """Bootstrap the database, serve it on a free loopback port, and stop the server on exit."""
    env = _server_env(database_url)
    # cwd=workdir so that no stray .env file of the checkout leaks into the server's settings.
    boot = subprocess.run(
        [*DEALCOACH, "bootstrap", "--org", "Fuzz", "--admin-email", "fuzz@example.test"],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if boot.returncode != 0:
        raise RuntimeError(f"dealcoach bootstrap failed ({boot.returncode}):\n{boot.stdout}\n{boot.stderr}")
    created = json.loads(boot.stdout.strip().splitlines()[-1])

    port = free_port()
    log_path = workdir / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*DEALCOACH, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = LiveServer(
        base_url=f"http://127.0.0.1:{port}",
        api_key=created["api_key"],
        organization_id=created["organization_id"],
        member_id=created["member_id"],
        log_path=log_path,
    )
    try:
        _wait_ready(server, process)
        server.targets = seed_targets(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_ready(server: LiveServer, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    last = "no answer yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dealcoach serve exited with {process.returncode}:\n{server.log_since(0)}")
        try:
            response = httpx.get(f"{server.base_url}/readyz", timeout=2)
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text}"
        except httpx.TransportError as exc:
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(0.1)
    raise RuntimeError(f"server not ready after {STARTUP_TIMEOUT}s ({last}):\n{server.log_since(0)}")


def seed_targets(server: LiveServer) -> dict[str, list[str]]:
    """Create or look up resources for the fuzzer to aim at, by path parameter name.

    Random ids only ever reach the 404 branch; aiming part of the cases at existing resources lets
    PATCH/DELETE/GET-one reach their handlers and the database. Never the admin itself: a PATCH
    could demote or deactivate it and leave the rest of the run at 401/403.
    Extend this when a resource with a new path parameter joins the API.
    """
    auth = {"Authorization": f"Bearer {server.api_key}"}
    with httpx.Client(base_url=server.base_url, headers=auth, timeout=10) as http:

        def call(method: str, url: str, **kw: object) -> dict:
            response = http.request(method, url, **kw)  # type: ignore[arg-type]
            if response.status_code >= 300:
                raise RuntimeError(f"seeding fuzz targets: {method} {url} -> {response.status_code} {response.text}")
            return response.json()

        target = {"name": "Fuzz Target", "email": "target@example.test", "role": "seller"}
        member = call("POST", "/v1/members", json=target)
        key = call("POST", f"/v1/members/{member['id']}/api-keys", json={"label": "fuzz target"})
        codes = [items[0]["code"] for url in ("/v1/skills", "/v1/loss-reasons") if (items := call("GET", url)["items"])]
        deal = call(
            "PUT",
            "/v1/deals/by-external-ref/fuzz/deal-1",
            json={"name": "Fuzz deal", "account_name": "Fuzz Inc", "owner_id": member["id"]},
        )
        coach = call(
            "POST", "/v1/members", json={"name": "Fuzz Coach", "email": "coach@example.test", "role": "head_of_sales"}
        )
        coach_key = call("POST", f"/v1/members/{coach['id']}/api-keys", json={})["api_key"]
        assignment = call(
            "POST", f"/v1/deals/{deal['id']}/assignments", json={"member_id": coach["id"], "role": "coach"}
        )
        suggestion = call(
            "POST",
            f"/v1/deals/{deal['id']}/strategy/suggestions",
            json={"section": "risks", "body": "Budget freeze"},
            headers={"Authorization": f"Bearer {coach_key}"},
        )
    return {
        "member_id": [member["id"]],
        "key_id": [key["id"]],
        "code": codes,
        "deal_id": [deal["id"]],
        "assignment_id": [assignment["id"]],
        "suggestion_id": [suggestion["id"]],
        "source": ["fuzz"],
        "external_id": ["deal-1"],
    }


# --- PostgreSQL: see tests/pg.py ---------------------------------------------------------------

__all__ = [
    "PG_URL",
    "REQUIRE_POSTGRES",
    "LiveServer",
    "free_port",
    "fresh_pg_database",
    "live_server",
    "pg_unreachable",
]
