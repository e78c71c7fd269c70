"""What the queue tables (the webhook outbox, the CRM inbox) share: claims whose plans do not
depend on the planner's guesses.

A queue table's statistics are nearly always stale: pending rows come and go by the thousand
between two ANALYZEs, and the last one most likely saw almost none pending. With almost nothing
pending in mind, PostgreSQL planned the claims as if any way of reading the pending rows were
cheap, and read the whole queue for every claim (a bitmap scan of every due row, sorted to keep
64; or, per candidate, every earlier pending row: 440 ms per claim with 20,000 deliveries
waiting). So:

- "is an earlier row of this deal (or CRM object) pending?" is asked as a range of an index
  expression, the row's seq or id while pending and NULL after, that ends an index on the deal:
  no index led by the status column can answer that, and the planner looks at one entry of the
  expression index per candidate, whatever it believes;
- a claim's transaction pins the plan to the ordered index of due rows (``pin_claim_plan``);
- a claim reads rows by when they are due, so it never steps over those waiting for a retry, and
  a worker's housekeeping parks the due rows it may not take yet (held behind a row waiting for a
  retry; an inactive webhook endpoint's) out of the due range, a thousand at a time.

tests/api/test_queue_claim_scale.py recreates such statistics and checks that a claim reads as
much with 6,000 rows waiting as with 300.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

# Local to the claim's transaction; the plan of a statement only such transactions run.
_PIN_CLAIM_PLAN = sa.text(
    "SELECT set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true),"
    " set_config('enable_sort', 'off', true)"
)


async def parking_turn(session: AsyncSession, queue: str) -> bool:
    """Whether this transaction may park ``queue``'s rows now, its plan pinned as a claim's. One
    worker at a time parks a queue (two parking the same rows in different orders would
    deadlock): on PostgreSQL by a transaction-level advisory lock, which another worker holding
    it makes this one skip its turn; SQLite has one writer at a time anyway."""
    if session.bind.dialect.name == "postgresql":
        lock = sa.select(sa.func.pg_try_advisory_xact_lock(sa.func.hashtext(f"dealcoach.{queue}.parking")))
        if not (await session.execute(lock)).scalar():
            return False
    await pin_claim_plan(session)
    return True


async def pin_claim_plan(session: AsyncSession) -> None:
    """For the rest of this transaction, PostgreSQL plans with index scans in index order only:
    a claim reads as many due rows as it takes, oldest first (SQLite plans by its own rules)."""
    if session.bind.dialect.name == "postgresql":
        await session.execute(_PIN_CLAIM_PLAN)
