"""uvicorn's HTTP protocol with bounds on a request's head: its size and its time.

uvicorn (httptools) buffers a request line and headers of any size: a client that
sent a 200 MB header grew a worker by 350 MiB, beside the 8 MiB body cap. And a
client that sends its head a byte at a time holds a connection for ever. This
protocol answers ``431`` when the head is over ``RECSYS_MAX_HEAD_BYTES`` (at once,
without reading more, when it arrives over several reads) and ``408`` when it is not
complete ``RECSYS_REQUEST_HEAD_SECONDS`` after it began; a connection that sends
nothing is closed then too. Idle keep-alive connections between requests are closed
by uvicorn itself (``timeout_keep_alive``). Both answers are in the one error shape.

`recsys serve` runs uvicorn with it (``http=``); behind a proxy, the proxy's own
limits apply first (nginx: ``large_client_header_buffers``, ``client_header_timeout``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from recsys.settings import get_settings

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


def error_body(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol that refuses an oversize or endless request head."""

    _in_head = False  # a request head has begun and is not complete
    _head_size = 0  # its request line and headers so far, as parsed
    _unparsed = 0  # bytes read while a head was incomplete
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # uvicorn passes an asyncio.Transport
        super().connection_made(transport)
        settings = get_settings()
        self._max_head_bytes = settings.max_head_bytes
        self._head_seconds = settings.request_head_seconds
        self._start_head_clock()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_clock()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self._in_head:
            self._unparsed = 0
            return
        # A head still incomplete after this read: refuse before buffering more of it.
        self._unparsed += len(data)
        if self._unparsed > self._max_head_bytes and not self.transport.is_closing():
            self._refuse_raw(431, "header_too_large", self._too_large_message())

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._head_size = True, 0
        if self._head_timer is None:
            self._start_head_clock()

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self._head_size += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self._head_size += len(name) + len(value) + 4  # ": " and CRLF

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._stop_head_clock()
        if self._head_size <= self._max_head_bytes:
            super().on_headers_complete()
            return
        # Read in one go: answered through the usual cycle, by an app that says why.
        app, self.app = self.app, self._head_too_large
        try:
            super().on_headers_complete()
        finally:
            self.app = app

    async def _head_too_large(self, _scope: Any, _receive: Any, send: Send) -> None:
        body = error_body("header_too_large", self._too_large_message())
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(body)),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 431, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _too_large_message(self) -> str:
        return f"the request line and headers are over {self._max_head_bytes:,} bytes"

    def _start_head_clock(self) -> None:
        self._head_timer = self.loop.call_later(self._head_seconds, self._head_too_slow)

    def _stop_head_clock(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self._in_head:
            message = f"no complete request line and headers in {self._head_seconds:g} s"
            self._refuse_raw(408, "request_timeout", message)
        elif self.cycle is None:  # connected, and silent ever since
            self.transport.close()

    def _refuse_raw(self, status: int, code: str, message: str) -> None:
        """Answer without a request cycle (there is no complete head) and close."""
        body = error_body(code, message)
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n%s" % (status, REASONS[status], len(body), body)
        )
        self.transport.close()
        self._stop_head_clock()
