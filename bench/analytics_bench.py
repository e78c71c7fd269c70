"""Closed-lost analytics at scale: `.venv/bin/python bench/analytics_bench.py`.

Drops and recreates the PostgreSQL database `dealcoach_bench_analytics`, migrates it
(app.db.migrate.upgrade), bootstraps an organisation and seeds it in SQL (generate_series):
a head of sales, BENCH_MANAGERS managers with BENCH_SELLERS sellers spread over them,
BENCH_DEALS deals (one in five lost over the last two years, one in five won), a closed-lost
review for every lost deal (60% completed, with days_to_complete) and one or two skill gaps on
70% of them; plus a second, small organisation, so every query must filter by organisation.

Then it times GET /v1/analytics/closed-lost in-process (httpx.ASGITransport into create_app,
so routing, auth, the service and rendering are all in the figure) for every group_by, as the
head of sales (the whole organisation; all time and the last 90 days) and as one manager (their
line). Each case: one warm-up request, then BENCH_RUNS timed ones; it prints the median and the
fastest and slowest, and how much of the median was the one analytics statement in PostgreSQL.
`--explain` also prints EXPLAIN ANALYZE of that statement for a few cases.

Settings (environment): BENCH_PG_DSN (superuser DSN on the maintenance database, default
postgresql://postgres@127.0.0.1:5432/postgres), BENCH_DEALS (1000000), BENCH_MANAGERS (20),
BENCH_SELLERS (400), BENCH_RUNS (5), BENCH_KEEP_DB (set: reuse a seeded database, skip seeding).
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

DB = "dealcoach_bench_analytics"
DEALS = int(os.environ.get("BENCH_DEALS", "1000000"))
MANAGERS = int(os.environ.get("BENCH_MANAGERS", "20"))
SELLERS = int(os.environ.get("BENCH_SELLERS", "400"))
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
KEEP_DB = bool(os.environ.get("BENCH_KEEP_DB"))
GROUPINGS = ["reason", "competitor", "skill_gap", "owner", "reviewer"]
URL = "/v1/analytics/closed-lost"
COMPETITORS = ["Initech", "Globex", "Umbrella", "Hooli", "Vandelay", "Soylent"]


def _uuids(values: list[uuid.UUID]) -> str:
    return "ARRAY[" + ",".join(f"'{v}'" for v in values) + "]::uuid[]"


def _texts(values: list[str]) -> str:
    return "ARRAY[" + ",".join(f"'{v}'" for v in values) + "]"


def with_analytics(app: Any) -> Any:
    """Include the review routers when app.main does not (yet)."""
    if not any(getattr(route, "path", None) == URL for route in app.routes):
        from app.routers import analytics, reviews

        app.include_router(reviews.router)
        app.include_router(analytics.router)
    return app


async def bootstrap(app: Any, name: str, email: str) -> tuple[uuid.UUID, uuid.UUID, str]:
    uow = UnitOfWork(app.state.sessionmaker)
    try:
        done = await bootstrap_organization(uow, org_name=name, admin_email=email, admin_name="Bench Admin")
    finally:
        await uow.close()
    return done.organization_id, done.member_id, done.api_key


async def seed_org(
    conn: asyncpg.Connection, org: uuid.UUID, *, deals: int, managers: int, sellers: int, id_prefix: str
) -> dict[str, Any]:
    """Members, deals, reviews and skill gaps of one organisation, all in SQL."""
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
    reasons = [code for code, _, _ in DEFAULT_LOSS_REASONS]
    skills = [code for code, _ in DEFAULT_SKILLS]
    # Ids grow with i, as UUIDv7 ids do; closed over the last two years; one in five lost, one won.
    await conn.execute(
        f"""
        INSERT INTO deal (id, organization_id, name, account_name, amount_minor, currency, stage, owner_id,
                          closed_at, loss_reason_code, loss_competitor, version, created_at, updated_at)
        SELECT ('{id_prefix}-0000-7000-8000-' || lpad(to_hex(i), 12, '0'))::uuid, $1,
               'Deal ' || i, 'Account ' || (i % 9973),
               (1000 + (i::bigint * 7919) % 500000) * 100, (ARRAY['EUR','USD','GBP'])[1 + (i / 5) % 3],
               CASE i % 5 WHEN 0 THEN 'closed_lost' WHEN 1 THEN 'closed_won'
                    ELSE (ARRAY['prospecting','qualification','discovery','proposal','negotiation'])[1 + i % 7 % 5] END,
               ({_uuids(seller_ids)})[1 + i % {sellers}],
               CASE WHEN i % 5 IN (0, 1) THEN now() - ((i::bigint * 104729) % (730 * 86400)) * interval '1 second' END,
               CASE WHEN i % 5 = 0 THEN ({_texts(reasons)})[1 + (i / 5) % {len(reasons)}] END,
               CASE WHEN i % 5 = 0 AND (i / 5) % 3 = 0
                    THEN ({_texts(COMPETITORS)})[1 + (i / 15) % {len(COMPETITORS)}] END,
               1, now(), now()
        FROM generate_series(1, $2::int) AS i
        """,
        org,
        deals,
    )
    await conn.execute(
        f"""
        INSERT INTO closed_lost_review (id, organization_id, deal_id, owner_id, reviewer_id, status, deal_reopened,
            closed_at, closed_week, due_on, amount_minor, currency, loss_reason_code, loss_reason_confirmed,
            competitor, lessons, skill_gaps, action_items, suggested_skills, seller_reflection, completed_at,
            days_to_complete, version, created_at, updated_at)
        SELECT ('{id_prefix}-0001-7000-8000-' || lpad(to_hex(k), 12, '0'))::uuid, d.organization_id, d.id,
               d.owner_id, m.manager_id, CASE WHEN k % 10 < 6 THEN 'completed' ELSE 'pending' END, false,
               d.closed_at, to_char(d.closed_at AT TIME ZONE 'UTC', 'IYYY-"W"IW'),
               (d.closed_at AT TIME ZONE 'UTC')::date + 7, d.amount_minor, d.currency, d.loss_reason_code,
               k % 10 < 6, d.loss_competitor,
               CASE WHEN k % 10 < 6 THEN '["Qualify earlier"]'::jsonb ELSE '[]'::jsonb END,
               CASE WHEN k % 10 < 3
                    THEN jsonb_build_array(({_texts(skills)})[1 + k % 10], ({_texts(skills)})[1 + (k + 3) % 10])
                    WHEN k % 10 < 7 THEN jsonb_build_array(({_texts(skills)})[1 + k % 10]) ELSE '[]'::jsonb END,
               '[]'::jsonb, '[]'::jsonb,
               CASE WHEN k % 10 < 6 THEN 'A reflection' END,
               CASE WHEN k % 10 < 6 THEN d.closed_at + ((k::bigint * 7907) % 2000) / 100.0 * interval '1 day' END,
               CASE WHEN k % 10 < 6 THEN ((k::bigint * 7907) % 2000) / 100.0 END,
               1, now(), now()
        FROM (SELECT deal.*, row_number() OVER (ORDER BY deal.id) AS k
              FROM deal WHERE organization_id = $1 AND stage = 'closed_lost') AS d
        JOIN member m ON m.id = d.owner_id
        """,
        org,
    )
    await conn.execute(
        f"""
        INSERT INTO review_skill_gap (review_id, skill_code, organization_id)
        SELECT r.id, ({_texts(skills)})[1 + r.k % 10], r.organization_id
        FROM (SELECT id, organization_id, row_number() OVER (ORDER BY id) AS k
              FROM closed_lost_review WHERE organization_id = $1) AS r WHERE r.k % 10 < 7
        UNION ALL
        SELECT r.id, ({_texts(skills)})[1 + (r.k + 3) % 10], r.organization_id
        FROM (SELECT id, organization_id, row_number() OVER (ORDER BY id) AS k
              FROM closed_lost_review WHERE organization_id = $1) AS r WHERE r.k % 10 < 3
        """,
        org,
    )
    return {"hos": hos, "manager": manager_ids[0]}


async def seed(app: Any) -> dict[str, Any]:
    started = time.perf_counter()
    org, _, admin_key = await bootstrap(app, "Bench Corp", "admin@bench.test")
    other_org, _, _ = await bootstrap(app, "Other Corp", "admin@other.test")
    conn = await asyncpg.connect(dsn(DB))
    try:
        ids = await seed_org(conn, org, deals=DEALS, managers=MANAGERS, sellers=SELLERS, id_prefix="01900000")
        await seed_org(conn, other_org, deals=max(DEALS // 100, 10), managers=2, sellers=10, id_prefix="01800000")
        await conn.execute("ANALYZE")
        counts = {
            table: await conn.fetchval(f"SELECT count(*) FROM {table} WHERE organization_id = $1", org)
            for table in ("deal", "closed_lost_review", "review_skill_gap")
        }
    finally:
        await conn.close()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        keys = {}
        for who in ("hos", "manager"):
            response = await client.post(
                f"/v1/members/{ids[who]}/api-keys",
                json={"label": "bench"},
                headers={"Authorization": f"Bearer {admin_key}"},
            )
            response.raise_for_status()
            keys[who] = response.json()["api_key"]
    seconds = time.perf_counter() - started
    Path(__file__).with_name("results").mkdir(exist_ok=True)
    state = {"keys": keys, "counts": counts, "seed_seconds": seconds, "manager": str(ids["manager"])}
    (Path(__file__).with_name("results") / "analytics_bench_state.json").write_text(json.dumps(state))
    return state


async def measure(app: Any, state: dict[str, Any], explain: bool) -> list[dict[str, Any]]:
    sql_ms: list[float] = []
    captured: list[tuple[str, Any]] = []

    @sa.event.listens_for(app.state.engine.sync_engine, "before_cursor_execute")
    def _before(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        context._bench_started = time.perf_counter()

    @sa.event.listens_for(app.state.engine.sync_engine, "after_cursor_execute")
    def _after(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if "closed_lost_review" in statement:
            sql_ms.append((time.perf_counter() - context._bench_started) * 1000)
            captured.append((statement, parameters))

    today = dt.datetime.now(dt.UTC).date()
    cases = [(g, "head_of_sales", "all time", {}) for g in GROUPINGS]
    cases += [
        (g, "head_of_sales", "last 90 days", {"from": str(today - dt.timedelta(days=90)), "to": str(today)})
        for g in GROUPINGS
    ]
    cases += [(g, "manager", "all time", {}) for g in GROUPINGS]
    results = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=120) as client:
        for group_by, who, period, extra in cases:
            headers = {"Authorization": f"Bearer {state['keys']['hos' if who == 'head_of_sales' else 'manager']}"}
            params = {"group_by": group_by, **extra}
            warm = await client.get(URL, params=params, headers=headers)
            warm.raise_for_status()
            body = warm.json()
            totals, sqls = [], []
            for _ in range(RUNS):
                sql_ms.clear()
                started = time.perf_counter()
                response = await client.get(URL, params=params, headers=headers)
                totals.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
                assert len(sql_ms) == 1, f"expected one analytics statement, saw {len(sql_ms)}"
                sqls.append(sql_ms[0])
            results.append(
                {
                    "group_by": group_by,
                    "as": who,
                    "period": period,
                    "losses": body["total"]["count"],
                    "groups": len(body["groups"]),
                    "median_ms": statistics.median(totals),
                    "min_ms": min(totals),
                    "max_ms": max(totals),
                    "sql_median_ms": statistics.median(sqls),
                }
            )
            print(_line(results[-1]), flush=True)
            if explain and group_by in ("reason", "skill_gap") and period == "all time":
                statement, parameters = captured[-1]
                async with app.state.engine.connect() as conn:
                    plan = await conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
                    print("\n".join(row[0] for row in plan), flush=True)
    return results


def _line(r: dict[str, Any]) -> str:
    return (
        f"  {r['group_by']:<11} {r['as']:<14} {r['period']:<13} {r['losses']:>8,} {r['groups']:>7} "
        f"{r['median_ms']:>9.1f} {r['min_ms']:>9.1f} {r['max_ms']:>9.1f} {r['sql_median_ms']:>9.1f}"
    )


async def main() -> None:
    explain = "--explain" in sys.argv
    if not KEEP_DB:
        started = time.perf_counter()
        await recreate_database(DB)
        await asyncio.to_thread(upgrade, sa_url(DB))  # Alembic's env runs its own event loop
        print(f"database {DB} created and migrated in {time.perf_counter() - started:.1f} s", flush=True)
    settings = Settings(
        database_url=sa_url(DB),
        access_log=False,
        log_level="WARNING",
        db_statement_timeout=300,
        rate_limit_per_second=0,
    )
    app = with_analytics(create_app(settings))
    async with app.router.lifespan_context(app):
        state_file = Path(__file__).with_name("results") / "analytics_bench_state.json"
        if KEEP_DB and state_file.exists():
            state = json.loads(state_file.read_text())
        else:
            state = await seed(app)
        counts = state["counts"]
        print(
            f"seeded in {state['seed_seconds']:.1f} s: {counts['deal']:,} deals, "
            f"{counts['closed_lost_review']:,} reviews, {counts['review_skill_gap']:,} skill gaps "
            f"({MANAGERS} managers, {SELLERS} sellers)",
            flush=True,
        )
        async with app.state.engine.connect() as conn:
            pg_version = (await conn.exec_driver_sql("SHOW server_version")).scalar()
        print(
            f"{os.cpu_count()} CPUs, Python {platform.python_version()}, PostgreSQL {pg_version}; "
            f"{RUNS} timed requests per case after one warm-up\n"
        )
        print(
            f"  {'group_by':<11} {'as':<14} {'period':<13} {'losses':>8} {'groups':>7} "
            f"{'median ms':>9} {'min ms':>9} {'max ms':>9} {'SQL ms':>9}"
        )
        await measure(app, state, explain)


if __name__ == "__main__":
    asyncio.run(main())
