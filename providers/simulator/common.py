"""The request flow every provider shares: knobs, faults, timing, then the answer.

A provider module supplies a `Dialect` (its error bodies and in-stream error
frame) plus two renderers; `respond` does the rest, so fault injection and
latency behave identically across providers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import orjson

from .asgi import SSE, Headers, Request, send_body, send_cut, send_events
from .compose import Answer, PromptCache, Turn, compose
from .knobs import KnobError, KnobRegistry, Knobs, profile_for
from .versions import fingerprint_of, reported_version

STATUS_FAULTS = frozenset(
    {"400", "401", "403", "404", "429", "500", "502", "503", "529", "content_filter", "context_length"}
)
STREAM_KEEP = 6  # frames sent before a mid-stream fault strikes

Frames = list[tuple[bytes, int]]


class Reject(Exception):
    """An error answer in the provider's own shape."""

    def __init__(self, status: int, body: bytes | dict, headers: Headers = (), content_type: bytes | None = None):
        super().__init__(status)
        self.status = status
        self.body = body if isinstance(body, bytes) else orjson.dumps(body)
        self.headers = tuple(headers)
        self.content_type = content_type or b"application/json"


@dataclass(slots=True)
class Sim:
    """State shared by every request of one simulator app."""

    knobs: KnobRegistry
    cache: PromptCache


class Dialect:
    """A provider's error vocabulary; subclasses fill in the bodies."""

    name = "provider"
    malformed_body = b'{"id": "broken", "choices": [{"index": 0, "message": {"role": "assist'
    malformed_frame = b'data: {"id": "broken", "choices": [{"delta": {"content": "unterminat\n\n'

    def fault(self, fault: str, model: str, stream: bool = False) -> Reject:
        """The error answer for an injected status fault."""
        raise NotImplementedError

    def invalid(self, message: str, param: str | None = None, code: str | None = None) -> Reject:
        """A 400 for a request the real provider would refuse."""
        raise NotImplementedError

    def context_length(self, model: str, tokens: int, window: int) -> Reject:
        raise NotImplementedError

    def midstream_frame(self) -> bytes:
        raise NotImplementedError


def resolve_knobs(req: Request, sim: Sim, dialect: Dialect, model: str) -> Knobs:
    try:
        return sim.knobs.resolve(model, req.headers)
    except KnobError as exc:
        raise dialect.invalid(str(exc)) from None


def timing(model: str, knobs: Knobs) -> tuple[float, float]:
    """Scaled (time to first token, seconds per token) for this request."""
    scale = knobs.latency_scale
    if scale <= 0.0:
        return 0.0, 0.0
    ttft, rate = profile_for(model).draw()
    return ttft * scale, scale / rate


async def respond(
    req: Request,
    sim: Sim,
    dialect: Dialect,
    turn: Turn,
    *,
    stream: bool,
    render: Callable[[Answer], bytes],
    render_stream: Callable[[Answer], Frames],
    headers: Headers = (),
    stream_type: bytes = SSE,
) -> None:
    """Inject any fault, wait as the model would, and send the answer."""
    knobs = resolve_knobs(req, sim, dialect, turn.model)
    fault = knobs.fault_now()
    if fault in STATUS_FAULTS:
        if fault == "context_length":
            window = profile_for(turn.model).context_window
            raise dialect.context_length(turn.model, max(turn.prompt_tokens, window + 1), window)
        raise dialect.fault(fault, turn.model, stream)
    if fault == "timeout" or (fault in ("slow_first_token", "stall") and not stream):
        await req.hang()
        return
    window = profile_for(turn.model).context_window
    if turn.prompt_tokens > window:
        raise dialect.context_length(turn.model, turn.prompt_tokens, window)
    answer = compose(turn, knobs, sim.cache)
    answer.version = reported_version(turn.model, dialect.name, knobs.model_version)
    answer.fingerprint = fingerprint_of(answer.version)
    ttft, per_token = timing(turn.model, knobs)
    if not stream:
        if fault == "midstream":
            raise dialect.fault("500", turn.model)
        await req.pause(ttft + answer.completion_tokens * per_token)
        if fault == "malformed":
            await send_body(req, 200, dialect.malformed_body, extra=headers)
        elif fault == "disconnect":
            await send_cut(req, 200, render(answer))
        else:
            await send_body(req, 200, render(answer), extra=headers)
        return
    frames = render_stream(answer)
    cut_after = None
    if fault == "malformed":
        frames = [(dialect.malformed_frame, 0), *frames[1:]]
    elif fault == "midstream":
        frames = [*frames[: min(STREAM_KEEP, len(frames) - 1)], (dialect.midstream_frame(), 0)]
    elif fault == "disconnect":
        cut_after = min(STREAM_KEEP, len(frames) - 1)
    hang_after = None
    if fault == "slow_first_token":
        hang_after = 0
    elif fault == "stall":
        hang_after = min(STREAM_KEEP, len(frames) - 1)
    await send_events(
        req,
        frames,
        ttft=ttft,
        per_token=per_token,
        content_type=stream_type,
        extra=headers,
        cut_after=cut_after,
        hang_after=hang_after,
    )


async def respond_plain(
    req: Request, sim: Sim, dialect: Dialect, model: str, tokens: int, body: Callable[[], bytes]
) -> None:
    """Faults and timing for non-chat calls (embeddings)."""
    knobs = resolve_knobs(req, sim, dialect, model)
    fault = knobs.fault_now()
    if fault in STATUS_FAULTS and fault != "context_length":
        raise dialect.fault(fault, model)
    if fault in ("timeout", "slow_first_token", "stall"):
        await req.hang()
        return
    if fault == "midstream":
        raise dialect.fault("500", model)
    scale = knobs.latency_scale
    if scale > 0.0:
        ttft, _ = profile_for(model).draw()
        await req.pause(ttft * scale * 0.2 + tokens * 0.00002 * scale)
    if fault == "malformed":
        await send_body(req, 200, dialect.malformed_body)
    elif fault == "disconnect":
        await send_cut(req, 200, body())
    else:
        await send_body(req, 200, body())
