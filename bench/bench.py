"""The bench driver (`make bench` -> bench/run.sh -> this file).

Creates a fresh PostgreSQL database, migrates and seeds it (four organisations and their
members through the API, 100,000 deals in SQL), starts `dealcoach serve` and the floor
(bench/baseline.py: a bare ASGI callable + asyncpg + orjson sending the fewest statements each
request needs), checks that they answer alike, then measures every row of ROWS on each app --
only the app under load running, so each has PostgreSQL's connections to itself; the reads the
floor does not serve (my tasks, ?expand=members) on Dealcoach only -- in
BENCH_ROUNDS interleaved rounds, and prints the medians with the ratio Dealcoach / floor and
whether each target of issue 10 holds. Results also go to bench/results/latest.txt (and
latest.json).

Every process it starts is stopped on the way out, whatever happens. The exit status is 2 when
the bench could not run, 1 when requests failed (non-2xx, socket errors, timeouts; set
BENCH_ALLOW_ERRORS=1 to exit 0 anyway), and 0 otherwise -- a target that does not hold is
printed as FAIL, it does not fail the bench.

Settings (environment): BENCH_DURATION (s per measured run, 10), BENCH_WARMUP (s of load
before each, 3), BENCH_ROUNDS (3), BENCH_CONNECTIONS (64), BENCH_THREADS (2), BENCH_WORKERS (2),
BENCH_MEMBERS (200), BENCH_DEALS (100000), BENCH_BATCH_CLIENTS (4), BENCH_BATCH_SIZE (500),
BENCH_PG_DSN, BENCH_DB (dealcoach_bench: dropped and recreated on every run), BENCH_ONLY
(comma-separated row names), BENCH_ALLOW_ERRORS. See bench/README.md.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from rich import box
from rich.console import Console
from rich.table import Table

# --- What is measured -------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One line of the table, measured on both apps.

    kind "get": wrk with a fixed URL and one key (bench/report.lua); "write": wrk building
    every request in bench/writes.lua (mode post, post_idem or patch); "batch": bench/batch_load.py.
    actor names the keys (see Seed.actors); ratio and p99 are the row's targets: Dealcoach's
    req/s at least `ratio` times the floor's, its p99 at most `p99` times the floor's. A row with
    floor=False is measured on Dealcoach only (the floor does not serve it): no ratio, no targets
    of its own; it feeds the targets across rows.
    """

    name: str
    kind: str
    path: str = ""
    actor: str = "seller"
    mode: str = ""
    ratio: float | None = None
    p99: float | None = None
    with_batch: bool = False  # a batch upsert loop runs on the same app alongside
    floor: bool = True  # False: Dealcoach only


P99_TIMES = 3.0  # every targeted row: p99 <= 3x the floor's p99
ONE_ORG = "POST /v1/deals (20 sellers, one org)"
FOUR_ORGS = "POST /v1/deals (20 sellers, four orgs)"
ALONE = "POST /v1/deals"
DURING = "POST /v1/deals (during batch upsert)"
BATCH = "POST /v1/deals/batch-upsert (deals/s)"
DEAL_GET = "GET /v1/deals/{id} (seller)"
TASKS = "GET /v1/me/tasks (seller, 200 open)"
EXPAND = "GET /v1/deals/{id}?expand=members (seller)"
EXPAND_LIST = "GET /v1/deals?limit=50&expand=members (seller)"

ROWS: list[Row] = [
    Row("GET /v1/me", "get", "/v1/me", ratio=0.6, p99=P99_TIMES),
    Row(DEAL_GET, "get", "/v1/deals/{seller_deal}", ratio=0.5, p99=P99_TIMES),
    Row("GET /v1/deals/{id} (manager)", "get", "/v1/deals/{manager_deal}", "manager", ratio=0.5, p99=P99_TIMES),
    Row("GET /v1/deals/{id} (head of sales)", "get", "/v1/deals/{head_deal}", "head", ratio=0.5, p99=P99_TIMES),
    Row("GET /v1/deals (first page)", "get", "/v1/deals?limit=50", ratio=0.5, p99=P99_TIMES),
    Row("GET /v1/deals (deep page)", "get", "/v1/deals?limit=50&cursor={deep_cursor}", ratio=0.5, p99=P99_TIMES),
    Row(ALONE, "write", actor="writer", mode="post", ratio=0.4, p99=P99_TIMES),
    Row("POST /v1/deals (Idempotency-Key)", "write", actor="writer", mode="post_idem", ratio=0.3, p99=P99_TIMES),
    Row("PATCH /v1/deals/{id} (If-Match)", "write", actor="writer", mode="patch", ratio=0.3, p99=P99_TIMES),
    Row(ONE_ORG, "write", actor="one_org", mode="post"),
    Row(FOUR_ORGS, "write", actor="four_orgs", mode="post"),
    Row(DURING, "write", actor="writer", mode="post", with_batch=True),
    Row(BATCH, "batch", actor="integration"),
    # Dealcoach only: the floor serves none of these (see the targets across rows).
    Row(TASKS, "get", "/v1/me/tasks", floor=False),
    Row(EXPAND, "get", "/v1/deals/{seller_deal}?expand=members", floor=False),
    Row(EXPAND_LIST, "get", "/v1/deals?limit=50&expand=members", floor=False),
]
# Targets across rows (issue 10).
ONE_ORG_MIN = 0.90  # 20 sellers of one org: req/s within 10 % of the same load over four orgs
DURING_MAX = 2.0  # a concurrent batch upsert raises single-POST p99 by at most 2x
BATCH_MIN = 5000.0  # deals/s in 500-record batches
RSS_MAX_MB = 200.0  # worker RSS under load
OPEN_TASKS = 200  # open items waiting on the reading seller (GET /v1/me/tasks); at most 200, one page
# Dealcoach-only reads: their p99 at most this many times the seller's plain deal GET's, same round.
VS_DEAL_GET = {TASKS: 3.0, EXPAND: 3.0}

# The baseline's pool per worker (bench/baseline.py POOL_MAX): the same budget as Dealcoach's.
POOL_BUDGET_BASELINE = int(os.environ.get("BENCH_BASELINE_POOL_MAX", "30"))

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results"
VENV_BIN = Path(sys.executable).parent
APPS = ("dealcoach", "baseline")


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip().rstrip("s")
    return int(raw) if raw else default


DURATION = _env_int("BENCH_DURATION", 10)
WARMUP = _env_int("BENCH_WARMUP", 3)
ROUNDS = max(1, _env_int("BENCH_ROUNDS", 3))
CONNECTIONS = _env_int("BENCH_CONNECTIONS", 64)
THREADS = _env_int("BENCH_THREADS", 2)
WORKERS = _env_int("BENCH_WORKERS", 2)
MEMBERS = _env_int("BENCH_MEMBERS", 200)
DEALS = _env_int("BENCH_DEALS", 100_000)
BATCH_CLIENTS = _env_int("BENCH_BATCH_CLIENTS", 4)
BATCH_SIZE = _env_int("BENCH_BATCH_SIZE", 500)
PG_PORT = _env_int("BENCH_PG_PORT", 5432)
PG_DSN = os.environ.get("BENCH_PG_DSN", f"postgresql://postgres@127.0.0.1:{PG_PORT}/postgres")
DB_NAME = os.environ.get("BENCH_DB", "dealcoach_bench")
# Seals cursors; Dealcoach and the floor share it, so their documents (next_cursor too) match.
SECRET_KEY = os.environ.get("DEALCOACH_SECRET_KEY") or secrets.token_urlsafe(32)
# Row names hold commas themselves ("20 sellers, one org"): split only on those outside parentheses.
ONLY = {s.strip() for s in re.split(r",(?![^(]*\))", os.environ.get("BENCH_ONLY", "")) if s.strip()}
WRITERS = 20  # sellers writing at once in the one-org / four-orgs rows
# Deals the PATCH row cycles through: twice its connections, and as many again for the warm-ups, so
# that a warm-up's requests still in flight when it stops cannot make the measured run's versions stale.
PATCH_DEALS = max(4 * THREADS, 2 * CONNECTIONS)

console = Console(stderr=True, highlight=False, soft_wrap=True)


