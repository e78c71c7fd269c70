"""Import of a large CSV against a PostgreSQL-backed server: `.venv/bin/python bench/import_bench.py`.

Checks the figures `dealcoach import deals` promises: a 100,000-row CSV imported at 5,000 rows/s
or more, with the importer's peak RSS under 100 MB.

Drops and recreates the PostgreSQL database `dealcoach_bench_import`, migrates it and bootstraps
an organisation with the real commands (`dealcoach migrate`, `dealcoach bootstrap`), starts a real
`dealcoach serve --workers 2` on loopback (rate limits off, access log off), adds a manager and
BENCH_IMPORT_SELLERS sellers through the API, writes a BENCH_IMPORT_ROWS-row CSV (owners by email;
mostly open stages, some won, some lost with a loss reason, which opens a review), then runs
`.venv/bin/dealcoach import deals FILE --url ... --key ...` as a subprocess, exactly as a user
would. Rows/s = rows ÷ the command's wall time (start of the process to its exit, Python's start
and the owners' lookup included); peak RSS is the importer's own (`os.wait4` on its pid gives that
process's rusage, `ru_maxrss`), not the server's. The deals and reviews stored are then counted
in the database, and the CPU time the import cost the importer, the server's
processes and PostgreSQL's backends (from /proc: PostgreSQL must run on this machine).

Exit status: 0 when the bench ran, whatever the aims say (an aim missed is printed FAIL); 1 when
the import failed (non-zero exit, rows refused, deals missing); 2 when it could not run (no
PostgreSQL, a server that did not start).

Settings (environment): BENCH_PG_DSN (superuser DSN on the maintenance database, default
postgresql://postgres@127.0.0.1:5432/postgres), BENCH_IMPORT_ROWS (100000), BENCH_IMPORT_SELLERS
(20), BENCH_IMPORT_IN_FLIGHT (the importer's --in-flight; default its own, 2), BENCH_KEEP_FILES=1 keeps the CSV and the importer's output in bench/results/.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx

from common import PG_DSN, dsn, recreate_database, sa_url

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DB = "dealcoach_bench_import"
ROWS = int(os.environ.get("BENCH_IMPORT_ROWS", "100000"))
SELLERS = int(os.environ.get("BENCH_IMPORT_SELLERS", "20"))
KEEP = os.environ.get("BENCH_KEEP_FILES") == "1"
IN_FLIGHT = os.environ.get("BENCH_IMPORT_IN_FLIGHT")  # the importer's --in-flight; unset: its default (2)
RATE_AIM = 5_000.0  # rows/s
RSS_AIM_MB = 100.0
STAGES = (
    ("prospecting", 20),
    ("qualification", 18),
    ("discovery", 16),
    ("proposal", 14),
    ("negotiation", 12),
    ("closed_won", 10),
    ("closed_lost", 10),
)
LOSS_REASONS = ("price", "competitor", "incumbent", "no_budget", "timing")
CURRENCIES = ("EUR", "USD", "GBP")
HEADER = (
    "source,external_id,name,account_name,amount,currency,expected_close_date,stage,owner_email,"
    "loss_reason_code,competitor"
)


async def stored() -> tuple[int, int, int]:
    conn = await asyncpg.connect(dsn(DB))
    try:
        deals = await conn.fetchval("SELECT count(*) FROM deal")
        reviews = await conn.fetchval("SELECT count(*) FROM closed_lost_review")
        events = await conn.fetchval("SELECT count(*) FROM event")
        return int(deals), int(reviews), int(events)
    finally:
        await conn.close()


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return found
    for child in map(int, children):
        found += [child, *_descendants(child)]
    return found


def _backends() -> list[int]:
    """PostgreSQL's backends serving the bench database (same machine: /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if command.startswith(b"postgres: ") and DB.encode() in command:
                pids.append(int(entry.name))
    return pids


def cpu_snapshot(server_pid: int) -> dict[str, dict[int, float]]:
    """CPU seconds so far of the server's processes and of PostgreSQL's backends, by pid."""
    return {
        "server": {p: _cpu_seconds(p) for p in [server_pid, *_descendants(server_pid)]},
        "postgres": {p: _cpu_seconds(p) for p in _backends()},
    }


def cpu_used(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]], what: str) -> float:
    return sum(t - before[what].get(p, 0.0) for p, t in after[what].items())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_ready(base: str, server: subprocess.Popen[bytes], timeout: float = 90) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    return False


