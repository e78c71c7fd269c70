"""The deal's strategy: written by its owner alone, versioned, open to others' suggestions."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from app.db.models import Deal, Member, StrategyVersion, Suggestion
from app.db.types import utcnow
from app.db.uow import UnitOfWork
from app.domain.assignments import AssignmentStatus, ensure_new_assignment, next_step_role
from app.domain.deals import ensure_can_suggest, ensure_can_write_strategy, ensure_deal_open, ensure_owner_decides
from app.domain.errors import InvalidCursor, NotFound, VersionConflict
from app.domain.members import Actor, MemberRole
from app.domain.strategy import (
    NextStep,
    Revision,
    Stakeholder,
    StrategyDocument,
    StrategySection,
    SuggestionStatus,
    ensure_assignee_active,
    ensure_suggestion_open,
)
from app.domain.versioning import ensure_precondition
from app.schemas.strategy import StrategyUpdate, SuggestionCreate
from app.services.access import deal_access, visible_deal
from app.services.assignments import open_assignment
from app.services.involvement import record_involvement
from app.services.pagination import PageRequest, PageResult, after_id, after_key, build_page

VERSIONS = "strategy_versions"
SUGGESTIONS = "suggestions"


@dataclass
class StrategyView:
    deal_id: uuid.UUID
    version: int
    document: StrategyDocument
    author_id: uuid.UUID | None
    updated_at: dt.datetime | None

    @classmethod
    def of(cls, deal_id: uuid.UUID, row: StrategyVersion | None) -> StrategyView:
        if row is None:
            return cls(deal_id, 0, StrategyDocument(), None, None)
        return cls(deal_id, row.version, StrategyDocument.from_json(row.document), row.author_id, row.created_at)


# --- the document ------------------------------------------------------------


async def get_strategy(uow: UnitOfWork, actor: Actor, deal_id: uuid.UUID) -> StrategyView:
    deal = await visible_deal(uow, actor, deal_id)
    return StrategyView.of(deal.id, await uow.strategy.latest(deal.id))


async def list_versions(
    uow: UnitOfWork, actor: Actor, deal_id: uuid.UUID, page: PageRequest
) -> PageResult[StrategyView]:
    deal = await visible_deal(uow, actor, deal_id)
    rows = await uow.strategy.list_versions(deal.id, after=_after_version(page), limit=page.limit + 1)
    views = [StrategyView.of(deal.id, row) for row in rows]
    return build_page(VERSIONS, page, views, key=lambda v: [v.version])


async def put_strategy(
    uow: UnitOfWork,
    actor: Actor,
    deal_id: uuid.UUID,
    data: StrategyUpdate,
    if_match: frozenset[int] | None,
    *,
    if_match_given: bool,
) -> StrategyView:
    """Replace the document with a new version; an identical document writes nothing. The caller
    names the version replaced (If-Match), checked after visibility and permission."""
    async with uow:
        deal = await visible_deal(uow, actor, deal_id, for_update=True)
        ensure_can_write_strategy(actor, deal)
        current = StrategyView.of(deal.id, await uow.strategy.latest(deal.id))
        ensure_precondition(current.version, if_match, given=if_match_given)
        ensure_deal_open(deal)
        revision = _document_of(data).revise(current.document)
        if revision is None:
            return current
        helpers = await _helpers_asked(uow, actor, deal, revision)
        row = StrategyVersion(
            organization_id=deal.organization_id,
            deal_id=deal.id,
            version=current.version + 1,
            author_id=deal.owner_id,
            document=revision.document.to_json(),
        )
        uow.add(row)
        await uow.flush(conflict=VersionConflict("The strategy changed meanwhile; read it again."))
        if StrategySection.next_steps in revision.sections:
            steps = revision.document.next_steps
            await uow.strategy.replace_next_steps(deal.organization_id, deal.id, steps, row.created_at)
        event_data = {"version": row.version, "sections": [str(s) for s in revision.sections]}
        await _event(uow, actor, deal, "strategy.updated", "strategy", deal.id, event_data)
        for member, purpose in helpers:
            if not await uow.assignments.open_exists(deal.id, member.id):
                role = next_step_role(MemberRole(member.role))
                await open_assignment(uow, actor, deal, member, role, purpose, AssignmentStatus.requested)
        await uow.commit()
    return StrategyView.of(deal.id, row)


def _document_of(data: StrategyUpdate) -> StrategyDocument:
    return StrategyDocument(
        customer_objectives=data.customer_objectives,
        decision_process=data.decision_process,
        stakeholders=tuple(Stakeholder(s.name, s.title, s.role, s.stance) for s in data.stakeholders),
        competition=data.competition,
        value_hypothesis=data.value_hypothesis,
        risks=tuple(data.risks),
        next_steps=tuple(NextStep(s.id, s.description, s.assignee_id, s.due_date, s.status) for s in data.next_steps),
    )


async def _helpers_asked(uow: UnitOfWork, actor: Actor, deal: Deal, revision: Revision) -> list[tuple[Member, str]]:
    """The members the revision asks for help, checked, each with the step they are asked to help with."""
    members: dict[uuid.UUID, Member] = {}
    for named in revision.named:
        member = await uow.members.get(actor.organization_id, named.member_id)
        ensure_assignee_active(named, member)
        assert member is not None
        members[named.member_id] = member
    asked = [(members[h.member_id], h.description) for h in revision.helpers(deal.owner_id)]
    for member, _ in asked:
        ensure_new_assignment(actor, deal, str(next_step_role(MemberRole(member.role))), member)
    return asked


def _after_version(page: PageRequest) -> int | None:
    key = after_key(VERSIONS, page, 1)
    if key is None:
        return None
    if not isinstance(key[0], int):
        raise InvalidCursor()
    return key[0]


# --- suggestions -------------------------------------------------------------


async def create_suggestion(uow: UnitOfWork, actor: Actor, deal_id: uuid.UUID, data: SuggestionCreate) -> Suggestion:
    async with uow:
        deal = await visible_deal(uow, actor, deal_id, for_update=True)
        access = await deal_access(uow, actor, deal)
        ensure_can_suggest(actor, access, await uow.assignments.is_active_coach(deal.id, actor.member_id))
        ensure_deal_open(deal)
        author = await uow.members.get(actor.organization_id, actor.member_id)
        assert author is not None
        late = await record_involvement(uow, deal, author, "suggestion")
        suggestion = Suggestion(
            organization_id=deal.organization_id,
            deal_id=deal.id,
            author_id=author.id,
            section=str(data.section),
            body=data.body,
            late_involvement=late,
        )
        uow.add(suggestion)
        await uow.flush()
        await _event(
            uow,
            actor,
            deal,
            "suggestion.created",
            "suggestion",
            suggestion.id,
            {"section": suggestion.section, "late_involvement": late},
        )
        await uow.commit()
    return suggestion


async def get_suggestion(uow: UnitOfWork, actor: Actor, deal_id: uuid.UUID, suggestion_id: uuid.UUID) -> Suggestion:
    deal = await visible_deal(uow, actor, deal_id)
    suggestion = await uow.strategy.get_suggestion(deal.id, suggestion_id)
    if suggestion is None:
        raise NotFound("No suggestion with this id on this deal.")
    return suggestion


async def list_suggestions(
    uow: UnitOfWork, actor: Actor, deal_id: uuid.UUID, page: PageRequest, status: SuggestionStatus | None
) -> PageResult[Suggestion]:
    deal = await visible_deal(uow, actor, deal_id)
    rows = await uow.strategy.list_suggestions(
        deal.id, status=status, after=after_id(SUGGESTIONS, page), limit=page.limit + 1
    )
    return build_page(SUGGESTIONS, page, rows)


async def accept_suggestion(
    uow: UnitOfWork, actor: Actor, deal_id: uuid.UUID, suggestion_id: uuid.UUID, note: str | None
) -> Suggestion:
    """Records the owner's decision; the strategy itself changes only when the owner edits it."""
    return await _decide(uow, actor, deal_id, suggestion_id, SuggestionStatus.accepted, note)


