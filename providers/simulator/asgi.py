"""Bare ASGI plumbing: request reading, JSON replies, paced SSE, abrupt closes.

Kept free of any framework so the simulator answers thousands of requests per
second. Delays always wait on the client's `http.disconnect` too: a client that
goes away ends the work at once instead of leaving a sleeping task behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_BODY = 32 * 1024 * 1024
HANG_SECONDS = 3600.0  # longer than any client timeout

JSON = b"application/json"
JSON_UTF8 = b"application/json; charset=utf-8"
SSE = b"text/event-stream; charset=utf-8"
Headers = Iterable[tuple[bytes, bytes]]


class ClientGone(Exception):
    """The client disconnected while the simulator was still working."""


class BodyTooLarge(Exception):
    """The request body exceeds MAX_BODY."""


class Request:
    """One HTTP request: parsed scope, body and a disconnect watcher."""

    __slots__ = ("scope", "receive", "send", "method", "path", "headers", "_query", "body", "_watch")

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        self.receive = receive
        self.send = send
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.headers: dict[bytes, bytes] = dict(scope["headers"])
        self._query: dict[str, list[str]] | None = None
        self.body = b""
        self._watch: asyncio.Task[None] | None = None

    def header(self, name: bytes) -> str | None:
        value = self.headers.get(name)
        return None if value is None else value.decode("latin-1")

    def query(self, name: str) -> str | None:
        if self._query is None:
            raw = self.scope.get("query_string") or b""
            self._query = parse_qs(raw.decode("latin-1"), keep_blank_values=True) if raw else {}
        values = self._query.get(name)
        return values[0] if values else None

    async def read_body(self) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > MAX_BODY:
                    raise BodyTooLarge
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        self.body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        return self.body

    async def _wait_disconnect(self) -> None:
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                return

    async def pause(self, seconds: float) -> None:
        """Sleep, unless the client disconnects first (then raise ClientGone)."""
        if seconds <= 0.0:
            return
        if self._watch is None:
            self._watch = asyncio.create_task(self._wait_disconnect())
        done, _ = await asyncio.wait((self._watch,), timeout=seconds)
        if done:
            raise ClientGone

    async def hang(self) -> None:
        """Wait far longer than any client would, ending quietly on disconnect."""
        try:
            await self.pause(HANG_SECONDS)
        except ClientGone:
            return

    def close(self) -> None:
        if self._watch is not None and not self._watch.done():
            self._watch.cancel()
        self._watch = None


def _headers(content_type: bytes, length: int | None, extra: Headers) -> list[tuple[bytes, bytes]]:
    headers = [(b"content-type", content_type)]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    headers.extend(extra)
    return headers


async def send_body(req: Request, status: int, body: bytes, content_type: bytes = JSON, extra: Headers = ()) -> None:
    await req.send(
        {"type": "http.response.start", "status": status, "headers": _headers(content_type, len(body), extra)}
    )
    await req.send({"type": "http.response.body", "body": body, "more_body": False})


async def send_cut(req: Request, status: int, body: bytes, content_type: bytes = JSON) -> None:
    """Promise a full body, send part of it, then drop the connection."""
    headers = _headers(content_type, len(body) + 64, ())
    await req.send({"type": "http.response.start", "status": status, "headers": headers})
    await req.send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})


async def send_events(
    req: Request,
    frames: list[tuple[bytes, int]],
    *,
    ttft: float,
    per_token: float,
    content_type: bytes = SSE,
    extra: Headers = (),
    cut_after: int | None = None,
    hang_after: int | None = None,
) -> None:
    """Stream SSE frames (bytes, tokens) at the given pace.

    With no delay everything goes out in one write. `cut_after` sends only that
    many frames and then returns without finishing the body, which makes the
    server drop the connection mid-stream. `hang_after` sends the headers and
    that many frames (0: none, a stream whose first token never comes), then
    goes silent until the client gives up.
    """
    if hang_after is not None:
        await req.send({"type": "http.response.start", "status": 200, "headers": _headers(content_type, None, extra)})
        head = b"".join(f for f, _ in frames[:hang_after])
        if head:
            await req.send({"type": "http.response.body", "body": head, "more_body": True})
        await req.hang()
        return
    if cut_after is not None:
        frames = frames[:cut_after]
    complete = cut_after is None
    start = {"type": "http.response.start", "status": 200, "headers": _headers(content_type, None, extra)}
    if ttft <= 0.0 and per_token <= 0.0:
        await req.send(start)
        await req.send(
            {"type": "http.response.body", "body": b"".join(f for f, _ in frames), "more_body": not complete}
        )
        return
    loop = asyncio.get_running_loop()
    await req.pause(ttft)
    await req.send(start)
    begin = loop.time()
    spent = 0
    pending: list[bytes] = []
    for data, tokens in frames:
        # A frame is due once every token before it has been "generated".
        delay = begin + spent * per_token - loop.time()
        if delay > 0.001:
            if pending:
                await req.send({"type": "http.response.body", "body": b"".join(pending), "more_body": True})
                pending.clear()
            await req.pause(delay)
        pending.append(data)
        spent += tokens
    await req.send({"type": "http.response.body", "body": b"".join(pending), "more_body": not complete})
