"""`dealcoach import deals` interrupted mid-way (Ctrl-C, or killed outright) and run again: every row is stored
once, no event repeats, and the second run says which batches the first had applied. A real server on loopback,
on both databases (PostgreSQL with two workers), and the real command as a separate process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from app.db.engine import autocommit, make_engine
from tests.conftest import settings_for
from tests.process import add_sellers, bootstrap_acme, free_port, wait_until_ready

ROWS = 2_000
BATCH = 20  # a hundred batches: the first is answered long before the last is sent
DEALCOACH = str(Path(sys.executable).parent / "dealcoach")


async def _facts(url: str) -> dict[str, int]:
    engine = make_engine(settings_for(url))
    try:
        async with engine.connect() as conn:

            async def one(sql: str) -> int:
                return int((await conn.execute(sa.text(sql))).scalar_one())

            return {
                "deals": await one("SELECT count(*) FROM deal"),
                "refs": await one("SELECT count(DISTINCT external_id) FROM deal_external_ref"),
                "max_version": await one("SELECT coalesce(max(version), 0) FROM deal"),
                "events": await one("SELECT count(*) FROM event"),
                "created_events": await one("SELECT count(DISTINCT subject_id) FROM event WHERE type = 'deal.created'"),
            }
    finally:
        await engine.dispose()


async def _stop_after_the_first_batch(url: str, importer: subprocess.Popen[bytes], stop_with: signal.Signals) -> int:
    """Send ``stop_with`` to the importer once a batch is stored; when it has exited and the server has
    finished what it had in hand, the number of deals stored."""
    engine = autocommit(make_engine(settings_for(url)))  # no BEGIN IMMEDIATE on SQLite: never holds up a write
    try:
        async with engine.connect() as conn:
            count = sa.text("SELECT count(*) FROM deal")
            deadline = time.monotonic() + 120
            while (await conn.execute(count)).scalar_one() < BATCH:
                assert time.monotonic() < deadline and importer.poll() is None, "no batch was applied"
                await asyncio.sleep(0.01)
            importer.send_signal(stop_with)
            while importer.poll() is None:
                assert time.monotonic() < deadline, "the importer did not stop"
                await asyncio.sleep(0.05)
            # A batch the server had in hand when a killed client went away still finishes: until nothing moves.
            last, still_since = -1, time.monotonic()
            while time.monotonic() - still_since < 1.0:
                now = (await conn.execute(count)).scalar_one()
                if now != last:
                    last, still_since = now, time.monotonic()
                await asyncio.sleep(0.05)
            return int(last)
    finally:
        await engine.dispose()


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """(database url, base url, admin key) of a real `dealcoach serve` with two sellers."""
    key = bootstrap_acme(database_url)
    port = free_port()
    env = {
        **os.environ,
        "DEALCOACH_DATABASE_URL": database_url,
        "DEALCOACH_ACCESS_LOG": "false",
        "DEALCOACH_RATE_LIMIT_PER_SECOND": "0",
        "DEALCOACH_WEBHOOKS_DISPATCHER": "off",
        "DEALCOACH_INBOX_APPLIER": "off",
    }
    workers = "1" if database_url.startswith("sqlite") else "2"
    server = subprocess.Popen(
        [DEALCOACH, "serve", "--port", str(port), "--workers", workers],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base)
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as http:
            add_sellers(http)
        yield database_url, base, key
    finally:
        server.terminate()
        server.wait(timeout=30)


def _import(file: Path, base: str, key: str, out: Path) -> subprocess.Popen[bytes]:
    with open(out.with_suffix(".out"), "wb") as stdout, open(out.with_suffix(".err"), "wb") as stderr:
        return subprocess.Popen(
            [DEALCOACH, "import", "deals", str(file), "--url", base, "--key", key, "--batch-size", str(BATCH)],
            stdout=stdout,
            stderr=stderr,
        )


@pytest.mark.parametrize("stop_with", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "killed"])
def test_an_interrupted_import_run_again_stores_every_row_once(
    served: tuple[str, str, str], tmp_path: Path, stop_with: signal.Signals
) -> None:
    url, base, key = served
    file = tmp_path / "deals.csv"
    owners = ("sam@acme.test", "sue@acme.test")
    rows = [f"crm,d-{i},Deal {i},Account {i},1000.00,EUR,2027-03-31,discovery,{owners[i % 2]}" for i in range(ROWS)]
    file.write_text("source,external_id,name,account_name,amount,currency,expected_close_date,stage,owner_email\n")
    with open(file, "a") as f:
        f.write("\n".join(rows) + "\n")

    before = asyncio.run(_facts(url))
    first = _import(file, base, key, tmp_path / "first")
    applied = asyncio.run(_stop_after_the_first_batch(url, first, stop_with))
    status = first.wait(timeout=60)
    assert 0 < applied < ROWS, f"the import was not stopped mid-way ({applied} of {ROWS} rows applied)"
    assert applied % BATCH == 0  # a batch is applied whole or not at all
    if stop_with == signal.SIGINT:
        assert status == 130
        assert "interrupted: run the same command again to finish" in (tmp_path / "first.err").read_text()
    else:
        assert status == -signal.SIGKILL

    second = _import(file, base, key, tmp_path / "second")
    assert second.wait(timeout=180) == 0, (tmp_path / "second.err").read_text()
    summary = json.loads((tmp_path / "second.out").read_text().strip().splitlines()[-1])
    # The replayed batches answer as they did the first time (created), so the summary covers the whole file.
    assert summary == {
        "rows": ROWS,
        "created": ROWS,
        "updated": 0,
        "unchanged": 0,
        "failed": 0,
        "replayed": applied,
        "dry_run": False,
    }
    said = (tmp_path / "second.err").read_text()
    assert f"{applied // BATCH} batch(es), {applied} row(s), had been applied by an earlier run" in said

    # Every row once: one deal per external id, each written once, one deal.created event each and nothing else.
    facts = asyncio.run(_facts(url))
    assert facts == {
        "deals": ROWS,
        "refs": ROWS,
        "max_version": 1,
        "events": before["events"] + ROWS,
        "created_events": ROWS,
    }

    # A third run replays every batch and writes nothing.
    third = _import(file, base, key, tmp_path / "third")
    assert third.wait(timeout=180) == 0
    assert json.loads((tmp_path / "third.out").read_text().strip().splitlines()[-1])["replayed"] == ROWS
    assert asyncio.run(_facts(url)) == facts
