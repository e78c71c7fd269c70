"""Seller development, the learning loop: commitments tracked until done, each seller's skill
profile with a trend, the observer's brief before a call, and who reads which of them."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Protocol

from app.domain.errors import CommitmentClosed, FieldProblem, Forbidden, MissingFields, OwnerDecides
from app.domain.members import Actor, MemberRole


class CommitmentSource(enum.StrEnum):
    observation = "observation"  # the seller's commitment in a debrief
    closed_lost_review = "closed_lost_review"  # an action item of a completed review


class CommitmentStatus(enum.StrEnum):
    open = "open"
    done = "done"
    dropped = "dropped"


class SkillMention(enum.StrEnum):
    """How a shared observation names a skill."""

    strength = "strength"
    improvement = "improvement"


class Trend(enum.StrEnum):
    improving = "improving"
    steady = "steady"
    needs_attention = "needs_attention"
    new = "new"


class FeedbackKind(enum.StrEnum):
    product = "product"
    enablement = "enablement"


DEFAULT_WINDOW_DAYS = 90
MAX_WINDOW_DAYS = 366
# The skills an observer is told to watch: few, so that they can.
FOCUS_SKILLS = 3
# A brief lists this many of the seller's open commitments (due first).
BRIEF_COMMITMENTS = 50

TREND_RULE = """\
Each skill's `trend` compares the window's second half with its first. The window runs from the
start of `from` to the end of `to` (UTC) and is split at its middle instant. A *conversation* is a
shared observation of a call the member led (dated by its `shared_at`) or a completed review of
the member's lost deal (dated by the loss, `closed_at`); a *need* is a conversation naming the
skill as an improvement or a loss skill gap. The first rule that holds decides:

1. `new`: the skill was never mentioned (strength, improvement or loss gap) before the middle of
   the window, not even before `from`.
2. `improving`: its latest recognition as a strength in the window came after its latest need
   (up to the end of the window, before `from` included).
3. `needs_attention`: needs per conversation in the second half exceed those in the first
   (a half without conversations counts 0).
4. `improving`: needs per conversation fell in the second half, which had at least one
   conversation.
5. `steady`: otherwise."""


class CommitmentLike(Protocol):
    @property
    def member_id(self) -> uuid.UUID: ...
    @property
    def status(self) -> str: ...
    @property
    def due_on(self) -> dt.date | None: ...


@dataclass(frozen=True, slots=True)
class NewCommitment:
    """A commitment to record: who committed, to what, answering which skill, by when."""

    member_id: uuid.UUID
    text: str
    skill_code: str | None = None
    due_on: dt.date | None = None


# --- commitments ------------------------------------------------------------------


def is_overdue(commitment: CommitmentLike, today: dt.date) -> bool:
    """A commitment still open after its due day is overdue."""
    return commitment.status == CommitmentStatus.open and commitment.due_on is not None and commitment.due_on < today


def ensure_can_close_commitment(actor: Actor, commitment: CommitmentLike) -> None:
    """Only the member who committed says it is done or dropped, and only while it is open."""
    if actor.member_id != commitment.member_id:
        raise OwnerDecides("Only the member who made the commitment completes or drops it.")
    if commitment.status != CommitmentStatus.open:
        raise CommitmentClosed()


def ensure_commitment_skills(skill_codes: Sequence[str | None], improvements: Collection[str]) -> None:
    """A debrief's commitment names a skill only to answer one of the observation's improvements."""
    problems = [
        FieldProblem(
            ("commitments", index, "skill_code"), f"{code!r} is not among the observation's improvements", "value_error"
        )
        for index, code in enumerate(skill_codes)
        if code is not None and code not in improvements
    ]
    if problems:
        raise MissingFields("A commitment's skill_code names one of the observation's improvements.", fields=problems)


def commitments_from_debrief(seller_id: uuid.UUID, items: Iterable[tuple[str, str | None]]) -> list[NewCommitment]:
    """Each commitment of an acknowledgement, ``(text, skill_code)``, becomes one of the seller."""
    return [NewCommitment(member_id=seller_id, text=text, skill_code=skill) for text, skill in items]


def commitments_from_action_items(items: Iterable[Mapping[str, Any]]) -> list[NewCommitment]:
    """Each action item of a completed review becomes a commitment of its assignee, due on its
    due date; an item nobody was assigned is nobody's commitment."""
    made = []
    for item in items:
        assignee = item.get("assignee_id")
        if not assignee:
            continue
        due = item.get("due_date")
        made.append(
            NewCommitment(
                member_id=assignee if isinstance(assignee, uuid.UUID) else uuid.UUID(str(assignee)),
                text=str(item["description"]),
                due_on=due if isinstance(due, dt.date) or due is None else dt.date.fromisoformat(str(due)),
            )
        )
    return made


