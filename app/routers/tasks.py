from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from app.deps import CallerDep, CallerPageDep
from app.domain.tasks import TaskKind
from app.errors import problem_responses
from app.http.responses import plain_json_response
from app.http.routes import ApiRoute, served_plain
from app.schemas.tasks import TaskPage
from app.services import tasks as service

router = APIRouter(prefix="/v1", tags=["tasks"], route_class=ApiRoute)

# Where each kind of task is acted on: the object itself (its actions live under it), and for a
# next step the strategy it belongs to (done by writing the strategy); of the task's id and its deal's.
_LINKS: dict[TaskKind, Callable[[str, str], str]] = {
    TaskKind.next_step: lambda id, deal_id: f"/v1/deals/{deal_id}/strategy",
    TaskKind.assignment_request: lambda id, deal_id: f"/v1/assignments/{id}",
    TaskKind.assignment_proposal: lambda id, deal_id: f"/v1/assignments/{id}",
    TaskKind.suggestion: lambda id, deal_id: f"/v1/deals/{deal_id}/strategy/suggestions/{id}",
    TaskKind.approval: lambda id, deal_id: f"/v1/approvals/{id}",
    TaskKind.observation_to_share: lambda id, deal_id: f"/v1/observations/{id}",
    TaskKind.observation_to_acknowledge: lambda id, deal_id: f"/v1/observations/{id}",
    TaskKind.review_to_complete: lambda id, deal_id: f"/v1/closed-lost-reviews/{id}",
    TaskKind.review_to_reflect: lambda id, deal_id: f"/v1/closed-lost-reviews/{id}",
    TaskKind.commitment: lambda id, deal_id: f"/v1/commitments/{id}",
}


def fields_of(task: service.Task) -> dict[str, Any]:
    """A task as the plain data of TaskPublic (the kind is a str enum: orjson writes its value; the
    ids are text already, as the link needs them)."""
    task_id, deal_id = str(task.id), str(task.deal_id)
    return {
        "kind": task.kind,
        "id": task_id,
        "deal_id": deal_id,
        "deal_name": task.deal_name,
        "title": task.title,
        "due_on": task.due_on,
        "created_at": task.created_at,
        "link": _LINKS[task.kind](task_id, deal_id),
    }


@router.get("/me/tasks", response_model=TaskPage, responses=problem_responses())
@served_plain
async def list_my_tasks(
    caller: CallerDep,
    page: CallerPageDep,
    kind: Annotated[
        list[TaskKind] | None,
        Query(max_length=len(TaskKind), description="Only tasks of these kinds (repeat the parameter for several)"),
    ] = None,
) -> Response:
    """Everything waiting on the caller, across the deals they see, newest first: next steps assigned
    to them, assignments asked of them or proposed on their deals, suggestions on their deals,
    approvals to decide, observations to share or acknowledge, reviews to complete or reflect on,
    open commitments. Each links to the object to act on; done, it leaves the list."""
    result = await service.list_my_tasks(caller, page, kind)
    return plain_json_response({"items": [fields_of(t) for t in result.items], "next_cursor": result.next_cursor})
