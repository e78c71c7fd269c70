from __future__ import annotations

import datetime as dt
import uuid

from pydantic import Field

from app.domain.tasks import MAX_TITLE, TaskKind
from app.schemas import acme
from app.schemas.common import Page, ResponseModel, examples


class TaskPublic(ResponseModel):
    model_config = examples(
        {
            "kind": "approval",
            "id": acme.APPROVAL_ID,
            "deal_id": acme.DEAL_ID,
            "deal_name": "Globex platform renewal",
            "title": "Sign-off requested on the deal's terms",
            "due_on": None,
            "created_at": "2026-11-05T10:00:00Z",
            "link": f"/v1/approvals/{acme.APPROVAL_ID}",
        }
    )

    kind: TaskKind = Field(
        description="`next_step`: an open next step of a deal's strategy assigned to you; "
        "`assignment_request`: a role a deal's owner asked you to take; "
        "`assignment_proposal`: a role proposed on a deal you own; "
        "`suggestion`: an undecided suggestion on the strategy of a deal you own; "
        "`approval`: a pending approval you are the approver of; "
        "`observation_to_share`: your draft observation of a call; "
        "`observation_to_acknowledge`: a shared observation of a call you led; "
        "`review_to_complete`: a pending closed-lost review you are the reviewer of; "
        "`review_to_reflect`: a pending review of your lost deal without your reflection yet; "
        "`commitment`: your open commitment",
        examples=["approval"],
    )
    id: uuid.UUID = Field(description="The id of the object to act on (a next step's own id for `next_step`)")
    deal_id: uuid.UUID
    deal_name: str = Field(examples=["Globex platform renewal"])
    title: str = Field(
        max_length=MAX_TITLE, description="What to do, in a line", examples=["Sign-off requested on the deal's terms"]
    )
    due_on: dt.date | None = Field(description="The step's, review's or commitment's due date")
    created_at: dt.datetime = Field(
        description="Since when it waits on you: when the step was assigned to you, the observation shared, "
        "the deal lost (for reviews), the object created (for the rest)"
    )
    link: str = Field(
        description="The API path of the object to act on: the deal's strategy for a next step",
        examples=["/v1/approvals/0192f1d2-7c1e-7b7a-9a51-1f0c2b3d4e5f"],
    )


class TaskPage(Page[TaskPublic]):
    pass
