"""Plumbing the adapters share: calls with deadlines, SSE decoding, usage in OpenAI's shape.

Every failure leaves here as an `UpstreamError` (`_errors.py` maps them).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpx
import orjson

from providers.tokens import estimate_prompt_tokens

from ._errors import TRANSLATION_ERRORS, bad_response, error_from_response, transport_error
from .base import Target, Usage

_SPENT = httpx.ByteStream(b"")


@functools.lru_cache(maxsize=64)
def _timeouts(seconds: float) -> httpx.Timeout:
    """The transport's timeouts for a call bounded by `seconds`: connecting and waiting
    for a pooled connection, but no read timeout. aiohttp re-arms a read timer at every
    socket read (a timer made and cancelled per chunk of a stream); here the whole call
    runs inside one `asyncio.timeout`, and a stream's caller bounds its first chunk and
    the gaps between chunks with one timer each for the whole stream (the pipeline's
    TTFT and idle timeouts, never longer than the deployment's `timeout`)."""
    return httpx.Timeout(seconds, read=None)


def _release(response: httpx.Response) -> None:
    """Once a response is closed, drop its stream. httpx's response and its stream refer
    to each other; without this every response (with its request, headers and the
    transport's objects) is freed by the cyclic garbage collector instead of at once."""
    if response.is_closed:
        response.stream = _SPENT


async def post_json(http: httpx.AsyncClient, target: Target, url: str, payload: Any, headers: dict[str, str]) -> Any:
    """POST a JSON body within the target's deadline; the parsed JSON answer or UpstreamError."""
    try:
        async with asyncio.timeout(target.timeout):
            response = await http.post(
                url, content=orjson.dumps(payload), headers=headers, timeout=_timeouts(target.timeout)
            )
    except Exception as exc:  # any transport failure, including aiohttp's own exceptions
        raise transport_error(exc, target) from exc
    content = response.content
    _release(response)
    if response.status_code != 200:
        raise error_from_response(response.status_code, content, response.headers)
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        raise bad_response("the body is not valid JSON") from None


async def open_stream(
    http: httpx.AsyncClient, target: Target, url: str, payload: Any, headers: dict[str, str]
) -> httpx.Response:
    """Start a streaming POST; return the open response once the status says 200."""
    request = http.build_request(
        "POST", url, content=orjson.dumps(payload), headers=headers, timeout=_timeouts(target.timeout)
    )
    try:
        async with asyncio.timeout(target.timeout):
            response = await http.send(request, stream=True)
    except Exception as exc:  # any transport failure, including aiohttp's own exceptions
        raise transport_error(exc, target) from exc
    if response.status_code == 200:
        return response
    try:
        async with asyncio.timeout(target.timeout):
            content = await response.aread()
    except Exception as exc:  # the error body is a courtesy; the status already says enough
        content = f"(error body unreadable: {type(exc).__name__})".encode()
    finally:
        await response.aclose()
        _release(response)
    raise error_from_response(response.status_code, content, response.headers)


class SSEDecoder:
    """Incremental server-sent-events parser over raw bytes (LF or CRLF framing)."""

    __slots__ = ("_tail", "_event", "_data")

    def __init__(self) -> None:
        self._tail = b""
        self._event = b""
        self._data: bytes | None = None

    def feed(self, chunk: bytes) -> list[tuple[bytes, bytes]]:
        """The complete (event, data) pairs in this chunk; partial lines wait for the next."""
        if self._tail:
            chunk = self._tail + chunk
        lines = chunk.split(b"\n")
        self._tail = lines.pop()
        out: list[tuple[bytes, bytes]] = []
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:
                if self._data is not None:
                    out.append((self._event, self._data))
                self._event = b""
                self._data = None
            elif line.startswith(b"data:"):
                value = line[6:] if line.startswith(b"data: ") else line[5:]
                self._data = value if self._data is None else self._data + b"\n" + value
            elif line.startswith(b"event:"):
                self._event = line[6:].strip()
        return out

    def flush(self) -> list[tuple[bytes, bytes]]:
        """Whatever is left when the stream ends without a final blank line."""
        out = self.feed(b"\n\n") if self._tail or self._data is not None else []
        self._tail = b""
        return out


class SSEChatStream:
    """An upstream SSE stream translated event by event into OpenAI chunks.

    Subclasses implement `translate` (one SSE event -> OpenAI chunk dicts) and
    `finish` (called at end of input; raises if the stream ended too early).
    """

    def __init__(self, response: httpx.Response, target: Target, messages: Iterable[Any] = ()) -> None:
        self.usage: Usage | None = None
        self._response = response
        self._target = target
        self._messages = messages
        self._closed = False
        self._done = False
        self._chars = 0  # streamed completion characters, for the usage estimate
        self._gen: Any = None
        # Set by subclasses from the first event that names the version (see `version_stamp`).
        self.upstream_version = ""
        self.system_fingerprint = ""

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        if self._gen is None:
            self._gen = self._run()
        return self._gen

    def translate(self, event: bytes, data: bytes) -> Iterable[dict[str, Any]]:
        raise NotImplementedError

    def finish(self) -> None:
        raise NotImplementedError

    def estimate_usage(self) -> None:
        """Fill `usage` by counting when the provider reported none."""
        if self.usage is None:
            self.usage = Usage(
                prompt_tokens=estimate_prompt_tokens(self._messages),
                completion_tokens=(self._chars + 2) // 3,
                estimated=True,
            )

    async def _run(self) -> AsyncIterator[dict[str, Any]]:
        decoder = SSEDecoder()
        raw_iter = self._response.aiter_bytes().__aiter__()
        try:
            while not self._done:
                try:
                    raw = await raw_iter.__anext__()
                except StopAsyncIteration:
                    for event, data in decoder.flush():
                        for chunk in self._translate(event, data):
                            yield chunk
                        if self._done:
                            break
                    if not self._done:
                        self._finish_guarded()
                    break
                except Exception as exc:  # transport failures, including aiohttp's own exceptions
                    if self._closed:
                        return
                    raise transport_error(exc, self._target) from exc
                for event, data in decoder.feed(raw):
                    for chunk in self._translate(event, data):
                        yield chunk
                    if self._done:
                        break
            self.estimate_usage()
            version_stamp(self.usage, self.upstream_version, self.system_fingerprint)
        finally:
            await self._response.aclose()
            _release(self._response)

    def _translate(self, event: bytes, data: bytes) -> Iterable[dict[str, Any]]:
        try:
            return self.translate(event, data)
        except TRANSLATION_ERRORS as exc:
            raise bad_response(f"unreadable stream event ({type(exc).__name__})") from exc

    def _finish_guarded(self) -> None:
        try:
            self.finish()
        except TRANSLATION_ERRORS as exc:
            raise bad_response(f"unreadable stream end ({type(exc).__name__})") from exc

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        gen = self._gen
        if gen is not None and not gen.ag_running:
            await gen.aclose()
        await self._response.aclose()
        _release(self._response)


def version_stamp(usage: Usage | None, version: Any, fingerprint: Any = "") -> None:
    """Put the version the provider reported on the usage (strings only, bounded)."""
    if usage is None:
        return
    if isinstance(version, str):
        usage.upstream_version = version[:200]
    if isinstance(fingerprint, str):
        usage.system_fingerprint = fingerprint[:100]


def openai_usage(raw: Any) -> Usage | None:
    """Usage from an OpenAI-shaped `usage` object (None when absent)."""
    if not isinstance(raw, dict):
        return None
    details = raw.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else 0
    output_details = raw.get("completion_tokens_details")
    reasoning = output_details.get("reasoning_tokens") if isinstance(output_details, dict) else 0
    return Usage(
        prompt_tokens=int(raw.get("prompt_tokens") or 0),
        completion_tokens=int(raw.get("completion_tokens") or 0),
        cached_tokens=int(cached or 0),
        reasoning_tokens=int(reasoning or 0),
    )
