"""Seller development at scale: `.venv/bin/python bench/development_bench.py`.

Drops and recreates the PostgreSQL database `dealcoach_bench_development`, migrates it
(app.db.migrate.upgrade), bootstraps an organisation and seeds it in SQL (generate_series): a head
of sales, BENCH_MANAGERS managers with BENCH_SELLERS sellers spread over them, BENCH_DEALS deals
(one in five lost over the last two years, one in five won), a closed-lost review for every lost
deal (60% completed, one or two skill gaps on 70% of them), BENCH_OBSERVATIONS held calls each
with one observation by the seller's manager (10% draft, 20% shared, 70% acknowledged; one or two
strengths, up to two improvements), their skills in `observation_skill`, one or two commitments
per acknowledged debrief (a third of them done or dropped); plus a second, small organisation, so
every query must filter by organisation.

Then it times, in-process (httpx.ASGITransport into create_app, so routing, auth, the service,
the SQL and rendering are all in the figure): GET /v1/members/{id}/development for one seller as
that seller and as the head of sales, GET /v1/calls/{id}/brief, and GET /v1/analytics/skills as
one manager (their line) and as the head of sales (the organisation), over the default 90 days
and over 366 days. Each case: one warm-up request, then BENCH_RUNS timed ones; it prints the
median, fastest and slowest request, and how many statements the request sent to PostgreSQL after
authenticating and how long they took (the median of their sums). `--explain` also prints
EXPLAIN (ANALYZE, BUFFERS) of the slowest statement of a few cases.

Settings (environment): BENCH_PG_DSN (superuser DSN on the maintenance database, default
postgresql://postgres@127.0.0.1:5432/postgres), BENCH_DEALS (1000000), BENCH_OBSERVATIONS (300000),
BENCH_MANAGERS (20), BENCH_SELLERS (400), BENCH_RUNS (5), BENCH_KEEP_DB (set: reuse a seeded
database, skip seeding).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.db.migrate import upgrade  # noqa: E402
from app.db.uow import UnitOfWork  # noqa: E402
from app.domain.catalogs import DEFAULT_LOSS_REASONS, DEFAULT_SKILLS  # noqa: E402
from app.domain.ids import uuid7  # noqa: E402
from app.main import create_app  # noqa: E402
from app.services.bootstrap import bootstrap_organization  # noqa: E402
from app.settings import Settings  # noqa: E402
from common import dsn, recreate_database, sa_url  # noqa: E402

DB = "dealcoach_bench_development"
DEALS = int(os.environ.get("BENCH_DEALS", "1000000"))
OBSERVATIONS = int(os.environ.get("BENCH_OBSERVATIONS", "300000"))
MANAGERS = int(os.environ.get("BENCH_MANAGERS", "20"))
SELLERS = int(os.environ.get("BENCH_SELLERS", "400"))
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
KEEP_DB = bool(os.environ.get("BENCH_KEEP_DB"))
STATE = Path(__file__).with_name("results") / "development_bench_state.json"
SKILLS = [code for code, _ in DEFAULT_SKILLS]
REASONS = [code for code, _, _ in DEFAULT_LOSS_REASONS]


def _uuids(values: list[uuid.UUID]) -> str:
    return "ARRAY[" + ",".join(f"'{v}'" for v in values) + "]::uuid[]"


def _texts(values: list[str]) -> str:
    return "ARRAY[" + ",".join(f"'{v}'" for v in values) + "]"


def _skill(expression: str) -> str:
    """The skill code at 1 + (expression) % 10 of the default catalog, as SQL."""
    return f"({_texts(SKILLS)})[1 + ({expression}) % {len(SKILLS)}]"


async def bootstrap(app: Any, name: str, email: str) -> tuple[uuid.UUID, str]:
    uow = UnitOfWork(app.state.sessionmaker)
    try:
        done = await bootstrap_organization(uow, org_name=name, admin_email=email, admin_name="Bench Admin")
    finally:
        await uow.close()
    return done.organization_id, done.api_key


async def seed_org(
    conn: asyncpg.Connection,
    org: uuid.UUID,
    *,
    deals: int,
    observations: int,
    managers: int,
    sellers: int,
    id_prefix: str,
) -> dict[str, Any]:
    """Members, deals, reviews with skill gaps, calls with observations and their skills, and
    commitments of one organisation, all in SQL."""
    hos = uuid7()
    manager_ids = [uuid7() for _ in range(managers)]
    seller_ids = [uuid7() for _ in range(sellers)]
    rows = [(hos, "head_of_sales", None)] + [(m, "manager", hos) for m in manager_ids]
    # Seller j reports to manager j * managers // sellers: contiguous blocks.
    rows += [(s, "seller", manager_ids[j * managers // sellers]) for j, s in enumerate(seller_ids)]
    await conn.executemany(
        "INSERT INTO member (id, organization_id, name, email, role, manager_id, active, version, created_at, "
        "updated_at) VALUES ($1, $2, $3, $4, $5, $6, true, 1, now(), now())",
        [
            (mid, org, f"{role} {i}", f"{role}{i}.{id_prefix}@bench.test", role, manager)
            for i, (mid, role, manager) in enumerate(rows)
        ],
    )
    # Deals: ids grow with i, as UUIDv7 ids do; one in five lost over the last two years, one won.
    await conn.execute(
        f"""
        INSERT INTO deal (id, organization_id, name, account_name, amount_minor, currency, stage, owner_id,
                          closed_at, loss_reason_code, version, created_at, updated_at)
        SELECT ('{id_prefix}-0000-7000-8000-' || lpad(to_hex(i), 12, '0'))::uuid, $1,
               'Deal ' || i, 'Account ' || (i % 9973),
               (1000 + (i::bigint * 7919) % 500000) * 100, (ARRAY['EUR','USD','GBP'])[1 + (i / 5) % 3],
               CASE i % 5 WHEN 0 THEN 'closed_lost' WHEN 1 THEN 'closed_won'
                    ELSE (ARRAY['prospecting','qualification','discovery','proposal','negotiation'])[1 + i % 7 % 5] END,
               ({_uuids(seller_ids)})[1 + (i / 5) % {sellers}],  -- each seller wins, loses, works on some
               CASE WHEN i % 5 IN (0, 1) THEN now() - ((i::bigint * 104729) % (730 * 86400)) * interval '1 second' END,
               CASE WHEN i % 5 = 0 THEN ({_texts(REASONS)})[1 + (i / 5) % {len(REASONS)}] END,
               1, now(), now()
        FROM generate_series(1, $2::int) AS i
        """,
        org,
        deals,
    )
    # A review per loss (60% completed, with feedback on a third of those), reviewed by the owner's manager.
    await conn.execute(
        f"""
        INSERT INTO closed_lost_review (id, organization_id, deal_id, owner_id, reviewer_id, status, deal_reopened,
            closed_at, closed_week, due_on, amount_minor, currency, loss_reason_code, loss_reason_confirmed,
            lessons, skill_gaps, action_items, suggested_skills, seller_reflection, product_feedback,
            completed_at, days_to_complete, version, created_at, updated_at)
        SELECT ('{id_prefix}-0001-7000-8000-' || lpad(to_hex(k), 12, '0'))::uuid, d.organization_id, d.id,
               d.owner_id, m.manager_id, CASE WHEN k % 10 < 6 THEN 'completed' ELSE 'pending' END, false,
               d.closed_at, to_char(d.closed_at AT TIME ZONE 'UTC', 'IYYY-"W"IW'),
               (d.closed_at AT TIME ZONE 'UTC')::date + 7, d.amount_minor, d.currency, d.loss_reason_code,
               k % 10 < 6, CASE WHEN k % 10 < 6 THEN '["Qualify earlier"]'::jsonb ELSE '[]'::jsonb END,
               CASE WHEN k % 10 < 3 THEN jsonb_build_array({_skill("k")}, {_skill("k + 3")})
                    WHEN k % 10 < 7 THEN jsonb_build_array({_skill("k")}) ELSE '[]'::jsonb END,
               '[]'::jsonb, '[]'::jsonb,
               CASE WHEN k % 10 < 6 THEN 'A reflection' END,
               CASE WHEN k % 10 < 2 THEN 'Feedback ' || k END,
               CASE WHEN k % 10 < 6 THEN d.closed_at + ((k::bigint * 7907) % 2000) / 100.0 * interval '1 day' END,
               CASE WHEN k % 10 < 6 THEN ((k::bigint * 7907) % 2000) / 100.0 END,
               1, now(), now()
        FROM (SELECT deal.*, row_number() OVER (ORDER BY deal.id) AS k
              FROM deal WHERE organization_id = $1 AND stage = 'closed_lost') AS d
        JOIN member m ON m.id = d.owner_id
        ORDER BY d.closed_at  -- rows are appended as deals are lost
        """,
        org,
    )
    await conn.execute(
        """
        INSERT INTO review_skill_gap (review_id, skill_code, organization_id)
        SELECT r.id, g.code, r.organization_id
        FROM closed_lost_review r, jsonb_array_elements_text(r.skill_gaps) AS g(code)
        WHERE r.organization_id = $1
        ORDER BY r.closed_at
        """,
        org,
    )
    # Held calls on open deals, one observation each by the seller's manager; held over the last two years.
    # Each table is filled in the order its rows are written in life (by the time of the loss, the call,
    # the sharing), so a date range reads the pages it would read in production, not pages all over.
    await conn.execute(
        f"""
        INSERT INTO call (id, organization_id, deal_id, lead_id, scheduled_at, purpose, held_at, version,
                          created_at, updated_at)
        SELECT ('{id_prefix}-0002-7000-8000-' || lpad(to_hex(k), 12, '0'))::uuid, d.organization_id, d.id,
               d.owner_id, h.at, 'Discovery', h.at, 1, h.at, h.at
        FROM (SELECT deal.id, deal.organization_id, deal.owner_id, row_number() OVER (ORDER BY deal.id) AS k
              FROM deal WHERE organization_id = $1 AND stage NOT IN ('closed_lost', 'closed_won')) AS d
        CROSS JOIN LATERAL (SELECT now() - ((d.k * 86413) % (730 * 86400)) * interval '1 second' AS at) AS h
        WHERE d.k <= $2
        ORDER BY h.at
        """,
        org,
        observations,
    )
    strengths = f"""CASE WHEN k % 2 = 0
                    THEN jsonb_build_array(jsonb_build_object('skill_code', {_skill("k")}, 'note', 'Good'),
                                           jsonb_build_object('skill_code', {_skill("k + 4")}, 'note', 'Good'))
                    ELSE jsonb_build_array(jsonb_build_object('skill_code', {_skill("k")}, 'note', 'Good')) END"""
    improvements = f"""CASE WHEN k % 3 = 0 THEN '[]'::jsonb
                       WHEN k % 5 = 0
                       THEN jsonb_build_array(
                           jsonb_build_object('skill_code', {_skill("k / 7 + 1")}, 'note', 'Better', 'suggestion', null),
                           jsonb_build_object('skill_code', {_skill("k / 7 + 2")}, 'note', 'Better', 'suggestion', null))
                       ELSE jsonb_build_array(
                           jsonb_build_object('skill_code', {_skill("k / 7 + 1")}, 'note', 'Better', 'suggestion', null))
                       END"""
    await conn.execute(
        f"""
        INSERT INTO observation (id, organization_id, call_id, deal_id, observer_id, seller_id, strengths,
            improvements, strengths_count, improvements_count, summary, status, shared_at, acknowledged_at,
            reflection, commitments, version, created_at, updated_at)
        SELECT ('{id_prefix}-0003-7000-8000-' || lpad(to_hex(k), 12, '0'))::uuid, c.organization_id, c.id,
               c.deal_id, m.manager_id, c.lead_id, {strengths}, {improvements},
               CASE WHEN k % 2 = 0 THEN 2 ELSE 1 END, CASE WHEN k % 3 = 0 THEN 0 WHEN k % 5 = 0 THEN 2 ELSE 1 END,
               'Summary ' || k,
               CASE WHEN k % 10 = 0 THEN 'draft' WHEN k % 10 < 3 THEN 'shared' ELSE 'acknowledged' END,
               CASE WHEN k % 10 <> 0 THEN c.held_at + interval '2 hours' END,
               CASE WHEN k % 10 >= 3 THEN c.held_at + interval '1 day' END,
               CASE WHEN k % 10 >= 3 THEN 'A reflection' END,
               CASE WHEN k % 10 >= 3 AND k % 2 = 0 THEN '["Agree a next step", "Confirm value first"]'::jsonb
                    WHEN k % 10 >= 3 THEN '["Agree a next step"]'::jsonb ELSE '[]'::jsonb END,
               1, c.held_at, c.held_at
        FROM (SELECT call.*, row_number() OVER (ORDER BY call.id) AS k FROM call WHERE organization_id = $1) AS c
        JOIN member m ON m.id = c.lead_id
        ORDER BY c.held_at
        """,
        org,
    )
    # The skills of shared observations and the commitments of acknowledged ones, as the migration carries them.
    for kind, column in (("strength", "strengths"), ("improvement", "improvements")):
        await conn.execute(
            f"""
            INSERT INTO observation_skill (observation_id, kind, skill_code, organization_id, seller_id, shared_at)
            SELECT DISTINCT o.id, '{kind}', s.value ->> 'skill_code', o.organization_id, o.seller_id, o.shared_at
            FROM observation o, jsonb_array_elements(o.{column}) s
            WHERE o.organization_id = $1 AND o.shared_at IS NOT NULL
            ORDER BY o.shared_at
            """,
            org,
        )
    await conn.execute(
        """
        INSERT INTO commitment (id, organization_id, member_id, source, source_id, deal_id, text, status, version,
                                created_at, updated_at, closed_at, due_on)
        SELECT gen_random_uuid(), o.organization_id, o.seller_id, 'observation', o.id, o.deal_id, t.value,
               CASE (hashtext(o.id::text || t.value) & 7) WHEN 0 THEN 'done' WHEN 1 THEN 'dropped' ELSE 'open' END,
               1, o.acknowledged_at, o.acknowledged_at,
               CASE WHEN (hashtext(o.id::text || t.value) & 7) < 2 THEN o.acknowledged_at + interval '5 days' END,
               CASE WHEN (hashtext(o.id::text) & 3) = 0 THEN (o.acknowledged_at + interval '14 days')::date END
        FROM observation o, jsonb_array_elements_text(o.commitments) t
        WHERE o.organization_id = $1 AND o.status = 'acknowledged'
        ORDER BY o.acknowledged_at
        """,
        org,
    )
    seller = seller_ids[0]
    call = await conn.fetchval(
        "SELECT id FROM call WHERE organization_id = $1 AND lead_id = $2 ORDER BY held_at DESC LIMIT 1", org, seller
    )
    return {"hos": hos, "manager": manager_ids[0], "seller": seller, "call": call}


async def seed(app: Any) -> dict[str, Any]:
    started = time.perf_counter()
    org, admin_key = await bootstrap(app, "Bench Corp", "admin@bench.test")
    other_org, _ = await bootstrap(app, "Other Corp", "admin@other.test")
    conn = await asyncpg.connect(dsn(DB))
    try:
        ids = await seed_org(
            conn,
            org,
            deals=DEALS,
            observations=OBSERVATIONS,
            managers=MANAGERS,
            sellers=SELLERS,
            id_prefix="01900000",
        )
        await seed_org(
            conn,
            other_org,
            deals=max(DEALS // 100, 10),
            observations=max(OBSERVATIONS // 100, 10),
            managers=2,
            sellers=10,
            id_prefix="01800000",
        )
        await conn.execute("ANALYZE")
        tables = ("deal", "closed_lost_review", "review_skill_gap", "call", "observation", "observation_skill")
        counts = {
            table: await conn.fetchval(f"SELECT count(*) FROM {table} WHERE organization_id = $1", org)
            for table in (*tables, "commitment")
        }
    finally:
        await conn.close()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        keys = {}
        for who in ("hos", "manager", "seller"):
            response = await client.post(
                f"/v1/members/{ids[who]}/api-keys",
                json={"label": "bench"},
                headers={"Authorization": f"Bearer {admin_key}"},
            )
            response.raise_for_status()
            keys[who] = response.json()["api_key"]
    state = {
        "keys": keys,
        "counts": counts,
        "seed_seconds": time.perf_counter() - started,
        "seller": str(ids["seller"]),
        "manager": str(ids["manager"]),
        "call": str(ids["call"]),
    }
    STATE.parent.mkdir(exist_ok=True)
    STATE.write_text(json.dumps(state))
    return state


def _size(body: dict[str, Any]) -> str:
    """What the response covered, for the table."""
    if "skills" in body:
        return f"{len(body['skills'])} skills, {body['debriefs']['shared']} debriefs"
    if "sellers" in body:
        return f"{len(body['sellers'])} sellers, {sum(t['improvements'] for t in body['totals']):,} impr."
    return f"{len(body['open_commitments'])} open, {len(body['focus_skills'])} focus"


async def measure(app: Any, state: dict[str, Any], explain: bool) -> None:
    statements: list[tuple[float, str, Any]] = []

    @sa.event.listens_for(app.state.engine.sync_engine, "before_cursor_execute")
    def _before(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        context._bench_started = time.perf_counter()

    @sa.event.listens_for(app.state.engine.sync_engine, "after_cursor_execute")
    def _after(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        # The API key lookup and the unit of work's BEGIN are not the request's figures.
        if "api_key" not in statement and not statement.startswith(("BEGIN", "ROLLBACK", "COMMIT")):
            statements.append(((time.perf_counter() - context._bench_started) * 1000, statement, parameters))

    today = dt.datetime.now(dt.UTC).date()
    year = {"from": str(today - dt.timedelta(days=365)), "to": str(today)}
    profile = f"/v1/members/{state['seller']}/development"
    cases = [
        ("profile", "seller", "90 days", profile, {}),
        ("profile", "seller", "366 days", profile, year),
        ("profile", "head_of_sales", "90 days", profile, {}),
        ("brief", "manager", "-", f"/v1/calls/{state['call']}/brief", {}),
        ("team skills", "manager", "90 days", "/v1/analytics/skills", {}),
        ("team skills", "manager", "366 days", "/v1/analytics/skills", year),
        ("team skills", "head_of_sales", "90 days", "/v1/analytics/skills", {}),
        ("team skills", "head_of_sales", "366 days", "/v1/analytics/skills", year),
    ]
    keys = {"seller": "seller", "manager": "manager", "head_of_sales": "hos"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=120) as client:
        for what, who, period, url, params in cases:
            headers = {"Authorization": f"Bearer {state['keys'][keys[who]]}"}
            warm = await client.get(url, params=params, headers=headers)
            warm.raise_for_status()
            totals, sqls, counts = [], [], set()
            for _ in range(RUNS):
                statements.clear()
                started = time.perf_counter()
                response = await client.get(url, params=params, headers=headers)
                totals.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
                sqls.append(sum(ms for ms, _, _ in statements))
                counts.add(len(statements))
            print(
                f"  {what:<12} {who:<14} {period:<9} {_size(warm.json()):<28} {'/'.join(map(str, sorted(counts))):>5} "
                f"{statistics.median(totals):>9.1f} {min(totals):>9.1f} {max(totals):>9.1f} "
                f"{statistics.median(sqls):>9.1f}",
                flush=True,
            )
            if explain and period != "90 days" or (explain and what == "brief"):
                _, statement, parameters = max(statements, key=lambda s: s[0])
                async with app.state.engine.connect() as conn:
                    plan = await conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
                    print("\n".join(row[0] for row in plan), flush=True)


async def main() -> None:
    explain = "--explain" in sys.argv
    if not KEEP_DB:
        started = time.perf_counter()
        await recreate_database(DB)
        await asyncio.to_thread(upgrade, sa_url(DB))  # Alembic's env runs its own event loop
        print(f"database {DB} created and migrated in {time.perf_counter() - started:.1f} s", flush=True)
    settings = Settings(database_url=sa_url(DB), access_log=False, log_level="WARNING", db_statement_timeout=300)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        if KEEP_DB and STATE.exists():
            state = json.loads(STATE.read_text())
        else:
            state = await seed(app)
        counts = state["counts"]
        print(
            f"seeded in {state['seed_seconds']:.1f} s: "
            + ", ".join(f"{n:,} {table}" for table, n in counts.items())
            + f" ({MANAGERS} managers, {SELLERS} sellers)",
            flush=True,
        )
        async with app.state.engine.connect() as conn:
            pg_version = (await conn.exec_driver_sql("SHOW server_version")).scalar()
        load = os.getloadavg()
        print(
            f"{os.cpu_count()} CPUs, Python {platform.python_version()}, PostgreSQL {pg_version}, "
            f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; {RUNS} timed requests per case after one warm-up\n"
        )
        print(
            f"  {'endpoint':<12} {'as':<14} {'window':<9} {'covers':<28} {'stmts':>5} "
            f"{'median ms':>9} {'min ms':>9} {'max ms':>9} {'SQL ms':>9}"
        )
        await measure(app, state, explain)


if __name__ == "__main__":
    asyncio.run(main())
