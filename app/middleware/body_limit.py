"""Request bodies over DEALCOACH_MAX_BODY_BYTES answer 413 payload_too_large before anyone reads them."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import payload_too_large


class BodyLimitMiddleware:
    """Starlette's RequestBodyLimitMiddleware counts the bytes as they arrive and stops at the
    limit, so a chunked upload is never read past it. It only looks when someone reads the body,
    though: a handler that takes no body would authenticate and even write before its 413. So a
    declared Content-Length over the limit is refused here, before the application runs at all.
    Sits outside the idempotency middleware (which reads POST bodies before its first query)."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.limited = RequestBodyLimitMiddleware(_ProblemOnOverflow(app, max_body_bytes), max_body_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await payload_too_large(scope["path"], self.max_body_bytes)(scope, receive, send)
            return
        await self.limited(scope, receive, send)


class _ProblemOnOverflow:
    """Starlette signals a body over the limit with HTTPException(413) from receive(); whoever
    read it outside FastAPI's exception handlers (the idempotency middleware) lets it rise to
    here, and it becomes our problem document instead of Starlette's plain text."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except HTTPException as exc:
            if exc.status_code != 413 or started:
                raise
            await payload_too_large(scope["path"], self.max_body_bytes)(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