def write_csv(path: Path, emails: list[str]) -> None:
    """ROWS deals of a CRM export: owners by email, most open, some won, some lost with a reason."""
    rng = random.Random(20261129)
    stages = [s for s, _ in STAGES]
    weights = [w for _, w in STAGES]
    with open(path, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(HEADER.split(","))
        for n in range(ROWS):
            stage = rng.choices(stages, weights)[0]
            reason = rng.choice(LOSS_REASONS) if stage == "closed_lost" else ""
            competitor = "Initech" if reason == "competitor" else ""
            out.writerow(
                (
                    "crm",
                    f"deal-{n:07d}",
                    f"Account {n % 5000} {('renewal', 'expansion', 'pilot')[n % 3]}",
                    f"Account {n % 5000}",
                    f"{rng.randrange(10, 5000) * 100}.00",
                    rng.choice(CURRENCIES),
                    f"2027-{1 + n % 12:02d}-{1 + n % 28:02d}",
                    stage,
                    emails[n % len(emails)],
                    reason,
                    competitor,
                )
            )


def main() -> int:
    try:
        asyncio.run(recreate_database(DB))
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"PostgreSQL is not available at {PG_DSN}: {exc}")
        return 2
    env = {
        **os.environ,
        "DEALCOACH_DATABASE_URL": sa_url(DB),
        "DEALCOACH_RATE_LIMIT_PER_SECOND": "0",
        "DEALCOACH_ACCESS_LOG": "false",
        "DEALCOACH_LOG_LEVEL": "WARNING",
    }
    dealcoach = str(BIN / "dealcoach")
    subprocess.run([dealcoach, "migrate"], env=env, check=True, capture_output=True)
    boot = subprocess.run(
        [dealcoach, "bootstrap", "--org", "Import Bench", "--admin-email", "ada@bench.test"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    key = json.loads(boot.stdout)["api_key"]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    work = Path(tempfile.mkdtemp(prefix="import-bench-"))
    log = open(work / "server.log", "wb")  # noqa: SIM115 (closed in finally)
    server = subprocess.Popen(
        [dealcoach, "serve", "--port", str(port), "--workers", "2"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        if not wait_until_ready(base, server):
            print(f"the server did not start: {(work / 'server.log').read_text()[-2000:]}")
            return 2
        http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        manager = http.post("/v1/members", json={"name": "Mia", "email": "mia@bench.test", "role": "manager"})
        manager.raise_for_status()
        emails = []
        for i in range(SELLERS):
            email = f"seller{i}@bench.test"
            body = {"name": f"Seller {i}", "email": email, "role": "seller", "manager_id": manager.json()["id"]}
            http.post("/v1/members", json=body).raise_for_status()
            emails.append(email)
        csv_path = work / "deals.csv"
        started = time.perf_counter()
        write_csv(csv_path, emails)
        print(
            f"{ROWS:,} rows written to {csv_path} ({csv_path.stat().st_size / 1e6:.1f} MB) "
            f"in {time.perf_counter() - started:.1f} s"
        )
        load_before = os.getloadavg()
        cpu_before = cpu_snapshot(server.pid)
        out, err = open(work / "import.out", "wb"), open(work / "import.err", "wb")  # noqa: SIM115
        started = time.perf_counter()
        importer = subprocess.Popen(
            [dealcoach, "import", "deals", str(csv_path), "--url", base, "--key", key]
            + (["--in-flight", IN_FLIGHT] if IN_FLIGHT else []),
            stdout=out,
            stderr=err,
            env={**os.environ, "COLUMNS": "100"},
        )
        _, status, usage = os.wait4(importer.pid, 0)
        wall = time.perf_counter() - started
        importer.returncode = os.waitstatus_to_exitcode(status)
        out.close()
        err.close()
        load_after = os.getloadavg()
        cpu_after = cpu_snapshot(server.pid)
        summary_line = (work / "import.out").read_text().strip().splitlines()[-1:] or ["{}"]
        deals, reviews, events = asyncio.run(stored())
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()

    rate = ROWS / wall
    rss_mb = usage.ru_maxrss / 1024  # kilobytes on Linux
    print(
        f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after"
    )
    print(f"importer exit {importer.returncode}; its summary: {summary_line[0]}")
    print(f"stored: {deals:,} deals, {reviews:,} closed-lost reviews, {events:,} events")
    importer_cpu = usage.ru_utime + usage.ru_stime
    server_cpu, pg_cpu = cpu_used(cpu_before, cpu_after, "server"), cpu_used(cpu_before, cpu_after, "postgres")
    print(
        f"CPU during the import: importer {importer_cpu:.1f} s, server {server_cpu:.1f} s, "
        f"PostgreSQL {pg_cpu:.1f} s; per row {importer_cpu / ROWS * 1e6:.0f} / {server_cpu / ROWS * 1e6:.0f} / "
        f"{pg_cpu / ROWS * 1e6:.0f} µs"
    )
    print(f"{'PASS' if rate >= RATE_AIM else 'FAIL'} rows/s: {rate:,.0f} ({ROWS:,} rows in {wall:.1f} s; aim ≥ 5,000)")
    print(f"{'PASS' if rss_mb < RSS_AIM_MB else 'FAIL'} importer peak RSS: {rss_mb:.1f} MB (aim < 100 MB)")
    if KEEP:
        results = ROOT / "bench" / "results"
        results.mkdir(exist_ok=True)
        for name in ("deals.csv", "import.out", "import.err", "server.log"):
            shutil.copy(work / name, results / f"import-{name}")
    shutil.rmtree(work, ignore_errors=True)
    if importer.returncode != 0 or deals != ROWS:
        print(f"the import failed: exit {importer.returncode}, {deals:,} of {ROWS:,} deals stored")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