def say(message: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {message}")


class BenchError(Exception):
    pass


# --- Processes --------------------------------------------------------------------------------


class Processes:
    """Every child in its own process group, so stopping a group stops its workers too."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(
        self, name: str, argv: list[str], env: dict[str, str], log: Path, *, append: bool = False
    ) -> subprocess.Popen[bytes]:
        with open(log, "ab" if append else "wb") as out:
            proc = subprocess.Popen(
                argv,
                env=env,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append((name, proc))
        return proc

    def stop_all(self) -> None:
        self._stop([proc for _name, proc in reversed(self.procs)])
        self.procs.clear()

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        self._stop([proc])
        self.procs = [(n, p) for n, p in self.procs if p is not proc]

    @staticmethod
    def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
        for proc in procs:
            _signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            # The group may outlive its leader (uvicorn's workers): make sure it is gone.
            while _group_alive(proc.pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _group_alive(proc.pid):
                _signal_group(proc.pid, signal.SIGKILL)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


@dataclass
class Server:
    """One of the two apps, which the bench can stop and start again (its log is appended to)."""

    name: str
    argv: list[str]
    env: dict[str, str]
    url: str
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self, procs: Processes) -> None:
        if self.proc is None:
            self.proc = procs.start(self.name, self.argv, self.env, self.log, append=self.starts > 0)
            self.starts += 1

    def wait_ready(self) -> None:
        assert self.proc is not None
        wait_ready(self.name, self.proc, self.url + "/readyz", self.log)

    def stop(self, procs: Processes) -> None:
        if self.proc is not None:
            procs.stop(self.proc)
            self.proc = None


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(name: str, proc: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{name} exited with {proc.returncode} before it was ready; see {log}:\n{_tail(log)}")
        try:
            response = httpx.get(url, timeout=2.0)
            if response.status_code == 200:
                return
            last = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        time.sleep(0.2)
    raise BenchError(f"{name} not ready at {url} after {timeout:.0f}s ({last}); see {log}:\n{_tail(log)}")


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class RssSampler:
    """The largest resident set of any worker of a server while the load is on, from /proc.

    Workers are the processes of the server's group started by multiprocessing (uvicorn
    --workers N); with one worker the server process itself is the worker."""

    def __init__(self, pgid: int, interval: float = 0.5) -> None:
        self.pgid = pgid
        self.interval = interval
        self.max_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            for pid in self._workers():
                self.max_mb = max(self.max_mb, _rss_mb(pid))
            if self._stop.wait(self.interval):
                return

    def _workers(self) -> list[int]:
        workers = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[2]) != self.pgid:
                    continue
                if b"spawn_main" in Path(f"/proc/{entry}/cmdline").read_bytes():
                    workers.append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
        return workers or [self.pgid]


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


# --- Database and seed ------------------------------------------------------------------------


def _db_dsn(scheme: str) -> str:
    """PG_DSN pointed at the bench database instead of the maintenance one."""
    parts = urlsplit(PG_DSN)
    return urlunsplit((scheme, parts.netloc, f"/{DB_NAME}", parts.query, ""))


def asyncpg_dsn() -> str:
    return _db_dsn("postgresql")


def sqlalchemy_url() -> str:
    return _db_dsn("postgresql+asyncpg")


async def recreate_database() -> tuple[str, int]:
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", DB_NAME):
        raise BenchError(f"BENCH_DB={DB_NAME!r} is not a plain lower-case identifier")
    try:
        conn = await asyncpg.connect(PG_DSN, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        raise BenchError(
            f"cannot reach PostgreSQL at {PG_DSN} ({exc}). Start it, or set BENCH_PG_DSN to a superuser DSN."
        ) from None
    try:
        version = await conn.fetchval("SHOW server_version")
        max_connections = int(await conn.fetchval("SHOW max_connections"))
        await conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    finally:
        await conn.close()
    return str(version), max_connections


def dealcoach_pool_budget() -> int:
    """Connections one Dealcoach worker may open (pool size + overflow), as `dealcoach serve` will see them."""
    try:
        from app.settings import Settings

        settings = Settings()
        return settings.db_pool_size + settings.db_max_overflow
    except Exception:  # noqa: BLE001 - only informs a note
        return 30


def dealcoach_cli(args: list[str], env: dict[str, str]) -> str:
    exe = VENV_BIN / "dealcoach"
    argv = [str(exe)] if exe.exists() else [sys.executable, "-m", "app.cli"]
    result = subprocess.run([*argv, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise BenchError(f"dealcoach {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result.stdout


def bootstrap(env: dict[str, str], org: str, email: str) -> dict[str, str]:
    out = dealcoach_cli(["bootstrap", "--org", org, "--admin-email", email, "--admin-name", "Bench Admin"], env)
    for line in reversed(out.splitlines()):
        if line.startswith("{") and "api_key" in line:
            return json.loads(line)
    raise BenchError(f"dealcoach bootstrap printed no JSON line:\n{out}")


# (name, admin email domain, members in all). The benchmarked org comes first; the other three
# give the four-orgs row its sellers and make every query filter by organisation.
ORGS = [
    ("Bench Co", "bench.example", MEMBERS),
    ("Other Co", "other.example", max(10, MEMBERS // 4)),
    ("Third Co", "third.example", 10),
    ("Fourth Co", "fourth.example", 10),
]


@dataclass
class Org:
    id: str
    admin_key: str
    head: str = ""
    managers: list[str] = field(default_factory=list)
    sellers: list[str] = field(default_factory=list)
    integration: str | None = None


async def seed_org(client: httpx.AsyncClient, org: Org, domain: str, members: int, *, integration: bool) -> None:
    """Fill an organisation through the API: a head of sales, managers under them, sellers
    under the managers (seller i reports to manager i mod managers) and, for the benchmarked
    org, an integration member: `members` in all with the admin."""
    headers = {"Authorization": f"Bearer {org.admin_key}"}

    async def create(name: str, role: str, manager_id: str | None = None) -> str:
        body: dict[str, Any] = {"name": name, "email": f"{name.lower().replace(' ', '.')}@{domain}", "role": role}
        if manager_id:
            body["manager_id"] = manager_id
        response = await client.post("/v1/members", json=body, headers=headers)
        if response.status_code != 201:
            raise BenchError(f"seeding POST /v1/members answered {response.status_code}: {response.text[:500]}")
        return str(response.json()["id"])

    others = 2 + int(integration)  # the admin, the head of sales, the integration
    org.head = await create("Head Of Sales", "head_of_sales")
    if integration:
        org.integration = await create("CRM Sync", "integration")
    n_managers = max(1, (members - others) // 20)
    org.managers = [await create(f"Manager {i:03d}", "manager", org.head) for i in range(n_managers)]
    gate = asyncio.Semaphore(8)  # the app serialises member writes per org; a few in flight keep it busy

    async def seller(i: int) -> str:
        async with gate:
            return await create(f"Seller {i:04d}", "seller", org.managers[i % n_managers])

    org.sellers = list(await asyncio.gather(*(seller(i) for i in range(max(1, members - others - n_managers)))))


async def issue_keys(client: httpx.AsyncClient, org: Org, member_ids: list[str]) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {org.admin_key}"}
    gate = asyncio.Semaphore(8)

    async def issue(member_id: str) -> tuple[str, str]:
        async with gate:
            response = await client.post(f"/v1/members/{member_id}/api-keys", json={"label": "bench"}, headers=headers)
        if response.status_code != 201:
            raise BenchError(f"seeding POST api-keys answered {response.status_code}: {response.text[:500]}")
        return member_id, str(response.json()["api_key"])

    return dict(await asyncio.gather(*(issue(m) for m in member_ids)))


# Deal ids grow with the row number, as UUIDv7 ids do. Row i of an organisation gets number
# stride * i + offset: the benchmarked org takes the even numbers, the other org every 20th
# odd one, so the two organisations' deals interleave in the primary key. Deals created
# during the run get real UUIDv7 ids, which sort after all of these.
def _deal_id(stride: str, offset: str, prefix: str = "01900000") -> str:
    return f"('{prefix}-0000-7000-8000-' || lpad(to_hex({stride}::int * i + {offset}::int), 12, '0'))::uuid"


_STAGES = "ARRAY['prospecting','qualification','discovery','proposal','negotiation','closed_won','closed_lost']"

# $1 org, $2 the bench seller (owner of every 4th deal; NULL: none), $3 the other owners,
# $4 how many deals, $5/$6 stride/offset of the id numbers.
_SEED_DEALS = f"""
INSERT INTO deal (id, organization_id, name, account_name, amount_minor, currency, expected_close_date, stage,
                  owner_id, closed_at, loss_reason_code, loss_competitor, loss_detail, version,
                  created_at, updated_at)
