"""My tasks: everything waiting on the caller, across deals, newest first, read in one statement
with the caller's key (app/db/repositories/tasks.py)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.db.reads import TaskListing
from app.domain.errors import InvalidCursor
from app.domain.tasks import TaskKind, task_title
from app.services.auth import Caller, authenticate, unknown
from app.services.pagination import CallerPageRequest, PageResult, build_page

LISTING = "tasks"


@dataclass(slots=True)  # not frozen: a frozen dataclass sets each field through object.__setattr__
class Task:
    kind: TaskKind
    id: uuid.UUID
    deal_id: uuid.UUID
    deal_name: str
    title: str
    due_on: dt.date | None
    created_at: dt.datetime


async def list_my_tasks(caller: Caller, page: CallerPageRequest, kinds: Sequence[TaskKind] | None) -> PageResult[Task]:
    """What waits on the key's member, newest first (ties by id), of the given kinds (all when
    None). As the deal listing does, the cursor is opened before the statement and its seal
    checked against the organisation the statement found the key in before anything is answered."""
    try:
        after = _after(page)
    except InvalidCursor:
        await authenticate(caller)  # an unknown key is 401, whatever cursor it sent
        raise
    found = await caller.reads.tasks.page(caller.credential, TaskListing(kinds, after, page.limit + 1))
    if found is None:
        raise unknown(caller)
    organization_id, rows = found
    result = build_page(LISTING, page.bound(LISTING, organization_id, 2), rows, key=_key)
    return PageResult([_task(row) for row in result.items], result.next_cursor)


_KINDS = {kind.value: kind for kind in TaskKind}  # by the value a row holds (faster than TaskKind(value))


def _task(row: Any) -> Task:
    kind = _KINDS[row.kind]
    title = task_title(kind, row.label, row.detail)
    return Task(kind, row.id, row.deal_id, row.deal_name, title, row.due_on, row.created_at)


def _key(row: Any) -> list[Any]:
    return [row.created_at.isoformat(), str(row.id)]


def _after(page: CallerPageRequest) -> tuple[dt.datetime, uuid.UUID] | None:
    key = page.after_key(2)
    if key is None:
        return None
    try:
        created_at = dt.datetime.fromisoformat(str(key[0]))
        task_id = uuid.UUID(str(key[1]))
    except ValueError:
        raise InvalidCursor() from None
    if created_at.tzinfo is None:
        raise InvalidCursor()
    return created_at, task_id