# --- who reads what -----------------------------------------------------------------


def can_see_development(actor: Actor, member_id: uuid.UUID, member_line: Collection[uuid.UUID]) -> bool:
    """A member's commitments and profile are seen by the member, their management line
    (transitively) and heads of sales; by nobody else (other sellers, admins, machines).

    ``member_line`` lists the member's managers, nearest first, up to the top of the line.
    """
    if actor.member_id == member_id or actor.role == MemberRole.head_of_sales:
        return True
    return actor.role == MemberRole.manager and actor.member_id in member_line


def ensure_can_see_team_skills(actor: Actor) -> None:
    """The team's skills are read by managers (their line) and heads of sales (the organisation)."""
    if actor.role not in (MemberRole.manager, MemberRole.head_of_sales):
        raise Forbidden("Team skills are for managers and heads of sales.")


def ensure_manager_in_reach(actor: Actor, manager_line: Collection[uuid.UUID]) -> None:
    """A manager reads their own line or a line below them; heads of sales any line.

    ``manager_line`` lists the asked-for manager and their managers, nearest first.
    """
    if actor.role != MemberRole.head_of_sales and actor.member_id not in manager_line:
        raise Forbidden("A manager reads their own line and the lines below it.")


def ensure_can_read_feedback(actor: Actor) -> None:
    """Product and enablement feedback from lost deals goes to leadership and operations."""
    if actor.role not in (MemberRole.head_of_sales, MemberRole.admin):
        raise Forbidden("The feedback digest is for heads of sales and admins.")


# --- windows ------------------------------------------------------------------------


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class Window:
    """Whole days, ``first`` to ``last`` inclusive (UTC), as the instants ``[start, end)``."""

    first: dt.date
    last: dt.date

    @property
    def start(self) -> dt.datetime:
        return _midnight(self.first)

    @property
    def end(self) -> dt.datetime:
        return _midnight(self.last) + dt.timedelta(days=1)

    @property
    def mid(self) -> dt.datetime:
        """The middle instant: the first half is ``[start, mid)``, the second ``[mid, end)``."""
        return self.start + (self.end - self.start) / 2


def _invalid(field: str, message: str) -> MissingFields:
    return MissingFields(message, fields=[FieldProblem((field,), message, "value_error")])


def ensure_ordered(first: dt.date | None, last: dt.date | None) -> None:
    """A range of days ends on or after the day it starts."""
    if first is not None and last is not None and first > last:
        raise _invalid("from", "from is after to")


def ensure_valid_window(first: dt.date, last: dt.date) -> None:
    """A profile's window is ordered, at most 366 days long, and ends before the calendar does."""
    ensure_ordered(first, last)
    if (last - first).days + 1 > MAX_WINDOW_DAYS:
        raise _invalid("from", f"the window covers at most {MAX_WINDOW_DAYS} days")
    if last == dt.date.max:
        raise _invalid("to", "to is out of range")


def development_window(first: dt.date | None, last: dt.date | None, today: dt.date) -> Window:
    """The days a profile or team view covers: by default the 90 days ending today; ``to``
    alone ends the default length there, ``from`` alone runs to today."""
    last = last or today
    if first is None:
        span = dt.timedelta(days=DEFAULT_WINDOW_DAYS - 1)
        first = last - span if last - dt.date.min >= span else dt.date.min
    ensure_valid_window(first, last)
    return Window(first, last)


# --- the trend ----------------------------------------------------------------------


def _rate(needs: int, conversations: int) -> Fraction:
    return Fraction(needs, conversations) if conversations else Fraction(0)


def skill_trend(
    *,
    mid: dt.datetime,
    first_mention_at: dt.datetime,
    last_recognised_at: dt.datetime | None,
    last_need_at: dt.datetime | None,
    needs_first: int,
    needs_second: int,
    conversations_first: int,
    conversations_second: int,
) -> Trend:
    """Where a skill is heading over a window, by the rule in ``TREND_RULE``.

    ``first_mention_at``: the skill's earliest mention ever; ``last_recognised_at``: its latest
    recognition as a strength in the window; ``last_need_at``: its latest improvement or loss gap up
    to the window's end; ``needs_*`` and ``conversations_*`` count each half of the window.
    """
    if first_mention_at >= mid:
        return Trend.new
    if last_recognised_at is not None and last_need_at is not None and last_recognised_at > last_need_at:
        return Trend.improving
    first, second = _rate(needs_first, conversations_first), _rate(needs_second, conversations_second)
    if second > first:
        return Trend.needs_attention
    if second < first and conversations_second > 0:
        return Trend.improving
    return Trend.steady