SELECT id, $1::uuid, 'Deal ' || n,
       CASE WHEN i % 7 = 0 THEN 'Société ' || (i % 89) ELSE 'Account ' || (i % 997) END,
       CASE WHEN i % 10 = 0 THEN NULL ELSE (i::bigint * 7919) % 5000000 END,
       CASE WHEN i % 10 = 0 THEN NULL ELSE (ARRAY['EUR','USD','GBP','JPY','KWD'])[1 + i % 5] END,
       CASE WHEN i % 6 = 0 THEN NULL ELSE date '2027-01-01' + i % 365 END,
       stage,
       CASE WHEN $2::uuid IS NOT NULL AND i % 4 = 0 THEN $2::uuid
            ELSE ($3::uuid[])[1 + i % cardinality($3::uuid[])] END,
       CASE WHEN stage IN ('closed_won', 'closed_lost') THEN created + interval '30 days' END,
       CASE WHEN stage = 'closed_lost' THEN (ARRAY['price','competitor','no_budget','timing'])[1 + i % 4] END,
       CASE WHEN stage = 'closed_lost' AND i % 4 = 1 THEN 'Initech' END,
       CASE WHEN stage = 'closed_lost' AND i % 3 = 0 THEN 'Chose a cheaper plan after the pilot' END,
       1 + i % 3, created, created + (i % 50) * interval '1 hour 7 minutes 3.25 seconds'
FROM (SELECT i, $5::int * i + $6::int AS n, {_deal_id("$5", "$6")} AS id, ({_STAGES})[1 + i % 7] AS stage,
             timestamptz '2025-01-01 00:00:00+00' + i * interval '5 minutes' AS created
      FROM generate_series(1, $4::int) AS i) AS s
"""
# Every deal has a HubSpot id, every third one a Salesforce id too. $1 org, $2 how many deals,
# $3/$4 stride/offset.
_SEED_REFS = f"""
INSERT INTO deal_external_ref (id, organization_id, deal_id, source, external_id)
SELECT gen_random_uuid(), $1::uuid, {_deal_id("$3", "$4")}, 'hubspot', 'HS-' || ($3::int * i + $4::int)
FROM generate_series(1, $2::int) AS i
UNION ALL
SELECT gen_random_uuid(), $1::uuid, {_deal_id("$3", "$4")}, 'salesforce',
       '006Q' || lpad(($3::int * i + $4::int)::text, 11, '0')
FROM generate_series(1, $2::int) AS i WHERE i % 3 = 0
"""
# The PATCH row's deals: open, owned by the writing seller, one HubSpot id each. $1 org, $2 owner, $3 count.
_SEED_PATCH_DEALS = f"""
WITH new AS (
  INSERT INTO deal (id, organization_id, name, account_name, amount_minor, currency, expected_close_date, stage,
                    owner_id, version, created_at, updated_at)
  SELECT {_deal_id("1", "0", "01900001")}, $1::uuid, 'Patched deal ' || i, 'Account ' || i, 100000 + i, 'EUR',
         date '2027-06-01', 'negotiation', $2::uuid, 1, now(), now()
  FROM generate_series(1, $3::int) AS i
  RETURNING id, name
)
INSERT INTO deal_external_ref (id, organization_id, deal_id, source, external_id)
SELECT gen_random_uuid(), $1::uuid, id, 'hubspot', 'HSP-' || name FROM new
"""
# The seller's visible deals, as deals.visibility() has it (there are no assignments).
_VISIBLE_TO_SELLER = """
SELECT id FROM deal
WHERE organization_id = $1 AND (owner_id = $2 OR id IN
      (SELECT deal_id FROM assignment WHERE member_id = $2 AND status = 'active'))
ORDER BY id DESC OFFSET $3 LIMIT 1
"""
# Of the deals owned by any of $2, the one with the most external references nearest the middle.
_MIDDLE_DEAL = """
WITH owned AS (
  SELECT d.id, row_number() OVER (ORDER BY d.id) AS n, count(*) OVER () AS total,
         (SELECT count(*) FROM deal_external_ref r WHERE r.deal_id = d.id) AS refs
  FROM deal d WHERE d.organization_id = $1 AND d.owner_id = ANY($2::uuid[]))
SELECT id FROM owned ORDER BY refs DESC, abs(n - total / 2), id LIMIT 1
"""
# What waits on the reading seller (app/db/repositories/tasks.py): on $4 of their newest open deals
# (never $5, the deal the GET rows read), one open item each, alternately a role their manager ($3)
# proposed to take (assignment `proposed`: the owner decides) and a suggestion of the manager's on
# the deal's strategy (`open`), a few minutes apart. $1 org, $2 the seller.
_SEED_TASKS = """
WITH deals AS (
  SELECT id, row_number() OVER (ORDER BY id DESC)::int AS i FROM deal
  WHERE organization_id = $1 AND owner_id = $2 AND stage NOT IN ('closed_won', 'closed_lost') AND id <> $5::uuid
  ORDER BY id DESC LIMIT $4::int
),
proposals AS (
  INSERT INTO assignment (id, organization_id, deal_id, member_id, role, purpose, status, requested_by,
                          late_involvement, version, created_at)
  SELECT ('01900002-0000-7000-8000-' || lpad(to_hex(i), 12, '0'))::uuid, $1, id, $3,
         (ARRAY['coach','observer','executive_sponsor','subject_matter_expert','sales_engineer'])[1 + i % 5],
         'Bench proposal ' || i, 'proposed', $3, false, 1, now() - i * interval '7 minutes'
  FROM deals WHERE i % 2 = 1
)
INSERT INTO suggestion (id, organization_id, deal_id, author_id, section, body, status, late_involvement, created_at)
SELECT ('01900003-0000-7000-8000-' || lpad(to_hex(i), 12, '0'))::uuid, $1, id, $3,
       (ARRAY['customer_objectives','decision_process','stakeholders','competition','risks'])[1 + i % 5],
       'Bench suggestion ' || i || ': name the economic buyer before the proposal', 'open', false,
       now() - i * interval '7 minutes'
