"""What SQL a request sends, wherever it is sent: through SQLAlchemy, or as the hot paths
do on PostgreSQL, on the pool's asyncpg connection directly (app/db/repositories/reads.py),
past SQLAlchemy's events. A test that asserts "no statement" must see both, or it proves
nothing on PostgreSQL."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa

_DRIVER_METHODS = ("fetch", "fetchrow", "fetchval", "execute", "executemany")


@dataclass(frozen=True, slots=True)
class Statement:
    sql: str
    args: tuple[Any, ...]
    via: str  # "sqlalchemy" or "asyncpg"


def record_statements(app: Any, monkeypatch: pytest.MonkeyPatch) -> list[Statement]:
    """Every statement ``app`` sends from now on, in order. SQLAlchemy's own statements on
    asyncpg are seen once, by the engine event (it sends them through prepared statements).
    The listener lives as long as the app's engine, which each test makes afresh. Only the
    calling thread's driver calls count: the test databases are recycled by another thread
    (tests/pg.py) with asyncpg too."""
    seen: list[Statement] = []
    test_thread = threading.get_ident()

    @sa.event.listens_for(app.state.engine.sync_engine, "before_cursor_execute")
    def _record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        seen.append(Statement(statement, tuple(parameters or ()), "sqlalchemy"))

    for name in _DRIVER_METHODS:
        method = getattr(asyncpg.Connection, name)

        def recorder(method: Any = method) -> Any:
            async def recorded(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
                if threading.get_ident() == test_thread:
                    seen.append(Statement(query, args, "asyncpg"))
                return await method(self, query, *args, **kwargs)

            return recorded

        monkeypatch.setattr(asyncpg.Connection, name, recorder())
    return seen
