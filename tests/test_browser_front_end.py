"""A front end in a real browser: a static page on one origin signs in with a token from the
organisation's identity provider and reads Dealcoach on another origin (CORS, OIDC).

Three real servers on loopback: the identity provider (tests/oidc_issuer.py), the page
(tests/front_end/index.html) and Dealcoach. Debian's headless Chromium loads the page with every
host but 127.0.0.1 unreachable, as tests/test_docs_offline.py does; it is skipped when Chromium
is not installed, unless REQUIRE_BROWSER=1 (CI sets it) makes that a failure.
"""

from __future__ import annotations

import asyncio
import functools
import html
import json
import re
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import uvicorn

from app.db.engine import make_engine, make_sessionmaker
from app.db.uow import UnitOfWork
from app.main import create_app
from app.services.bootstrap import bootstrap_organization
from app.settings import Settings
from tests.browser import dump_dom
from tests.conftest import settings_for
from tests.oidc_issuer import AUDIENCE, LocalIssuer
from tests.process import free_port, wait_until_ready

PAGE_DIR = Path(__file__).resolve().parent / "front_end"
# What the page lists: the signed-in seller's tasks. Everything the page shows is compared with what
# the API answers the same token.
LISTED = "/v1/me/tasks"


@pytest.fixture
def page_origin() -> Iterator[str]:
    """The front end's own origin: a static file server on loopback."""
    handler = functools.partial(_QuietFiles, directory=str(PAGE_DIR))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def issuer() -> Iterator[LocalIssuer]:
    with LocalIssuer().running() as running:
        yield running


@pytest.fixture
def dealcoach(page_origin: str, sqlite_template: Path, tmp_path: Path) -> Iterator[tuple[str, Settings]]:
    """Dealcoach on loopback (on SQLite: the browser, not the database, is what this tests),
    allowing the page's origin."""
    database = tmp_path / "front_end.db"
    shutil.copyfile(sqlite_template, database)
    settings = settings_for(f"sqlite+aiosqlite:///{database}", cors_origins=page_origin, oidc_allow_insecure=True)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_ready(base, "/healthz", timeout=30)
        yield base, settings
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def _admin_key(settings: Settings) -> str:
    async def run() -> str:
        engine = make_engine(settings)
        try:
            uow = UnitOfWork(make_sessionmaker(engine))
            try:
                done = await bootstrap_organization(
                    uow, org_name="Acme", admin_email="ada@acme.test", admin_name="Ada Admin"
                )
            finally:
                await uow.close()
        finally:
            await engine.dispose()
        return done.api_key

    return asyncio.run(run())


@pytest.mark.slow  # one headless browser: a few seconds
def test_a_page_on_another_origin_signs_in_and_reads_dealcoach(
    chromium: str,
    dealcoach: tuple[str, Settings],
    issuer: LocalIssuer,
    page_origin: str,
    tmp_path: Path,
) -> None:
    api, settings = dealcoach
    admin = {"Authorization": f"Bearer {_admin_key(settings)}"}
    with httpx.Client(base_url=api, headers=admin) as http:
        provider = {"oidc_issuer": issuer.url, "oidc_audience": AUDIENCE}
        assert http.patch("/v1/settings", json=provider).status_code == 200
        member = {"name": "Sam Seller", "email": "sam.seller@acme.test", "role": "seller"}
        seller = http.post("/v1/members", json=member)
        assert seller.status_code == 201, seller.text
        coach = http.post("/v1/members", json={"name": "Mia Manager", "email": "mia@acme.test", "role": "manager"})
        deal = http.post(
            "/v1/deals", json={"name": "Globex", "account_name": "Globex", "owner_id": seller.json()["id"]}
        )
        assert deal.status_code == 201, deal.text
        # An admin proposes a coach on Sam's deal: a proposal waits on Sam, the owner.
        proposed = http.post(
            f"/v1/deals/{deal.json()['id']}/assignments", json={"member_id": coach.json()["id"], "role": "coach"}
        )
        assert proposed.status_code == 201, proposed.text
    token = issuer.token("sam.seller@acme.test")
    expected = httpx.get(f"{api}{LISTED}", headers={"Authorization": f"Bearer {token}"})
    assert expected.status_code == 200, expected.text

    page = f"{page_origin}/index.html#api={quote(api, safe='')}&path={quote(LISTED, safe='')}&token={token}"
    dom = dump_dom(chromium, page, tmp_path / "profile")
    shown = re.search(r'<pre id="result">(.*?)</pre>', dom, re.S)
    assert shown is not None, dom[-2000:]
    text = html.unescape(shown[1])
    assert text.startswith("{"), text  # not "loading", nor "failed: TypeError: Failed to fetch" (CORS)
    result = json.loads(text)
    assert result["status"] == 200
    assert result["request_id"]  # a response field only CORS exposes to the page
    assert result["body"] == expected.json()
    [task] = result["body"]["items"]
    assert (task["kind"], task["id"], task["deal_name"]) == ("assignment_proposal", proposed.json()["id"], "Globex")
