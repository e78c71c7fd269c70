"""Small HTTP helpers shared by routers: ETags and Location headers."""

from __future__ import annotations

from fastapi import Response
from pydantic import BaseModel

ETAG_HEADER = {
    "ETag": {
        "description": 'The resource version, e.g. `"3"`; send it back as `If-Match`',
        "schema": {"type": "string"},
    }
}
LOCATION_HEADER = {"Location": {"description": "URL of the created resource", "schema": {"type": "string"}}}
NO_STORE_HEADER = {
    "Cache-Control": {
        "description": "`no-store`: the response carries a secret that no cache may keep",
        "schema": {"type": "string", "enum": ["no-store"]},
    }
}


def set_etag(response: Response, version: int) -> None:
    response.headers["ETag"] = f'"{version}"'


def set_location(response: Response, path: str) -> None:
    response.headers["Location"] = path


def set_no_store(response: Response) -> None:
    """For a response that shows a secret: no browser, proxy or CDN cache may keep it."""
    response.headers["Cache-Control"] = "no-store"


def json_response(model: BaseModel, *, headers: dict[str, str] | None = None) -> Response:
    """The model serialised once, by pydantic's core. Returning the model instead makes FastAPI
    validate it again against response_model; on hot read paths that doubles the CPU per item."""
    return Response(model.model_dump_json(), media_type="application/json", headers=headers)
