"""Events without a per-organisation lock: on PostgreSQL each organisation numbers its events
from a sequence of its own (drawn inside the INSERT, no row lock), and a writing transaction
publishes, before it draws, the number it draws above; feed readers stop below the lowest such
floor still in flight. SQLite (one writer at a time) numbers from the organisation's largest seq.
The event_sequence table and its row lock go.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 23:40:00.000000

How the feed stays gapless (PostgreSQL): a writer, in one function call per event,
(1) publishes ``dealcoach-writer:<sequence oid>:<last value>`` as its transaction-local
application_name (visible at once in pg_stat_activity, reverted only after the transaction's
commit or rollback is visible) the first time it draws in the transaction, then (2) draws with
nextval, above that floor. A reader (3) reads the sequence's last value L, then (4) the floors
of the writers in flight, and only then (5) takes the snapshot its events query reads with, and
returns only seq <= min(L, floors). Any event at or below that horizon was drawn before (3); if
its transaction were still open at (5) it was open at (4) with a floor below it, a
contradiction: so the prefix a reader returns never gains an event later.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The organisation's sequence, by name (a UUID has no characters that need quoting).
_SEQ = "format('event_seq_%s', replace({org}::text, '-', ''))"

_FUNCTIONS = [
    f"""
CREATE FUNCTION dealcoach_create_event_seq(org uuid, last_seq bigint DEFAULT 0) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    EXECUTE format('CREATE SEQUENCE %I AS bigint MINVALUE 1 CACHE 1 NO CYCLE', {_SEQ.format(org='org')});
    IF last_seq > 0 THEN
        PERFORM setval({_SEQ.format(org='org')}::regclass, last_seq, true);
    END IF;
END $$
""",
    f"""
CREATE FUNCTION dealcoach_next_event_seq(org uuid) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    s regclass := {_SEQ.format(org='org')}::regclass;
    tag text := 'dealcoach-writer:' || s::oid::text || ':';
    app_name text := current_setting('application_name');
BEGIN
    -- CACHE 1 above: no backend holds numbers below the last value, so a draw after the
    -- floor is read is always above it.
    IF left(app_name, 17) <> 'dealcoach-writer:' THEN
        PERFORM set_config('application_name', tag || coalesce(pg_sequence_last_value(s), 0)::text, true);
    ELSIF left(app_name, length(tag)) <> tag THEN
        RAISE EXCEPTION 'one transaction writes the events of one organisation only';
    END IF;
    RETURN nextval(s);
END $$
""",
    """
CREATE FUNCTION dealcoach_writer_floors() RETURNS TABLE (seq_oid oid, floor bigint)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    -- pg_stat_activity is read once per transaction and kept: read it afresh.
    PERFORM pg_stat_clear_snapshot();
    RETURN QUERY
        SELECT split_part(a.application_name, ':', 2)::oid, min(split_part(a.application_name, ':', 3)::bigint)
        FROM pg_stat_get_activity(NULL) a
        WHERE a.datid = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
          AND a.application_name LIKE 'dealcoach-writer:%:%'
        GROUP BY 1;
END $$
""",
    f"""
CREATE FUNCTION dealcoach_event_horizon(org uuid) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    s regclass := {_SEQ.format(org='org')}::regclass;
    last bigint;
    lowest bigint;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'the event horizon needs a fresh snapshot for the statement that follows it';
    END IF;
    last := coalesce(pg_sequence_last_value(s), 0);
    SELECT f.floor INTO lowest FROM dealcoach_writer_floors() f WHERE f.seq_oid = s::oid;
    RETURN least(last, lowest);
END $$
""",
    f"""
CREATE FUNCTION dealcoach_delivery_horizons(due timestamptz)
RETURNS TABLE (organization_id uuid, horizon bigint)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    orgs uuid[];
    seqs regclass[];
    lasts bigint[];
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'the event horizon needs a fresh snapshot for the statement that follows it';
    END IF;
    SELECT coalesce(array_agg(o.id), '{{}}') INTO orgs FROM (
        SELECT DISTINCT d.organization_id AS id FROM webhook_delivery d
        WHERE d.status = 'pending' AND d.next_attempt_at <= due AND d.event_seq > 0
    ) o;
    seqs := ARRAY(SELECT {_SEQ.format(org='u.id')}::regclass FROM unnest(orgs) WITH ORDINALITY u(id, n) ORDER BY u.n);
    lasts := ARRAY(SELECT coalesce(pg_sequence_last_value(u.s), 0) FROM unnest(seqs) WITH ORDINALITY u(s, n) ORDER BY u.n);
    RETURN QUERY
        SELECT u.id, least(u.last, f.floor)
        FROM unnest(orgs, seqs, lasts) u(id, s, last)
        LEFT JOIN dealcoach_writer_floors() f ON f.seq_oid = u.s::oid;
END $$
""",
]

_FUNCTION_NAMES = [
    'dealcoach_delivery_horizons(timestamptz)',
    'dealcoach_event_horizon(uuid)',
    'dealcoach_writer_floors()',
    'dealcoach_next_event_seq(uuid)',
    'dealcoach_create_event_seq(uuid, bigint)',
]


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for function in _FUNCTIONS:
            op.execute(function)
        op.execute(
            'SELECT dealcoach_create_event_seq(o.id, coalesce(s.last_seq, 0)) '
            'FROM organization o LEFT JOIN event_sequence s ON s.organization_id = o.id'
        )
    op.drop_table('event_sequence')


def downgrade() -> None:
    op.create_table('event_sequence',
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('last_seq', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_event_sequence_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('organization_id', name=op.f('pk_event_sequence'))
    )
    op.execute(
        'INSERT INTO event_sequence (organization_id, last_seq) '
        'SELECT o.id, coalesce((SELECT max(e.seq) FROM event e WHERE e.organization_id = o.id), 0) FROM organization o'
    )
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(
            "DO $$ DECLARE o uuid; BEGIN FOR o IN SELECT id FROM organization LOOP "
            f"EXECUTE format('DROP SEQUENCE IF EXISTS %I', {_SEQ.format(org='o')}); END LOOP; END $$"
        )
        for name in _FUNCTION_NAMES:
            op.execute(f'DROP FUNCTION {name}')
