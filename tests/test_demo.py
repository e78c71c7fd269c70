"""`dealcoach demo`: a realistic organisation built through the use cases, on both databases;
refused on a database that holds organisations; the same seed builds the same organisation."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from app.cli import cli
from app.db.engine import make_engine, make_sessionmaker
from app.db.uow import UnitOfWork
from app.services.bootstrap import bootstrap_organization
from app.services.demo import OrganizationsExist, build_demo
from tests.conftest import settings_for

COUNTED = (
    "organization",
    "member",
    "api_key",
    "deal",
    "strategy_version",
    "suggestion",
    "assignment",
    "call",
    "intervention",
    "observation",
    "closed_lost_review",
    "leadership_note",
    "commitment",
    "approval",
    "webhook_endpoint",
)


async def _facts(url: str) -> dict[str, Any]:
    engine = make_engine(settings_for(url))
    try:
        async with engine.connect() as conn:
            counts = {t: (await conn.execute(sa.text(f"SELECT count(*) FROM {t}"))).scalar() for t in COUNTED}

            async def grouped(sql: str) -> dict[str, int]:
                return {str(k): int(n) for k, n in (await conn.execute(sa.text(sql))).all()}

            return {
                "counts": counts,
                "stages": await grouped("SELECT stage, count(*) FROM deal GROUP BY stage"),
                "currencies": await grouped("SELECT currency, count(*) FROM deal GROUP BY currency"),
                "roles": await grouped("SELECT role, count(*) FROM member GROUP BY role"),
                "approvals": await grouped("SELECT status, count(*) FROM approval GROUP BY status"),
                "assignments": await grouped("SELECT status, count(*) FROM assignment GROUP BY status"),
                "suggestions": await grouped("SELECT status, count(*) FROM suggestion GROUP BY status"),
                "observations": await grouped("SELECT status, count(*) FROM observation GROUP BY status"),
                "reviews": await grouped("SELECT status, count(*) FROM closed_lost_review GROUP BY status"),
                "commitments": await grouped("SELECT status, count(*) FROM commitment GROUP BY status"),
                "overdue": (
                    await conn.execute(
                        sa.text("SELECT count(*) FROM closed_lost_review WHERE status = 'pending' AND due_on < :d"),
                        {"d": __import__("datetime").date.today()},
                    )
                ).scalar(),
                "takeovers": (
                    await conn.execute(sa.text("SELECT count(*) FROM intervention WHERE is_takeover"))
                ).scalar(),
                "relied": (
                    await conn.execute(sa.text("SELECT count(*) FROM approval WHERE relied_on_at IS NOT NULL"))
                ).scalar(),
                "webhook_active": (await conn.execute(sa.text("SELECT active FROM webhook_endpoint"))).scalars().all(),
            }
    finally:
        await engine.dispose()


async def _build(url: str, **kw: Any):  # type: ignore[no-untyped-def]
    engine = make_engine(settings_for(url))
    try:
        return await build_demo(make_sessionmaker(engine), **kw)
    finally:
        await engine.dispose()


def _assert_realistic(facts: dict[str, Any]) -> None:
    counts = facts["counts"]
    assert counts["organization"] == 1 and counts["deal"] == 120
    assert facts["roles"] == {"admin": 1, "head_of_sales": 1, "integration": 1, "manager": 2, "seller": 6}
    assert counts["api_key"] == 11  # one per persona
    assert set(facts["stages"]) == {"prospecting", "qualification", "discovery", "proposal", "negotiation"} | {
        "closed_won",
        "closed_lost",
    }
    assert len(facts["currencies"]) >= 3
    assert counts["strategy_version"] >= 30
    assert {"accepted", "declined", "open"} <= set(facts["suggestions"])
    assert {"requested", "proposed"} <= set(facts["assignments"])
    assert set(facts["approvals"]) == {"pending", "approved", "rejected", "revoked"} and facts["relied"] == 1
    assert facts["takeovers"] == 1 and counts["intervention"] >= 2
    assert {"draft", "shared", "acknowledged"} <= set(facts["observations"])
    assert counts["closed_lost_review"] == facts["stages"]["closed_lost"]
    assert facts["reviews"]["completed"] >= 1 and facts["reviews"]["pending"] > facts["overdue"] >= 1
    assert counts["leadership_note"] >= 1
    assert {"open", "done", "dropped"} <= set(facts["commitments"])
    assert facts["webhook_active"] in ([False], [0])


async def test_demo_builds_a_realistic_organisation_on_postgres(pg_database: str) -> None:
    result = await _build(pg_database, seed=11)
    assert len(result.personas) == 11 and all(p.api_key.startswith("dc_") for p in result.personas)
    _assert_realistic(await _facts(pg_database))


async def _deal_book(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Each organisation's deals as the seed decides them: owner's name, deal, stage, amount."""
    engine = make_engine(settings_for(url))
    sql = (
        "SELECT d.organization_id, m.name, d.name, d.stage, d.amount_minor, d.currency FROM deal d"
        " JOIN member m ON m.id = d.owner_id"
    )
    try:
        async with engine.connect() as conn:
            book: dict[str, list[tuple[Any, ...]]] = {}
            for org, *row in (await conn.execute(sa.text(sql))).all():
                book.setdefault(str(org), []).append(tuple(row))
            return {org: sorted(rows) for org, rows in book.items()}
    finally:
        await engine.dispose()


