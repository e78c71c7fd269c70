"""Small HTTP helpers shared by routers: ETags and Location headers."""

from __future__ import annotations

from fastapi import Response

ETAG_HEADER = {"ETag": {"description": 'The resource version, e.g. `"3"`; send it back as `If-Match`', "schema": {"type": "string"}}}
LOCATION_HEADER = {"Location": {"description": "URL of the created resource", "schema": {"type": "string"}}}


def set_etag(response: Response, version: int) -> None:
    response.headers["ETag"] = f'"{version}"'


def set_location(response: Response, path: str) -> None:
    response.headers["Location"] = path
