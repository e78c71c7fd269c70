"""Helpers for tests that run the real `dealcoach` command as a separate process."""

from __future__ import annotations

import asyncio
import socket
import time

import httpx

from app.db.engine import make_engine, make_sessionmaker
from app.db.uow import UnitOfWork
from app.services.bootstrap import bootstrap_organization
from tests.conftest import settings_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_ready(base_url: str, path: str = "/readyz", timeout: float = 90) -> None:
    """Poll until the server answers 200 on ``path``; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{base_url}{path}", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{base_url} did not become ready"
        time.sleep(0.2)


def wait_for_port(port: int, timeout: float = 45) -> None:
    """Until something listens on 127.0.0.1:port."""
    import socket
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def bootstrap_acme(database_url: str) -> str:
    """Bootstrap the organisation Acme (admin Ada) in the migrated database a server is about to
    serve; the admin's API key."""

    async def bootstrap() -> str:
        engine = make_engine(settings_for(database_url))
        uow = UnitOfWork(make_sessionmaker(engine))
        try:
            done = await bootstrap_organization(uow, org_name="Acme", admin_email="ada@acme.test", admin_name="Ada")
        finally:
            await uow.close()
            await engine.dispose()
        return done.api_key

    return asyncio.run(bootstrap())


def add_sellers(http: httpx.Client) -> None:
    """Through the API, with an admin's key: the manager Mia and her sellers sam@acme.test and
    sue@acme.test, the owners the import tests' CSV files name."""
    mia = http.post("/v1/members", json={"name": "Mia", "email": "mia@acme.test", "role": "manager"})
    for name in ("sam", "sue"):
        body = {"name": name, "email": f"{name}@acme.test", "role": "seller", "manager_id": mia.json()["id"]}
        assert http.post("/v1/members", json=body).status_code == 201
