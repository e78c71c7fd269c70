"""Debian's headless Chromium for the tests that load a page in a real browser, offline.

Only 127.0.0.1 is reachable: no other name resolves, and any other request goes to a proxy that
refuses connections. The ``chromium`` fixture skips when Chromium is not installed, unless
REQUIRE_BROWSER=1 (CI sets it) makes that a failure.
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
REQUIRE_BROWSER = os.environ.get("REQUIRE_BROWSER") == "1"


@pytest.fixture
def chromium() -> str:
    if not os.access(CHROMIUM, os.X_OK):
        if REQUIRE_BROWSER:
            pytest.fail(f"REQUIRE_BROWSER=1 but {CHROMIUM} is not installed (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is not installed")
    return CHROMIUM


def dump_dom(chromium: str, url: str, profile: Path) -> str:
    """The page's DOM once its scripts (and their fetches) have run, loaded with loopback only."""
    with socket.socket() as refusing:  # bound, never listening: every connection to it is refused
        refusing.bind(("127.0.0.1", 0))
        proxy = f"http://127.0.0.1:{refusing.getsockname()[1]}"
        browser = subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",  # CI runs as root
                "--disable-gpu",
                f"--user-data-dir={profile}",
                # Loopback bypasses the proxy; every other host goes to the refusing proxy and
                # resolves to nothing.
                f"--proxy-server={proxy}",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                # Run the page's scripts and fetches to completion before dumping.
                "--virtual-time-budget=10000",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=90,
        )
    assert browser.returncode == 0, browser.stderr[-2000:]
    return browser.stdout
