"""A realistic demo organisation (the `dealcoach demo` command), built through the same use cases
the API calls, so every rule is checked and every event, review and commitment is real.

The same seed gives the same organisation: names, amounts, stages, who does what. Ids, keys and
timestamps are new on every run. One step is not a use case: a third of the pending reviews are
aged (their loss moved into the past) so that the demo shows overdue reviews, which time alone
would otherwise take a week to make.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.types import utcnow
from app.db.uow import UnitOfWork
from app.domain.approvals import TermKind
from app.domain.assignments import AssignmentRole
from app.domain.calls import CallRole, InterventionKind
from app.domain.catalogs import DEFAULT_LOSS_REASONS
from app.domain.deals import Stage
from app.domain.development import CommitmentStatus
from app.domain.errors import InvalidCursor
from app.domain.members import Actor, MemberRole
from app.domain.reviews import iso_week
from app.domain.strategy import StakeholderRole, Stance, StrategySection
from app.schemas.api_keys import ApiKeyCreate
from app.schemas.approvals import ApprovalCreate, Term
from app.schemas.assignments import AssignmentCreate
from app.schemas.calls import (
    Attendee,
    CallCreate,
    CallUpdate,
    CommitmentItem,
    Improvement,
    InterventionCreate,
    ObservationAcknowledgement,
    ObservationCreate,
    Strength,
)
from app.schemas.deals import DealCreate, DealUpdate, ExternalRef, Loss, Money
from app.schemas.members import MemberCreate
from app.schemas.reviews import ActionItem, LeadershipNoteCreate, ReviewFilters, ReviewUpdate
from app.schemas.strategy import NextStep, Stakeholder, StrategyUpdate, SuggestionCreate
from app.schemas.webhooks import WebhookEndpointCreate, WebhookEndpointUpdate
from app.services import (
    access,
    api_keys,
    approvals,
    assignments,
    bootstrap,
    calls,
    commitments,
    deals,
    members,
    reviews,
    strategy,
    webhooks,
)
from app.services.pagination import PageRequest

T = TypeVar("T")

DEAL_COUNT = 120
# A pipeline's shape: most deals early, fewer late, a fair share closed either way.
STAGE_WEIGHTS: tuple[tuple[Stage, int], ...] = (
    (Stage.prospecting, 18),
    (Stage.qualification, 16),
    (Stage.discovery, 15),
    (Stage.proposal, 13),
    (Stage.negotiation, 11),
    (Stage.closed_won, 13),
    (Stage.closed_lost, 14),
)
CURRENCY_WEIGHTS: tuple[tuple[str, int], ...] = (("EUR", 5), ("USD", 4), ("GBP", 2), ("CHF", 1))
SELLER_NAMES = ("Sam Seller", "Priya Patel", "Lucas Moreau", "Mia Schneider", "Kofi Mensah", "Elena Rossi")
MANAGER_NAMES = ("Morgan Manager", "Jonas Berg")
ACCOUNTS = [
    "Globex", "Initech", "Umbrella", "Hooli", "Stark Industries", "Wayne Enterprises", "Acme Corp", "Soylent",
    "Cyberdyne", "Tyrell", "Wonka", "Vandelay", "Massive Dynamic", "Pied Piper", "Aperture", "Black Mesa",
    "Oscorp", "Gringotts", "Nakatomi", "Monarch", "Dunder Mifflin", "Prestige Worldwide", "Bluth", "Gekko",
]  # fmt: skip
PRODUCTS = ("platform renewal", "expansion", "pilot", "multi-year deal", "analytics add-on", "EMEA rollout")
COMPETITORS = ("Initrode", "Contoso", "Northwind", "Fabrikam")
PRODUCT_FEEDBACK = (
    "The buyer wanted an ERP connector out of the box",
    "Single sign-on only in the top tier put off IT",
    "Reporting could not split revenue by region",
)
ENABLEMENT_FEEDBACK = (
    "A playbook for reaching the economic buyer before the proposal",
    "Talk tracks for the incumbent's renewal discount",
)
WEBHOOK_URL = "http://127.0.0.1:9/dealcoach-demo"  # the discard port: nothing listens, and it is disabled


@dataclass(frozen=True, slots=True)
class Persona:
    name: str
    email: str
    role: str
    member_id: uuid.UUID
    api_key: str
    manager: str | None = None


@dataclass
class DemoResult:
    organization_id: uuid.UUID
    personas: list[Persona]
    counts: Counter[str] = field(default_factory=Counter)
    fingerprint: list[str] = field(default_factory=list)  # what the seed decides, to compare runs


class OrganizationsExist(Exception):
    """The database already holds organisations: the demo does not mix with them."""


class _NoCursors:
    """The demo reads first pages only: no cursor it could be given is valid."""

    def encode(self, listing: str, key: list[Any]) -> str:
        return "demo"

    def decode(self, listing: str, cursor: str, arity: int) -> list[Any]:
        raise InvalidCursor("The demo reads first pages only.")


_FIRST_PAGE = PageRequest(limit=100, cursor=None, codec=_NoCursors())


class _Demo:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], seed: int) -> None:
        self.sessionmaker = sessionmaker
        self.rng = random.Random(seed)
        self.now = utcnow()
        self.actors: dict[str, Actor] = {}
        self.personas: list[Persona] = []
        self.result: DemoResult | None = None
        self.counts: Counter[str] = Counter()
        self.fingerprint: list[str] = []

    async def call(self, use_case: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """One use case in its own unit of work, as one API request would run it."""
        uow = UnitOfWork(self.sessionmaker)
        try:
            return await use_case(uow, *args, **kwargs)
        finally:
            await uow.close()

    def pick(self, weighted: tuple[tuple[Any, int], ...]) -> Any:
        return self.rng.choices([v for v, _ in weighted], [w for _, w in weighted])[0]

    # --- people -----------------------------------------------------------------------

    async def people(self, org_name: str) -> uuid.UUID:
        done = await self.call(
            bootstrap.bootstrap_organization, org_name=org_name, admin_email="ada@demo.test", admin_name="Ada Admin"
        )
        admin = Actor(done.member_id, done.organization_id, MemberRole.admin, None, None)
        self.actors["admin"] = admin
        self.personas.append(Persona("Ada Admin", "ada@demo.test", "admin", done.member_id, done.api_key))
        await self.member("hos", "Hannah Head", "head_of_sales", None)
        await self.member("integration", "CRM Sync", "integration", None)
        for i, name in enumerate(MANAGER_NAMES):
            await self.member(f"manager{i + 1}", name, "manager", "hos")
        for i, name in enumerate(SELLER_NAMES):
            await self.member(f"seller{i + 1}", name, "seller", f"manager{i // 3 + 1}")
        return done.organization_id

    async def member(self, handle: str, name: str, role: str, manager: str | None) -> None:
        admin = self.actors["admin"]
        email = name.lower().replace(" ", ".") + "@demo.test"
        manager_id = self.actors[manager].member_id if manager else None
        row = await self.call(
            members.create_member, admin, MemberCreate(name=name, email=email, role=role, manager_id=manager_id)
        )
        issued = await self.call(api_keys.issue_key, admin, row.id, ApiKeyCreate(label="demo"))
        self.actors[handle] = Actor(row.id, row.organization_id, MemberRole(role), manager_id, None)
        manager_name = next((p.name for p in self.personas if manager and p.member_id == manager_id), None)
        self.personas.append(Persona(name, email, role, row.id, issued.secret, manager_name))
        self.counts["members"] += 1

    # --- deals --------------------------------------------------------------------------

    async def deal_book(self) -> list[tuple[str, uuid.UUID, Stage]]:
        """120 deals across every stage and currency; some arrive from a CRM, some move through stages."""
        made: list[tuple[str, uuid.UUID, Stage]] = []
        for n in range(DEAL_COUNT):
            seller = f"seller{n % 6 + 1}"
            actor = self.actors[seller]
            stage: Stage = self.pick(STAGE_WEIGHTS)
            currency: str = self.pick(CURRENCY_WEIGHTS)
            amount = f"{self.rng.randrange(40, 2400) * 250}.00"
            account = self.rng.choice(ACCOUNTS)
            name = f"{account} {self.rng.choice(PRODUCTS)}"
            close = (self.now + dt.timedelta(days=self.rng.randrange(-30, 200))).date()
            refs = [ExternalRef(source="hubspot", external_id=f"demo-{n + 1:04d}")] if n % 3 == 0 else []
            loss = None
            if stage == Stage.closed_lost:
                code = self.rng.choice(DEFAULT_LOSS_REASONS[:-1])[0]
                competitor = self.rng.choice(COMPETITORS) if code == "competitor" else None
                loss = Loss(reason_code=code, competitor=competitor)
            walk = n % 5 == 0 and stage != Stage.prospecting  # created early, then moved along by its owner
            data = DealCreate(
                name=name,
                account_name=account,
                amount=Money(amount=amount, currency=currency),
                expected_close_date=close,
                stage=Stage.prospecting if walk else stage,
                owner_id=actor.member_id,
                external_refs=refs,
                loss=None if walk else loss,
            )
            view = await self.call(deals.create_deal, actor, data)
            deal_id = view.deal.id
            if walk:
                update = DealUpdate(stage=stage, loss=loss) if loss else DealUpdate(stage=stage)
                await self.call(deals.update_deal, actor, deal_id, update, None)
            made.append((seller, deal_id, stage))
            self.counts["deals"] += 1
            self.counts[f"deals.{stage}"] += 1
            self.fingerprint.append(f"{seller}|{name}|{stage}|{amount} {currency}|{close}")
        return made

    # --- strategy -----------------------------------------------------------------------

    async def strategies(self, open_deals: list[tuple[str, uuid.UUID, Stage]]) -> None:
        for i, (seller, deal_id, _) in enumerate(open_deals[:30]):
            owner = self.actors[seller]
            stakeholders = [
                Stakeholder(name="Dana Whitfield", title="CFO", role=StakeholderRole.economic_buyer),
                Stakeholder(
                    name="Raj Iyer", title="Head of Ops", role=StakeholderRole.champion, stance=Stance.supportive
                ),
            ]
            first = StrategyUpdate(
                customer_objectives="Cut month-end close from 9 days to 4",
                decision_process="CFO signs; procurement reviews over 4 weeks",
                stakeholders=stakeholders,
                risks=["Budget not yet confirmed"],
                next_steps=[NextStep(description="Walk the CFO through the business case")],
            )
            await self.call(strategy.put_strategy, owner, deal_id, first, frozenset({0}), if_match_given=True)
            self.counts["strategy_versions"] += 1
            if i % 3 == 0:  # a second version; its next step asks the manager to help
                second = first.model_copy(
                    update={
                        "risks": ["Budget not yet confirmed", "Incumbent offers a discount"],
                        "next_steps": [
                            NextStep(description="Walk the CFO through the business case"),
                            NextStep(
                                description="Rehearse the pricing conversation",
                                assignee_id=owner.manager_id,
                                due_date=(self.now + dt.timedelta(days=14)).date(),
                            ),
                        ],
                    }
                )
                await self.call(strategy.put_strategy, owner, deal_id, second, frozenset({1}), if_match_given=True)
                self.counts["strategy_versions"] += 1

    async def suggestions(self, open_deals: list[tuple[str, uuid.UUID, Stage]]) -> None:
        sections = list(StrategySection)
        for i, (seller, deal_id, _) in enumerate(open_deals[:14]):
            owner = self.actors[seller]
            manager = self.manager_of(seller)
            data = SuggestionCreate(section=sections[i % len(sections)], body="Have we mapped procurement's steps?")
            made = await self.call(strategy.create_suggestion, manager, deal_id, data)
            if i % 3 == 0:
                await self.call(strategy.accept_suggestion, owner, deal_id, made.id, "Good catch, adding it")
                self.counts["suggestions.accepted"] += 1
            elif i % 3 == 1:
                await self.call(strategy.decline_suggestion, owner, deal_id, made.id, "Covered in discovery")
                self.counts["suggestions.declined"] += 1
            else:
                self.counts["suggestions.open"] += 1

    async def assignment_requests(self, open_deals: list[tuple[str, uuid.UUID, Stage]]) -> None:
        hos = self.actors["hos"]
        for i, (seller, deal_id, _) in enumerate(open_deals[30:44]):
            owner = self.actors[seller]
            manager = self.manager_of(seller)
            if i % 2 == 0:  # the owner asks their manager to coach
                asked = AssignmentCreate(member_id=manager.member_id, role=AssignmentRole.coach, purpose="Pricing prep")
                made = await self.call(assignments.create_assignment, owner, deal_id, asked)
                if i % 4 == 0:
                    await self.call(assignments.accept_assignment, manager, made.id)
                self.counts["assignments.requested"] += 1
            else:  # the head of sales offers to sponsor; the owner decides
                offer = AssignmentCreate(member_id=hos.member_id, role=AssignmentRole.executive_sponsor)
                made = await self.call(assignments.create_assignment, hos, deal_id, offer)
                if i % 4 == 1:
                    await self.call(assignments.decline_assignment, owner, made.id)
                self.counts["assignments.proposed"] += 1

    # --- calls and coaching -------------------------------------------------------------

    async def coaching(self, open_deals: list[tuple[str, uuid.UUID, Stage]]) -> None:
        for i, (seller, deal_id, _) in enumerate(open_deals[:16]):
            owner = self.actors[seller]
            manager = self.manager_of(seller)
            role = CallRole.observer if i % 2 == 0 else CallRole.contributor
            part = "Listen and take notes for the debrief" if role == CallRole.observer else "Answer security questions"
            when = self.now - dt.timedelta(days=self.rng.randrange(2, 40))
            planned = CallCreate(
                scheduled_at=when,
                purpose="Discovery with the CFO",
                attendees=[
                    Attendee(member_id=owner.member_id, call_role=CallRole.lead),
                    Attendee(member_id=manager.member_id, call_role=role, agreed_part=part),
                ],
            )
            made = await self.call(calls.create_call, owner, deal_id, planned)
            self.counts["calls"] += 1
            if i >= 13:
                continue  # still to be held
            held = CallUpdate(held_at=when + dt.timedelta(hours=1), outcome="CFO agreed to a pilot")
            await self.call(calls.update_call, owner, made.call.id, held, None)
            if i % 4 == 1:
                kind = InterventionKind.took_over if i == 1 else InterventionKind.answered_question
                note = "Took over the pricing discussion" if i == 1 else "Answered the SSO question"
                act = InterventionCreate(member_id=manager.member_id, kind=kind, note=note)
                await self.call(calls.create_intervention, owner, made.call.id, act)
                self.counts["interventions.takeover" if i == 1 else "interventions"] += 1
            seen = ObservationCreate(
                strengths=[Strength(skill_code="discovery", note="Open questions uncovered the month-end pain")],
                improvements=[
                    Improvement(
                        skill_code="value_selling",
                        note="Pricing came up before the value was agreed",
                        suggestion="Confirm the business case before quoting",
                    )
                ],
                summary="A good discovery call",
            )
            observation = await self.call(calls.create_observation, manager, made.call.id, seen)
            if i % 3 == 2:
                self.counts["observations.draft"] += 1
                continue
            await self.call(calls.share_observation, manager, observation.id)
            if i % 3 == 1:
                self.counts["observations.shared"] += 1
                continue
            reflection = ObservationAcknowledgement(
                reflection="I rushed to price; next time I confirm the value first.",
                commitments=[
                    CommitmentItem(text="Confirm the business case before pricing", skill_code="value_selling")
                ],
            )
            await self.call(calls.acknowledge_observation, owner, observation.id, reflection)
            self.counts["observations.acknowledged"] += 1

    async def sign_offs(self, late_deals: list[tuple[str, uuid.UUID, Stage]]) -> None:
        """Approvals in every status; the seller relies on one approved discount."""
        for i, (seller, deal_id, _) in enumerate(late_deals[:12]):
            owner = self.actors[seller]
            manager = self.manager_of(seller)
            terms = [
                Term(
                    kind=TermKind.discount,
                    description="Discount for a three-year commitment",
                    value=f"{5 + i % 4 * 5}%",
                    applies_to="Year-one licence fees",
                    valid_until=(self.now + dt.timedelta(days=60)).date(),
                )
            ]
            made = await self.call(
                approvals.create_approval, owner, deal_id, ApprovalCreate(approver_id=manager.member_id, terms=terms)
            )
            kind = ("pending", "approved", "rejected", "revoked")[i % 4]
            if kind in ("approved", "revoked"):
                await self.call(approvals.approve_approval, manager, made.id, "Approved for this deal only")
                if i == 1:
                    await self.call(approvals.rely_on_approval, owner, made.id)
                    self.counts["approvals.relied_upon"] += 1
                if kind == "revoked":
                    await self.call(approvals.revoke_approval, manager, made.id, "Finance withdrew the Q4 budget")
            elif kind == "rejected":
                await self.call(approvals.reject_approval, manager, made.id, "Too deep for a one-year term")
            self.counts[f"approvals.{kind}"] += 1

    # --- losses -------------------------------------------------------------------------

    async def loss_reviews(self, lost: list[tuple[str, uuid.UUID, Stage]]) -> None:
        """Each loss opened its review; a third are completed, a third overdue, the rest pending."""
        hos = self.actors["hos"]
        manager_ids = {self.actors[h].member_id: self.actors[h] for h in ("manager1", "manager2")}
        listed = await self.call(reviews.list_reviews, hos, _FIRST_PAGE, ReviewFilters())
        by_deal = {view.review.deal_id: view.review for view in listed.items}
        for i, (seller, deal_id, _) in enumerate(lost):
            review = by_deal[deal_id]
            owner = self.actors[seller]
            assert review.reviewer_id is not None
            reviewer = manager_ids[review.reviewer_id]
            if i % 3 == 0:
                lessons = ReviewUpdate(
                    loss_reason_confirmed=True,
                    root_cause="We never reached the economic buyer",
                    lessons=["Multi-thread before the proposal"],
                    skill_gaps=["stakeholder_management"],
                    product_feedback=PRODUCT_FEEDBACK[i // 3 % len(PRODUCT_FEEDBACK)] if i % 2 == 0 else None,
                    enablement_feedback=ENABLEMENT_FEEDBACK[i // 3 % len(ENABLEMENT_FEEDBACK)],
                    action_items=[
                        ActionItem(
                            description="Map the buying committee on every deal over 100k",
                            assignee_id=owner.member_id,
                            due_date=(self.now + dt.timedelta(days=21)).date(),
                        )
                    ],
                )
                await self.call(reviews.update_review, reviewer, review.id, lessons, None)
                mine = ReviewUpdate(seller_reflection="I relied on my champion and never met the CFO.")
                await self.call(reviews.update_review, owner, review.id, mine, None)
                await self.call(reviews.complete_review, reviewer, review.id)
                self.counts["reviews.completed"] += 1
                if i % 2 == 0:
                    note = LeadershipNoteCreate(note="Good review; bring this lesson to the team meeting.")
                    await self.call(reviews.create_leadership_note, hos, review.id, note)
                    self.counts["leadership_notes"] += 1
            elif i % 3 == 1:
                await self.call(self.age_loss, owner, deal_id, dt.timedelta(days=10 + i))
                self.counts["reviews.overdue"] += 1
            else:
                self.counts["reviews.pending"] += 1

    async def age_loss(self, uow: UnitOfWork, actor: Actor, deal_id: uuid.UUID, by: dt.timedelta) -> None:
        """Move a loss into the past: the deal's close and its review's due day (the demo's one shortcut)."""
        async with uow:
            deal = await access.visible_deal(uow, actor, deal_id, for_update=True)
            review = await uow.reviews.get_by_deal(deal_id)
            assert review is not None and deal.closed_at is not None
            deal.closed_at = deal.closed_at - by
            review.closed_at = review.closed_at - by
            review.closed_week = iso_week(review.closed_at)
            review.due_on = review.due_on - by
            await uow.flush()
            await uow.commit()

    async def follow_through(self) -> None:
        """Sellers finish some commitments and drop one."""
        for handle in ("seller1", "seller2", "seller3", "seller4", "seller5", "seller6"):
            seller = self.actors[handle]
            page = await self.call(
                commitments.list_commitments,
                seller,
                _FIRST_PAGE,
                member_id=seller.member_id,
                status=CommitmentStatus.open,
                deal_id=None,
            )
            for j, view in enumerate(page.items):
                if j % 3 == 0:
                    await self.call(commitments.complete_commitment, seller, view.commitment.id, "Done in the QBR")
                    self.counts["commitments.done"] += 1
                elif j % 3 == 1 and handle == "seller1":
                    await self.call(commitments.drop_commitment, seller, view.commitment.id, "Deal went quiet")
                    self.counts["commitments.dropped"] += 1
                else:
                    self.counts["commitments.open"] += 1

    async def webhook(self) -> None:
        admin = self.actors["admin"]
        data = WebhookEndpointCreate(url=WEBHOOK_URL, event_types=["deal.*"], description="Demo receiver (disabled)")
        made = await self.call(webhooks.create_endpoint, admin, data, allow_private=True)
        off = WebhookEndpointUpdate(active=False)
        await self.call(webhooks.update_endpoint, admin, made.endpoint.id, off, None, allow_private=True)
        self.counts["webhook_endpoints"] += 1

    def manager_of(self, seller: str) -> Actor:
        return self.actors[f"manager{(int(seller.removeprefix('seller')) - 1) // 3 + 1}"]


async def organizations_exist(sessionmaker: async_sessionmaker[AsyncSession]) -> bool:
    uow = UnitOfWork(sessionmaker)
    try:
        return await uow.organizations.any_exist()
    finally:
        await uow.close()


async def build_demo(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    seed: int = 7,
    force: bool = False,
    org_name: str = "Northwind Demo",
) -> DemoResult:
    """Build the demo organisation; refuses (writing nothing) when organisations exist, unless ``force``."""
    if not force and await organizations_exist(sessionmaker):
        raise OrganizationsExist()
    demo = _Demo(sessionmaker, seed)
    org_id = await demo.people(org_name)
    book = await demo.deal_book()
    open_deals = [d for d in book if d[2] not in (Stage.closed_won, Stage.closed_lost)]
    late = [d for d in open_deals if d[2] in (Stage.proposal, Stage.negotiation)]
    lost = [d for d in book if d[2] == Stage.closed_lost]
    await demo.strategies(open_deals)
    await demo.suggestions(open_deals)
    await demo.assignment_requests(open_deals)
    await demo.coaching(open_deals)
    await demo.sign_offs(late)
    await demo.loss_reviews(lost)
    await demo.follow_through()
    await demo.webhook()
    return DemoResult(org_id, demo.personas, demo.counts, demo.fingerprint)
