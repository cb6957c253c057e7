"""Gemini API: generateContent, streamGenerateContent, embedContent, batchEmbedContents.

Mounted at /gemini/v1beta/models/{model}:{method}. `streamGenerateContent`
answers SSE with `alt=sse` and a progressively written JSON array without it,
as Google's endpoint does.
"""

from __future__ import annotations

from typing import Any

import orjson

from providers.tokens import count_tokens

from .asgi import JSON, SSE, Request, send_body
from .common import Frames, Reject, Sim, respond, respond_plain
from .compose import Answer, Turn, embedding, new_id
from .gemini_wire import GEMINI, camel, parse_generate, status_body

FINISH = {"stop": "STOP", "stop_sequence": "STOP", "length": "MAX_TOKENS", "tool": "STOP"}
WORDS_PER_CHUNK = 4
DEFAULT_DIMENSIONS = 768


def check_auth(req: Request) -> None:
    if req.headers.get(b"x-goog-api-key") or req.query("key"):
        return
    message = (
        "Method doesn't allow unregistered callers (callers without established identity). "
        "Please use API Key or other form of API consumer identity to call this API."
    )
    raise Reject(403, status_body(403, "PERMISSION_DENIED", message))


def _parse(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise GEMINI.invalid('Invalid JSON payload received. Unexpected token.\n{"contents": [\n^') from None
    if not isinstance(data, dict):
        raise GEMINI.invalid("Invalid JSON payload received. Expected an object.")
    return data


def _usage(answer: Answer, final: bool) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "promptTokenCount": answer.prompt_tokens,
        "totalTokenCount": answer.prompt_tokens + (answer.completion_tokens if final else 0),
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": answer.prompt_tokens}],
    }
    if final:
        usage["candidatesTokenCount"] = answer.completion_tokens - answer.reasoning_tokens
        if answer.reasoning_tokens:
            usage["thoughtsTokenCount"] = answer.reasoning_tokens
    if answer.cached_tokens:
        usage["cachedContentTokenCount"] = answer.cached_tokens
        usage["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": answer.cached_tokens}]
    return usage


def _response(model: str, response_id: str, parts: list[dict[str, Any]], answer: Answer, final: bool) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if final:
        candidate["finishReason"] = FINISH[answer.finish]
    return {
        "candidates": [candidate],
        "usageMetadata": _usage(answer, final),
        "modelVersion": model,
        "responseId": response_id,
    }


def _call_part(answer: Answer) -> dict[str, Any]:
    return {"functionCall": {"name": answer.tool_name, "args": orjson.loads(answer.tool_arguments)}}


def render_response(answer: Answer, turn: Turn) -> bytes:
    parts = [_call_part(answer)] if answer.tool_name is not None else [{"text": answer.text or ""}]
    return orjson.dumps(_response(answer.version or turn.model, new_id("", 11), parts, answer, True))


def _chunks(answer: Answer, turn: Turn) -> list[tuple[dict[str, Any], int]]:
    response_id = new_id("", 11)
    if answer.tool_name is not None:
        part = _call_part(answer)
        return [(_response(answer.version or turn.model, response_id, [part], answer, True), answer.completion_tokens)]
    pieces = answer.pieces or [""]
    groups = ["".join(pieces[i : i + WORDS_PER_CHUNK]) for i in range(0, len(pieces), WORDS_PER_CHUNK)]
    last = len(groups) - 1
    return [
        (_response(answer.version or turn.model, response_id, [{"text": text}], answer, i == last), count_tokens(text))
        for i, text in enumerate(groups)
    ]


def render_sse(answer: Answer, turn: Turn) -> Frames:
    return [(b"data: " + orjson.dumps(obj) + b"\r\n\r\n", tokens) for obj, tokens in _chunks(answer, turn)]


def render_array(answer: Answer, turn: Turn) -> Frames:
    chunks = _chunks(answer, turn)
    frames = [((b"[" if i == 0 else b",\r\n") + orjson.dumps(obj), tokens) for i, (obj, tokens) in enumerate(chunks)]
    frames.append((b"]", 0))
    return frames


async def generate(req: Request, sim: Sim, model: str, stream: bool) -> None:
    """POST :generateContent and :streamGenerateContent."""
    check_auth(req)
    turn = parse_generate(_parse(await req.read_body()), model)
    sse = stream and req.query("alt") == "sse"
    await respond(
        req,
        sim,
        GEMINI,
        turn,
        stream=stream,
        render=lambda answer: render_response(answer, turn),
        render_stream=lambda answer: render_sse(answer, turn) if sse else render_array(answer, turn),
        stream_type=SSE if sse else JSON,
    )


def _embed_text(request: Any, where: str) -> tuple[str, int | None]:
    if not isinstance(request, dict):
        raise GEMINI.invalid(f"Invalid value at '{where}': expected an object")
    request = {camel(k): v for k, v in request.items()}
    for key in request:
        if key not in ("model", "content", "taskType", "title", "outputDimensionality"):
            raise GEMINI.invalid(
                f"Invalid JSON payload received. Unknown name \"{key}\" at '{where}': Cannot find field."
            )
    content = request.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    if not parts:
        raise GEMINI.invalid(f"* {where}.content: content is not specified\n")
    text = " ".join(p.get("text") or "" for p in parts if isinstance(p, dict))
    if not text:
        raise GEMINI.invalid(f"* {where}.content.parts: text content must not be empty\n")
    dims = request.get("outputDimensionality")
    if dims is not None and (isinstance(dims, bool) or not isinstance(dims, int) or not 1 <= dims <= 3072):
        raise GEMINI.invalid(f"* {where}.output_dimensionality: must be between 1 and 3072\n")
    return text, dims


async def embed(req: Request, sim: Sim, model: str, batch: bool) -> None:
    """POST :embedContent and :batchEmbedContents."""
    check_auth(req)
    data = _parse(await req.read_body())
    if batch:
        requests = data.get("requests")
        if not requests or not isinstance(requests, list):
            raise GEMINI.invalid("* BatchEmbedContentsRequest.requests: requests is not specified\n")
        items = []
        for i, item in enumerate(requests):
            where = f"BatchEmbedContentsRequest.requests[{i}]"
            name = item.get("model") if isinstance(item, dict) else None
            if name != f"models/{model}":
                raise GEMINI.invalid(
                    f"* {where}.model: model must be 'models/{model}' (the model in the URL), got {name!r}\n"
                )
            items.append(_embed_text(item, where))
    else:
        items = [_embed_text(data, "EmbedContentRequest")]
    tokens = sum(count_tokens(text) for text, _ in items)

    def body() -> bytes:
        vectors = [{"values": embedding(text, dims or DEFAULT_DIMENSIONS)} for text, dims in items]
        return orjson.dumps({"embeddings": vectors} if batch else {"embedding": vectors[0]})

    await respond_plain(req, sim, GEMINI, model, tokens, body)


async def count(req: Request, sim: Sim, model: str) -> None:
    """POST :countTokens (no faults: it is bookkeeping, not generation)."""
    check_auth(req)
    data = _parse(await req.read_body())
    if "generateContentRequest" in data:
        data = data["generateContentRequest"]
        data.pop("model", None)
    turn = parse_generate(data, model)
    await send_body(req, 200, orjson.dumps({"totalTokens": turn.prompt_tokens}))
