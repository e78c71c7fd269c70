"""The bench driver (`make bench` -> bench/run.sh -> this file).

Creates a fresh PostgreSQL database, migrates and seeds it (members through the API,
100,000 deals in SQL), starts `dealcoach serve` and the bare baseline app (bench/baseline.py),
checks they answer the same documents, then drives every endpoint in ENDPOINTS on each with
wrk -- only the app under load running, so each has PostgreSQL's connections to itself --
and prints req/s, p50 and p99 with the ratio Dealcoach / baseline. Results also go to
bench/results/latest.txt (and latest.json).

Every process it starts is stopped on the way out, whatever happens.

Settings (environment): BENCH_DURATION (s per measured run, default 10), BENCH_WARMUP
(s of discarded load before each run, default 2), BENCH_CONNECTIONS (64), BENCH_THREADS (2),
BENCH_WORKERS (2), BENCH_MEMBERS (200), BENCH_DEALS (100000), BENCH_PG_DSN (a superuser DSN
on the maintenance database, default postgresql://postgres@127.0.0.1:$BENCH_PG_PORT/postgres), BENCH_DB
(dealcoach_bench: dropped and recreated on every run), BENCH_ONLY (comma-separated
endpoint names to run, default all), BENCH_ALLOW_ERRORS (set: exit 0 even when requests failed).
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
import subprocess
import sys
import tempfile
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

# --- What is measured: add a line here (and a handler in baseline.ROUTES) per endpoint. ------
# (name, path with query). Requests carry the bench key: a seller's key in an org of
# BENCH_MEMBERS members and BENCH_DEALS deals, a quarter of them the seller's. A path may name
# values known only after seeding, filled in with str.format: {deep_cursor} resumes the
# seller's deal listing 100 deals before its end. Set BASELINE_LESS for an endpoint the
# baseline does not answer.
ENDPOINTS: list[tuple[str, str]] = [
    ("GET /v1/me", "/v1/me"),
    ("GET /v1/members", "/v1/members?limit=50"),
    ("GET /v1/deals (first page)", "/v1/deals?limit=50"),
    ("GET /v1/deals (deep page)", "/v1/deals?limit=50&cursor={deep_cursor}"),
]
BASELINE_LESS: set[str] = set()
# The baseline's pool per worker (bench/baseline.py POOL_MAX): the same budget as Dealcoach's.
POOL_BUDGET_BASELINE = int(os.environ.get("BENCH_BASELINE_POOL_MAX", "30"))

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results"
VENV_BIN = Path(sys.executable).parent


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip().rstrip("s")
    return int(raw) if raw else default


DURATION = _env_int("BENCH_DURATION", 10)
WARMUP = _env_int("BENCH_WARMUP", 2)
CONNECTIONS = _env_int("BENCH_CONNECTIONS", 64)
THREADS = _env_int("BENCH_THREADS", 2)
WORKERS = _env_int("BENCH_WORKERS", 2)
MEMBERS = _env_int("BENCH_MEMBERS", 200)
DEALS = _env_int("BENCH_DEALS", 100_000)
PG_PORT = _env_int("BENCH_PG_PORT", 5432)
PG_DSN = os.environ.get("BENCH_PG_DSN", f"postgresql://postgres@127.0.0.1:{PG_PORT}/postgres")
DB_NAME = os.environ.get("BENCH_DB", "dealcoach_bench")
# Seals cursors; Dealcoach and the baseline share it, so their documents (next_cursor too) match.
SECRET_KEY = os.environ.get("DEALCOACH_SECRET_KEY") or secrets.token_urlsafe(32)
ONLY = {s.strip() for s in os.environ.get("BENCH_ONLY", "").split(",") if s.strip()}

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


async def seed_org(base_url: str, admin_key: str, domain: str, members: int) -> tuple[str, str]:
    """Fill an organisation through the API: a head of sales, managers under them and
    sellers under the managers, `members` in all with the admin. Returns a seller's new key
    and that seller's member id."""
    headers = {"Authorization": f"Bearer {admin_key}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30.0) as client:

        async def create(name: str, role: str, manager_id: str | None = None) -> str:
            body: dict[str, Any] = {"name": name, "email": f"{name.lower().replace(' ', '.')}@{domain}", "role": role}
            if manager_id:
                body["manager_id"] = manager_id
            response = await client.post("/v1/members", json=body)
            if response.status_code != 201:
                raise BenchError(f"seeding POST /v1/members answered {response.status_code}: {response.text[:500]}")
            return str(response.json()["id"])

        head = await create("Head Of Sales", "head_of_sales")
        n_managers = max(1, (members - 2) // 20)
        managers = [await create(f"Manager {i:03d}", "manager", head) for i in range(n_managers)]
        n_sellers = max(1, members - 2 - n_managers)
        gate = asyncio.Semaphore(8)  # the app serialises member writes per org; a few in flight keep it busy

        async def seller(i: int) -> str:
            async with gate:
                return await create(f"Seller {i:04d}", "seller", managers[i % len(managers)])

        sellers = await asyncio.gather(*(seller(i) for i in range(n_sellers)))
        response = await client.post(f"/v1/members/{sellers[0]}/api-keys", json={"label": "bench"})
        if response.status_code != 201:
            raise BenchError(f"seeding POST api-keys answered {response.status_code}: {response.text[:500]}")
        return str(response.json()["api_key"]), sellers[0]


# Deal ids grow with the row number, as UUIDv7 ids do; no deal is created through the API, so
# this scheme decides the whole table's order. Row i of an organisation gets number
# stride * i + offset: the benchmarked org takes the even numbers, the other org every 20th
# odd one, so the two organisations' deals interleave in the primary key.
def _deal_id(stride: str, offset: str) -> str:
    return f"('01900000-0000-7000-8000-' || lpad(to_hex({stride}::int * i + {offset}::int), 12, '0'))::uuid"


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
# The seller's visible deals, as deals.visibility() has it (there are no assignments).
_VISIBLE_TO_SELLER = """
SELECT id FROM deal
WHERE organization_id = $1 AND (owner_id = $2 OR id IN
      (SELECT deal_id FROM assignment WHERE member_id = $2 AND status = 'active'))
ORDER BY id DESC OFFSET $3 LIMIT 1
"""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor(organization_id: str, listing: str, key: list[Any]) -> str:
    """app/http/cursors.py Cursors.encode(): the key, sealed for its listing and organisation."""
    payload = json.dumps(key, separators=(",", ":")).encode()
    message = f"{organization_id}\n{listing}\n".encode() + payload
    mac = hmac.new(SECRET_KEY.encode(), message, hashlib.sha256).digest()[:16]
    return f"{_b64(payload)}.{_b64(mac)}"


async def seed_deals(main_org: str, seller_id: str, other_org: str, deals: int) -> dict[str, str]:
    """`deals` deals in the benchmarked org (every 4th the bench seller's, the rest spread over
    the other sellers) and a tenth as many in the other org, with external refs, straight in
    SQL; then ANALYZE. Returns the values ENDPOINTS paths may name."""
    conn = await asyncpg.connect(asyncpg_dsn(), timeout=5)
    try:
        async with conn.transaction():
            for org, bench_seller, count, stride, offset in (
                (main_org, seller_id, deals, 2, 0),
                (other_org, None, max(1, deals // 10), 20, 1),
            ):
                owners = [
                    r["id"]
                    for r in await conn.fetch(
                        "SELECT id FROM member WHERE organization_id = $1 AND role = 'seller' AND active "
                        "AND id IS DISTINCT FROM $2::uuid ORDER BY id",
                        org,
                        bench_seller,
                    )
                ]
                if not owners:
                    raise BenchError(f"no sellers to own deals in organisation {org}")
                await conn.execute(_SEED_DEALS, org, bench_seller, owners, count, stride, offset)
                await conn.execute(_SEED_REFS, org, count, stride, offset)
        await conn.execute("ANALYZE deal, deal_external_ref, assignment")
        visible = await conn.fetchval(
            "SELECT count(*) FROM deal WHERE organization_id = $1 AND owner_id = $2", main_org, seller_id
        )
        if visible < 200:
            raise BenchError(f"BENCH_DEALS={deals} leaves the seller {visible} deals; the deep page needs 200 or more")
        last = await conn.fetchval(_VISIBLE_TO_SELLER, main_org, seller_id, 100)
    finally:
        await conn.close()
    return {"deep_cursor": _cursor(main_org, "deals", [str(last)]), "seller_deals": str(visible)}


# --- Load -------------------------------------------------------------------------------------


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # non-2xx/3xx responses + socket errors + timeouts
    raw: dict[str, Any] = field(default_factory=dict)


def wrk(procs: Processes, url: str, key: str, seconds: int, log: Path) -> Run:
    wrk_bin = shutil.which("wrk")
    if wrk_bin is None:
        raise BenchError("wrk is not installed (bench/run.sh installs it with apt-get)")
    argv = [
        wrk_bin,
        f"-t{THREADS}",
        f"-c{CONNECTIONS}",
        f"-d{seconds}s",
        "--timeout",
        "5s",
        "--latency",
        "-s",
        str(BENCH_DIR / "report.lua"),
        "-H",
        f"Authorization: Bearer {key}",
        url,
    ]
    proc = procs.start("wrk", argv, os.environ.copy(), log)
    try:
        proc.wait(timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        raise BenchError(f"wrk did not finish in {seconds + 60}s") from None
    finally:
        procs.procs = [(n, p) for n, p in procs.procs if p is not proc]
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
    text = log.read_text(errors="replace")
    if proc.returncode != 0:
        raise BenchError(f"wrk exited with {proc.returncode}:\n{text[-2000:]}")
    match = re.search(r"^BENCH_RESULT (\{.*\})$", text, re.MULTILINE)
    if match is None:
        raise BenchError(f"wrk printed no BENCH_RESULT line:\n{text[-2000:]}")
    raw = json.loads(match.group(1))
    errors = sum(raw[k] for k in ("non_2xx_3xx", "connect_errors", "read_errors", "write_errors", "timeouts"))
    return Run(
        rps=raw["rps"], p50_ms=raw["p50_ms"], p99_ms=raw["p99_ms"], requests=raw["requests"], errors=errors, raw=raw
    )


def preflight(targets: dict[str, str], key: str, endpoints: list[tuple[str, str]]) -> list[str]:
    """Each endpoint answers 200 on both apps, with the same document; returns notes."""
    notes = []
    headers = {"Authorization": f"Bearer {key}"}
    for name, path in endpoints:
        bodies = {}
        for target, base in targets.items():
            if target == "baseline" and name in BASELINE_LESS:
                continue
            response = httpx.get(base + path, headers=headers, timeout=10.0)
            if response.status_code != 200:
                raise BenchError(f"{target} {name} answered {response.status_code}: {response.text[:500]}")
            bodies[target] = response.content
        if len(bodies) == 2:
            if json.loads(bodies["dealcoach"]) != json.loads(bodies["baseline"]):
                raise BenchError(
                    f"{name}: the baseline's document differs from Dealcoach's; fix bench/baseline.py\n"
                    f"dealcoach: {bodies['dealcoach'][:400]!r}\nbaseline:  {bodies['baseline'][:400]!r}"
                )
            if bodies["dealcoach"] != bodies["baseline"]:
                notes.append(f"{name}: same JSON document, different bytes")
        body = bodies["dealcoach"]
        doc = json.loads(body)
        if isinstance(doc, dict) and isinstance(doc.get("items"), list):
            same = ", same bytes on both apps" if bodies.get("baseline") == body else ""
            say(
                f"{name}: {len(doc['items'])} items, {len(body):,} bytes, "
                f"next_cursor {'set' if doc.get('next_cursor') else 'null'}{same}"
            )
    return notes


# --- Report -----------------------------------------------------------------------------------


def _fmt_ms(value: float) -> str:
    return f"{value:.1f} ms" if value >= 10 else f"{value:.2f} ms"


def render(results: list[tuple[str, Run, Run | None]], meta: dict[str, Any], notes: list[str]) -> str:
    table = Table(
        title=f"Dealcoach vs bare ASGI + asyncpg baseline — wrk {THREADS} threads, {CONNECTIONS} connections, "
        f"{DURATION} s per run",
        box=box.SIMPLE_HEAD,
        title_justify="left",
    )
    for column in ("endpoint", "dealcoach req/s", "p50", "p99", "baseline req/s", "p50", "p99", "ratio", "errors"):
        table.add_column(column, justify="left" if column == "endpoint" else "right", no_wrap=True)
    for name, dc, base in results:
        table.add_row(
            name,
            f"{dc.rps:,.0f}",
            _fmt_ms(dc.p50_ms),
            _fmt_ms(dc.p99_ms),
            f"{base.rps:,.0f}" if base else "—",
            _fmt_ms(base.p50_ms) if base else "—",
            _fmt_ms(base.p99_ms) if base else "—",
            f"{dc.rps / base.rps:.2f}" if base and base.rps else "—",
            f"{dc.errors}/{base.errors if base else 0}",
        )
    recorder = Console(record=True, width=160, file=open(os.devnull, "w"), highlight=False)  # noqa: SIM115
    recorder.print(table)
    lines = [line.rstrip() for line in recorder.export_text(styles=False).splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    lines += [
        "",
        "ratio = dealcoach req/s / baseline req/s (1.00 = as fast as the bare app); "
        "errors = dealcoach/baseline non-2xx + socket errors + timeouts",
        f"commit {meta['commit']} · {meta['cpus']} CPUs · Python {meta['python']} · PostgreSQL {meta['postgres']} · "
        f"{meta['workers']} uvicorn workers each · {meta['members']} members and {meta['deals']:,} deals in the org "
        f"({meta['seller_deals']:,} the seller's) · {meta['when']}",
    ]
    lines.extend(f"note: {note}" for note in notes)
    return "\n".join(lines) + "\n"


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
    endpoints = [(n, p) for n, p in ENDPOINTS if not ONLY or n in ONLY]
    if not endpoints:
        raise BenchError(f"BENCH_ONLY={','.join(sorted(ONLY))} matches no endpoint in {[n for n, _ in ENDPOINTS]}")
    RESULTS.mkdir(exist_ok=True)
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
            "DEALCOACH_SECRET_KEY": SECRET_KEY,
            "PROMETHEUS_MULTIPROC_DIR": metrics_dir,
        }
        dealcoach_cli(["migrate"], env)
        main_org = bootstrap(env, "Bench Co", "admin@bench.example")
        other_org = bootstrap(env, "Other Co", "admin@other.example")

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
                    str(VENV_BIN / "uvicorn"),
                    "--app-dir",
                    str(BENCH_DIR),
                    "baseline:app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(base_port),
                    "--workers",
                    str(WORKERS),
                    "--no-access-log",
                    "--no-server-header",
                    "--log-level",
                    "warning",
                ],
                {**os.environ, "BENCH_BASELINE_DSN": asyncpg_dsn(), "DEALCOACH_SECRET_KEY": SECRET_KEY},
                base_url,
                base_log,
            ),
        }
        say(f"dealcoach serve --workers {WORKERS} on {dc_url}")
        servers["dealcoach"].start(procs)
        say(f"baseline (bare ASGI + asyncpg, uvicorn --workers {WORKERS}) on {base_url}")
        servers["baseline"].start(procs)
        for server in servers.values():
            server.wait_ready()

        t0 = time.monotonic()
        key, seller_id = asyncio.run(seed_org(dc_url, main_org["api_key"], "bench.example", MEMBERS))
        asyncio.run(seed_org(dc_url, other_org["api_key"], "other.example", max(10, MEMBERS // 4)))
        say(f"seeded {MEMBERS} + {max(10, MEMBERS // 4)} members through the API in {time.monotonic() - t0:.1f} s")
        t0 = time.monotonic()
        seeded = asyncio.run(seed_deals(main_org["organization_id"], seller_id, other_org["organization_id"], DEALS))
        say(
            f"seeded {DEALS:,} + {max(1, DEALS // 10):,} deals in SQL in {time.monotonic() - t0:.1f} s "
            f"({int(seeded['seller_deals']):,} of them the bench seller's)"
        )
        endpoints = [(n, p.format_map(seeded)) for n, p in endpoints]

        targets = {"dealcoach": dc_url, "baseline": base_url}
        notes = preflight(targets, key, endpoints)
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
        # (D B, B D, D B, ...), so each switch of app is shared by two endpoints and drift
        # over the run falls on both apps alike.
        results: list[tuple[str, Run, Run | None]] = []
        for index, (name, path) in enumerate(endpoints):
            runs: dict[str, Run] = {}
            order = list(targets.items()) if index % 2 == 0 else list(reversed(targets.items()))
            for target, url in order:
                if target == "baseline" and name in BASELINE_LESS:
                    continue
                for other, server in servers.items():
                    if other != target:
                        server.stop(procs)
                servers[target].start(procs)
                servers[target].wait_ready()
                slug = re.sub(r"[^a-z0-9]+", "-", f"{target} {name}".lower()).strip("-")
                if WARMUP > 0:
                    wrk(procs, url + path, key, WARMUP, RESULTS / f"wrk-{slug}-warmup.txt")
                say(f"{name:<26} {target:<9} {DURATION} s ...")
                run = wrk(procs, url + path, key, DURATION, RESULTS / f"wrk-{slug}.txt")
                runs[target] = run
                say(
                    f"{name:<26} {target:<9} {run.rps:>8,.0f} req/s  p50 {_fmt_ms(run.p50_ms):>9}  "
                    f"p99 {_fmt_ms(run.p99_ms):>9}  errors {run.errors}"
                )
            results.append((name, runs["dealcoach"], runs.get("baseline")))

        problems = scan_log(dc_log)
        if problems:
            notes.append(f"dealcoach logged {len(problems)} warning/error lines; see {dc_log.relative_to(ROOT)}")
        meta = {
            "commit": _commit(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "postgres": pg_version,
            "workers": WORKERS,
            "members": MEMBERS,
            "deals": DEALS,
            "seller_deals": int(seeded["seller_deals"]),
            "busy_before": None if busy is None else round(busy, 1),
            "when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        }
        text = render(results, meta, notes)
        (RESULTS / "latest.txt").write_text(text)
        (RESULTS / "latest.json").write_text(
            json.dumps(
                {
                    "meta": {**meta, "duration_s": DURATION, "connections": CONNECTIONS, "threads": THREADS},
                    "results": [
                        {
                            "endpoint": n,
                            "dealcoach": d.raw,
                            "baseline": b.raw if b else None,
                            "ratio": round(d.rps / b.rps, 3) if b and b.rps else None,
                        }
                        for n, d, b in results
                    ],
                },
                indent=2,
            )
            + "\n"
        )
        print()
        print(text, end="")
        say(f"written to {(RESULTS / 'latest.txt').relative_to(ROOT)} in {time.monotonic() - started:.0f} s")
        failed = [(n, d.errors, b.errors if b else 0) for n, d, b in results if d.errors or (b and b.errors)]
        if failed:
            console.print(f"[red]bench: requests failed under load (endpoint, dealcoach, baseline): {failed}[/red]")
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
