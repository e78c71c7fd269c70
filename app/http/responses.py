"""Small HTTP helpers shared by routers: ETags and Location headers."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from fastapi import Response
from pydantic import BaseModel

ETAG_HEADER = {
    "ETag": {
        "description": 'The resource version, e.g. `"3"`; send it back as `If-Match`',
        "schema": {"type": "string"},
    }
}
# The ETag of an object with no `version` (an API key, a suggestion, an intervention): a tag of the
# representation sent (app/http/routes.py), so `If-None-Match` answers 304 while it is unchanged.
CONTENT_ETAG_HEADER = {
    "ETag": {
        "description": "A tag of the object as sent (it has no `version`); send it back as `If-None-Match`",
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


def etag(version: int) -> str:
    """The ETag of a resource at this version (`"3"`)."""
    return f'"{version}"'


def set_etag(response: Response, version: int) -> None:
    response.headers["ETag"] = etag(version)


def set_location(response: Response, path: str) -> None:
    response.headers["Location"] = path


def set_no_store(response: Response) -> None:
    """For a response that shows a secret: no browser, proxy or CDN cache may keep it."""
    response.headers["Cache-Control"] = "no-store"


def json_response(model: BaseModel, *, headers: dict[str, str] | None = None) -> Response:
    """The model serialised once, by pydantic's core. Returning the model instead makes FastAPI
    validate it again against response_model; on hot read paths that doubles the CPU per item."""
    return Response(model.model_dump_json(), media_type="application/json", headers=headers)


def _uuid(value: Any) -> str:
    # asyncpg returns its own uuid.UUID subclass, which orjson does not take as a UUID.
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def plain_json_response(document: Any, *, headers: dict[str, str] | None = None, status_code: int = 200) -> Response:
    """Plain data (dicts, lists, str, int, UUIDs, dates, UTC datetimes) serialised by orjson, with
    no model in between: for hot read paths whose rows come straight from the database. The bytes
    are the ones pydantic writes for the same values (UTC as `Z`); tests compare them."""
    body = orjson.dumps(document, default=_uuid, option=orjson.OPT_UTC_Z)
    return Response(body, status_code=status_code, media_type="application/json", headers=headers)