def test_demo_command_on_sqlite_refuses_a_second_run_and_repeats_itself(tmp_path: Path, sqlite_template: Path) -> None:
    path = tmp_path / "demo.db"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite+aiosqlite:///{path}"
    keys = tmp_path / "keys.json"
    args = ["demo", "--seed", "11", "--keys-file", str(keys)]
    done = CliRunner().invoke(cli, args, env={"DEALCOACH_DATABASE_URL": url})
    assert done.exit_code == 0, done.output
    facts = asyncio.run(_facts(url))
    _assert_realistic(facts)
    written = json.loads(keys.read_text())
    assert [p["role"] for p in written["personas"]].count("seller") == 6
    for persona in written["personas"]:  # the table shows every persona and their key
        assert persona["api_key"] in done.output and persona["name"] in done.output

    keys.unlink()
    refused = CliRunner().invoke(cli, args, env={"DEALCOACH_DATABASE_URL": url})
    assert refused.exit_code == 1 and "refusing: this database already holds organisations" in refused.output
    assert not keys.exists() and asyncio.run(_facts(url)) == facts  # nothing written

    # --force adds a second organisation; the same seed decides the same deals, owners, stages, amounts.
    again = asyncio.run(_build(url, seed=11, force=True))
    books = asyncio.run(_deal_book(url))
    assert len(books) == 2 and again.organization_id.hex in {k.replace("-", "") for k in books}
    first, second = books.values()
    assert first == second and len(first) == 120
    with pytest.raises(OrganizationsExist):
        asyncio.run(_build(url, seed=11))


def test_demo_refuses_a_database_with_real_organisations(tmp_path: Path, sqlite_template: Path) -> None:
    path = tmp_path / "taken.db"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite+aiosqlite:///{path}"

    async def bootstrap() -> None:
        engine = make_engine(settings_for(url))
        uow = UnitOfWork(make_sessionmaker(engine))
        try:
            await bootstrap_organization(uow, org_name="Real Co", admin_email="ada@real.test", admin_name="Ada")
        finally:
            await uow.close()
            await engine.dispose()

    asyncio.run(bootstrap())
    before = asyncio.run(_facts(url))
    keys = tmp_path / "keys.json"
    done = CliRunner().invoke(cli, ["demo", "--keys-file", str(keys)], env={"DEALCOACH_DATABASE_URL": url})
    assert done.exit_code == 1
    assert "refusing: this database already holds organisations" in done.output
    assert "--force" in done.output
    assert not keys.exists() and asyncio.run(_facts(url)) == before
