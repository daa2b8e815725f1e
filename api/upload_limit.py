"""Refuse oversize request bodies while they arrive, before anything parses them.

Starlette spools a whole multipart upload before the endpoint runs, so a size
check inside the endpoint would come after the bytes were received. This ASGI
middleware answers 413 from the Content-Length header when there is one, and
otherwise reads the body itself, stopping at the limit, and hands it on.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class UploadLimit:
    """Bodies of requests to ``paths`` may hold at most ``limit`` bytes plus ``overhead``
    (multipart boundaries and headers); errors name ``limit``."""

    def __init__(self, app: ASGIApp, paths: set[str], limit: int, overhead: int = 0) -> None:
        self.app = app
        self.paths = paths
        self.limit = limit
        self.overhead = overhead

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        limit = self.limit + self.overhead
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit():
            if int(length) > limit:
                await _refuse(send, self.limit)
            else:  # the server holds the body to its declared length
                await self.app(scope, receive, send)
            return
        # No length given (a chunked upload): read up to the limit, then replay it.
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            received += len(chunks[-1])
            if received > limit:
                await _refuse(send, self.limit)
                return
            if not message.get("more_body", False):
                break
        pending = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replay() -> Message:
            return pending.pop() if pending else await receive()

        await self.app(scope, replay, send)


async def _refuse(send: Send, limit: int) -> None:
    body = json.dumps(
        {
            "error": {
                "code": "upload_too_large",
                "message": f"the upload is larger than the limit of {limit:,} bytes",
            }
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": body})
