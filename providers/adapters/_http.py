"""Plumbing the adapters share: calls with deadlines, SSE decoding, error mapping.

Every failure leaves here as an `UpstreamError` in OpenAI's vocabulary, whatever
the transport (httpx's own or the aiohttp one) or the provider's error shape,
so the gateway's retry and fallback logic reads one set of statuses and codes.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import re
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

import httpx
import orjson

from providers.tokens import estimate_prompt_tokens

from .base import Target, UpstreamError, Usage

TRANSLATION_ERRORS = (ValueError, KeyError, TypeError, IndexError, AttributeError)

_CONTEXT_RE = re.compile(
    r"context length|context_length|context window|maximum context|prompt is too long|too many tokens|"
    r"exceeds the maximum number of tokens|input token count|reduce the length",
    re.IGNORECASE,
)
_CONTENT_RE = re.compile(r"safety system|content management policy|content filtering|content policy", re.IGNORECASE)
_CONTENT_CODES = frozenset({"content_filter", "content_policy_violation", "ResponsibleAIPolicyViolation"})
# Provider error types that imply an HTTP status when an error arrives inside a stream.
_TYPE_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "rate_limit_error": 429,
    "requests": 429,
    "tokens": 429,
    "api_error": 500,
    "server_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def headers_for(target: Target, base: dict[str, str]) -> dict[str, str]:
    """Request headers: the provider's own plus the deployment's extras."""
    if target.extra_headers:
        base.update(target.extra_headers)
    return base


def bad_response(detail: str) -> UpstreamError:
    return UpstreamError(
        f"The upstream provider returned an unusable response: {detail}",
        status=502,
        code="upstream_bad_response",
        retryable=True,
    )


def timeout_error(target: Target | None = None) -> UpstreamError:
    after = f" after {target.timeout:g}s" if target is not None else ""
    return UpstreamError(
        f"The upstream provider did not answer in time{after}.",
        status=504,
        type="timeout",
        code="upstream_timeout",
        retryable=True,
    )


def transport_error(exc: BaseException, target: Target | None = None) -> UpstreamError:
    """Map a transport failure (httpx or the transport under it) to an UpstreamError."""
    if isinstance(exc, UpstreamError):
        return exc
    if isinstance(exc, TimeoutError):
        return timeout_error(target)
    if isinstance(exc, httpx.TimeoutException):
        # The aiohttp transport reports dropped connections as ConnectTimeout; only
        # a real timeout underneath counts as one.
        cause = exc.__cause__
        if cause is None or isinstance(cause, TimeoutError):
            return timeout_error(target)
    name = type(exc).__name__
    return UpstreamError(
        f"Could not reach the upstream provider ({name}: {exc}).",
        status=502,
        code="upstream_unreachable",
        retryable=True,
    )


def _retry_after(headers: Mapping[str, str] | None, details: Any) -> float | None:
    if headers is not None:
        raw_ms = headers.get("retry-after-ms")
        if raw_ms:
            try:
                return float(raw_ms) / 1000.0
            except ValueError:
                raw_ms = None
        raw = headers.get("retry-after")
        if raw:
            try:
                return float(raw)
            except ValueError:
                parsed = email.utils.parsedate_to_datetime(raw) if "," in raw else None
                if parsed is not None:
                    return max(0.0, parsed.timestamp() - time.time())
    if isinstance(details, list):
        for item in details:
            delay = item.get("retryDelay") if isinstance(item, dict) else None
            if isinstance(delay, str) and delay.endswith("s"):
                try:
                    return float(delay[:-1])
                except ValueError:
                    continue
    return None


def parse_error_body(content: bytes) -> dict[str, Any]:
    """Pull message/type/code/param/status/details out of any provider's error body."""
    try:
        data: Any = orjson.loads(content) if content else None
    except orjson.JSONDecodeError:
        data = None
    if data is None:
        text = content[:200].decode("utf-8", "replace").strip() if content else ""
        return {"message": text or "no error detail"}
    return parse_error_data(data)