async def decline_suggestion(
    uow: UnitOfWork, actor: Actor, deal_id: uuid.UUID, suggestion_id: uuid.UUID, note: str | None
) -> Suggestion:
    return await _decide(uow, actor, deal_id, suggestion_id, SuggestionStatus.declined, note)


async def _decide(
    uow: UnitOfWork,
    actor: Actor,
    deal_id: uuid.UUID,
    suggestion_id: uuid.UUID,
    status: SuggestionStatus,
    note: str | None,
) -> Suggestion:
    async with uow:
        deal = await visible_deal(uow, actor, deal_id)
        suggestion = await uow.strategy.lock_suggestion(deal.id, suggestion_id)
        if suggestion is None:
            raise NotFound("No suggestion with this id on this deal.")
        ensure_owner_decides(actor, deal)
        ensure_suggestion_open(suggestion)
        suggestion.status = status
        suggestion.decided_at = utcnow()
        suggestion.note = note
        await uow.flush()
        await _event(
            uow,
            actor,
            deal,
            f"suggestion.{status}",
            "suggestion",
            suggestion.id,
            {"section": suggestion.section, "author_id": str(suggestion.author_id)},
        )
        await uow.commit()
    return suggestion


async def _event(
    uow: UnitOfWork,
    actor: Actor,
    deal: Deal,
    type_: str,
    subject_type: str,
    subject_id: uuid.UUID,
    data: dict[str, Any],
) -> None:
    await uow.events.record(
        actor,
        type_,
        subject_type=subject_type,
        subject_id=subject_id,
        deal_id=deal.id,
        data=data,
    )