FROM deals WHERE i % 2 = 0
"""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor(organization_id: str, listing: str, key: list[Any]) -> str:
    """app/http/cursors.py Cursors.encode(): the key, sealed for its listing and organisation."""
    payload = json.dumps(key, separators=(",", ":")).encode()
    message = f"{organization_id}\n{listing}\n".encode() + payload
    mac = hmac.new(SECRET_KEY.encode(), message, hashlib.sha256).digest()[:16]
    return f"{_b64(payload)}.{_b64(mac)}"


@dataclass
class Seed:
    """What the rows need: keys by actor, the values their paths name, the PATCH row's deals,
    the sellers a batch assigns its new deals to."""

    actors: dict[str, list[tuple[str, str]]]  # actor -> [(api key, member id)]
    values: dict[str, str]
    patch_deals: list[str]  # the first half for warm-ups, the second for measured runs
    batch_owners: list[str]
    seller_deals: int


async def seed_deals(bench: Org, other: Org, seller_id: str, writer_id: str) -> tuple[dict[str, str], list[str], int]:
    """DEALS deals in the benchmarked org (every 4th the reading seller's, the rest spread over
    the other sellers), a tenth as many in the other org, with external refs, and the PATCH
    row's deals, straight in SQL; then ANALYZE; then OPEN_TASKS open items on the seller's deals
    for the tasks row. Returns the values row paths name."""
    conn = await asyncpg.connect(asyncpg_dsn(), timeout=5)
    try:
        async with conn.transaction():
            for org, bench_seller, count, stride, offset in (
                (bench, seller_id, DEALS, 2, 0),
                (other, None, max(1, DEALS // 10), 20, 1),
            ):
                owners = [s for s in org.sellers if s != bench_seller]
                if not owners:
                    raise BenchError(f"no sellers to own deals in organisation {org.id}")
                await conn.execute(_SEED_DEALS, org.id, bench_seller, owners, count, stride, offset)
                await conn.execute(_SEED_REFS, org.id, count, stride, offset)
            await conn.execute(_SEED_PATCH_DEALS, bench.id, writer_id, 2 * PATCH_DEALS)
        await conn.execute("ANALYZE")
        visible = await conn.fetchval(
            "SELECT count(*) FROM deal WHERE organization_id = $1 AND owner_id = $2", bench.id, seller_id
        )
        if visible < 200:
            raise BenchError(f"BENCH_DEALS={DEALS} leaves the seller {visible} deals; the deep page needs 200 or more")
        last = await conn.fetchval(_VISIBLE_TO_SELLER, bench.id, seller_id, 100)
        # The manager's line is every 1/len(managers)-th seller; their deal belongs to another seller of it.
        line = [s for i, s in enumerate(bench.sellers) if i % len(bench.managers) == 0 and s != seller_id]
        outside = [s for i, s in enumerate(bench.sellers) if i % len(bench.managers) != 0 and s != writer_id]
        values = {
            "deep_cursor": _cursor(bench.id, "deals", [str(last)]),
            "seller_deal": str(await conn.fetchval(_MIDDLE_DEAL, bench.id, [seller_id])),
            "manager_deal": str(await conn.fetchval(_MIDDLE_DEAL, bench.id, line or [seller_id])),
            "head_deal": str(await conn.fetchval(_MIDDLE_DEAL, bench.id, outside or [seller_id])),
        }
        patch = await conn.fetch(
            "SELECT id FROM deal WHERE owner_id = $1 AND name LIKE 'Patched deal %' ORDER BY id", writer_id
        )
        # The seller's manager (seller i reports to manager i mod managers; the seller is sellers[0]).
        manager = bench.managers[bench.sellers.index(seller_id) % len(bench.managers)]
        await conn.execute(_SEED_TASKS, bench.id, seller_id, manager, OPEN_TASKS, values["seller_deal"])
        await conn.execute("ANALYZE assignment, suggestion")
    finally:
        await conn.close()
    return values, [str(r["id"]) for r in patch], int(visible)


async def seed(base_url: str, orgs: list[Org]) -> Seed:
    """Members and keys through the API, deals in SQL."""
    bench, other = orgs[0], orgs[1]
    async with httpx.AsyncClient(base_url=base_url, timeout=30.0) as client:
        t0 = time.monotonic()
        for org, (_name, domain, members) in zip(orgs, ORGS, strict=True):
            await seed_org(client, org, domain, members, integration=org is bench)
        say(
            f"seeded {sum(m for _n, _d, m in ORGS)} members in {len(orgs)} organisations through the API "
            f"in {time.monotonic() - t0:.1f} s"
        )
        if len(bench.sellers) < WRITERS + 1 or any(len(o.sellers) < 5 for o in orgs[1:]):
            raise BenchError(f"BENCH_MEMBERS={MEMBERS} leaves too few sellers (the bench needs {WRITERS + 1})")
        seller, writers = bench.sellers[0], bench.sellers[1 : WRITERS + 1]
        keys = await issue_keys(
            client, bench, [seller, bench.head, bench.managers[0], str(bench.integration), *writers]
        )
        for org in orgs[1:]:
            keys |= await issue_keys(client, org, org.sellers[:5])
    t0 = time.monotonic()
    values, patch_deals, seller_deals = await seed_deals(bench, other, seller, writers[0])
    say(
        f"seeded {DEALS:,} + {max(1, DEALS // 10):,} deals in SQL in {time.monotonic() - t0:.1f} s "
        f"({seller_deals:,} of them the reading seller's)"
    )

    def actor(member_id: str) -> tuple[str, str]:
        return keys[member_id], member_id

    four_orgs = [*writers[:5], *(s for org in orgs[1:] for s in org.sellers[:5])]
    return Seed(
        actors={
            "seller": [actor(seller)],
            "manager": [actor(bench.managers[0])],
            "head": [actor(bench.head)],
            "integration": [actor(str(bench.integration))],
            "writer": [actor(writers[0])],
            "one_org": [actor(s) for s in writers],
            "four_orgs": [actor(s) for s in four_orgs],
        },
        values=values,
        patch_deals=patch_deals,
        batch_owners=bench.sellers[1:],
        seller_deals=seller_deals,
    )


_BUSY_SESSIONS = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
  AND state IN ('active', 'idle in transaction', 'idle in transaction (aborted)')
"""


async def _busy_sessions() -> int:
    conn = await asyncpg.connect(asyncpg_dsn(), timeout=5)
    try:
        return int(await conn.fetchval(_BUSY_SESSIONS))
    finally:
        await conn.close()


def drain(cap: float = 30.0) -> float:
    """Wait until no session of the bench database is busy (twice in a row, 0.2 s apart), at most
    `cap` seconds; returns the seconds waited. wrk abandons the requests it has in flight when a run
    ends and the app still serves them: without this, a slow app would spend the first seconds of a
    measured run finishing its warm-up's requests, which count for nothing."""
    started = time.monotonic()
    quiet = 0
    while time.monotonic() - started < cap:
        quiet = quiet + 1 if asyncio.run(_busy_sessions()) == 0 else 0
        if quiet >= 2:
            break
        time.sleep(0.2)
    return time.monotonic() - started


async def deal_versions(ids: list[str]) -> list[tuple[str, int]]:
    conn = await asyncpg.connect(asyncpg_dsn(), timeout=5)
    try:
        rows = await conn.fetch("SELECT id, version FROM deal WHERE id = ANY($1::uuid[]) ORDER BY id", ids)
    finally:
        await conn.close()
    return [(str(r["id"]), int(r["version"])) for r in rows]


# --- Load -------------------------------------------------------------------------------------


@dataclass
class Run:
    rps: float  # req/s; deals/s for the batch row
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # non-2xx responses + socket errors + timeouts (batch: failed batches + records refused)
    rss_mb: float = 0.0  # the largest worker RSS while the load was on
    raw: dict[str, Any] = field(default_factory=dict)


def _finish(procs: Processes, proc: subprocess.Popen[bytes], seconds: float, what: str) -> None:
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{what} did not finish in {seconds:.0f}s") from None
    finally:
        procs.procs = [(n, p) for n, p in procs.procs if p is not proc]
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()


def _result_line(log: Path, what: str, returncode: int | None) -> dict[str, Any]:
    text = log.read_text(errors="replace")
    if returncode != 0:
        raise BenchError(f"{what} exited with {returncode}:\n{text[-2000:]}")
    match = re.search(r"^BENCH_RESULT (\{.*\})$", text, re.MULTILINE)
    if match is None:
        raise BenchError(f"{what} printed no BENCH_RESULT line:\n{text[-2000:]}")
    return dict(json.loads(match.group(1)))


def wrk(procs: Processes, url: str, seconds: int, log: Path, *, key: str = "", data: Path | None = None) -> Run:
    """GET rows: one URL and key (report.lua only reports). Write rows: writes.lua builds every
    request from `data` (see the top of writes.lua)."""
    wrk_bin = shutil.which("wrk")
    if wrk_bin is None:
        raise BenchError("wrk is not installed (bench/run.sh installs it with apt-get)")
    argv = [wrk_bin, f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "5s", "--latency"]
    if data is None:
        argv += ["-s", str(BENCH_DIR / "report.lua"), "-H", f"Authorization: Bearer {key}", url]
    else:
        argv += ["-s", str(BENCH_DIR / "writes.lua"), url, "--", str(data)]
    proc = procs.start("wrk", argv, os.environ.copy(), log)
    _finish(procs, proc, seconds + 60, "wrk")
    raw = _result_line(log, "wrk", proc.returncode)
    errors = sum(raw[k] for k in ("non_2xx_3xx", "connect_errors", "read_errors", "write_errors", "timeouts"))
    # wrk's percentiles cover the requests that completed. A connection that never got an answer had
    # its first request in flight for the whole run: when such requests are more than 1 % (half) of
    # all, the p99 (p50) is at least the run's length, whatever wrk says.
    unanswered = max(0, CONNECTIONS - raw["requests"])
    if unanswered > 0.01 * (raw["requests"] + CONNECTIONS):
        raw["unanswered_connections"] = unanswered
        raw["p99_censored"] = True
        raw["p99_ms"] = max(raw["p99_ms"], seconds * 1000.0)
        raw["max_ms"] = max(raw["max_ms"], seconds * 1000.0)
    if unanswered > 0.5 * (raw["requests"] + CONNECTIONS):
        raw["p50_ms"] = max(raw["p50_ms"], seconds * 1000.0)
    if raw["requests"] == 0:
        # Not one response in the whole run (wrk counts a timeout only after 5 s): every
        # connection's request failed.
        raw["stalled"] = True
        errors += CONNECTIONS
    return Run(
        rps=raw["rps"], p50_ms=raw["p50_ms"], p99_ms=raw["p99_ms"], requests=raw["requests"], errors=errors, raw=raw
    )


