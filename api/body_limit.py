"""Refuse oversize request bodies while they arrive, before anything parses them.

Every body has a cap (``RECSYS_MAX_BODY_BYTES``; a path may have its own, as the
image upload does): a 300 MB JSON body would otherwise be read and parsed into
gigabytes of Python objects, and Starlette spools a whole multipart upload before
the endpoint runs. This ASGI middleware answers 413 from the Content-Length header
when there is one, and otherwise reads the body itself, stopping at the limit, and
hands it on.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class Limit:
    """At most ``size`` bytes plus ``overhead`` (multipart framing); a refusal names
    ``size`` and answers with error ``code``."""

    size: int
    overhead: int = 0
    code: str = "body_too_large"
    what: str = "request body"


class BodyLimit:
    """Bodies of requests to a path in ``paths`` follow its limit; all others ``default``."""

    def __init__(self, app: ASGIApp, default: Limit, paths: dict[str, Limit]) -> None:
        self.app = app
        self.default = default
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        rule = self.paths.get(scope["path"], self.default)
        limit = rule.size + rule.overhead
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit():
            if int(length) > limit:
                await _refuse(send, rule)
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
                await _refuse(send, rule)
                return
            if not message.get("more_body", False):
                break
        pending = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replay() -> Message:
            return pending.pop() if pending else await receive()

        await self.app(scope, replay, send)


async def _refuse(send: Send, rule: Limit) -> None:
    body = json.dumps(
        {
            "error": {
                "code": rule.code,
                "message": f"the {rule.what} is larger than the limit of {rule.size:,} bytes",
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
