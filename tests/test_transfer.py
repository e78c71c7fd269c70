"""`dealcoach import deals` and `dealcoach export` against a real server on loopback."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from app.cli import cli
from tests.process import add_sellers, bootstrap_acme, free_port, wait_until_ready

HEADER = "source,external_id,name,account_name,amount,currency,expected_close_date,stage,owner_email"


class Server:
    def __init__(self, base: str, key: str) -> None:
        self.base, self.key = base, key
        self.http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"})

    def run(self, *args: str) -> tuple[int, str]:
        done = CliRunner().invoke(cli, [*args, "--url", self.base, "--key", self.key])
        return done.exit_code, done.output

    def count(self, path: str) -> int:
        total, cursor = 0, None
        while True:
            body = self.http.get(path, params={"limit": 100, **({"cursor": cursor} if cursor else {})}).json()
            total += len(body["items"])
            cursor = body["next_cursor"]
            if not cursor:
                return total


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Server]:
    path = tmp_path_factory.mktemp("transfer") / "api.db"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite+aiosqlite:///{path}"
    key = bootstrap_acme(url)
    port = free_port()
    env = {**os.environ, "DEALCOACH_DATABASE_URL": url, "DEALCOACH_ACCESS_LOG": "false"}
    env["DEALCOACH_RATE_LIMIT_PER_SECOND"] = "0"
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "dealcoach"), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_ready(base)
        s = Server(base, key)
        add_sellers(s.http)
        yield s
    finally:
        process.terminate()
        process.wait(timeout=15)


def _write(path: Path, header: str, rows: list[str], *, bom: bool = False, crlf: bool = False) -> Path:
    end = "\r\n" if crlf else "\n"
    path.write_text(("\ufeff" if bom else "") + end.join([header, *rows]) + end, encoding="utf-8", newline="")
    return path


def _good(n: int, prefix: str) -> list[str]:
    owners = ("sam@acme.test", "SUE@acme.test")
    return [f"crm,{prefix}-{i},Deal {i},Account {i},1000.00,EUR,2026-12-31,proposal,{owners[i % 2]}" for i in range(n)]


def test_import_reports_bad_rows_and_a_rerun_repeats_nothing(server: Server, tmp_path: Path) -> None:
    rows = _good(1100, "a")  # three batches
    rows[3] = "crm,bad-date,Deal,Account,10.00,EUR,2026-13-45,proposal,sam@acme.test"
    rows[4] = "crm,ghost,Deal,Account,10.00,EUR,2026-12-31,proposal,nobody@acme.test"
    rows[5] = "crm,managed,Deal,Account,10.00,EUR,2026-12-31,proposal,mia@acme.test"
    rows[6] = rows[7]  # a duplicate external id
    rows[8] = f"crm,huge,{'x' * 10_000_001},Account,10.00,EUR,2026-12-31,proposal,sam@acme.test"
    rows[9] = "crm,lost-no-reason,Deal,Account,10.00,EUR,2026-12-31,closed_lost,sam@acme.test"  # refused by the API
    rows.append("crm,lost,Deal,Account,10.00,USD,2026-12-31,closed_lost,sue@acme.test,price,Initech")
    header = HEADER + ",loss_reason_code,competitor"
    rows = [r if r.count(",") >= 10 else r + ",," for r in rows]
    file = _write(tmp_path / "deals.csv", header, rows, bom=True, crlf=True)

    code, output = server.run("import", "deals", str(file), "--dry-run")
    assert code == 1 and '"dry_run": true' in output
    assert server.count("/v1/deals") == 0  # nothing written

    code, output = server.run("import", "deals", str(file))
    assert code == 1, output
    summary = json.loads(next(line for line in output.splitlines() if line.startswith("{")))
    assert summary["created"] == 1101 - 6 and summary["failed"] == 6 and summary["replayed"] == 0
    with open(tmp_path / "deals.errors.csv", newline="") as f:
        errors = {r["external_id"]: r for r in csv.DictReader(f)}
    assert {k: v["code"] for k, v in errors.items()} == {
        "bad-date": "invalid_date",
        "ghost": "unknown_owner",
        "managed": "owner_must_be_seller",
        "a-7": "duplicate_external_id",
        "huge": "cell_too_long",
        "lost-no-reason": "loss_reason_required",
    }
    assert errors["bad-date"]["line"] == "5"  # the file's line (header is line 1)
    deals = server.count("/v1/deals")
    events = server.count("/v1/events")
    assert deals == 1095

    # Run again, as after an interruption: every batch is replayed by its Idempotency-Key, nothing repeats.
    code, again = server.run("import", "deals", str(file))
    # The summary is the first run's: the replayed batches' answers are those the server gave then (1,096 rows
    # were sent; five were refused before sending).
    assert code == 1 and json.loads(next(x for x in again.splitlines() if x.startswith("{"))) == summary | {
        "replayed": 1096
    }
    assert "3 batch(es), 1096 row(s), had been applied by an earlier run" in again
    assert server.count("/v1/deals") == deals and server.count("/v1/events") == events

    lost = server.http.get("/v1/deals", params={"stage": "closed_lost"}).json()["items"]
    assert [d["loss"]["competitor"] for d in lost] == ["Initech"]


def test_import_refuses_a_broken_header_and_accepts_owner_ids(server: Server, tmp_path: Path) -> None:
    bad = _write(tmp_path / "bad.csv", HEADER + ",colour", ["crm,x,D,A,1.00,EUR,2026-12-31,proposal,sam@acme.test,red"])
    code, output = server.run("import", "deals", str(bad))
    assert code == 2 and "bad header: unknown column(s): colour" in output and "Traceback" not in output
    assert not (tmp_path / "bad.errors.csv").exists()

    sam = next(m for m in server.http.get("/v1/members").json()["items"] if m["email"] == "sam@acme.test")
    header = "owner_id,stage,expected_close_date,currency,amount,account_name,name,external_id,source"
    good = _write(tmp_path / "ids.csv", header, [f"{sam['id']},discovery,,,,Initech,Pilot,o-1,crm"])
    code, output = server.run("import", "deals", str(good))
    assert code == 0, output and not (tmp_path / "ids.errors.csv").exists()


def test_export_follows_cursors_as_csv_and_jsonl(server: Server, tmp_path: Path) -> None:
    file = _write(tmp_path / "more.csv", HEADER, _good(250, "e"))
    assert server.run("import", "deals", str(file))[0] == 0
    total = server.count("/v1/deals")
    out = tmp_path / "deals.jsonl"
    code, output = server.run("export", "deals", "--format", "jsonl", "--output", str(out))
    assert code == 0, output
    lines = out.read_text().splitlines()
    assert len(lines) == total > 200 and len({json.loads(x)["id"] for x in lines}) == total

    out = tmp_path / "deals.csv"
    code, _ = server.run("export", "deals", "--format", "csv", "--output", str(out), "--q", "Account 1")
    with open(out, newline="") as f:
        exported = list(csv.DictReader(f))
    assert code == 0 and exported and all("Account 1" in d["account_name"] for d in exported)
    assert json.loads(exported[0]["amount"])["currency"] == "EUR"

    code, output = server.run("export", "events", "--format", "jsonl", "--type", "deal.created")
    assert code == 0 and output.count('"type":"deal.created"') == total