def _lua(value: Any) -> str:
    """A Lua literal for plain data (the strings here are ASCII: keys, ids, tags)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "{" + ", ".join(_lua(v) for v in value) + "}"
    return "{" + ", ".join(f"{k} = {_lua(v)}" for k, v in value.items()) + "}"


def write_data(path: Path, row: Row, seed: Seed, tag: str, *, warmup: bool) -> Path:
    """writes.lua's data for one run; the PATCH row's deals with their versions as they are now."""
    data: dict[str, Any] = {
        "mode": row.mode,
        "tag": tag,
        "threads": THREADS,
        "actors": [{"key": key, "member": member} for key, member in seed.actors[row.actor]],
    }
    if row.mode == "patch":
        half = len(seed.patch_deals) // 2
        deals = seed.patch_deals[:half] if warmup else seed.patch_deals[half:]
        data["deals"] = [{"id": i, "version": v} for i, v in asyncio.run(deal_versions(deals))]
    path.write_text("return " + _lua(data) + "\n")
    return path


def start_batch(
    procs: Processes, url: str, seed: Seed, log: Path, *, clients: int, warmup: int, duration: int, tag: str
) -> subprocess.Popen[bytes]:
    argv = [
        sys.executable,
        str(BENCH_DIR / "batch_load.py"),
        *("--url", url, "--key", seed.actors["integration"][0][0], "--owners", ",".join(seed.batch_owners)),
        *("--clients", str(clients), "--batch", str(BATCH_SIZE), "--tag", tag),
        *("--warmup", str(warmup), "--duration", str(duration)),
    ]
    return procs.start("batch", argv, os.environ.copy(), log)


def finish_batch(procs: Processes, proc: subprocess.Popen[bytes], log: Path, seconds: float) -> dict[str, Any]:
    _finish(procs, proc, seconds, "the batch upsert client")
    return _result_line(log, "the batch upsert client", proc.returncode)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def measure(procs: Processes, row: Row, app: str, server: Server, seed: Seed, rnd: int) -> Run:
    """One measured run of `row` on `app` (running alone), after its warm-up."""
    assert server.proc is not None
    slug = _slug(f"r{rnd} {app} {row.name}")
    tag = f"r{rnd}{ROWS.index(row):02d}{app[0]}"
    url = server.url
    with RssSampler(server.proc.pid) as rss:
        if row.kind == "get":
            path = row.path.format_map(seed.values)
            key = seed.actors[row.actor][0][0]
            if WARMUP > 0:
                wrk(procs, url + path, WARMUP, RESULTS / f"wrk-{slug}-warmup.txt", key=key)
            drained = drain()
            run = wrk(procs, url + path, DURATION, RESULTS / f"wrk-{slug}.txt", key=key)
        elif row.kind == "write":
            background, background_log = None, RESULTS / f"batch-{slug}.txt"
            if row.with_batch:
                background = start_batch(
                    procs, url, seed, background_log, clients=1, warmup=0, duration=0, tag=tag + "b"
                )
                time.sleep(1.0)  # the first batch is under way
            try:
                if WARMUP > 0:
                    data = write_data(RESULTS / f"data-{slug}-warmup.lua", row, seed, tag + "w", warmup=True)
                    wrk(procs, url, WARMUP, RESULTS / f"wrk-{slug}-warmup.txt", data=data)
                # The batch loop keeps a session busy all along: nothing to drain to.
                drained = 0.0 if background is not None else drain()
                data = write_data(RESULTS / f"data-{slug}.lua", row, seed, tag + "m", warmup=False)
                run = wrk(procs, url, DURATION, RESULTS / f"wrk-{slug}.txt", data=data)
            finally:
                if background is not None:
                    _signal_group(background.pid, signal.SIGTERM)  # ends after the batch in flight
            if background is not None:
                run.raw["background_batch"] = finish_batch(procs, background, background_log, 600)
        else:
            log = RESULTS / f"batch-{slug}.txt"
            drained = drain()
            proc = start_batch(procs, url, seed, log, clients=BATCH_CLIENTS, warmup=WARMUP, duration=DURATION, tag=tag)
            raw = finish_batch(procs, proc, log, WARMUP + DURATION + 600)
            run = Run(
                rps=raw["deals_per_s"],
                p50_ms=raw["p50_ms"],
                p99_ms=raw["p99_ms"],
                requests=raw["batches"],
                errors=raw["failed_batches"] + raw["record_errors"],
                raw=raw,
            )
    run.rss_mb = rss.max_mb
    run.raw["drained_s"] = round(drained, 1)
    return run


# --- Preflight: both apps answer each row alike before anything is measured --------------------


def _call(
    base: str, method: str, path: str, key: str, *, headers: dict[str, str] | None = None, body: Any = None
) -> httpx.Response:
    auth = {"Authorization": f"Bearer {key}", **(headers or {})}
    return httpx.request(method, base + path, headers=auth, json=body, timeout=60.0)


def _expect(app: str, what: str, response: httpx.Response, status: int) -> Any:
    if response.status_code != status:
        raise BenchError(f"{app}: {what} answered {response.status_code}, expected {status}: {response.text[:500]}")
    return response.json()


def _same(what: str, docs: dict[str, Any], ignore: frozenset[str] = frozenset()) -> None:
    def strip(doc: Any) -> Any:
        return {k: v for k, v in doc.items() if k not in ignore} if isinstance(doc, dict) else doc

    if strip(docs["dealcoach"]) != strip(docs["baseline"]):
        raise BenchError(
            f"{what}: the floor's document differs from Dealcoach's; fix bench/baseline.py\n"
            f"dealcoach: {json.dumps(docs['dealcoach'])[:600]}\nbaseline:  {json.dumps(docs['baseline'])[:600]}"
        )


def _deal_body(owner: str, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "account_name": "Preflight Account",
        "amount": {"amount": "1234.5", "currency": "EUR"},
        "expected_close_date": "2027-03-01",
        "stage": "qualification",
        "owner_id": owner,
    }


def preflight(rows: list[Row], urls: dict[str, str], seed: Seed) -> None:
    """Reads: 200 and the same document (and ETag) from both apps. Writes: the same statuses
    and document shapes, the same refusals (a replayed or reused Idempotency-Key, a stale
    If-Match, a batch record with a manager as owner)."""
    volatile = frozenset({"id", "created_at", "updated_at"})
    for row in rows:
        if row.kind == "get" and not row.floor:
            preflight_dealcoach_only(row, urls["dealcoach"], seed)
        elif row.kind == "get":
            path = row.path.format_map(seed.values)
            key = seed.actors[row.actor][0][0]
            responses = {app: _call(url, "GET", path, key) for app, url in urls.items()}
            docs = {app: _expect(app, row.name, r, 200) for app, r in responses.items()}
            _same(row.name, docs)
            if responses["dealcoach"].headers.get("etag") != responses["baseline"].headers.get("etag"):
                raise BenchError(f"{row.name}: the apps' ETags differ")
            items = docs["dealcoach"].get("items")
            say(
                f"{row.name}: same document on both apps"
                + (
                    f", {len(items)} items, next_cursor {'set' if docs['dealcoach']['next_cursor'] else 'null'}"
                    if items
                    else ""
                )
            )
        elif row.mode == "post":
            for n, (key, member) in enumerate(seed.actors[row.actor]):
                body = _deal_body(member, f"Preflight {n}")
                responses = {app: _call(url, "POST", "/v1/deals", key, body=body) for app, url in urls.items()}
                docs = {app: _expect(app, f"{row.name} as actor {n}", r, 201) for app, r in responses.items()}
                _same(row.name, docs, volatile)
                for app, r in responses.items():
                    if r.headers.get("location") != f"/v1/deals/{docs[app]['id']}" or r.headers.get("etag") != '"1"':
                        raise BenchError(f'{app}: {row.name} sent no Location or no ETag "1"')
            say(f"{row.name}: 201 and the same deal from both apps for each of {len(seed.actors[row.actor])} sellers")
        elif row.mode == "post_idem":
            key, member = seed.actors[row.actor][0]
            docs = {}
            for app, url in urls.items():
                headers = {"Idempotency-Key": f"preflight-{app}"}
                first = _call(url, "POST", "/v1/deals", key, headers=headers, body=_deal_body(member, "Once"))
                docs[app] = _expect(app, row.name, first, 201)
                again = _call(url, "POST", "/v1/deals", key, headers=headers, body=_deal_body(member, "Once"))
                if again.status_code != 201 or again.content != first.content:
                    raise BenchError(f"{app}: a retry with the same Idempotency-Key did not replay the response")
                if again.headers.get("idempotent-replayed") != "true":
                    raise BenchError(f"{app}: a replayed response has no Idempotent-Replayed: true")
                other = _call(url, "POST", "/v1/deals", key, headers=headers, body=_deal_body(member, "Other"))
                if _expect(app, f"{row.name}, key reused", other, 422).get("code") != "idempotency_key_reused":
                    raise BenchError(f"{app}: a reused Idempotency-Key is not idempotency_key_reused")
            _same(row.name, docs, volatile)
            say(f"{row.name}: 201, replayed on retry, 422 for another body, on both apps")
        elif row.mode == "patch":
            key, _member = seed.actors[row.actor][0]
            path = f"/v1/deals/{seed.patch_deals[0]}"
            docs = {}
            for app, url in urls.items():
                etag = _call(url, "GET", path, key).headers.get("etag", "")
                body = {"name": "Preflight patch", "amount": {"amount": "99.00", "currency": "USD"}}
                patched = _call(url, "PATCH", path, key, headers={"If-Match": etag}, body=body)
                docs[app] = _expect(app, row.name, patched, 200)
                if patched.headers.get("etag") != f'"{int(etag.strip(chr(34))) + 1}"':
                    raise BenchError(f"{app}: PATCH answered ETag {patched.headers.get('etag')} after {etag}")
                stale = _call(url, "PATCH", path, key, headers={"If-Match": etag}, body=body)
                _expect(app, f"{row.name} with a stale If-Match", stale, 412)
            _same(row.name, docs, frozenset({"version", "updated_at"}))
            say(f"{row.name}: 200 with the next ETag, 412 for a stale If-Match, on both apps")
        else:
            key = seed.actors["integration"][0][0]
            owners = seed.batch_owners
            outcomes = {}
            for app, url in urls.items():
                records = [
                    {
                        "source": "preflight",
                        "external_id": f"{app}-{i}",
                        "name": f"Batch {i}",
                        "account_name": "Preflight Account",
                        "owner_id": owner,
                    }
                    for i, owner in enumerate([owners[0], owners[1], seed.actors["manager"][0][1]])
                ]
                first = _expect(
                    app, row.name, _call(url, "POST", "/v1/deals/batch-upsert", key, body={"records": records}), 200
                )
                update = [{"source": "preflight", "external_id": f"{app}-0", "stage": "discovery"}]
                second = _expect(
                    app, row.name, _call(url, "POST", "/v1/deals/batch-upsert", key, body={"records": update}), 200
                )
                outcomes[app] = [
                    (r["outcome"], (r["problem"] or {}).get("code")) for r in first["results"] + second["results"]
                ]
            if outcomes["dealcoach"] != outcomes["baseline"]:
                raise BenchError(f"{row.name}: outcomes differ: {outcomes}")
            say(f"{row.name}: the same outcomes on both apps ({', '.join(o for o, _c in outcomes['dealcoach'])})")


def preflight_dealcoach_only(row: Row, url: str, seed: Seed) -> None:
    """A row the floor does not serve: Dealcoach answers 200 with the document the row is about --
    a full first page of the seller's tasks (and all OPEN_TASKS of them in one page of 200), or
    the deal or page with a `members` map naming every owner."""
    path = row.path.format_map(seed.values)
    key = seed.actors[row.actor][0][0]
    doc = _expect("dealcoach", row.name, _call(url, "GET", path, key), 200)
    items = doc.get("items")
    if items is not None:
        limit = int(m.group(1)) if (m := re.search(r"[?&]limit=(\d+)", path)) else 50
        if len(items) != limit or not doc.get("next_cursor"):
            raise BenchError(f"{row.name}: {len(items)} items, expected a full page of {limit} and a next_cursor")
    if path.startswith("/v1/me/tasks"):
        full = _expect("dealcoach", f"{row.name} ?limit=200", _call(url, "GET", "/v1/me/tasks?limit=200", key), 200)
        kinds: dict[str, int] = {}
        for item in full["items"]:
            kinds[item["kind"]] = kinds.get(item["kind"], 0) + 1
        if len(full["items"]) != OPEN_TASKS or full["next_cursor"] is not None:
            raise BenchError(
                f"{row.name}: GET /v1/me/tasks?limit=200 gave {len(full['items'])} tasks "
                f"({kinds}), expected the {OPEN_TASKS} seeded and no next_cursor"
            )
        say(f"{row.name}: 200 on Dealcoach (not in the floor), a full page; {OPEN_TASKS} tasks in all: {kinds}")
        return
    if "expand=members" in path:
        members = doc.get("members")
        owners = {str(item["owner_id"]) for item in (items if items is not None else [doc])}
        if not isinstance(members, dict) or not owners <= set(members):
            raise BenchError(f"{row.name}: `members` missing or without every owner: {json.dumps(doc)[:600]}")
        if any(set(m) != {"id", "name", "role"} for m in members.values()):
            raise BenchError(f"{row.name}: a member of `members` is not {{id, name, role}}: {members}")
        say(
            f"{row.name}: 200 on Dealcoach (not in the floor)"
            + (f", {len(items)} items" if items is not None else "")
            + f", members of {len(members)} owner(s)"
        )
        return
    say(f"{row.name}: 200 on Dealcoach (not in the floor)")


# --- Report -----------------------------------------------------------------------------------


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _ratios(a: list[Run], b: list[Run], metric: str) -> float | None:
    """The median over rounds of a / b for one metric, pairing runs of the same round."""
    return _median(
        [getattr(x, metric) / getattr(y, metric) for x, y in zip(a, b, strict=False) if getattr(y, metric) > 0]
    )


@dataclass
class Line:
    """One row's outcome over the rounds."""

    row: Row
    runs: dict[str, list[Run]]
    ratio: float | None = None
    p99_times: float | None = None
    fails: list[str] = field(default_factory=list)

    def median(self, app: str, metric: str) -> float | None:
        return _median([getattr(r, metric) for r in self.runs[app]])

    def errors(self, app: str) -> int:
        return sum(r.errors for r in self.runs[app])

    def p99(self, app: str) -> str:
        """The median p99, marked ≥ when a round's p99 was longer than its run (a lower bound)."""
        censored = any(r.raw.get("p99_censored") for r in self.runs[app])
        return ("≥ " if censored else "") + _fmt_ms(self.median(app, "p99_ms"))

    @property
    def targeted(self) -> bool:
        return self.row.ratio is not None or self.row.p99 is not None

    @property
    def verdict(self) -> str:
        if self.fails:
            return "FAIL: " + ", ".join(self.fails)
        return "PASS" if self.targeted else "—"


