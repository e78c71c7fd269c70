from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from app.errors import problem_responses
from app.http.routes import ApiRoute
from app.observability import render_metrics

router = APIRouter(tags=["operations"], route_class=ApiRoute)


class Health(BaseModel):
    status: str


@router.get("/healthz", response_model=Health)
async def get_health() -> Health:
    """The process is up (it does not touch the database)."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses=problem_responses(auth=False))
async def get_readiness(request: Request) -> Health:
    """The database answers; 503 database_unavailable when it does not."""
    async with request.app.state.engine.connect() as conn:
        await conn.execute(sa.text("SELECT 1"))
    return Health(status="ok")


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text"}},
)
async def get_metrics() -> Response:
    """Request counts and latencies in Prometheus text format."""
    body, content_type = render_metrics()
    return Response(body, media_type=content_type)
