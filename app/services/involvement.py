"""Measuring leadership involvement: a manager's first involvement in a late stage is late."""

from __future__ import annotations

from app.db.models import Deal, Member
from app.db.uow import UnitOfWork
from app.domain.deals import counts_as_leadership, is_late
from app.domain.members import MemberRole


async def record_involvement(uow: UnitOfWork, deal: Deal, member: Member, kind: str) -> bool:
    """Note the member's involvement (assignment, suggestion, call attendance); True when it
    is a manager's or head of sales's first involvement and it comes in a late stage."""
    if not counts_as_leadership(MemberRole(member.role)):
        return False
    late = is_late(deal.stage, await uow.involvement.late_stages(deal.organization_id))
    first = await uow.involvement.record_first(
        organization_id=deal.organization_id,
        deal_id=deal.id,
        member_id=member.id,
        kind=kind,
        stage=str(deal.stage),
        late=late,
    )
    return first and late
