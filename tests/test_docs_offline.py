"""`/docs` works without internet: Swagger UI's assets are served by the app itself.

The browser test loads `/docs` from a real server in headless Chromium (tests/browser.py) with every
host but 127.0.0.1 unreachable (no name resolves, and any other request goes to a proxy that
refuses connections). It is skipped when Chromium is not installed, unless REQUIRE_BROWSER=1
(CI sets it) makes that a failure.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from app.main import create_app
from app.settings import Settings
from tests.browser import dump_dom
from tests.process import free_port, wait_until_ready

# Any absolute or scheme-relative URL: the docs page may name none, only paths on its own server.
ABSOLUTE_URL = re.compile(r"""(?:[a-z][a-z0-9+.-]*:)?//[^\s'"<>]+""", re.I)


def _settings() -> Settings:
    return Settings(
        database_url="sqlite+aiosqlite:///:memory:",  # the docs read no table
        access_log=False,
        log_level="WARNING",
        webhooks_dispatcher="off",
        rate_limit_per_second=0,
    )


async def test_docs_page_and_its_assets_come_from_the_app() -> None:
    app = create_app(_settings())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        page = await http.get("/docs")
        assert page.status_code == 200
        assert ABSOLUTE_URL.findall(page.text) == []
        assert "url: '/openapi.json'" in page.text
        assets = re.findall(r"""<(?:script|link)\b[^>]*\b(?:src|href)=["']([^"']+)""", page.text)
        assert len(assets) == 3, assets  # Swagger UI's script and stylesheet, the favicon
        for asset in assets:
            served = await http.get(asset)
            assert served.status_code == 200 and len(served.content) > 1000, asset
        assert (await http.get("/redoc")).status_code == 404  # not served, so nothing to load from a CDN


@pytest.fixture
def docs_server() -> Iterator[str]:
    """The base URL of a real uvicorn server on loopback, in this process (no second import of the app)."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(_settings()), host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_ready(base, "/openapi.json", timeout=30)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.mark.slow  # one headless browser rendering the whole spec: a few seconds
def test_docs_render_every_operation_in_a_browser_without_internet(
    chromium: str, docs_server: str, tmp_path: Path
) -> None:
    dom = dump_dom(chromium, f"{docs_server}/docs", tmp_path / "profile")
    assert '<h1 class="title">Dealcoach API' in dom, dom[-2000:]
    spec = httpx.get(f"{docs_server}/openapi.json").json()  # what the page rendered
    missing = [
        op["operationId"]
        for item in spec["paths"].values()
        for op in item.values()
        if f'id="operations-{op["tags"][0]}-{op["operationId"]}"' not in dom
    ]
    assert missing == [], f"Swagger UI did not render {missing}"