def judge(rows: list[Row], results: dict[str, dict[str, list[Run]]]) -> list[Line]:
    lines = []
    for row in rows:
        line = Line(row, results[row.name])
        dc, base = line.runs["dealcoach"], line.runs["baseline"]
        line.ratio = _ratios(dc, base, "rps")
        line.p99_times = _ratios(dc, base, "p99_ms")
        if row.ratio is not None and (line.ratio is None or line.ratio < row.ratio):
            line.fails.append("ratio")
        if row.p99 is not None and (line.p99_times is None or line.p99_times > row.p99):
            line.fails.append("p99")
        if line.errors("dealcoach"):
            line.fails.append("errors")
        lines.append(line)
    return lines


@dataclass
class Target:
    name: str
    dealcoach: str
    baseline: str
    target: str
    held: bool | None  # None: not measured in this run


def cross_targets(lines: list[Line]) -> list[Target]:
    by_name = {line.row.name: line for line in lines}
    targets = []

    def pair(a: str, b: str, metric: str, fmt: str, target: str, ok: Any) -> Target:
        name = {
            "rps": "POST req/s, 20 sellers of one org ÷ the same over four orgs",
            "p99_ms": "POST p99 while a batch upsert runs ÷ POST p99 alone",
        }[metric]
        if a not in by_name or b not in by_name:
            return Target(name, "not run", "not run", target, None)
        values = {app: _ratios(by_name[a].runs[app], by_name[b].runs[app], metric) for app in APPS}
        shown = {app: "—" if v is None else fmt.format(v) for app, v in values.items()}
        # A run in which no request completed has no req/s to compare, and one whose p99 is longer
        # than the run has no p99 to compare: the target cannot be shown to hold.
        for app in APPS:
            runs = [r for row in (a, b) for r in by_name[row].runs[app]]
            if any(r.raw.get("stalled") for r in runs):
                values[app], shown[app] = None, "stalled"
            elif metric == "p99_ms" and any(r.raw.get("p99_censored") for r in runs):
                values[app], shown[app] = None, "p99 ≥ run"
        held = values["dealcoach"] is not None and ok(values["dealcoach"])
        return Target(name, shown["dealcoach"], shown["baseline"], target, held)

    targets.append(pair(ONE_ORG, FOUR_ORGS, "rps", "{:.2f}", f"≥ {ONE_ORG_MIN:.2f}", lambda v: v >= ONE_ORG_MIN))
    targets.append(pair(DURING, ALONE, "p99_ms", "{:.2f}×", f"≤ {DURING_MAX:g}×", lambda v: v <= DURING_MAX))
    for row_name, most in VS_DEAL_GET.items():
        targets.append(vs_deal_get(by_name, row_name, most))
    if BATCH in by_name:
        line = by_name[BATCH]
        values = {app: line.median(app, "rps") or 0.0 for app in APPS}
        targets.append(
            Target(
                f"batch upsert, {BATCH_SIZE}-record batches, {BATCH_CLIENTS} clients (deals/s)",
                f"{values['dealcoach']:,.0f}",
                f"{values['baseline']:,.0f}",
                f"≥ {BATCH_MIN:,.0f}",
                values["dealcoach"] >= BATCH_MIN,
            )
        )
    else:
        targets.append(Target("batch upsert (deals/s)", "not run", "not run", f"≥ {BATCH_MIN:,.0f}", None))
    rss = {app: max((r.rss_mb for line in lines for r in line.runs[app]), default=0.0) for app in APPS}
    targets.append(
        Target(
            "worker RSS under load (largest seen)",
            f"{rss['dealcoach']:.0f} MB",
            f"{rss['baseline']:.0f} MB",
            f"< {RSS_MAX_MB:.0f} MB",
            0 < rss["dealcoach"] < RSS_MAX_MB,
        )
    )
    errors = {app: sum(line.errors(app) for line in lines) for app in APPS}
    targets.append(
        Target(
            "failed requests, all rows (non-2xx, socket errors, timeouts)",
            f"{errors['dealcoach']:,}",
            f"{errors['baseline']:,}",
            "0",
            errors["dealcoach"] == 0,
        )
    )
    return targets


