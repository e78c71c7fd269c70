"""Strategy revision: step identity, who is newly asked for help, and a document that changes nothing."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace

import pytest

from app.domain.errors import UnknownMember
from app.domain.strategy import (
    NamedAssignee,
    NextStep,
    NextStepStatus,
    Revision,
    Stakeholder,
    StakeholderRole,
    Stance,
    StrategyDocument,
    StrategySection,
    ensure_assignee_active,
)

OWNER, PEER, MANAGER = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
S1, S2, S3 = (uuid.UUID(int=n) for n in (1, 2, 3))
S = StrategySection


def ids() -> Callable[[], uuid.UUID]:
    """A deterministic id factory: 00…0100, 00…0101, ..."""
    counter = itertools.count(0x100)
    return lambda: uuid.UUID(int=next(counter))


NEW1, NEW2 = uuid.UUID(int=0x100), uuid.UUID(int=0x101)


def step(id_: uuid.UUID | None, description: str = "Call the CFO", assignee: uuid.UUID | None = None) -> NextStep:
    return NextStep(id_, description, assignee)


def doc(*steps: NextStep, **sections: object) -> StrategyDocument:
    return StrategyDocument(next_steps=steps, **sections)  # type: ignore[arg-type]


def revise(new: StrategyDocument, current: StrategyDocument) -> Revision | None:
    return new.revise(current, new_id=ids())


def revised(new: StrategyDocument, current: StrategyDocument) -> Revision:
    revision = revise(new, current)
    assert revision is not None
    return revision


# --- step identity -------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "current", "expected_ids"),
    [
        pytest.param([step(None)], [], [NEW1], id="a new step gets a new id"),
        pytest.param([step(None, "a"), step(None, "b")], [], [NEW1, NEW2], id="each new step its own id"),
        pytest.param([step(S1, "renamed")], [step(S1)], [S1], id="a sent id is kept"),
        pytest.param([step(S3)], [], [S3], id="an unknown sent id is kept too"),
        pytest.param([step(None)], [step(S1)], [S1], id="an identical step sent without id keeps its id"),
        pytest.param([step(None, "other")], [step(S1)], [NEW1], id="a changed step without id is a new step"),
        pytest.param(
            [step(None, "b"), step(None, "a")],
            [step(S1, "a"), step(S2, "b")],
            [S2, S1],
            id="reordered steps keep their ids",
        ),
        pytest.param(
            [step(None), step(None)],
            [step(S1), step(S2)],
            [S1, S2],
            id="identical twins keep one id each, in order",
        ),
        pytest.param(
            [step(S1, "b"), step(None, "b")],
            [step(S1, "a"), step(S2, "b")],
            [S1, S2],
            id="an id claimed by a sent step is not given away",
        ),
        pytest.param(
            [step(S2), step(None)],
            [step(S1), step(S2)],
            [S2, S1],
            id="a spare identical step lends its id",
        ),
        pytest.param(
            [step(None, assignee=PEER)],
            [step(S1)],
            [NEW1],
            id="a step with a new assignee is a new step",
        ),
    ],
)
def test_next_steps_get_ids(sent: list[NextStep], current: list[NextStep], expected_ids: list[uuid.UUID]) -> None:
    revision = revise(doc(*sent), doc(*current))
    document = doc(*current) if revision is None else revision.document
    assert [s.id for s in document.next_steps] == expected_ids


def test_an_unchanged_document_sent_without_step_ids_is_no_revision() -> None:
    current = doc(step(S1, "a", PEER), step(S2, "b"), risks=("Budget",))
    sent = doc(step(None, "a", PEER), step(None, "b"), risks=("Budget",))
    assert revise(sent, current) is None


# --- no-op and sections ----------------------------------------------------------

FULL = StrategyDocument(
    customer_objectives="Close in 4 days",
    decision_process="CFO signs",
    stakeholders=(Stakeholder("Dana", "CFO", StakeholderRole.economic_buyer, Stance.supportive),),
    competition="Initech",
    value_hypothesis="Saves 5 FTE",
    risks=("Budget freeze",),
    next_steps=(NextStep(S1, "Business case", PEER, dt.date(2026, 11, 30)),),
)


@pytest.mark.parametrize("document", [StrategyDocument(), FULL], ids=["empty", "full"])
def test_an_identical_document_is_no_revision(document: StrategyDocument) -> None:
    assert revise(document, document) is None
    assert revise(StrategyDocument.from_json(document.to_json()), document) is None


@pytest.mark.parametrize(
    ("change", "sections"),
    [
        ({"customer_objectives": "Close in 3 days"}, (S.customer_objectives,)),
        ({"decision_process": None}, (S.decision_process,)),
        ({"stakeholders": ()}, (S.stakeholders,)),
        (
            {"stakeholders": (Stakeholder("Dana", "CFO", StakeholderRole.economic_buyer, Stance.opposed),)},
            (S.stakeholders,),
        ),
        ({"competition": "Globex"}, (S.competition,)),
        ({"value_hypothesis": ""}, (S.value_hypothesis,)),
        ({"risks": ("Budget freeze", "Legal")}, (S.risks,)),
        ({"next_steps": (replace(FULL.next_steps[0], status=NextStepStatus.done),)}, (S.next_steps,)),
        ({"next_steps": (replace(FULL.next_steps[0], due_date=None),)}, (S.next_steps,)),
        ({"competition": "Globex", "risks": ()}, (S.competition, S.risks)),
        ({"risks": (), "customer_objectives": None}, (S.customer_objectives, S.risks)),
    ],
)
def test_a_revision_names_the_changed_sections_in_document_order(
    change: dict[str, object], sections: tuple[StrategySection, ...]
) -> None:
    assert revised(replace(FULL, **change), FULL).sections == sections  # type: ignore[arg-type]


def test_the_first_write_changes_every_nonempty_section() -> None:
    revision = revised(doc(step(None), risks=("Budget",)), StrategyDocument())
    assert revision.sections == (S.risks, S.next_steps)
    assert revision.document == doc(step(NEW1), risks=("Budget",))


def test_emptying_a_document_is_a_revision() -> None:
    assert revised(StrategyDocument(), FULL).sections == tuple(StrategySection)


# --- who is newly asked for help -------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "current", "named", "helpers"),
    [
        pytest.param([step(None, "a", PEER)], [], [(PEER, 0, "a")], [PEER], id="a new step asks its assignee"),
        pytest.param([step(None, "a", OWNER)], [], [(OWNER, 0, "a")], [], id="the owner asks nobody"),
        pytest.param([step(None, "a")], [], [], [], id="no assignee, nobody asked"),
        pytest.param([step(S1, "a", PEER)], [step(S1, "a", PEER)], [], [], id="a kept assignee is not asked again"),
        pytest.param(
            [step(S1, "a, reworded", PEER)],
            [step(S1, "a", PEER)],
            [],
            [],
            id="editing a step does not ask again",
        ),
        pytest.param(
            [step(None, "a, reworded", PEER)],
            [step(S1, "a", PEER)],
            [(PEER, 0, "a, reworded")],
            [PEER],
            id="a new step asks again, even the same person",
        ),
        pytest.param(
            [step(S1, "a", MANAGER)],
            [step(S1, "a", PEER)],
            [(MANAGER, 0, "a")],
            [MANAGER],
            id="a step handed to someone else asks them",
        ),
        pytest.param(
            [step(S2, "b", PEER), step(S1, "a", PEER)],
            [step(S1, "a", PEER)],
            [(PEER, 0, "b")],
            [PEER],
            id="a second step for an assignee asks them with it",
        ),
        pytest.param(
            [step(None, "a", PEER), step(None, "b", OWNER), step(None, "c", PEER), step(None, "d", MANAGER)],
            [],
            [(PEER, 0, "a"), (OWNER, 1, "b"), (MANAGER, 3, "d")],
            [PEER, MANAGER],
            id="once each, with their first step, in step order",
        ),
        pytest.param(
            [step(None, "b", PEER), step(None, "a", PEER)],
            [step(S1, "a", PEER)],
            [(PEER, 0, "b")],
            [PEER],
            id="a moved step keeps its id and its request",
        ),
    ],
)
def test_who_is_newly_asked_for_help(
    sent: list[NextStep],
    current: list[NextStep],
    named: list[tuple[uuid.UUID, int, str]],
    helpers: list[uuid.UUID],
) -> None:
    revision = revised(doc(*sent, risks=("Legal",)), doc(*current))  # the risk makes each a revision
    assert [(n.member_id, n.step_index, n.description) for n in revision.named] == named
    assert [h.member_id for h in revision.helpers(OWNER)] == helpers


@dataclass
class MemberStub:
    active: bool


def test_a_named_assignee_must_be_an_active_member() -> None:
    named = NamedAssignee(PEER, 2, "a")
    ensure_assignee_active(named, MemberStub(active=True))
    for member in (None, MemberStub(active=False)):
        with pytest.raises(UnknownMember) as info:
            ensure_assignee_active(named, member)
        assert info.value.fields[0].path == ("next_steps", 2, "assignee_id")


# --- the stored form --------------------------------------------------------------


def test_json_round_trip_and_the_stored_shape() -> None:
    stored = FULL.to_json()
    assert StrategyDocument.from_json(stored) == FULL
    assert stored == {
        "customer_objectives": "Close in 4 days",
        "decision_process": "CFO signs",
        "stakeholders": [{"name": "Dana", "title": "CFO", "role": "economic_buyer", "stance": "supportive"}],
        "competition": "Initech",
        "value_hypothesis": "Saves 5 FTE",
        "risks": ["Budget freeze"],
        "next_steps": [
            {
                "id": str(S1),
                "description": "Business case",
                "assignee_id": str(PEER),
                "due_date": "2026-11-30",
                "status": "open",
            }
        ],
    }


def test_the_empty_document_and_missing_sections() -> None:
    assert StrategyDocument().to_json() == {
        "customer_objectives": None,
        "decision_process": None,
        "stakeholders": [],
        "competition": None,
        "value_hypothesis": None,
        "risks": [],
        "next_steps": [],
    }
    assert StrategyDocument.from_json({"risks": ["Budget"]}) == StrategyDocument(risks=("Budget",))


def test_ids_default_to_uuid7() -> None:
    revision = doc(step(None)).revise(StrategyDocument())
    assert revision is not None
    new_id = revision.document.next_steps[0].id
    assert new_id is not None and new_id.version == 7
