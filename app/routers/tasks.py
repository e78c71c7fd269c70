from __future__ import annotations

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
# next step the strategy it belongs to (done by writing the strategy).
_LINKS = {
    TaskKind.next_step: "/v1/deals/{deal_id}/strategy",
    TaskKind.assignment_request: "/v1/assignments/{id}",
    TaskKind.assignment_proposal: "/v1/assignments/{id}",
    TaskKind.suggestion: "/v1/deals/{deal_id}/strategy/suggestions/{id}",
    TaskKind.approval: "/v1/approvals/{id}",
    TaskKind.observation_to_share: "/v1/observations/{id}",
    TaskKind.observation_to_acknowledge: "/v1/observations/{id}",
    TaskKind.review_to_complete: "/v1/closed-lost-reviews/{id}",
    TaskKind.review_to_reflect: "/v1/closed-lost-reviews/{id}",
    TaskKind.commitment: "/v1/commitments/{id}",
}


def fields_of(task: service.Task) -> dict[str, Any]:
    return {
        "kind": task.kind.value,
        "id": task.id,
        "deal_id": task.deal_id,
        "deal_name": task.deal_name,
        "title": task.title,
        "due_on": task.due_on,
        "created_at": task.created_at,
        "link": _LINKS[task.kind].format(id=task.id, deal_id=task.deal_id),
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
