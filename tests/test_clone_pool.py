"""The recycled PostgreSQL test databases (tests/pg.py ClonePool): a test always starts on the
template's state, and a database whose schema a test changed is never used again."""

from __future__ import annotations

import pytest

from tests.pg import PG_URL, ClonePool, pg_exec_on, pg_scalar_on, sqlalchemy_url

pytestmark = pytest.mark.postgres_only

LEFT_BEHIND = (
    "SELECT (SELECT count(*) FROM organization) + (SELECT count(*) FROM pg_class WHERE relname LIKE 'event_seq_%')"
)


async def test_a_used_clone_is_emptied_unless_its_schema_changed(pg_template: str) -> None:
    pool = ClonePool(pg_template, ready=1)
    try:
        url = pool.take()
        name = url.rpartition("/")[2]
        await pg_exec_on(
            url,
            "INSERT INTO organization (id, name, max_improvements_per_observation, review_due_days, late_stages,"
            " version, created_at, updated_at) VALUES (gen_random_uuid(), 'Acme', 3, 7, '[]', 1, now(), now())",
            "CREATE SEQUENCE event_seq_0123",
        )
        assert await pg_scalar_on(url, LEFT_BEHIND) == 2
        assert await pool._recycled(name) is True
        assert await pg_scalar_on(url, LEFT_BEHIND) == 0
        assert await pg_scalar_on(url, "SELECT count(*) FROM alembic_version") == 1  # the template's rows stay

        await pg_exec_on(url, "CREATE FUNCTION left_behind() RETURNS int LANGUAGE sql AS 'SELECT 1'")
        assert await pool._recycled(name) is False
        pool.give_back(url)  # so it is dropped, not used again
        for _ in range(3):
            other = pool.take()
            assert other != url
            assert await pg_scalar_on(other, "SELECT count(*) FROM pg_proc WHERE proname = 'left_behind'") == 0
            pool.give_back(other)
    finally:
        pool.close()
    query = f"SELECT count(*) FROM pg_database WHERE datname = '{name}'"
    assert await pg_scalar_on(sqlalchemy_url(PG_URL), query) == 0
