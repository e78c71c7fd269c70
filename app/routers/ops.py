from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from app.errors import problem_responses
from app.http.routes import ApiRoute
from app.observability import render_metrics
from app.schemas.common import examples

router = APIRouter(tags=["operations"], route_class=ApiRoute)


class Health(BaseModel):
    model_config = examples({"status": "ok"})

    status: str


METRICS_EXAMPLE = """# HELP dealcoach_http_requests_total HTTP requests answered
# TYPE dealcoach_http_requests_total counter
dealcoach_http_requests_total{method="GET",route="/v1/deals/{deal_id}",status="200"} 18342.0
dealcoach_http_requests_total{method="POST",route="/v1/deals",status="201"} 1207.0
# HELP dealcoach_http_request_duration_seconds Time to answer an HTTP request
# TYPE dealcoach_http_request_duration_seconds histogram
dealcoach_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/v1/deals/{deal_id}"} 17410.0
dealcoach_http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/v1/deals/{deal_id}"} 18342.0
dealcoach_http_request_duration_seconds_count{method="GET",route="/v1/deals/{deal_id}"} 18342.0
dealcoach_http_request_duration_seconds_sum{method="GET",route="/v1/deals/{deal_id}"} 41.27
"""


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
    responses={
        200: {
            "content": {"text/plain": {"schema": {"type": "string"}, "example": METRICS_EXAMPLE}},
            "description": "Prometheus text",
        }
    },
)
async def get_metrics() -> Response:
    """Request counts and latencies in Prometheus text format."""
    body, content_type = render_metrics()
    return Response(body, media_type=content_type)