def vs_deal_get(by_name: dict[str, Line], row_name: str, most: float) -> Target:
    """A Dealcoach-only read's p99 ÷ the seller's plain deal GET's p99, paired by round, at most `most`."""
    name = f"{row_name} p99 ÷ {DEAL_GET} p99"
    target = f"≤ {most:g}×"
    if row_name not in by_name or DEAL_GET not in by_name:
        return Target(name, "not run", "—", target, None)
    a, b = by_name[row_name].runs["dealcoach"], by_name[DEAL_GET].runs["dealcoach"]
    if any(r.raw.get("stalled") for r in (*a, *b)):
        return Target(name, "stalled", "—", target, False)
    if any(r.raw.get("p99_censored") for r in (*a, *b)):
        return Target(name, "p99 ≥ run", "—", target, False)
    value = _ratios(a, b, "p99_ms")
    return Target(name, "—" if value is None else f"{value:.2f}×", "—", target, value is not None and value <= most)


def _fmt_ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.1f} ms" if value >= 10 else f"{value:.2f} ms"


def _fmt_num(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def _text(table: Table, width: int = 260) -> list[str]:
    recorder = Console(record=True, width=width, file=open(os.devnull, "w"), highlight=False)  # noqa: SIM115
    recorder.print(table)
    lines = [line.rstrip() for line in recorder.export_text(styles=False).splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def render(lines: list[Line], targets: list[Target], meta: dict[str, Any], notes: list[str]) -> str:
    table = Table(
        title=f"Dealcoach vs the floor (bare ASGI + asyncpg + orjson, bench/baseline.py) — wrk -t{THREADS} "
        f"-c{CONNECTIONS}, {DURATION} s after {WARMUP} s of warm-up, medians of {ROUNDS} interleaved round(s)",
        box=box.SIMPLE_HEAD,
        title_justify="left",
    )
    columns = ("row", "dealcoach req/s", "p50", "p99", "floor req/s", "p50", "p99", "ratio", "p99 ÷ floor")
    for column in (*columns, "errors", "target", "verdict"):
        table.add_column(column, justify="left" if column in ("row", "target", "verdict") else "right", no_wrap=True)
    for line in lines:
        row = line.row
        target = ", ".join(
            ([f"≥ {row.ratio:.2f}×"] if row.ratio is not None else [])
            + ([f"p99 ≤ {row.p99:g}×"] if row.p99 is not None else [])
        )
        table.add_row(
            row.name,
            _fmt_num(line.median("dealcoach", "rps")),
            _fmt_ms(line.median("dealcoach", "p50_ms")),
            line.p99("dealcoach"),
            _fmt_num(line.median("baseline", "rps")),
            _fmt_ms(line.median("baseline", "p50_ms")),
            line.p99("baseline"),
            "—" if line.ratio is None else f"{line.ratio:.2f}",
            "—" if line.p99_times is None else f"{line.p99_times:.2f}×",
            f"{line.errors('dealcoach')}/{line.errors('baseline') if row.floor else '—'}",
            target or "—",
            line.verdict,
        )
    cross = Table(title="Targets across rows", box=box.SIMPLE_HEAD, title_justify="left")
    for column in ("target", "dealcoach", "floor", "target ", "verdict"):
        cross.add_column(column, justify="left" if column in ("target", "verdict") else "right", no_wrap=True)
    for t in targets:
        cross.add_row(t.name, t.dealcoach, t.baseline, t.target, "not run" if t.held is None else _pass(t.held))

    held = [not line.fails for line in lines if line.targeted] + [t.held for t in targets if t.held is not None]
    out = _text(table) + [""] + _text(cross)
    out += [
        "",
        f"targets held: {sum(held)} of {len(held)}",
        "ratio = Dealcoach req/s ÷ the floor's, p99 ÷ floor = Dealcoach p99 ÷ the floor's: medians over the rounds "
        "of the two apps' runs in the same round; errors = Dealcoach/floor non-2xx + socket errors + timeouts "
        "(batch: failed batches + refused records), summed over the rounds; — under the floor: a read the floor "
        "does not serve, measured on Dealcoach only",
        f"commit {meta['commit']} · {meta['cpus']} CPUs · Python {meta['python']} · PostgreSQL {meta['postgres']} · "
        f"{meta['workers']} uvicorn workers each · {meta['members']} members and {meta['deals']:,} deals in the org "
        f"({meta['seller_deals']:,} the reading seller's) · {meta['when']}",
    ]
    out.extend(f"note: {note}" for note in notes)
    return "\n".join(out) + "\n"


def _pass(held: bool) -> str:
    return "PASS" if held else "FAIL"


def report_json(lines: list[Line], targets: list[Target], meta: dict[str, Any]) -> dict[str, Any]:
    def app_doc(line: Line, app: str) -> dict[str, Any]:
        return {
            "rps": line.median(app, "rps"),
            "p50_ms": line.median(app, "p50_ms"),
            "p99_ms": line.median(app, "p99_ms"),
            "errors": line.errors(app),
            "rss_mb": max((r.rss_mb for r in line.runs[app]), default=None),
            "rounds": [{**r.raw, "rss_mb": round(r.rss_mb, 1)} for r in line.runs[app]],
        }

    return {
        "meta": {
            **meta,
            "duration_s": DURATION,
            "warmup_s": WARMUP,
            "rounds": ROUNDS,
            "connections": CONNECTIONS,
            "threads": THREADS,
        },
        "rows": [
            {
                "row": line.row.name,
                "targets": {"ratio": line.row.ratio, "p99_times": line.row.p99},
                "floor": line.row.floor,
                "dealcoach": app_doc(line, "dealcoach"),
                "baseline": app_doc(line, "baseline") if line.row.floor else None,
                "ratio": line.ratio,
                "p99_times": line.p99_times,
                "verdict": line.verdict,
            }
            for line in lines
        ],
        "targets": [t.__dict__ for t in targets],
    }


def _commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "app"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        return (head or "unknown") + ("+dirty app/" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def busy_cpu_percent(seconds: float = 1.0) -> float | None:
    """How busy the machine is (all processes, all cores) over `seconds`: other load skews the figures."""

    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields), fields[3] + (fields[4] if len(fields) > 4 else 0)

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return 100.0 * (1 - (idle1 - idle0) / max(1, total1 - total0))


def scan_log(path: Path) -> list[str]:
    """Warnings and errors the app logged while under load (access logging is off)."""
    found = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            if re.search(r"error|exception|traceback", line, re.IGNORECASE):
                found.append(line)
            continue
        if isinstance(record, dict) and str(record.get("level", "")).lower() in ("warning", "error", "critical"):
            found.append(line)
    return found


# --- Main -------------------------------------------------------------------------------------


def main() -> int:
    started = time.monotonic()
    rows = [row for row in ROWS if not ONLY or row.name in ONLY]
    if not rows:
        names = ", ".join(row.name for row in ROWS)
        console.print(f"[red]bench: BENCH_ONLY={','.join(sorted(ONLY))} matches no row of: {names}[/red]")
        return 2
    RESULTS.mkdir(exist_ok=True)
    for old in [*RESULTS.glob("wrk-*.txt"), *RESULTS.glob("batch-*.txt"), *RESULTS.glob("data-*.lua")]:
        old.unlink()
    procs = Processes()
    metrics_dir = tempfile.mkdtemp(prefix="dealcoach-bench-metrics-")

    def on_signal(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)

    try:
        say(f"database {DB_NAME}: dropping and recreating")
        pg_version, max_connections = asyncio.run(recreate_database())
        env = {
            **os.environ,
            "DEALCOACH_DATABASE_URL": sqlalchemy_url(),
            "DEALCOACH_ACCESS_LOG": "false",
            # Rate limiting must never throttle the load: the bench measures the work, not the limiter.
            "DEALCOACH_RATE_LIMIT_PER_SECOND": "0",
            "DEALCOACH_SECRET_KEY": SECRET_KEY,
            "PROMETHEUS_MULTIPROC_DIR": metrics_dir,
        }
        dealcoach_cli(["migrate"], env)
        orgs = []
        for name, domain, _members in ORGS:
            boot = bootstrap(env, name, f"admin@{domain}")
            orgs.append(Org(id=boot["organization_id"], admin_key=boot["api_key"]))

        dc_port, base_port = free_port(), free_port()
        while base_port == dc_port:
            base_port = free_port()
        dc_url, base_url = f"http://127.0.0.1:{dc_port}", f"http://127.0.0.1:{base_port}"
        dc_log, base_log = RESULTS / "dealcoach.log", RESULTS / "baseline.log"
        exe = VENV_BIN / "dealcoach"
        servers = {
            "dealcoach": Server(
                "dealcoach",
                [str(exe), "serve", "--host", "127.0.0.1", "--port", str(dc_port), "--workers", str(WORKERS)],
                env,
                dc_url,
                dc_log,
            ),
            "baseline": Server(
                "baseline",
                [
                    str(VENV_BIN / "python"),
                    str(BENCH_DIR / "floor_serve.py"),
                    *("--host", "127.0.0.1", "--port", str(base_port), "--workers", str(WORKERS)),
                ],
                {**os.environ, "BENCH_BASELINE_DSN": asyncpg_dsn(), "DEALCOACH_SECRET_KEY": SECRET_KEY},
                base_url,
                base_log,
            ),
        }
        say(f"dealcoach serve --workers {WORKERS} on {dc_url}")
        servers["dealcoach"].start(procs)
        say(
            f"the floor (bench/baseline.py, served as Dealcoach is: bench/floor_serve.py --workers {WORKERS}) on {base_url}"
        )
        servers["baseline"].start(procs)
        for server in servers.values():
            server.wait_ready()

        seeded = asyncio.run(seed(dc_url, orgs))
        urls = {"dealcoach": dc_url, "baseline": base_url}
        preflight(rows, urls, seeded)
        notes: list[str] = []
        busy = busy_cpu_percent()
        if busy is not None and busy > 15:
            notes.append(
                f"the machine was {busy:.0f}% busy before the load started (other processes): "
                "figures are noisy, ratios less so"
            )
        budget = WORKERS * max(dealcoach_pool_budget(), POOL_BUDGET_BASELINE)
        if budget > max_connections - 10:
            notes.append(
                f"each app may open {budget} database connections and PostgreSQL allows "
                f"{max_connections}: requests may fail for want of a connection"
            )

        # Only the app under load runs: the two apps' pools together (2 x workers x 30 connections)
        # would not fit in PostgreSQL's default max_connections of 100. The order alternates
        # (D B, B D, D B, ... across rows and rounds), so each switch of app is shared by two
        # rows and drift over the run falls on both apps alike.
        results: dict[str, dict[str, list[Run]]] = {row.name: {app: [] for app in APPS} for row in rows}
        turn = 0
        for rnd in range(1, ROUNDS + 1):
            for row in rows:
                order = APPS if turn % 2 == 0 else tuple(reversed(APPS))
                turn += 1
                for app in order:
                    if app == "baseline" and not row.floor:
                        continue  # the floor does not serve it
                    for other, server in servers.items():
                        if other != app:
                            server.stop(procs)
                    servers[app].start(procs)
                    servers[app].wait_ready()
                    say(f"round {rnd}/{ROUNDS} {row.name:<48} {app:<9} {WARMUP} + {DURATION} s ...")
                    run = measure(procs, row, app, servers[app], seeded, rnd)
                    results[row.name][app].append(run)
                    unit = "deals/s" if row.kind == "batch" else "req/s"
                    say(
                        f"round {rnd}/{ROUNDS} {row.name:<48} {app:<9} {run.rps:>8,.0f} {unit}  "
                        f"p50 {_fmt_ms(run.p50_ms):>9}  p99 {_fmt_ms(run.p99_ms):>9}  errors {run.errors}  "
                        f"RSS {run.rss_mb:.0f} MB"
                        + (
                            f"  (waited {run.raw['drained_s']:.0f} s for the warm-up's requests)"
                            if run.raw["drained_s"] >= 1
                            else ""
                        )
                    )

        lines = judge(rows, results)
        targets = cross_targets(lines)
        problems = scan_log(dc_log)
        if problems:
            notes.append(f"dealcoach logged {len(problems)} warning/error lines; see {dc_log.relative_to(ROOT)}")
        for line in lines:
            for app in APPS:
                statuses: dict[str, int] = {}
                for r in line.runs[app]:
                    for status, count in r.raw.get("statuses", {}).items():
                        statuses[status] = statuses.get(status, 0) + count
                if any(not status.startswith("2") for status in statuses):
                    counts = ", ".join(f"{n:,} × {status}" for status, n in sorted(statuses.items()))
                    notes.append(f"{app} {line.row.name}: responses {counts}")
                if any(r.raw.get("drained_s", 0) >= 29.9 for r in line.runs[app]):
                    notes.append(f"{app} {line.row.name}: still busy 30 s after a warm-up; measured anyway")
                for r in line.runs[app]:
                    first = (r.raw.get("background_batch") or r.raw).get("first_error")
                    if r.raw.get("stalled"):
                        notes.append(f"{app} {line.row.name}: no request completed in a {DURATION} s run")
                        break
                    if r.raw.get("p99_censored"):
                        notes.append(
                            f"{app} {line.row.name}: {r.raw['unanswered_connections']} of {CONNECTIONS} "
                            f"connections got no answer in a {DURATION} s run, so its p99 is at least {DURATION} s"
                        )
                        break
                    if first:
                        notes.append(f"{app} {line.row.name}: {first}")
                        break
        meta = {
            "commit": _commit(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "postgres": pg_version,
            "workers": WORKERS,
            "members": MEMBERS,
            "deals": DEALS,
            "seller_deals": seeded.seller_deals,
            "busy_before": None if busy is None else round(busy, 1),
            "when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        }
        text = render(lines, targets, meta, notes)
        (RESULTS / "latest.txt").write_text(text)
        (RESULTS / "latest.json").write_text(json.dumps(report_json(lines, targets, meta), indent=2) + "\n")
        print()
        print(text, end="")
        say(f"written to {(RESULTS / 'latest.txt').relative_to(ROOT)} in {time.monotonic() - started:.0f} s")
        failed = [(line.row.name, line.errors("dealcoach"), line.errors("baseline")) for line in lines]
        failed = [f for f in failed if f[1] or f[2]]
        if failed:
            console.print(f"[red]bench: requests failed under load (row, dealcoach, floor): {failed}[/red]")
            return 0 if os.environ.get("BENCH_ALLOW_ERRORS") else 1
        return 0
    except BenchError as exc:
        console.print(f"[red]bench: {exc}[/red]")
        return 2
    except KeyboardInterrupt:
        console.print("[yellow]bench: interrupted[/yellow]")
        return 130
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # a second signal must not cut the cleanup short
        procs.stop_all()
        shutil.rmtree(metrics_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
