"""Upstream errors in OpenAI's vocabulary: whatever the transport or the provider's error
shape, every failure becomes one `UpstreamError` with a status, a type, a code and whether
it may be retried, so the gateway's retry and fallback logic reads one set of them.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Mapping
from typing import Any

import httpx
import orjson

from .base import Target, UpstreamError

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
