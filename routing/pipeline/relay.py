"""The stream relay: upstream chunks out to the caller, one settlement at the end.

However a stream ends — finished, failed upstream mid-way, an unexpected error,
the client gone — the relay settles exactly once, with the output already sent
counted (the provider's usage when it reported one, otherwise an estimate of the
text and tool-call arguments relayed so far), and a status that says how it
ended: a stream that failed is never recorded as 200.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import orjson

from providers.facade import Usage, count_tokens, estimate_prompt_tokens

if TYPE_CHECKING:
    from routing.gateway import Gateway
    from routing.pipeline.context import RequestContext

logger = logging.getLogger(__name__)

DONE = b"data: [DONE]\n\n"
PROGRESS_EVERY = 50  # chunks between journal progress entries


def _error(message: str, type_: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


class StreamRelay:
    """Iterate once, with `sse()` (server-sent-event bytes) or `chunks()` (dicts)."""

    def __init__(
        self,
        gateway: Gateway,
        ctx: RequestContext,
        upstream: Any,
        body: dict[str, Any],
        *,
        settle: Callable[..., Any],
        guard: Any = None,
    ) -> None:
        self.guard = guard  # guardrails.facade.StreamGuard, or None
        self.gateway = gateway
        self.ctx = ctx
        self.upstream = upstream
        self.body = body
        self._settle = settle
        self.text: list[str] = []  # content and tool-call arguments relayed so far
        self.last: dict[str, Any] | None = None
        self.failed = False  # ended with an error item
        self.settled = False
        # The digest of what was sent (the ledger leaf): the SSE frames when `sse()` sends
        # them, else the JSON of each item `chunks()` hands out.
        self.digest = hashlib.sha256()
        self._framed = False

    async def chunks(self) -> AsyncIterator[dict[str, Any]]:
        """The completion chunks; a failure ends the iteration with one `{"error": ...}` item."""
        ctx = self.ctx
        ctx.ttft = None  # time to the first content token, not to the first (role-only) chunk
        status, error_type, error_code, error_message = 200, "", "", ""
        text = self.text
        journal = self.gateway.usage
        chunks = 0
        guard = self.guard
        try:
            async for chunk in self.upstream:
                self.last = chunk
                chunks += 1
                if chunks % PROGRESS_EVERY == 0:
                    # If this process dies mid-stream, the next start records what was sent.
                    journal.progress(ctx.request_id, sum(map(len, text)) // 3)
                for choice in chunk.get("choices") or ():
                    delta = choice.get("delta") or {}
                    content = delta.get("content")
                    if content:
                        text.append(content)
                    for call in delta.get("tool_calls") or ():
                        arguments = (call.get("function") or {}).get("arguments")
                        if arguments:
                            text.append(arguments)
                    if ctx.ttft is None and (content or delta.get("tool_calls") or delta.get("refusal")):
                        ctx.ttft = ctx.elapsed()
                if guard is None:
                    yield self._out(chunk)
                    continue
                # guard (out): placeholders restored (held back while split), output rules
                for item in guard.feed(chunk):
                    yield self._out(item)
                if guard.refusal is not None:
                    break
            if guard is not None and guard.refusal is None:
                for item in guard.finish():
                    yield self._out(item)
            if guard is not None and guard.refusal is not None:
                refusal = guard.refusal
                self.failed = True
                status, error_type, error_code, error_message = (
                    refusal.status,
                    refusal.type,
                    refusal.code,
                    refusal.message,
                )
                yield self._out(guard.error_event())
                return
            if ctx.include_usage:
                yield self._out(self.usage_chunk(self._usage()))
        except (asyncio.CancelledError, GeneratorExit):
            status, error_type, error_message = 499, "client_disconnected", "The client went away mid-stream."
            raise
        except Exception as exc:
            self.failed = True
            if hasattr(exc, "status") and hasattr(exc, "message") and hasattr(exc, "type"):
                status, error_type, error_code, error_message = exc.status, exc.type, exc.code or "", exc.message
                yield self._out(_error(exc.message, exc.type, exc.code, getattr(exc, "param", None)))
            else:
                logger.exception("unexpected error relaying stream %s", ctx.request_id)
                status, error_type, error_code = 500, "server_error", "stream_failed"
                error_message = "The gateway failed while relaying the stream."
                yield self._out(_error(error_message, error_type, error_code))
        finally:
            await self._finish(status, error_type, error_code, error_message)

    def _out(self, item: dict[str, Any]) -> dict[str, Any]:
        if not self._framed:  # handed out as dicts: the digest covers their JSON
            self.digest.update(orjson.dumps(item))
        return item

    async def sse(self) -> AsyncIterator[bytes]:
        """The same stream as server-sent events, `data: [DONE]` after a clean end."""
        dumps = orjson.dumps
        update = self.digest.update
        self._framed = True
        inner = self.chunks()
        try:
            async for item in inner:
                frame = b"data: " + dumps(item) + b"\n\n"
                update(frame)
                yield frame
            if not self.failed:
                yield DONE
        finally:
            await inner.aclose()  # settles now, not when the generator is collected

    async def _finish(self, status: int, error_type: str, error_code: str, error_message: str) -> None:
        if self.settled:
            return
        self.settled = True
        try:
            await self.upstream.aclose()
        except Exception:
            logger.warning("closing the upstream stream of %s failed", self.ctx.request_id, exc_info=True)
        finally:
            self.ctx.usage = self._usage()
            if self.guard is not None:
                self.ctx.guard_verdict = self.guard.verdict
            self.ctx.response_digest = self.digest.hexdigest()
            self._settle(
                self.ctx, status=status, error_type=error_type, error_code=error_code, error_message=error_message
            )

    def _usage(self) -> Usage:
        """The provider's usage when it reported output; never fewer output tokens than were relayed."""
        reported = getattr(self.upstream, "usage", None)
        relayed = count_tokens("".join(self.text)) if self.text else 0
        if reported is not None and reported.completion_tokens >= relayed:
            return reported
        prompt = reported.prompt_tokens if reported is not None and reported.prompt_tokens else None
        return Usage(
            prompt_tokens=prompt if prompt is not None else estimate_prompt_tokens(self.body.get("messages") or []),
            completion_tokens=relayed,
            cached_tokens=reported.cached_tokens if reported is not None else 0,
            estimated=True,
            upstream_version=getattr(self.upstream, "upstream_version", ""),
            system_fingerprint=getattr(self.upstream, "system_fingerprint", ""),
            reasoning_tokens=reported.reasoning_tokens if reported is not None else 0,
        )

    def usage_chunk(self, usage: Usage) -> dict[str, Any]:
        last = self.last or {}
        return {
            "id": last.get("id", ""),
            "object": "chat.completion.chunk",
            "created": last.get("created", int(time.time())),
            "model": last.get("model", ""),
            "choices": [],
            "usage": {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.prompt_tokens + usage.completion_tokens,
                "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
                **(
                    {"completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens}}
                    if usage.reasoning_tokens
                    else {}
                ),
            },
        }