def parse_error_data(data: Any) -> dict[str, Any]:
    """The error fields of an already parsed error body or in-stream error event."""
    if isinstance(data, list) and data:
        data = data[0]
    if not isinstance(data, dict):
        return {"message": str(data)[:200]}
    error = data.get("error", data)
    if isinstance(error, str):
        return {"message": error}
    if not isinstance(error, dict):
        return {"message": str(error)}
    inner = error.get("innererror")
    return {
        "message": str(error.get("message") or error.get("detail") or "no error detail"),
        "type": error.get("type") if isinstance(error.get("type"), str) else None,
        "code": error.get("code"),
        "param": error.get("param") if isinstance(error.get("param"), str) else None,
        "status": error.get("status") if isinstance(error.get("status"), str) else None,
        "details": error.get("details"),
        "inner_code": inner.get("code") if isinstance(inner, dict) else None,
    }


def _is_auth_complaint(info: dict[str, Any]) -> bool:
    details = info.get("details")
    if isinstance(details, list) and any(isinstance(d, dict) and d.get("reason") == "API_KEY_INVALID" for d in details):
        return True
    return info.get("message", "").startswith(("API key not valid", "API key expired"))


def map_error(status: int, info: dict[str, Any], headers: Mapping[str, str] | None = None) -> UpstreamError:
    """The gateway-facing error for a provider's HTTP status and parsed error body."""
    message = info.get("message") or "no error detail"
    code = info.get("code")
    code = str(code) if code is not None else None
    kind = info.get("type")
    upstream = status
    if kind == "overloaded_error" and status < 500:
        status = 529
    if status in (400, 413, 422):
        if _is_auth_complaint(info):
            status = 401
        elif code in _CONTENT_CODES or info.get("inner_code") in _CONTENT_CODES or _CONTENT_RE.search(message):
            return UpstreamError(
                message,
                status=400,
                type="invalid_request_error",
                code="content_policy_violation",
                param=info.get("param"),
                upstream_status=upstream,
            )
        elif code == "context_length_exceeded" or _CONTEXT_RE.search(message):
            return UpstreamError(
                message,
                status=400,
                type="invalid_request_error",
                code="context_length_exceeded",
                param=info.get("param") or "messages",
                upstream_status=upstream,
            )
        else:
            return UpstreamError(
                message,
                status=400,
                type="invalid_request_error",
                code="request_too_large" if status == 413 else (code if code and not code.isdigit() else None),
                param=info.get("param"),
                upstream_status=upstream,
            )
    if status in (401, 403):
        return UpstreamError(
            f"The upstream provider refused the gateway's credentials (HTTP {status}).",
            status=502,
            code="upstream_auth_failed",
            upstream_status=upstream,
        )
    if status == 404:
        return UpstreamError(
            f"The upstream provider does not know this model or deployment: {message}",
            status=502,
            code="upstream_model_not_found",
            upstream_status=upstream,
        )
    if status == 429:
        error = UpstreamError(
            f"The upstream provider is rate limiting requests: {message}",
            status=429,
            type="rate_limit_error",
            code="upstream_rate_limited",
            retryable=True,
            upstream_status=upstream,
        )
        error.retry_after = _retry_after(headers, info.get("details"))  # type: ignore[attr-defined]
        return error
    if status == 408:
        error = timeout_error()
        error.upstream_status = upstream
        return error
    if status in (503, 529):
        return UpstreamError(
            f"The upstream provider is overloaded: {message}",
            status=503,
            code="upstream_overloaded",
            retryable=True,
            upstream_status=upstream,
        )
    if status >= 500:
        return UpstreamError(
            f"The upstream provider failed (HTTP {status}): {message}",
            status=502,
            code="upstream_server_error",
            retryable=True,
            upstream_status=upstream,
        )
    if 400 <= status < 500:
        return UpstreamError(
            f"The upstream provider refused the request (HTTP {status}): {message}",
            status=502,
            code="upstream_rejected",
            upstream_status=upstream,
        )
    return UpstreamError(
        f"The upstream provider answered with an unexpected HTTP {status}.",
        status=502,
        code="upstream_bad_response",
        retryable=True,
        upstream_status=upstream,
    )


def error_from_response(status: int, content: bytes, headers: Mapping[str, str] | None = None) -> UpstreamError:
    return map_error(status, parse_error_body(content), headers)


def error_from_event(payload: Any) -> UpstreamError:
    """An error that arrived inside a stream (no HTTP status of its own)."""
    info = parse_error_data(payload)
    code = info.get("code")
    status = code if isinstance(code, int) and 400 <= code < 600 else _TYPE_STATUS.get(info.get("type") or "", 500)
    if info.get("status") == "RESOURCE_EXHAUSTED":
        status = 429
    return map_error(status, info)


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
